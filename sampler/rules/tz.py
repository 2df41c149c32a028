"""The seeds' second-order "TZ" algorithm (docs/claims.md)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .base import GradSample, UpdateRule, check_range


class TZState(NamedTuple):
    """Running gradient and variance averages, and the per-coordinate B* and η of the last step."""

    g_avg: Tensor  # [C, D] g̃
    s_avg: Tensor  # [C, D] σ̃²: running per-example gradient variance
    b_star: Tensor  # [C, D] B*(t)
    rate: Tensor  # [C, D] η^t


def tz(batch_size: int, k: int = 100, lambda_b: float = 16.0, lambda_eta: float = 0.01,
       eps: float = 1e-12) -> UpdateRule:
    """Per-coordinate learning rates from a running signal-to-noise ratio.

    With ``w = min(½, B / B*(t−1))`` and ``v_t`` the unbiased within-batch variance of the
    per-example gradients (an estimate of the per-example σ², whatever B)::

        g̃_t = (1 − w) g̃_{t−1} + w ĝ_t,      σ̃_t² = (1 − w) σ̃_{t−1}² + w v_t,
        B*(t) = K (t ≤ K),  λ_B σ̃_t² / (g̃_t² + ε) (t > K),
        η_t   = 0 (t ≤ K),  min(λ_η g̃_t² / (σ̃_t² + ε), λ_η λ_B / B) (t > K),
        θ_{t+1} = θ_t − η_t ĝ_t.

    The seeds derive ``η_B = (B/B*) η*`` with ``B* = 16σ²/g²`` and ``η* = 1/(2L)`` (curvature bound
    L), i.e. λ_B = 16 and ``λ_η = B/(32L)``. σ² there is the *per-example* variance: averaging the
    minibatch ĝ² instead (``s̃ − g̃²``) estimates σ²/B and makes the rate B times the derived one
    (8× at B = 8) until the cap binds. Two departures, both where the seeds' formula breaks down
    (B* < B): the averages always span at least two batches (``w ≤ ½``), and the rate is capped at
    its value at B* = B, ``λ_η λ_B / B`` (= η* for the seeds' λs): once the batch exceeds B* the
    derivation's optimum is η* itself. As ``g̃ → 0`` with ``σ̃ > 0`` the rates go to 0: the
    algorithm anneals itself. At B = 1 ``v_t = ĝ_t²`` (no within-batch spread; see
    ``DatasetModel.example_var``).

    Args:
        batch_size: B of the run (the averages' weight is B/B*).
        k: Warm-up steps K (no movement, B* = K).
        lambda_b: λ_B > 0.
        lambda_eta: λ_η > 0.
        eps: ε > 0.
    """
    check_range("k", k, 1.0)
    check_range("lambda_b", lambda_b, 0.0, low_open=True)
    check_range("lambda_eta", lambda_eta, 0.0, low_open=True)
    check_range("eps", eps, 0.0, low_open=True)

    def init(params: Tensor) -> TZState:
        z = torch.zeros_like(params)
        return TZState(z, z.clone(), torch.full_like(params, float(k)), z.clone())

    def update(grad: GradSample, state: TZState, params: Tensor,
               step: int) -> tuple[Tensor, TZState]:
        t = step + 1
        w = (batch_size / state.b_star).clamp(max=0.5)
        assert grad.example_var is not None
        g_avg = (1 - w) * state.g_avg + w * grad.minibatch
        s_avg = (1 - w) * state.s_avg + w * grad.example_var
        var = s_avg
        if t <= k:
            b_star, rate = torch.full_like(var, float(k)), torch.zeros_like(var)
        else:
            b_star = lambda_b * var / (g_avg.square() + eps)
            rate = (lambda_eta * g_avg.square() / (var + eps)).clamp(
                max=lambda_eta * lambda_b / batch_size)
        return -rate * grad.minibatch, TZState(g_avg, s_avg, b_star, rate)

    def fluctuation(grad: GradSample, state: TZState) -> Tensor:
        return 0.5 * state.rate * grad.minibatch.square()

    return UpdateRule("tz", init, update, fluctuation, needs_example_var=True)
