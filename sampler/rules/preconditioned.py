"""Diagonal preconditioned SGD with ``η_i = η'/σ_i^p`` from per-example gradient variances."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from .base import GradSample, HeavyBall, UpdateRule, check_range


class PreconditionedState(NamedTuple):
    """EMA of per-example gradient variances and the rate used at the last step."""

    var_avg: Tensor  # [C, D] EMA of within-batch per-example variance (not bias-corrected)
    rate: Tensor  # [C, D] η_i of the last step


def preconditioned(lr: float, power: int = 2, decay: float = 0.99,
                   eps: float = 1e-12) -> UpdateRule:
    """Diagonal preconditioning, ``θ_{i,t+1} = θ_{i,t} − η_i g_{B,i}`` with ``η_i = η'/(σ̂_i^p + ε)``.

    ``σ̂_i²`` is the bias-corrected EMA ``s_t/(1 − ρᵗ)`` of ``s_t = ρ s_{t−1} + (1−ρ) v_{t,i}``
    where ``v_{t,i}`` is the within-batch variance of the per-example gradients (for ``quadratic``
    models the known ``Σ_ii``, which makes ``σ̂_i² = Σ_ii`` exactly from the first step).

    With ``p = 2`` the small-η temperature is ``T_i = η'/(2B)`` for every i: Gibbs when C is diagonal
    (Mandt, Hoffman & Blei 2017). With ``p = 1`` it is ``η'σ_i/(2B)``, RMSProp's behaviour.

    Args:
        lr: η' > 0.
        power: p, 1 or 2.
        decay: ρ in [0, 1).
        eps: ε ≥ 0 added to ``σ̂^p``.
    """
    check_range("lr", lr, 0.0, low_open=True)
    if power not in (1, 2):
        raise ValueError(f"power must be one of [1, 2], got {power}")
    check_range("decay", decay, 0.0, 1.0)
    check_range("eps", eps, 0.0)

    def init(params: Tensor) -> PreconditionedState:
        return PreconditionedState(torch.zeros_like(params), torch.zeros_like(params))

    def update(grad: GradSample, state: PreconditionedState, params: Tensor,
               step: int) -> tuple[Tensor, PreconditionedState]:
        assert grad.example_var is not None
        var_avg = decay * state.var_avg + (1.0 - decay) * grad.example_var
        var_hat = var_avg / (1.0 - decay ** (step + 1))
        scale = var_hat if power == 2 else var_hat.sqrt()
        rate = lr / (scale + eps)
        return -rate * grad.minibatch, PreconditionedState(var_avg, rate)

    def fluctuation(grad: GradSample, state: PreconditionedState) -> Tensor:
        return 0.5 * state.rate * grad.minibatch.square()

    def linear_form(second_moment: np.ndarray, example_var: np.ndarray,
                    var_exact: bool) -> HeavyBall:
        # Rates at the stationary σ²: exact when the model's σ² is (known noise), else σ²
        # frozen at the optimum (an approximation).
        scale = example_var if power == 2 else np.sqrt(example_var)
        return HeavyBall(lr / (scale + eps), 0.0, 0.0, var_exact)

    return UpdateRule("preconditioned", init, update, fluctuation, needs_example_var=True,
                      rates="noise", lr=lr, linear_form=linear_form)
