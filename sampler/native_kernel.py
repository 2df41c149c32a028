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

from .chain_state import BlockRecord, ChainState
from .linear_kernel import MAX_ELEMENTS, block_outputs, eligible
from .native import NativeUnavailable, library
from .recording import Recording
from .rules import GradSample, HeavyBall, UpdateRule

if TYPE_CHECKING:
    from .models import Model

TILE_ELEMENTS = 128  # chains per tile: ⌈128 / D⌉ (measured: 64 chains at D = 2 is fastest)
_SUFFIX = {torch.float32: "_f32", torch.float64: "_f64"}
_P = ctypes.c_void_p


def fluctuation_factor(rule: UpdateRule, dim: int, dtype: torch.dtype) -> Tensor | None:
    """``f [D]`` with the rule's fluctuation term ``= f⊙src²`` (``None`` if it is not that form).

    ``src`` is the minibatch gradient for a stateless rule and the heavy-ball buffer otherwise.
    Read at ``src = 1`` and checked at ``src = 2`` and ``−3`` (with a different gradient, which
    a heavy-ball rule's term must not depend on).
    """
    hb = rule.buffer_map

    def term(src: float, grad: float) -> Tensor:
        s = torch.full((1, dim), src, dtype=torch.float64)
        g = s if hb is None else torch.full((1, dim), grad, dtype=torch.float64)
        state = hb.state(s) if hb is not None else ()
        return rule.fluctuation(GradSample(g, None, None, None, torch.zeros_like(s), 1), state)[0]

    f = term(1.0, 5.0)
    for src, grad in ((2.0, 7.0), (-3.0, 0.5)):
        if not torch.allclose(term(src, grad), f * src * src, rtol=1e-12, atol=0.0):
            return None
    return f.to(dtype)


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
        sub = max(1, min(n_steps, MAX_ELEMENTS // max(c * d, 1)))
        n_rec = n_steps // thin
        out = block_outputs(c, n_rec, state.params, self.recording, self.record_full_loss)
        direct = self.recording.coords is None  # θ goes straight into the record
        picks = self.recording.directions is not None or self.recording.layers is not None
        flags = torch.empty(c, n_rec, dtype=torch.uint8)
        theta = state.params.clone(memory_format=torch.contiguous_format)
        hb = self.rule.buffer_map
        buf = (hb.buffer(state.rule_state).clone(memory_format=torch.contiguous_format)
               if hb is not None else None)
        dead = state.diverged.to(torch.uint8).contiguous()
        sums = torch.zeros(self.n_sums, c, d, dtype=torch.float64)
        tn = self.tile * d
        scratch = torch.zeros((self.n_sums + 5) * tn, dtype=dtype)
        saved = torch.empty(self.n_sums * tn, dtype=torch.float64)
        most = -(-sub // thin)  # recorded steps in a sub-block, at most
        tile_rec = torch.empty(most * self.tile * (d + 3), dtype=dtype)
        tile_flag = torch.empty(most * self.tile, dtype=torch.uint8)
        size = scratch.element_size()
        full = out.get("full_loss")
        done = r0 = 0
        while done < n_steps:
            s = min(sub, n_steps - done)
            first = (thin - 1 - done) % thin
            r1 = r0 + len(range(first, s, thin))
            # θ of the recorded steps: straight into the record, or a sub-block's worth to pick
            rec, at, stride = ((out["theta"], r0, n_rec) if direct else
                               (theta.new_empty(c, r1 - r0, d), 0, r1 - r0))
            z = self._normals(generator, s, c, d)
            undamped = hb is not None and hb.first_undamped and state.step + done == 0
            dims = torch.tensor([c, d, s, self.tile, thin, first, int(self.heavy), int(undamped),
                                 n_rec, stride * d], dtype=torch.int64)
            self._fn(dims.data_ptr(), self.params.data_ptr(), self.mu, self.omd,
                     theta.data_ptr(), 0 if buf is None else buf.data_ptr(), z.data_ptr(),
                     rec.data_ptr() + at * d * size, out["loss"].data_ptr() + r0 * size,
                     out["grad_norm"].data_ptr() + r0 * size,
                     0 if full is None else full.data_ptr() + r0 * size,
                     flags.data_ptr() + r0, dead.data_ptr(), sums.data_ptr(),
                     scratch.data_ptr(), saved.data_ptr(), tile_rec.data_ptr(),
                     tile_flag.data_ptr())
            if picks or not direct:
                picked, proj, norms = self.recording.pick(rec[:, at:at + r1 - r0])
                if not direct:
                    out["theta"][:, r0:r1] = picked
                if proj is not None:
                    out["projection"][:, r0:r1] = proj
                if norms is not None:
                    out["layer_norms"][:, r0:r1] = norms
            done, r0 = done + s, r1
        out["diverged"].copy_(flags.bool())
        return self._finish(state, n_steps, theta, buf, dead, sums, out)

    def _normals(self, generator: torch.Generator, s: int, c: int, d: int) -> Tensor:
        """The sub-block's ``C·S·D`` standard normals (read as ``[tile][S][ct][D]``)."""
        return torch.randn(c * s * d, generator=generator, dtype=self.model.dtype)

    def _finish(self, state: ChainState, n_steps: int, theta: Tensor, buf: Tensor | None,
                dead: Tensor, sums: Tensor, out: dict[str, Tensor]
                ) -> tuple[ChainState, BlockRecord]:
        fluct, ident, virial = record_sums(sums, self.rates64, self.factor, self.heavy,
                                           self.recording.partial, theta.dtype)
        hb = self.rule.buffer_map
        rule_state = hb.state(buf) if hb is not None and buf is not None else state.rule_state
        new = ChainState(theta, rule_state, dead.bool(), state.perm, state.step + n_steps)
        return new, BlockRecord(out["theta"], out["loss"], out["grad_norm"],
                                out.get("full_loss"), out["diverged"], fluct, ident, n_steps,
                                virial, out.get("projection"), out.get("layer_norms"))


def record_sums(sums: Tensor, rates64: Tensor, factor: Tensor, heavy: bool, partial: bool,
                dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor | None]:
    """A native kernel's per-coordinate sums as the record's: fluctuation, identity, virial.

    ``sums [K, C, D]`` float64 holds ``Σθ·src, Σsrc, Σsrc², Σθ`` (heavy ball also ``Σθ·g, Σg``);
    the identity sums are ``Λ·Σθ·src, Λ·Σsrc, ½Λ²·Σsrc²``, the fluctuation ``f⊙Σsrc²`` in θ's
    dtype, and the virial sums ``Σθ, Σθ·g, Σg`` (kept only for partial records).
    """
    r = rates64
    ident = torch.stack([r * sums[0], r * sums[1], 0.5 * r.square() * sums[2]], 1)
    virial = None
    if partial:
        pair = (sums[4], sums[5]) if heavy else (sums[0], sums[1])
        virial = torch.stack([sums[3], *pair], 1)
    return (factor.double() * sums[2]).to(dtype), ident, virial


__all__ = ["NativeDiagonalKernel", "NativeUnavailable", "fluctuation_factor", "record_sums"]
