"""Least squares with i.i.d. minibatches as one native pass per sub-block (CPU).

For ``linear_regression`` (and ``mean``) with plain SGD or heavy ball at constant rates, a step
is ``r_b = x_bᵀθ − y_b``, ``g = (1/B) Σ_b r_b x_b + l2·θ`` and the rule's update; the general
step materialises the gathered rows ``[C, B, D]`` and makes ~20 passes per step, while
``native/regression.c`` reads each row of the packed table ``[X | y]`` once and keeps a chain's
θ, gradient and sums in L1. The batch indices are the general step's (one ``randint`` of
``[S, C, B]`` per sub-block: the same stream as ``S`` draws of ``[C, B]``), so the two paths
sample the same batches; the sums are added in windows of 64 steps as in the other paths.

The full loss, where recorded (``N·D ≤ 2¹⁶``), is evaluated afterwards from the recorded θ. The
rounding differs from the general step, so archives name the path (``kernel = "native"``).
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..chain_state import BlockRecord, ChainState
from ..native import library
from ..recording import Recording
from ..rules import HeavyBall, UpdateRule
from .fused_linear import MAX_ELEMENTS, linear_rule_form
from .native_block import NativeBlock, fluctuation_factor

if TYPE_CHECKING:
    from ..models import Model

_SUFFIX = {torch.float32: "_f32", torch.float64: "_f64"}
_P = ctypes.c_void_p
KINDS = ("linear_regression", "mean")


class NativeRegressionKernel:
    """The native least-squares path for one (model, rule); ``build`` says whether it applies."""

    def __init__(self, model: Model, rule: UpdateRule, form: HeavyBall, factor: Tensor,
                 batch_size: int, record_full_loss: bool, recording: Recording | None) -> None:
        self.model, self.rule, self.factor, self.b = model, rule, factor, batch_size
        self.recording = recording or Recording(None, None)
        self.record_full_loss = record_full_loss
        x, y = model.x, model.y  # type: ignore[attr-defined]
        self.n = int(x.shape[0])
        self.table = torch.cat([x, y.unsqueeze(1)], 1).to(model.dtype).contiguous()
        self.l2 = float(model.l2)  # type: ignore[attr-defined]
        rates = torch.as_tensor(form.rates, dtype=model.dtype).expand(model.dim)
        self.rates64, self.neg_rates = rates.double(), (-rates).contiguous()
        self.heavy = rule.buffer_map is not None
        self.mu, self.omd = form.mu, 1.0 - form.dampening
        self.n_sums = 6 if self.heavy else 4
        self._fn = getattr(library("regression"), "regression_block" + _SUFFIX[model.dtype])
        real = ctypes.c_float if model.dtype == torch.float32 else ctypes.c_double
        self._fn.argtypes = [_P, _P, _P, _P, real, real, real, real] + [_P] * 9
        self._fn.restype = ctypes.c_int

    @classmethod
    def build(cls, model: Model, rule: UpdateRule, batch_size: int, sampling: str,
              record_full_loss: bool, recording: Recording | None = None
              ) -> NativeRegressionKernel | None:
        """The kernel, or ``None`` where it does not apply.

        It applies to least squares (``linear_regression``, ``mean``) with i.i.d. batches on
        the CPU in float32/64 and a rule of ``linear_rule_form`` whose fluctuation term is
        ``f⊙src²``.

        Raises:
            NativeUnavailable: It applies, but the library cannot be built here.
        """
        if (model.name not in KINDS or model.device.type != "cpu"
                or model.dtype not in _SUFFIX):
            return None
        form = linear_rule_form(rule, model.dim, sampling)
        factor = None if form is None else fluctuation_factor(rule, model.dim, model.dtype)
        if form is None or factor is None:
            return None
        return cls(model, rule, form, factor, batch_size, record_full_loss, recording)

    def run_block(self, generator: torch.Generator, state: ChainState, n_steps: int,
                  thin: int) -> tuple[ChainState, BlockRecord]:
        """``Engine.run_block`` on this path (same batches, record and divergence semantics)."""
        c, d = state.params.shape
        block = NativeBlock(state, self.rule, self.recording, self.record_full_loss, n_steps,
                            thin)
        scratch = torch.zeros((block.sums.shape[0] + 3) * d, dtype=self.model.dtype)
        buf = block.buf
        for part in block.sub_blocks(max(1, min(n_steps, MAX_ELEMENTS // max(c * self.b, 1)))):
            idx = torch.randint(self.n, (part.steps, c, self.b), generator=generator)
            dims = torch.tensor([c, d, part.steps, self.b, thin, part.first, int(self.heavy),
                                 int(part.undamped), block.n_rec, part.stride * d],
                                dtype=torch.int64)
            self._fn(dims.data_ptr(), self.table.data_ptr(), idx.data_ptr(),
                     self.neg_rates.data_ptr(), self.l2, self.mu, self.omd, 1.0 / self.b,
                     block.theta.data_ptr(), 0 if buf is None else buf.data_ptr(),
                     part.rec[:, part.at:].data_ptr(), block.pointer("loss", part.r0),
                     block.pointer("grad_norm", part.r0), block.pointer("flags", part.r0),
                     block.dead.data_ptr(), block.sums.data_ptr(), scratch.data_ptr())
            if "full_loss" in block.out:
                self._full_loss(part.rec[:, part.at:part.at + part.r1 - part.r0],
                                block.out["full_loss"][:, part.r0:part.r1])
        return block.finish(self.rates64, self.factor)

    def _full_loss(self, recorded: Tensor, into: Tensor) -> None:
        """``L(θ)`` of recorded draws ``[C, n, D]`` into ``[C, n]``, rows·N ≤ 2²⁰ at a time."""
        flat, step = recorded.reshape(-1, recorded.shape[-1]), max(1, 2**20 // self.n)
        into.copy_(torch.cat([self.model.full_loss_grad(flat[i:i + step])[0]
                              for i in range(0, flat.shape[0], step)]).view(into.shape))
