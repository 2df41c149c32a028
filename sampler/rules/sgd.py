"""SGD and heavy-ball momentum in both conventions (PyTorch ``μ`` form and the seeds' ``N_g`` form)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from .base import (
    BufferMap,
    EmptyState,
    GradSample,
    HeavyBall,
    UpdateRule,
    check_range,
    constant_form,
)


def sgd(lr: float) -> UpdateRule:
    """Plain SGD, ``θ_{t+1} = θ_t − η g_B``.

    Fluctuation term (docs/theory.md identity O3): ``T_i = (η/2) E[(g_B)_i²]``.

    Args:
        lr: Learning rate η > 0.
    """
    check_range("lr", lr, 0.0, low_open=True, high=None)

    def init(params: Tensor) -> EmptyState:
        return EmptyState()

    def update(grad: GradSample, state: EmptyState, params: Tensor,
               step: int) -> tuple[Tensor, EmptyState]:
        return -lr * grad.minibatch, state

    def fluctuation(grad: GradSample, state: EmptyState) -> Tensor:
        return 0.5 * lr * grad.minibatch.square()

    return UpdateRule("sgd", init, update, fluctuation, rates="constant", lr=lr,
                      linear_form=constant_form(lr))


class MomentumState(NamedTuple):
    """Heavy-ball buffer."""

    buffer: Tensor  # [C, D]


def momentum(lr: float, mu: float = 0.9, dampening: float = 0.0,
             nesterov: bool = False) -> UpdateRule:
    """PyTorch heavy ball (``torch.optim.SGD(momentum=μ, dampening=d, nesterov=…)``).

    ``b_1 = g_1``; ``b_t = μ b_{t−1} + (1−d) g_t``; ``θ_{t+1} = θ_t − η b_t``. The first step
    copies the gradient undamped, exactly as PyTorch does. Effective rate ``η(1−d)/(1−μ)``.

    Fluctuation term (Yaida 2019, App. A): ``T_i = (η/2)(1+μ)/(1−d) E[b_i²]``, exact per
    coordinate. From the joint (θ, b) second moments with ``x = θ − c``, ``B = E[b_i²]``:
    ``b' = μb + (1−d)g`` and ``x' = x − ηb'``; stationarity of ``E[x_ib_i]`` gives
    ``(1−μ)E[x_ib_i] = (1−d)E[x_ig_i] − ηB`` and of ``E[x_i²]`` gives
    ``2(μE[x_ib_i] + (1−d)E[x_ig_i]) = ηB``; eliminating ``E[x_ib_i]``,
    ``E[x_i∂_iL] = E[x_ig_i] = η(1+μ)B/(2(1−d))`` (the fresh noise in g is independent of x).

    Nesterov (PyTorch's form, ``d = 0``): the step is ``θ_{t+1} = θ_t − η(g_t + μb_t)``. Its
    stationary law is still linear-Gaussian on a quadratic (``HeavyBall.nesterov``), but the
    heavy-ball fluctuation term is no longer exact: the analysis then checks stationarity with
    the rate-weighted identity R, which holds for any step.

    Args:
        lr: Learning rate η > 0.
        mu: Momentum μ in [0, 1).
        dampening: d in [0, 1).
        nesterov: Nesterov's look-ahead (needs μ > 0 and d = 0, as in PyTorch).
    """
    check_range("lr", lr, 0.0, low_open=True)
    check_range("mu", mu, 0.0, 1.0)
    check_range("dampening", dampening, 0.0, 1.0)
    if nesterov and (mu <= 0 or dampening != 0):
        raise ValueError(f"rule.nesterov: needs mu > 0 and dampening = 0 (as torch.optim.SGD), "
                         f"got mu = {mu} and dampening = {dampening}")
    kappa = (1.0 + mu) / (1.0 - dampening)

    def init(params: Tensor) -> MomentumState:
        return MomentumState(torch.zeros_like(params))

    def update(grad: GradSample, state: MomentumState, params: Tensor,
               step: int) -> tuple[Tensor, MomentumState]:
        if step == 0:
            buf = grad.minibatch.clone()
        else:
            buf = mu * state.buffer + (1.0 - dampening) * grad.minibatch
        if nesterov:
            return -lr * (grad.minibatch + mu * buf), MomentumState(buf)
        return -lr * buf, MomentumState(buf)

    def fluctuation(grad: GradSample, state: MomentumState) -> Tensor:
        return 0.5 * lr * kappa * state.buffer.square()

    def nesterov_form(second_moment: np.ndarray, example_var: np.ndarray,
                      var_exact: bool) -> HeavyBall:
        return HeavyBall(np.full(len(second_moment), lr), mu, 0.0, True, nesterov=True)

    return UpdateRule("momentum", init, update, fluctuation,
                      rates="adaptive" if nesterov else "constant", lr=lr,
                      linear_form=nesterov_form if nesterov else constant_form(lr, mu, dampening),
                      buffer_map=BufferMap(lambda s: s.buffer, MomentumState, True))


class VelocityState(NamedTuple):
    """The seeds' velocity ``v`` (already multiplied by η)."""

    velocity: Tensor  # [C, D]


def momentum_ng(lr: float, n_g: float = 10.0) -> UpdateRule:
    """The seeds' momentum, ``v_t = (1 − 1/N_g) v_{t−1} + η g_t``, ``v_0 = 0``, ``θ_{t+1} = θ_t − v_t``.

    Identical to PyTorch momentum with ``μ = 1 − 1/N_g``, ``d = 0`` and buffer ``b = v/η``, so the
    effective rate is ``η N_g`` and ``T_i = (1+μ)/(2η) E[v_i²]``.

    Args:
        lr: η > 0.
        n_g: N_g ≥ 1 (N_g = 1 is plain SGD).
    """
    check_range("lr", lr, 0.0, low_open=True)
    check_range("n_g", n_g, 1.0)
    mu = 1.0 - 1.0 / n_g

    def init(params: Tensor) -> VelocityState:
        return VelocityState(torch.zeros_like(params))

    def update(grad: GradSample, state: VelocityState, params: Tensor,
               step: int) -> tuple[Tensor, VelocityState]:
        v = mu * state.velocity + lr * grad.minibatch
        return -v, VelocityState(v)

    def fluctuation(grad: GradSample, state: VelocityState) -> Tensor:
        return (1.0 + mu) / (2.0 * lr) * state.velocity.square()

    # Heavy-ball form with buffer b = v/η: rates η, μ = 1 − 1/N_g, no dampening.
    return UpdateRule("momentum_ng", init, update, fluctuation, rates="constant", lr=lr,
                      linear_form=constant_form(lr, mu),
                      buffer_map=BufferMap(lambda s: s.velocity / lr,
                                           lambda b: VelocityState(lr * b), False))


def sgld(lr: float, temperature: float) -> UpdateRule:
    """Stochastic gradient Langevin dynamics, ``θ_{t+1} = θ_t − ηg_B + √(2ηT)·ξ_t``, ξ ~ N(0, I).

    Welling & Teh (2011) in this package's units: it targets ``exp(−L/T)`` as η → 0 (a
    Bayesian posterior at ``T = 1/N``), with the minibatch noise on top. Fluctuation term
    (exact: ξ is independent of θ and g): ``(η/2)g_B² + T``, since stationarity of
    ``E[(θ−c)²]`` gives ``2ηE[(θ−c)g] = η²E[g²] + 2ηT``. Its linear form is SGD's with the
    injected variance ``2ηT`` per coordinate and step.

    Args:
        lr: η > 0.
        temperature: T ≥ 0 (0 is plain SGD with an extra draw per step).
    """
    check_range("lr", lr, 0.0, low_open=True)
    check_range("temperature", temperature, 0.0)
    scale = (2.0 * lr * temperature) ** 0.5

    def init(params: Tensor) -> EmptyState:
        return EmptyState()

    def update(grad: GradSample, state: EmptyState, params: Tensor,
               step: int) -> tuple[Tensor, EmptyState]:
        assert grad.noise is not None
        return -lr * grad.minibatch + scale * grad.noise, state

    def fluctuation(grad: GradSample, state: EmptyState) -> Tensor:
        return 0.5 * lr * grad.minibatch.square() + temperature

    def linear_form(second_moment: np.ndarray, example_var: np.ndarray,
                    var_exact: bool) -> HeavyBall:
        return HeavyBall(np.full(len(second_moment), lr), 0.0, 0.0, True,
                         2.0 * lr * temperature)

    return UpdateRule("sgld", init, update, fluctuation, rates="constant", lr=lr,
                      linear_form=linear_form, needs_noise=True)
