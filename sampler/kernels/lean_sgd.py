"""Constant-rate SGD on any dataset model in the fewest passes over ``[C, D]`` per step.

At 10⁵–10⁶ parameters a step's time goes less to the gradient than to the elementwise passes
over ``[C, D]`` around it: the general step (``Engine.apply``) makes eleven (update, new θ, the
fluctuation term and its sum, three identity sums, three virial sums) and allocates a fresh
``[C, D]`` for most. With a constant rate η every one of those sums follows from ``Σg²`` (and
``Σθ`` where the virial is kept) and θ at the block's two ends ``θ_s, θ_e``, because
``θ_{t+1} = θ_t − η g_t`` gives, summed over the block's steps,

    η Σg = θ_s − θ_e,
    η Σθ⊙g = ½(θ_s² − θ_e²) + ½η² Σg²     (θ_t(θ_t − θ_{t+1}) = ½(θ_t² − θ_{t+1}²) + ½(ηg_t)²),

so the identity sums are ``(ηΣθ⊙g, ηΣg, ½η²Σg²)``, the fluctuation sum ``½ηΣg²`` and the virial
sums ``(Σθ, Σθ⊙g, Σg)``, all formed once per block in float64. The step itself updates θ in
place (``θ ← θ − η·g``, one fused ``add_``) on the gradient's own pieces (a network's layers,
never concatenated) and adds ``g⊙g`` (and θ) to a window: three or four passes per step, and no
``[C, D]`` allocated per step. The two forms of Σg and Σθ⊙g differ only by the update's
rounding, ``Σ_t θ_t r_t / η`` with ``|r_t| ≤ ε|θ_t|``, far below their Monte Carlo error. The
chains agree with the general step's to rounding (the fused update rounds once, ``θ + (−η·g)``
twice: ``tests/sampler/test_lean_sgd.py``). Runs are written with the kernel name ``"lean"`` so that an
archive is always continued by the path that wrote it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..chain_state import BlockRecord, ChainState, freeze_buffers
from ..models import IndexBatch
from ..recording import Recording
from ..rules import UpdateRule
from .native_lean import NativeLeanStep

if TYPE_CHECKING:
    from ..engine import Engine
    from ..models import Model

WINDOW = 64  # steps summed in θ's dtype before the float64 totals (general_step.SumWindow)


class LeanSGDKernel:
    """Blocks of constant-rate SGD for a model with minibatch indices (module docstring)."""

    def __init__(self, lr: float, virial: bool, native: NativeLeanStep | None = None) -> None:
        self.lr, self.virial, self.native = lr, virial, native

    @classmethod
    def build(cls, model: Model, rule: UpdateRule, sampling: str, recording: Recording,
              native: bool = False) -> LeanSGDKernel | None:
        """The path, where it applies: plain SGD at a constant rate, index minibatches.

        ``native``: each step's elementwise work as one C pass (``native_lean``; CPU only;
        raises ``NativeUnavailable`` where its library cannot be built).
        """
        if (rule.name != "sgd" or rule.rates != "constant" or rule.lr is None
                or not rule.stationary or model.n_examples is None
                or sampling not in ("iid", "without_replacement", "epoch")):
            return None
        step = (NativeLeanStep(model.dtype, float(rule.lr))
                if native and model.device.type == "cpu" else None)
        return cls(float(rule.lr), recording.keeps_virial, step)

    def run_block(self, engine: Engine, generator: torch.Generator, state: ChainState,
                  n_steps: int, thin: int, guard: bool) -> tuple[ChainState, BlockRecord]:
        """``n_steps`` steps recording after every ``thin``-th (``Engine.run_block``'s contract).

        θ is copied once and then updated in place, block of coordinates by block (the model's
        gradient pieces, ``Model.step_grad_parts``): no ``[C, D]`` is allocated per step. With
        ``guard`` a chain whose θ turns non-finite is frozen at its last finite value, flagged,
        and adds nothing to the sums from then on (as the general step does).
        """
        c, d = state.params.shape
        theta = state.params.clone()  # the caller's state stays intact (a block may be rerun)
        terms = 2 if self.virial else 1  # Σg², and Σθ
        window = torch.zeros(c, terms, d, dtype=theta.dtype, device=theta.device)
        totals = torch.zeros(c, terms, d, dtype=torch.float64, device=theta.device)
        rec = _Records()
        diverged, buffers, perm = state.diverged, state.buffers, state.perm
        for i in range(n_steps):
            recorded = (i + 1) % thin == 0
            batch, perm = engine.draw(generator, state._replace(perm=perm, step=state.step + i))
            assert isinstance(batch, IndexBatch)
            loss, parts, new_buffers = engine.model.step_grad_parts(theta, buffers, batch,
                                                                    recorded)
            if guard:
                theta, diverged, new_buffers = self._guarded(window, theta, parts, diverged,
                                                             buffers, new_buffers)
            else:
                self._step(window, theta, parts)
            buffers = new_buffers
            if (i + 1) % WINDOW == 0:
                totals += window
                window.zero_()
            if recorded:
                assert loss is not None
                rec.add(engine, theta, loss, parts, diverged)
        totals += window
        new = ChainState(theta, state.rule_state, diverged, perm, state.step + n_steps, buffers)
        return new, self._record(totals, rec, n_steps, state.params, theta)

    def _step(self, window: Tensor, theta: Tensor, parts: list[Tensor]) -> None:
        """The sums into ``window`` and ``θ ← θ − η·g``, in place, piece by piece."""
        lo = 0
        for g in parts:
            hi = lo + g.shape[1]
            if self.native is not None:
                self.native(theta, lo, g, window, self.virial)
            else:
                self._add(window[:, :, lo:hi], theta[:, lo:hi], g)
                theta[:, lo:hi].add_(g, alpha=-self.lr)
            lo = hi

    def _guarded(self, window: Tensor, theta: Tensor, parts: list[Tensor], diverged: Tensor,
                 buffers: dict[str, Tensor], new_buffers: dict[str, Tensor]
                 ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """The step with divergence checked.

        A chain whose θ turns non-finite keeps its last θ and buffers, is flagged, and adds
        nothing to the sums (this step included).
        """
        before = theta.clone()
        if self.native is not None:  # the same C pass as unguarded, its sums from zero
            scratch = torch.zeros_like(window)  # (0 + x = x: a kept chain gets the same bits)
            self._step(scratch, theta, parts)
            bad = diverged | ~torch.isfinite(theta).all(dim=-1)
            window.add_(torch.where(bad.view(-1, 1, 1), 0.0, scratch))
            theta = torch.where(bad.unsqueeze(-1), before, theta)
        else:
            lo = 0
            for g in parts:
                hi = lo + g.shape[1]
                theta[:, lo:hi].add_(g, alpha=-self.lr)
                lo = hi
            bad = diverged | ~torch.isfinite(theta).all(dim=-1)
            keep = bad.unsqueeze(-1)
            theta = torch.where(keep, before, theta)
            lo = 0
            for g in parts:
                hi = lo + g.shape[1]
                self._add(window[:, :, lo:hi], torch.where(keep, 0.0, before[:, lo:hi]),
                          torch.where(keep, 0.0, g))
                lo = hi
        return theta, bad, freeze_buffers(bad, buffers, new_buffers)

    def _add(self, window: Tensor, theta: Tensor, g: Tensor) -> None:
        """One step's ``g²`` (and ``θ``) into a block of coordinates of the window."""
        window[:, 0].addcmul_(g, g)
        if self.virial:
            window[:, 1].add_(theta)

    def _record(self, totals: Tensor, rec: _Records, n_steps: int, start: Tensor,
                end: Tensor) -> BlockRecord:
        """The block's record: every sum from ``Σg²`` (and ``Σθ``) and θ at the block's ends.

        ``ηΣg = θ_s − θ_e`` and ``ηΣθ⊙g = ½(θ_s − θ_e)(θ_s + θ_e) + ½η²Σg²`` (module docstring),
        in float64; a chain frozen all block (``θ_s = θ_e``) gets exact zeros.
        """
        lr = self.lr
        s, e, gg = start.double(), end.double(), totals[:, 0]
        step = s - e  # ηΣg
        moved = torch.where(step == 0, 0.0, step * (0.5 * s + 0.5 * e))  # ½(θ_s² − θ_e²)
        half_sq = 0.5 * lr * lr * gg  # ½η²Σg²
        ident = torch.stack([moved + half_sq, step, half_sq], 1)
        virial = (torch.stack([totals[:, 1], (moved + half_sq) / lr, step / lr], 1)
                  if self.virial else None)
        return BlockRecord(
            theta=torch.stack(rec.thetas, 1), loss=torch.stack(rec.losses, 1),
            grad_norm=torch.stack(rec.norms, 1),
            full_loss=torch.stack(rec.full, 1) if rec.full else None,
            diverged=torch.stack(rec.divs, 1), fluct_sum=(0.5 * lr * gg).to(end.dtype),
            ident_sum=ident, n_steps=n_steps, virial_sum=virial,
            projection=torch.stack(rec.projs, 1) if rec.projs else None,
            layer_norms=torch.stack(rec.layer_norms, 1) if rec.layer_norms else None)


class _Records:
    """What the recorded steps of a block keep (copies: θ is updated in place)."""

    def __init__(self) -> None:
        self.thetas: list[Tensor] = []
        self.projs: list[Tensor] = []
        self.layer_norms: list[Tensor] = []
        self.losses: list[Tensor] = []
        self.norms: list[Tensor] = []
        self.divs: list[Tensor] = []
        self.full: list[Tensor] = []

    def add(self, engine: Engine, theta: Tensor, loss: Tensor, parts: list[Tensor],
            diverged: Tensor) -> None:
        """One recorded step: θ after it, the loss and ‖g_B‖ of its gradient (before it)."""
        picked, proj, norm = engine.recording.pick(theta)
        self.thetas.append(picked.clone() if picked.data_ptr() == theta.data_ptr() else picked)
        if proj is not None:
            self.projs.append(proj)
        if norm is not None:
            self.layer_norms.append(norm)
        self.losses.append(loss)
        self.norms.append(torch.linalg.vector_norm(torch.stack(
            [torch.linalg.vector_norm(g, dim=-1) for g in parts], -1), dim=-1))
        self.divs.append(diverged)
        if engine.record_full_loss:
            self.full.append(engine.model.full_loss_grad(theta)[0])
