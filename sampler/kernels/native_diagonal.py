"""The fused diagonal-quadratic path as one native pass per sub-block (CPU).

Same model, rules and record as ``DiagonalLinearKernel`` (see its docstring for the step), but
the whole sub-block — the steps, the per-coordinate sums, the loss, ‖g‖ and full loss of the
recorded steps and the divergence semantics — is one C loop (``native/diagonal.c``) over tiles
of chains whose state stays in cache, instead of ~15 vectorised passes over a stored
trajectory. The noise is one ``randn`` of ``C·S·D`` standard normals per sub-block, read by the
kernel as ``[tile][S][chains of the tile][D]`` and scaled there (``ξ = s⊙z``).

The sums are added per element in windows of 64 steps in θ's dtype and across windows in
float64. The rule's fluctuation term is ``f⊙src²`` for every eligible rule (``½η g²`` for SGD,
``½ηκ b²`` for heavy ball, …); ``f`` is read off the rule once (``fluctuation_factor``).

A different random stream and rounding from the vectorised path, so archives name it
(``kernel = "native"``) and are always continued with it; the kernel gives the same bits on
every x86-64 CPU (no fused multiply-adds, fixed order of every sum).
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..chain_state import BlockRecord, ChainState
from ..native import NativeUnavailable, library
from ..recording import Recording
from ..rules import HeavyBall, UpdateRule
from .fused_linear import MAX_ELEMENTS, eligible
from .native_block import NativeBlock, fluctuation_factor

if TYPE_CHECKING:
    from ..models import Model

TILE_ELEMENTS = 128  # chains per tile: ⌈128 / D⌉ (measured: 64 chains at D = 2 is fastest)
_SUFFIX = {torch.float32: "_f32", torch.float64: "_f64"}
_P = ctypes.c_void_p


class NativeDiagonalKernel:
    """The native path for one (model, rule); ``build`` says whether it applies here."""

    def __init__(self, model: Model, rule: UpdateRule, form: HeavyBall, h: Tensor,
                 scale: Tensor, factor: Tensor, record_full_loss: bool,
                 recording: Recording | None) -> None:
        self.model, self.rule = model, rule
        self.recording = recording or Recording(None, None)
        self.record_full_loss = record_full_loss
        d = model.dim
        self.tile = max(1, -(-TILE_ELEMENTS // d))
        rates = torch.as_tensor(form.rates, dtype=model.dtype).expand(d)
        self.rates64 = rates.double()
        self.factor = factor
        self.heavy = rule.buffer_map is not None
        self.mu, self.omd = form.mu, 1.0 - form.dampening
        self.params = torch.cat([v.repeat(self.tile) for v in
                                 (scale, h, 1.0 - rates * h, -rates)]).contiguous()
        self.n_sums = 6 if self.heavy else 4
        self._fn = getattr(library(), "diag_block" + _SUFFIX[model.dtype])
        real = ctypes.c_float if model.dtype == torch.float32 else ctypes.c_double
        self._fn.argtypes = [_P, _P, real, real] + [_P] * 14
        self._fn.restype = ctypes.c_int

    @classmethod
    def build(cls, model: Model, rule: UpdateRule, sampling: str, record_full_loss: bool,
              recording: Recording | None = None) -> NativeDiagonalKernel | None:
        """The kernel, or ``None`` where it does not apply.

        It does not where the fused path does not, for non-diagonal noise, off the CPU, in
        dtypes other than float32/64, or for a fluctuation term that is not ``f⊙src²``.

        Raises:
            NativeUnavailable: It applies, but the library cannot be built here.
        """
        found = eligible(model, rule, sampling)
        scale = model.diagonal_noise_scale()
        if (found is None or scale is None or model.device.type != "cpu"
                or model.dtype not in _SUFFIX):
            return None
        factor = fluctuation_factor(rule, model.dim, model.dtype)
        if factor is None:
            return None
        h, form = found
        return cls(model, rule, form, h, scale, factor, record_full_loss, recording)

    def run_block(self, generator: torch.Generator, state: ChainState, n_steps: int,
                  thin: int) -> tuple[ChainState, BlockRecord]:
        """``Engine.run_block`` on this path (same record, same divergence semantics)."""
        c, d = state.params.shape
        dtype = self.model.dtype
        block = NativeBlock(state, self.rule, self.recording, self.record_full_loss, n_steps,
                            thin)
        sub = max(1, min(n_steps, MAX_ELEMENTS // max(c * d, 1)))
        tn = self.tile * d
        scratch = torch.zeros((block.sums.shape[0] + 5) * tn, dtype=dtype)
        saved = torch.empty(block.sums.shape[0] * tn, dtype=torch.float64)
        most = -(-sub // thin)  # recorded steps in a sub-block, at most
        tile_rec = torch.empty(most * self.tile * (d + 3), dtype=dtype)
        tile_flag = torch.empty(most * self.tile, dtype=torch.uint8)
        buf = block.buf
        for part in block.sub_blocks(sub):
            z = self._normals(generator, part.steps, c, d)
            dims = torch.tensor([c, d, part.steps, self.tile, thin, part.first, int(self.heavy),
                                 int(part.undamped), block.n_rec, part.stride * d],
                                dtype=torch.int64)
            self._fn(dims.data_ptr(), self.params.data_ptr(), self.mu, self.omd,
                     block.theta.data_ptr(), 0 if buf is None else buf.data_ptr(),
                     z.data_ptr(), part.rec[:, part.at:].data_ptr(),
                     block.pointer("loss", part.r0), block.pointer("grad_norm", part.r0),
                     block.pointer("full_loss", part.r0), block.pointer("flags", part.r0),
                     block.dead.data_ptr(), block.sums.data_ptr(), scratch.data_ptr(),
                     saved.data_ptr(), tile_rec.data_ptr(), tile_flag.data_ptr())
        return block.finish(self.rates64, self.factor)

    def _normals(self, generator: torch.Generator, s: int, c: int, d: int) -> Tensor:
        """The sub-block's ``C·S·D`` standard normals (read as ``[tile][S][ct][D]``)."""
        return torch.randn(c * s * d, generator=generator, dtype=self.model.dtype)


__all__ = ["NativeDiagonalKernel", "NativeUnavailable"]
