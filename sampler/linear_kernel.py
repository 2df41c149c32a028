"""A block of constant-rate SGD on a diagonal quadratic in one fused operation per step.

With ``g_t = h⊙θ_t + ξ_t`` (``h`` the Hessian's diagonal, ``ξ_t`` the model's Gaussian noise) and a
stateless rule whose linear form is ``θ_{t+1} = θ_t − Λ⊙g_t`` exactly (plain SGD), one step is

    θ_{t+1} = a⊙θ_t + b_t,   a = 1 − Λ⊙h,   b_t = −Λ⊙ξ_t,

a single ``addcmul`` written straight into the trajectory buffer. The noise of ``S`` steps is drawn
at once; everything else the general step computes — the minibatch loss ``½θ_tᵀHθ_t + ξ_tᵀθ_t``
and ``‖g_t‖`` of recorded steps, the full loss at the draws, the rule's fluctuation term and the
stationarity sums ``Σθ⊙pg``, ``Σpg``, ``½Σpg²`` with ``pg_t = Λ⊙g_t`` — is computed afterwards
from the stored trajectory, vectorised over the sub-block. Divergence gets the general step's
semantics: a chain is frozen at its last finite θ and flagged, and contributes nothing after.

Chain-major throughout (``[C, S, D]``, the record's layout). The result is a different random
stream (and rounding) from the general step, so an archive records which path wrote it
(``kernel`` in the run attributes) and is always continued with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from .chain_state import BlockRecord, ChainState
from .rules import GradSample, UpdateRule

if TYPE_CHECKING:
    from .models import Model

MAX_ELEMENTS = 2**20  # sub-block: S·C·D of at most ~4 MB per float32 buffer (measured best)


class DiagonalLinearKernel:
    """The fused path for one (model, rule); ``build`` says whether it applies.

    Args:
        model: A model with a diagonal Hessian and additive noise (``Model.diagonal_hessian``).
        rule: A stateless rule whose heavy-ball form has no momentum.
        rates: ``Λ`` ``[D]`` from the rule's linear form.
        record_full_loss: Whether draws record ``L(θ)``.
    """

    def __init__(self, model: Model, rule: UpdateRule, rates: Tensor, h: Tensor,
                 record_full_loss: bool) -> None:
        self.model, self.rule, self.rates, self.h = model, rule, rates, h
        self.a = 1.0 - rates * h
        self.record_full_loss = record_full_loss

    @classmethod
    def build(cls, model: Model, rule: UpdateRule, sampling: str,
              record_full_loss: bool) -> DiagonalLinearKernel | None:
        """The kernel, or ``None`` if the pair is not a constant-rate stateless linear step."""
        h = model.diagonal_hessian()
        if (h is None or sampling != "iid" or rule.rates != "constant" or not rule.stationary
                or rule.linear_form is None or rule.needs_loss or rule.needs_example_var
                or rule.needs_example_sq or len(rule.init(h.unsqueeze(0))) != 0):
            return None
        d = model.dim
        form = rule.linear_form(np.zeros(d), np.zeros(d), True)
        if form.mu != 0.0 or form.dampening != 0.0 or not form.exact:
            return None
        rates = torch.as_tensor(form.rates, dtype=model.dtype, device=model.device)
        return cls(model, rule, rates, h, record_full_loss)

    def run_block(self, generator: torch.Generator, state: ChainState, n_steps: int,
                  thin: int) -> tuple[ChainState, BlockRecord]:
        """``Engine.run_block`` on this path (same record, same divergence semantics).

        Everything is chain-major (``[C, S, D]``), the layout of the record, so no transposing
        copy is made; sub-blocks of ``S`` steps bound the memory.
        """
        c, d = state.params.shape
        sub = max(1, min(n_steps, MAX_ELEMENTS // max(c * d, 1)))
        n_rec, like = n_steps // thin, state.params
        out = {"theta": like.new_empty(c, n_rec, d), "loss": like.new_empty(c, n_rec),
               "grad_norm": like.new_empty(c, n_rec),
               "diverged": torch.empty(c, n_rec, dtype=torch.bool, device=like.device)}
        if self.record_full_loss:
            out["full_loss"] = like.new_empty(c, n_rec)
        fluct_sum = torch.zeros_like(like)
        ident_sum = torch.zeros(c, 3, d, dtype=torch.float64, device=like.device)
        params, diverged, done, r0 = like, state.diverged, 0, 0
        while done < n_steps:
            s = min(sub, n_steps - done)
            params, diverged, part = self._sub_block(generator, params, diverged, s, done, thin,
                                                     fluct_sum, ident_sum, state.step + done)
            r1 = r0 + part["loss"].shape[1]
            for name, value in part.items():
                out[name][:, r0:r1] = value
            done, r0 = done + s, r1
        new = ChainState(params, state.rule_state, diverged, state.perm, state.step + n_steps)
        return new, BlockRecord(out["theta"], out["loss"], out["grad_norm"],
                                out.get("full_loss"), out["diverged"], fluct_sum, ident_sum,
                                n_steps)

    def _sub_block(self, generator: torch.Generator, theta0: Tensor, diverged: Tensor, s: int,
                   offset: int, thin: int, fluct_sum: Tensor, ident_sum: Tensor,
                   step: int) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        c = theta0.shape[0]
        xi = self.model.draw_steps(generator, s, c)  # [C, S, D]
        b = xi * -self.rates
        traj = theta0.new_empty(c, s + 1, theta0.shape[1])
        traj[:, 0] = theta0
        steps, rows = b.unbind(1), traj.unbind(1)  # every step's views made at once
        for t in range(s):
            torch.addcmul(steps[t], rows[t], self.a, out=rows[t + 1])
        # A non-finite θ never returns to finite, so the last step tells whether any chain left.
        all_live = bool(torch.isfinite(traj[:, -1]).all()) and not bool(diverged.any())
        ok = torch.ones(traj.shape[:2], dtype=torch.bool, device=traj.device)
        if not all_live:  # freeze at the last finite θ, as the general step does
            ok = torch.isfinite(traj).all(-1)
            ok[:, 1:] &= ~diverged.unsqueeze(1)
            ok = ok.cummin(1).values
            last = ok.sum(1) - 1
            frozen = traj[torch.arange(c, device=traj.device), last]
            traj = torch.where(ok.unsqueeze(-1), traj, frozen.unsqueeze(1))
        before = traj[:, :-1]
        g = torch.addcmul(xi, before, self.h)  # g_t = h⊙θ_t + ξ_t
        live = ok[:, 1:].unsqueeze(-1)  # the step t → t+1 was taken
        g_live = g if all_live else torch.where(live, g, 0.0)
        self._accumulate(g_live, before, live, all_live, step, fluct_sum, ident_sum)
        first = (thin - 1 - offset) % thin  # recorded steps: first, first + thin, ... < s
        at, after = before[:, first::thin], traj[:, first + 1::thin]
        # Sums over coordinates as products with a vector (a reduction over a short last axis
        # is several times slower): ℓ = θ·(ξ + ½h⊙θ), ‖g‖ = √(g²·1), L = ½(θ²)·h.
        ones = torch.ones_like(self.h)
        loss = (torch.addcmul(xi[:, first::thin], at, self.h, value=0.5).mul_(at)) @ ones
        part = {"theta": after, "loss": loss,
                "grad_norm": (g[:, first::thin].square() @ ones).sqrt_(),
                "diverged": ~ok[:, first + 1::thin]}
        if self.record_full_loss:
            part["full_loss"] = (after.square() @ self.h).mul_(0.5)
        return traj[:, -1], ~ok[:, -1], part

    def _accumulate(self, g: Tensor, before: Tensor, live: Tensor, all_live: bool, step: int,
                    fluct_sum: Tensor, ident_sum: Tensor) -> None:
        """Add the sub-block's fluctuation terms and ``Σθ⊙pg, Σpg, ½Σpg²`` (``pg = Λ⊙g``)."""
        # The rule's fluctuation term is elementwise (stateless constant-rate rules only, see
        # ``build``), so it takes the [C, S, D] steps of the sub-block as they are.
        fl = self.rule.fluctuation(GradSample(g, None, None, None, before, step), ())
        fluct_sum += (fl if all_live else torch.where(live, fl, 0.0)).sum(1)
        # Sums over at most a sub-block in θ's dtype (≤ 2^21 / (C·D) terms), across sub-blocks
        # in float64, as the general step's float64 running sums.
        rates64 = self.rates.double()
        ident_sum[:, 0] += rates64 * torch.linalg.vecdot(before, g, dim=1).double()
        ident_sum[:, 1] += rates64 * g.sum(1).double()
        ident_sum[:, 2] += 0.5 * rates64.square() * torch.linalg.vecdot(g, g, dim=1).double()
