"""Adaptive rules with running second moments: RMSProp and Adam (PyTorch conventions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from .base import GradSample, HeavyBall, LinearForm, UpdateRule, check_range


def rms_rate(lr: float, eps: float, eps_inside_sqrt: bool) -> Callable[[Tensor], Tensor]:
    """Per-coordinate rate from a running second moment s: ``η/√(s + ε)`` or ``η/(√s + ε)``."""
    if eps_inside_sqrt:
        return lambda s: lr / (s + eps).sqrt()
    return lambda s: lr / (s.sqrt() + eps)


class RMSPropState(NamedTuple):
    """Running mean of squared minibatch gradients."""

    square_avg: Tensor  # [C, D]


def rmsprop(lr: float, alpha: float = 0.99, eps: float = 1e-8,
            eps_inside_sqrt: bool = False) -> UpdateRule:
    """RMSProp as ``torch.optim.RMSprop`` (no momentum, not centered).

    ``s_t = α s_{t−1} + (1−α) g_t²`` (``s_0 = 0``);
    ``θ_{t+1} = θ_t − η g_t / (√s_t + ε)``, or ``η g_t / √(s_t + ε)`` with ``eps_inside_sqrt``
    (the seeds' form). The per-coordinate rate ``η_i = η/(√s_i + ε)`` tends to ``η/σ_i`` when the
    noise dominates, so ``T_i ≈ η σ_i / 2`` (docs/theory.md, exact laws): not Gibbs unless
    all σ_i are equal.

    Fluctuation term: ``(η_i/2) g_i²`` with the current ``η_i``.

    Args:
        lr: η > 0.
        alpha: Smoothing α in [0, 1).
        eps: ε ≥ 0.
        eps_inside_sqrt: Put ε under the square root.
    """
    def linear_form(second_moment: np.ndarray, example_var: np.ndarray,
                    var_exact: bool) -> HeavyBall:
        # Rates frozen at the stationary E[g²] that s averages: approximate.
        root = (np.sqrt(second_moment + eps) if eps_inside_sqrt
                else np.sqrt(second_moment) + eps)
        return HeavyBall(lr / root, 0.0, 0.0, False)

    return rms_family("rmsprop", lr, alpha, eps, eps_inside_sqrt,
                      lambda grad: grad.minibatch.square(), needs_example_sq=False,
                      linear_form=linear_form)


def rms_family(name: str, lr: float, alpha: float, eps: float, eps_inside_sqrt: bool,
               second_moment: Callable[[GradSample], Tensor], needs_example_sq: bool,
               linear_form: LinearForm | None = None) -> UpdateRule:
    """RMSProp fed any running second moment: ``s ← αs + (1−α)·m(grad)``, ``θ ← θ − η_s g_B``."""
    check_range("lr", lr, 0.0, low_open=True)
    check_range("alpha", alpha, 0.0, 1.0)
    check_range("eps", eps, 0.0)
    rms = rms_rate(lr, eps, eps_inside_sqrt)

    def init(params: Tensor) -> RMSPropState:
        return RMSPropState(torch.zeros_like(params))

    def update(grad: GradSample, state: RMSPropState, params: Tensor,
               step: int) -> tuple[Tensor, RMSPropState]:
        new = RMSPropState(alpha * state.square_avg + (1.0 - alpha) * second_moment(grad))
        return -rms(new.square_avg) * grad.minibatch, new

    def fluctuation(grad: GradSample, state: RMSPropState) -> Tensor:
        return 0.5 * rms(state.square_avg) * grad.minibatch.square()

    return UpdateRule(name, init, update, fluctuation, needs_example_sq=needs_example_sq, lr=lr,
                      linear_form=linear_form)


class AdamState(NamedTuple):
    """First and second moment EMAs and the bias-corrected rate of the last step."""

    exp_avg: Tensor  # [C, D]
    exp_avg_sq: Tensor  # [C, D]
    rate: Tensor  # [C, D] η / (√v̂ + ε) of the last step
    m_hat: Tensor  # [C, D] bias-corrected first moment of the last step


def adam(lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> UpdateRule:
    """Adam as ``torch.optim.Adam`` (no weight decay, no amsgrad).

    ``m_t = β₁m + (1−β₁)g``; ``v_t = β₂v + (1−β₂)g²``; ``m̂ = m_t/(1−β₁ᵗ)``; ``v̂ = v_t/(1−β₂ᵗ)``;
    ``θ_{t+1} = θ_t − η m̂/(√v̂ + ε)`` with t counted from 1.

    Fluctuation term: ``m`` is an EMA buffer (PyTorch form with μ = d = β₁), so
    ``T_i = (η_i/2)(1+β₁)/(1−β₁) E[m̂_i²]`` with ``η_i = η/(√v̂_i + ε)``.

    Args:
        lr: η > 0.
        beta1: β₁ in [0, 1).
        beta2: β₂ in [0, 1).
        eps: ε ≥ 0.
    """
    check_range("lr", lr, 0.0, low_open=True)
    check_range("beta1", beta1, 0.0, 1.0)
    check_range("beta2", beta2, 0.0, 1.0)
    check_range("eps", eps, 0.0)
    kappa = (1.0 + beta1) / (1.0 - beta1)

    def init(params: Tensor) -> AdamState:
        z = torch.zeros_like(params)
        return AdamState(z, z.clone(), z.clone(), z.clone())

    def update(grad: GradSample, state: AdamState, params: Tensor,
               step: int) -> tuple[Tensor, AdamState]:
        t = step + 1
        m = beta1 * state.exp_avg + (1.0 - beta1) * grad.minibatch
        v = beta2 * state.exp_avg_sq + (1.0 - beta2) * grad.minibatch.square()
        m_hat = m / (1.0 - beta1**t)
        rate = lr / ((v / (1.0 - beta2**t)).sqrt() + eps)
        return -rate * m_hat, AdamState(m, v, rate, m_hat)

    def fluctuation(grad: GradSample, state: AdamState) -> Tensor:
        return 0.5 * kappa * state.rate * state.m_hat.square()

    def linear_form(second_moment: np.ndarray, example_var: np.ndarray,
                    var_exact: bool) -> HeavyBall:
        # The EMA m is a PyTorch buffer with μ = d = β₁; rates frozen at the stationary E[g²].
        return HeavyBall(lr / (np.sqrt(second_moment) + eps), beta1, beta1, False)

    return UpdateRule("adam", init, update, fluctuation, lr=lr, linear_form=linear_form)


def adamw(lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
          weight_decay: float = 0.01) -> UpdateRule:
    """AdamW as ``torch.optim.AdamW``: ``θ ← θ(1 − ηλ)``, then Adam's step (decoupled decay).

    ``δ_t = −ηλθ_t − η m̂/(√v̂ + ε)``: the shrink is not part of the gradient, so the chain is
    not SGD on any fixed loss plus a penalty. Its fluctuation term is Adam's (an
    approximation); the analysis checks stationarity with the rate-weighted identity R, which
    holds for any step.

    Args:
        lr: η > 0.
        beta1: β₁ in [0, 1).
        beta2: β₂ in [0, 1).
        eps: ε ≥ 0.
        weight_decay: λ ≥ 0.
    """
    check_range("weight_decay", weight_decay, 0.0)
    inner = adam(lr, beta1, beta2, eps)

    def update(grad: GradSample, state: AdamState, params: Tensor,
               step: int) -> tuple[Tensor, AdamState]:
        delta, new = inner.update(grad, state, params, step)
        return delta - (lr * weight_decay) * params, new

    return inner._replace(name="adamw", update=update, linear_form=None)
