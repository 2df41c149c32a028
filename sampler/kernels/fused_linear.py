"""A block of constant-rate SGD or heavy-ball momentum on a diagonal quadratic, fused.

With ``g_t = h⊙θ_t + ξ_t`` (``h`` the Hessian's diagonal, ``ξ_t`` the model's Gaussian noise) and a
stateless rule whose linear form is ``θ_{t+1} = θ_t − Λ⊙g_t`` exactly (plain SGD), one step is

    θ_{t+1} = a⊙θ_t + b_t,   a = 1 − Λ⊙h,   b_t = −Λ⊙ξ_t,

a single ``addcmul`` written straight into the trajectory buffer. Heavy ball (a rule with a
``buffer_map``) takes three: ``b' = μb + (1−d)(h⊙θ + ξ)``, ``θ' = θ − Λ⊙b'`` (PyTorch's first
step sets ``b = g`` undamped), and then ``pg_t = Λ⊙b_{t+1}``. The noise of ``S`` steps is drawn
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

from ..chain_state import BlockRecord, ChainState
from ..recording import Recording
from ..rules import GradSample, HeavyBall, UpdateRule

if TYPE_CHECKING:
    from ..models import Model

MAX_ELEMENTS = 2**20  # sub-block: S·C·D of at most ~4 MB per float32 buffer (measured best)


_UNITS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def swap_leading(x: Tensor) -> Tensor:
    """``[A, B, D] → [B, A, D]``, contiguous, bit for bit.

    When a row of D elements is 1, 2, 4 or 8 bytes (D = 2 in float32) it moves as one integer,
    so the copy is a tiled 2-D transpose (measured 3.7× faster than a strided copy of 2-element
    rows).
    """
    a, b, d = x.shape
    unit = _UNITS.get(d * x.element_size())
    if unit is None or not x.is_contiguous():
        return x.transpose(0, 1).contiguous()
    return x.view(unit).view(a, b).t().contiguous().view(x.dtype).view(b, a, d)


def linear_rule_form(rule: UpdateRule, dim: int, sampling: str) -> HeavyBall | None:
    """The rule's exact linear form if it is plain SGD or heavy ball at constant rates.

    Plain SGD (stateless, no momentum) or a heavy-ball rule that says how its state holds the
    buffer (``UpdateRule.buffer_map``: PyTorch momentum, the seeds' ``N_g`` form), with i.i.d.
    batches and nothing else the step would have to compute; else ``None``.
    """
    if (sampling != "iid" or rule.rates != "constant" or not rule.stationary
            or rule.linear_form is None or rule.needs_loss or rule.needs_example_var
            or rule.needs_example_sq or rule.needs_noise):
        return None
    form = rule.linear_form(np.zeros(dim), np.zeros(dim), True)
    stateless = len(rule.init(torch.zeros(1, dim))) == 0
    plain = form.mu == 0.0 and form.dampening == 0.0 and stateless
    if not form.exact or not (plain or rule.buffer_map is not None):
        return None
    return form


def eligible(model: Model, rule: UpdateRule, sampling: str) -> tuple[Tensor, HeavyBall] | None:
    """``(h, linear form)`` if a fused path applies, else ``None``.

    It applies to a diagonal quadratic with additive noise (``Model.diagonal_hessian``) and a
    rule of ``linear_rule_form``.
    """
    h = model.diagonal_hessian()
    form = None if h is None else linear_rule_form(rule, model.dim, sampling)
    return None if form is None or h is None else (h, form)


def block_outputs(c: int, n_rec: int, like: Tensor, recording: Recording,
                  full_loss: bool) -> dict[str, Tensor]:
    """Uninitialised record arrays of a block (chain-major, contiguous), by name."""
    d = like.shape[-1]
    out = {"theta": like.new_empty(c, n_rec, recording.n_coords(d)),
           "loss": like.new_empty(c, n_rec),
           "grad_norm": like.new_empty(c, n_rec),
           "diverged": torch.empty(c, n_rec, dtype=torch.bool, device=like.device)}
    if full_loss:
        out["full_loss"] = like.new_empty(c, n_rec)
    if recording.directions is not None:
        out["projection"] = like.new_empty(c, n_rec, recording.directions.shape[1])
    if recording.layers is not None:
        out["layer_norms"] = like.new_empty(c, n_rec, len(recording.layers))
    return out


class DiagonalLinearKernel:
    """The fused path for one (model, rule); ``build`` says whether it applies.

    Args:
        model: A model with a diagonal Hessian and additive noise (``Model.diagonal_hessian``).
        rule: Plain SGD, or a heavy-ball rule with a ``buffer_map``.
        form: The rule's exact linear form (rates ``Λ``, ``μ``, dampening ``d``).
        h: The Hessian's diagonal.
        record_full_loss: Whether draws record ``L(θ)``.
    """

    def __init__(self, model: Model, rule: UpdateRule, form: HeavyBall, h: Tensor,
                 record_full_loss: bool, recording: Recording | None = None) -> None:
        self.model, self.rule, self.h = model, rule, h
        self.rates = torch.as_tensor(form.rates, dtype=model.dtype, device=model.device)
        self.mu, self.damp = form.mu, form.dampening
        self.a = 1.0 - self.rates * h
        self.record_full_loss = record_full_loss
        self.recording = recording or Recording(None, None)
        self._tiles: tuple[int, Tensor, Tensor] = (0, h, self.rates)

    @classmethod
    def build(cls, model: Model, rule: UpdateRule, sampling: str, record_full_loss: bool,
              recording: Recording | None = None) -> DiagonalLinearKernel | None:
        """The kernel, or ``None`` unless the rule is an exact constant-rate linear step.

        Plain SGD (stateless, no momentum) or a heavy-ball rule that says how its state holds
        the buffer (``UpdateRule.buffer_map``: PyTorch momentum, the seeds' ``N_g`` form).
        """
        found = eligible(model, rule, sampling)
        return None if found is None else cls(model, rule, found[1], found[0], record_full_loss,
                                              recording)

    def run_block(self, generator: torch.Generator, state: ChainState, n_steps: int,
                  thin: int) -> tuple[ChainState, BlockRecord]:
        """``Engine.run_block`` on this path (same record, same divergence semantics).

        Everything is chain-major (``[C, S, D]``), the layout of the record, so no transposing
        copy is made; sub-blocks of ``S`` steps bound the memory.
        """
        c, d = state.params.shape
        sub = max(1, min(n_steps, MAX_ELEMENTS // max(c * d, 1)))
        n_rec, like = n_steps // thin, state.params
        out = block_outputs(c, n_rec, like, self.recording, self.record_full_loss)
        fluct_sum = torch.zeros_like(like)
        ident_sum = torch.zeros(c, 3, d, dtype=torch.float64, device=like.device)
        virial_sum = torch.zeros_like(ident_sum) if self.recording.keeps_virial else None
        hb = self.rule.buffer_map
        buf = hb.buffer(state.rule_state) if hb is not None else None
        params, diverged, done, r0 = like, state.diverged, 0, 0
        while done < n_steps:
            s = min(sub, n_steps - done)
            params, buf, diverged, part = self._sub_block(
                generator, params, buf, diverged, s, done, thin, (fluct_sum, ident_sum,
                                                                  virial_sum), state.step + done)
            r1 = r0 + part["loss"].shape[1]
            for name, value in part.items():
                out[name][:, r0:r1] = value
            done, r0 = done + s, r1
        rule_state = hb.state(buf) if hb is not None and buf is not None else state.rule_state
        new = ChainState(params, rule_state, diverged, state.perm, state.step + n_steps)
        return new, BlockRecord(out["theta"], out["loss"], out["grad_norm"],
                                out.get("full_loss"), out["diverged"], fluct_sum, ident_sum,
                                n_steps, virial_sum, out.get("projection"),
                                out.get("layer_norms"))

    def _sub_block(self, generator: torch.Generator, theta0: Tensor, buf0: Tensor | None,
                   diverged: Tensor, s: int, offset: int, thin: int,
                   sums: tuple[Tensor, Tensor, Tensor | None], step: int
                   ) -> tuple[Tensor, Tensor | None, Tensor, dict[str, Tensor]]:
        c = theta0.shape[0]
        xi = self.model.draw_steps(generator, s, c)  # [C, S, D]
        h, rates = self._tiled(s)
        c, d = theta0.shape
        steps = theta0.new_empty(s + 1, c, d)  # step-major: each step one contiguous row
        steps[0] = theta0
        rows = steps.unbind(0)  # every step's views made at once

        def full(v: Tensor) -> Tensor:  # a [D] vector as a contiguous [C, D]
            return v.expand(c, d).contiguous()

        bufs = None
        if buf0 is None:  # SGD: θ' = a⊙θ + b_t
            a, b = full(self.a), swap_leading((xi * rates).neg_()).unbind(0)
            for t in range(s):
                torch.addcmul(b[t], rows[t], a, out=rows[t + 1])
        else:  # heavy ball: b' = μb + (1−d)(h⊙θ + ξ), θ' = θ − Λ⊙b'
            buf_steps = theta0.new_empty(s + 1, c, d)
            buf_steps[0] = buf0
            brows, noise = buf_steps.unbind(0), swap_leading(xi * (1.0 - self.damp)).unbind(0)
            hd, neg_rates = full(self.h * (1.0 - self.damp)), full(-self.rates)
            assert self.rule.buffer_map is not None
            for t in range(s):
                if step + t == 0 and self.rule.buffer_map.first_undamped:  # b₁ = g₁ (PyTorch)
                    torch.addcmul(xi[:, 0], rows[0], self.h, out=brows[1])
                else:
                    torch.addcmul(noise[t], rows[t], hd, out=brows[t + 1])
                    brows[t + 1].add_(brows[t], alpha=self.mu)
                torch.addcmul(rows[t], brows[t + 1], neg_rates, out=rows[t + 1])
            bufs = swap_leading(buf_steps)  # [C, S + 1, D]
        traj = swap_leading(steps)
        # A non-finite θ never returns to finite, so the last step tells whether any chain left.
        all_live = bool(torch.isfinite(traj[:, -1]).all()) and not bool(diverged.any())
        ok = torch.ones(traj.shape[:2], dtype=torch.bool, device=traj.device)
        if not all_live:  # freeze at the last finite θ, as the general step does
            ok = torch.isfinite(traj).all(-1)
            ok[:, 1:] &= ~diverged.unsqueeze(1)
            ok = ok.cummin(1).values
            last = ok.sum(1) - 1
            chains = torch.arange(c, device=traj.device)
            traj = torch.where(ok.unsqueeze(-1), traj, traj[chains, last].unsqueeze(1))
            if bufs is not None:  # the rule state is frozen with θ
                bufs = torch.where(ok.unsqueeze(-1), bufs, bufs[chains, last].unsqueeze(1))
        before = traj[:, :-1]
        g = torch.addcmul(xi, before, h)  # g_t = h⊙θ_t + ξ_t
        live = ok[:, 1:].unsqueeze(-1)  # the step t → t+1 was taken
        src = g if bufs is None else bufs[:, 1:]  # the step is −Λ⊙src
        src_live = src if all_live else torch.where(live, src, 0.0)
        self._accumulate(g, src_live, before, live, all_live, step, sums)
        first = (thin - 1 - offset) % thin  # recorded steps: first, first + thin, ... < s
        at, after = before[:, first::thin], traj[:, first + 1::thin]
        # Sums over coordinates as products with a vector (a reduction over a short last axis
        # is several times slower): ℓ = θ·(ξ + ½h⊙θ), ‖g‖ = √(g²·1), L = ½(θ²)·h.
        ones = torch.ones_like(self.h)
        h_at = h if thin == 1 else self.h
        loss = (torch.addcmul(xi[:, first::thin], at, h_at, value=0.5).mul_(at)) @ ones
        picked, proj, layer_norms = self.recording.pick(after)
        part = {"theta": picked, "loss": loss,
                "grad_norm": (g[:, first::thin].square() @ ones).sqrt_(),
                "diverged": ~ok[:, first + 1::thin]}
        if self.record_full_loss:
            part["full_loss"] = (after.square() @ self.h).mul_(0.5)
        if proj is not None:
            part["projection"] = proj
        if layer_norms is not None:
            part["layer_norms"] = layer_norms
        return traj[:, -1], None if bufs is None else bufs[:, -1], ~ok[:, -1], part

    def _tiled(self, n: int) -> tuple[Tensor, Tensor]:
        """``h`` and ``Λ`` repeated as contiguous ``[n, D]`` tiles (kept for the last n).

        ``[C, n, D] ⊙ [n, D]`` runs over one contiguous ``n·D`` axis; broadcasting a ``[D]``
        vector instead runs D-element inner loops (at D = 2, several times slower).
        """
        if self._tiles[0] != n:
            self._tiles = (n, self.h.repeat(n).view(n, -1), self.rates.repeat(n).view(n, -1))
        return self._tiles[1], self._tiles[2]

    def _accumulate(self, g: Tensor, src: Tensor, before: Tensor, live: Tensor, all_live: bool,
                    step: int, sums: tuple[Tensor, Tensor, Tensor | None]) -> None:
        """Add the sub-block's fluctuation, stationarity-identity and (kept) virial sums.

        The identity sums are ``Σθ⊙pg, Σpg, ½Σpg²`` with ``pg = Λ⊙src``; the virial sums
        ``Σθ, Σθ⊙g, Σg`` (``general_step.VirialWindow``).

        ``src`` is ``g`` for SGD and the new buffer ``b'`` for heavy ball (zero where a step was
        not taken). The rule's fluctuation term is elementwise (constant-rate rules only, see
        ``build``), so it takes the ``[C, S, D]`` steps of the sub-block as they are, with the
        state after each step.
        """
        fluct_sum, ident_sum, virial_sum = sums
        hb = self.rule.buffer_map
        state = hb.state(src) if hb is not None else ()
        fl = self.rule.fluctuation(GradSample(g, None, None, None, before, step), state)
        fluct_sum += (fl if all_live else torch.where(live, fl, 0.0)).sum(1)
        # Sums over at most a sub-block in θ's dtype (≤ 2^20 / (C·D) terms), across sub-blocks
        # in float64, as the general step's float64 running sums.
        rates64 = self.rates.double()
        ident_sum[:, 0] += rates64 * torch.linalg.vecdot(before, src, dim=1).double()
        ident_sum[:, 1] += rates64 * src.sum(1).double()
        ident_sum[:, 2] += 0.5 * rates64.square() * torch.linalg.vecdot(src, src, dim=1).double()
        if virial_sum is not None:
            th = before if all_live else torch.where(live, before, 0.0)
            virial_sum[:, 0] += th.sum(1).double()
            virial_sum[:, 1] += torch.linalg.vecdot(th, g, dim=1).double()
            virial_sum[:, 2] += (g if all_live else torch.where(live, g, 0.0)).sum(1).double()
