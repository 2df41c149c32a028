"""The general step: any model, any rule, any sampling scheme, one torch step at a time.

Each step is ``Engine.step`` (``draw``, then the rule's ``apply``: update, fluctuation term and
divergence guard); around it this path keeps the block's per-coordinate sums, each summed in
θ's dtype over a window of steps and then added to float64 (``SumWindow``): the fluctuation
sum, the stationarity identity's three sums (``IdentityWindow``) and, where θ is recorded
partly or the model's code is not imported later, the virial sums (``VirialWindow``). Every
other path (``kernels.choose``) gives the same statistics faster where it applies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..chain_state import BlockRecord, ChainState

if TYPE_CHECKING:
    from ..engine import Engine


class GeneralStepKernel:
    """Blocks of the engine's general step (module docstring)."""

    def run_block(self, engine: Engine, generator: torch.Generator, state: ChainState,
                  n_steps: int, thin: int, guard: bool) -> tuple[ChainState, BlockRecord]:
        """``n_steps`` steps of ``engine.step``, recording after every ``thin``-th step.

        ``Engine.run_block``'s contract; ``guard``: the per-step divergence check.
        """
        thetas, projs, layer_norms, losses, norms, divs, full = [], [], [], [], [], [], []
        fluct_sum = torch.zeros_like(state.params)
        ident_sum = torch.zeros(engine.c, 3, state.params.shape[1], dtype=torch.float64,
                                device=state.params.device)
        window = IdentityWindow(ident_sum, state.params)
        virial_sum = torch.zeros_like(ident_sum) if engine.virial else None
        virial = VirialWindow(virial_sum, state.params) if virial_sum is not None else None
        for i in range(n_steps):
            theta = state.params
            recorded = (i + 1) % thin == 0
            state, loss, g, fluct, delta = engine.step(generator, state, recorded, guard)
            fluct_sum += fluct
            window.add(theta, delta)
            if virial is not None:  # a diverged chain adds nothing (as in the fused kernel)
                live = ~state.diverged.unsqueeze(-1)
                virial.add(*((theta, g) if not guard else (torch.where(live, theta, 0.0),
                                                           torch.where(live, g, 0.0))))
            if recorded:
                assert loss is not None
                picked, proj, layer_norm = engine.recording.pick(state.params)
                thetas.append(picked)
                if proj is not None:
                    projs.append(proj)
                if layer_norm is not None:
                    layer_norms.append(layer_norm)
                losses.append(loss)
                norms.append(g.norm(dim=-1))
                divs.append(state.diverged)
                if engine.record_full_loss:
                    full.append(engine.model.full_loss_grad(state.params)[0])
        window.flush()
        if virial is not None:
            virial.flush()
        record = BlockRecord(
            theta=torch.stack(thetas, 1), loss=torch.stack(losses, 1),
            grad_norm=torch.stack(norms, 1),
            full_loss=torch.stack(full, 1) if full else None,
            diverged=torch.stack(divs, 1), fluct_sum=fluct_sum, ident_sum=ident_sum,
            n_steps=n_steps, virial_sum=virial_sum,
            projection=torch.stack(projs, 1) if projs else None,
            layer_norms=torch.stack(layer_norms, 1) if layer_norms else None)
        return state, record


class SumWindow:
    """Running per-coordinate sums into ``out`` [C, k, D] float64, summed in θ's dtype first.

    Summed in θ's dtype over windows of ``WINDOW`` steps, then added to the float64 ``out``: a
    few passes over ``[C, D]`` per step in θ's dtype, with no per-step conversion to float64
    (which dominated a step at 10⁵ coordinates), and a float32 window's rounding (≤ ``WINDOW``·2⁻²⁴
    relative) far below any Monte Carlo error of what the sums estimate.
    """

    WINDOW = 64

    def __init__(self, out: Tensor, like: Tensor) -> None:
        self.out, self.acc, self.n = out, torch.zeros_like(out, dtype=like.dtype), 0

    def _tick(self) -> None:
        self.n += 1
        if self.n == self.WINDOW:
            self.flush()

    def flush(self) -> None:
        """Move the window's sums into ``out``."""
        if self.n:
            self.out += self.acc
            self.acc.zero_()
            self.n = 0


class IdentityWindow(SumWindow):
    """``Σθ_t⊙p⊙g``, ``Σp⊙g`` and ``½Σ(p⊙g)²`` (``p⊙g = −δ``): the stationarity identity."""

    def add(self, theta: Tensor, delta: Tensor) -> None:
        """One step: ``θ_t`` (before the step) and ``δ_t``."""
        self.acc[:, 0].addcmul_(theta, delta, value=-1.0)
        self.acc[:, 1].sub_(delta)
        self.acc[:, 2].addcmul_(delta, delta, value=0.5)
        self._tick()


class VirialWindow(SumWindow):
    """``Σθ_t``, ``Σθ_t⊙g_t`` and ``Σg_t`` with ``g_t`` the minibatch gradient at ``θ_t``.

    With batches drawn independently of ``θ_t`` (every sampling scheme but epoch reshuffling),
    ``E[g_t | θ_t] = ∇L(θ_t)``, so ``E[θg] − E[θ]E[g] = E[(θ − c)⊙∇L]``: the per-coordinate
    virial temperature without recording θ (``run.record`` with a subset).
    """

    def add(self, theta: Tensor, grad: Tensor) -> None:
        """One step: ``θ_t`` (before the step) and its minibatch gradient."""
        self.acc[:, 0].add_(theta)
        self.acc[:, 1].addcmul_(theta, grad)
        self.acc[:, 2].add_(grad)
        self._tick()
