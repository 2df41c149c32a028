"""The seeds' unusual rules: simplified Adam, per-example RMSProp, and three adaptive updates.

Sources: the claims of docs/claims.md (RMSProp's batch scaling, claim 16; the
normalised, multiplicative and loss-proportional updates, claim 7).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .adaptive import rms_family
from .base import EmptyState, GradSample, UpdateRule, check_range


class MomentState(NamedTuple):
    """First and second running moments."""

    mu: Tensor  # [C, D]
    s: Tensor  # [C, D]


def adam_min_t(lr: float, n_g: float = 10.0, n_s: float = 100.0, eps: float = 1e-8) -> UpdateRule:
    """The seeds' simplified Adam with ``min(t, N)`` bias correction.

    ``μ_t = (1 − 1/min(t, N_g)) μ_{t−1} + ĝ_t / min(t, N_g)``;
    ``s_t = (1 − 1/min(t, N_s)) s_{t−1} + ĝ_t² / min(t, N_s)``;
    ``θ_{t+1} = θ_t − η μ_t / √(s_t + ε)``, t counted from 1. With a constant input the running
    averages are exact from the first step (no bias towards 0).

    Fluctuation term: μ is an EMA buffer with β = 1 − 1/N_g once t ≥ N_g, so
    ``T_i = (η_i/2)(1+β)/(1−β) E[μ_i²]`` with ``η_i = η/√(s_i + ε)``.

    Args:
        lr: η > 0.
        n_g: N_g ≥ 1.
        n_s: N_s ≥ 1.
        eps: ε ≥ 0 (inside the square root, as in the seeds).
    """
    check_range("lr", lr, 0.0, low_open=True)
    check_range("n_g", n_g, 1.0)
    check_range("n_s", n_s, 1.0)
    check_range("eps", eps, 0.0)
    beta = 1.0 - 1.0 / n_g
    kappa = (1.0 + beta) / (1.0 - beta) if beta < 1 else 1.0

    def init(params: Tensor) -> MomentState:
        return MomentState(torch.zeros_like(params), torch.zeros_like(params))

    def update(grad: GradSample, state: MomentState, params: Tensor,
               step: int) -> tuple[Tensor, MomentState]:
        t = step + 1
        wg, ws = 1.0 / min(t, n_g), 1.0 / min(t, n_s)
        new = MomentState((1 - wg) * state.mu + wg * grad.minibatch,
                          (1 - ws) * state.s + ws * grad.minibatch.square())
        return -lr * new.mu / (new.s + eps).sqrt(), new

    def fluctuation(grad: GradSample, state: MomentState) -> Tensor:
        return 0.5 * kappa * lr / (state.s + eps).sqrt() * state.mu.square()

    return UpdateRule("adam_min_t", init, update, fluctuation, lr=lr)


def rmsprop_per_example(lr: float, alpha: float = 0.99, eps: float = 1e-8,
                        eps_inside_sqrt: bool = True) -> UpdateRule:
    """RMSProp on per-example squared gradients (docs/claims.md).

    ``s_t = α s_{t−1} + (1−α) (1/B) Σ_b g_{b,i}²``; ``θ_{t+1} = θ_t − η g_B/√(s_t + ε)``.
    Standard RMSProp averages ``g_B²``, whose mean ``μ_i² + σ_i²/B`` shrinks with B; this one
    averages ``μ_i² + σ_i²`` at every B, so its rate ``η/σ_i`` does not change with B.

    Args:
        lr: η > 0.
        alpha: α in [0, 1).
        eps: ε ≥ 0.
        eps_inside_sqrt: ``√(s + ε)`` (default, the seeds' form) or ``√s + ε``.
    """

    def per_example(grad: GradSample) -> Tensor:
        assert grad.example_sq is not None
        return grad.example_sq

    return rms_family("rmsprop_per_example", lr, alpha, eps, eps_inside_sqrt, per_example,
                      needs_example_sq=True)


def normalized(lr: float, eps: float = 1e-8) -> UpdateRule:
    """Normalised update: ``θ ← θ − η A ĝ`` with ``A = 1/√(‖ĝ‖²/d + ε)`` (one scalar per chain).

    Its stationary points solve ``E[ĝ/√(‖ĝ‖²/d + ε)] = 0``, which is not ``E[ĝ] = 0`` when the
    gradient norm varies between examples: examples with small gradients get more weight.

    Args:
        lr: η > 0.
        eps: ε > 0.
    """
    check_range("lr", lr, 0.0, low_open=True)
    check_range("eps", eps, 0.0, low_open=True)

    def scale(g: Tensor) -> Tensor:
        return lr / (g.square().mean(dim=-1, keepdim=True) + eps).sqrt()

    def init(params: Tensor) -> EmptyState:
        return EmptyState()

    def update(grad: GradSample, state: EmptyState, params: Tensor,
               step: int) -> tuple[Tensor, EmptyState]:
        return -scale(grad.minibatch) * grad.minibatch, state

    def fluctuation(grad: GradSample, state: EmptyState) -> Tensor:
        return 0.5 * scale(grad.minibatch) * grad.minibatch.square()

    return UpdateRule("normalized", init, update, fluctuation, lr=lr)


def multiplicative(lr: float, eps: float = 1e-2) -> UpdateRule:
    """Multiplicative update: ``θ_i ← θ_i − η max(ε, |θ_i|) ĝ_i``.

    The expected update at θ is ``−η max(ε, |θ_i|) ∂_iL(θ)``: zero wherever ``∇L = 0``, so loss
    stationary points stay stationary; the stationary *law* is tilted by the state-dependent rate.

    Args:
        lr: η > 0.
        eps: ε > 0, lets a weight pass through zero.
    """
    check_range("lr", lr, 0.0, low_open=True)
    check_range("eps", eps, 0.0, low_open=True)

    def init(params: Tensor) -> EmptyState:
        return EmptyState()

    def update(grad: GradSample, state: EmptyState, params: Tensor,
               step: int) -> tuple[Tensor, EmptyState]:
        return -lr * params.abs().clamp_min(eps) * grad.minibatch, state

    def fluctuation(grad: GradSample, state: EmptyState) -> Tensor:
        # (η_i/2)g_i² with the step's own rate η max(ε, |θ_i|): approximate (the rate depends on
        # θ), so the exact check of this rule is the rate-weighted identity.
        scale = 1.0 if grad.params is None else grad.params.abs().clamp_min(eps)
        return 0.5 * lr * scale * grad.minibatch.square()

    return UpdateRule("multiplicative", init, update, fluctuation, lr=lr)


def loss_proportional(lr: float) -> UpdateRule:
    """Loss-proportional update: ``θ ← θ − η L(θ, batch) ĝ``.

    The expected update is ``−η E[ℓ_b ∇ℓ_b]``, which differs from ``−η L ∇L`` by the covariance of
    per-example losses and gradients: a loss stationary point is not stationary for this rule
    when examples with larger loss have gradients in a consistent direction.

    Args:
        lr: η > 0.
    """
    check_range("lr", lr, 0.0, low_open=True)

    def init(params: Tensor) -> EmptyState:
        return EmptyState()

    def update(grad: GradSample, state: EmptyState, params: Tensor,
               step: int) -> tuple[Tensor, EmptyState]:
        assert grad.loss is not None
        return -lr * grad.loss.unsqueeze(-1) * grad.minibatch, state

    def fluctuation(grad: GradSample, state: EmptyState) -> Tensor:
        assert grad.loss is not None
        return 0.5 * lr * grad.loss.unsqueeze(-1) * grad.minibatch.square()

    return UpdateRule("loss_proportional", init, update, fluctuation, lr=lr, needs_loss=True)
