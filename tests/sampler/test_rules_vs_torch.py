"""Every rule equals the matching torch.optim optimizer, in float64, step for step.

Why the comparison is well-conditioned on any x86-64 CPU: both sides are fed the *same* gradient
sequence ``g_1..g_T`` (open loop; torch's ``p.grad`` is set to ``g_t``), so a rounding difference
between CPU kernels (AVX2 vs AVX-512, fused vs foreach optimizer code) never feeds back into the
next gradient. A closed loop through a loss is not: Adam with β₁ = 0 is sign-like, ``g/√v``, and
60 steps amplify a last-bit difference into an O(lr) one. Open loop, each step's update
``δ_t`` is a rational function of the inputs evaluated to a few ulps, so after T steps
``|θ_ours − θ_torch| ≤ T · max_t|δ_t| · c·2⁻⁵²``. With T = 60, ``|δ_t| ≤ lr/√(1−β₂) ≤ 1`` for every
rule here (and ``≤ lr·|g|`` or ``lr·|b|`` for SGD/momentum with |g| ≤ 6), and c ≤ 16, that is
below ``60 · 6 · 16 · 2.2e-16 ≈ 1.3e-12``; the tolerance below is 1e-11. A wrong rule (a 1 %
different rate) differs by ≥ 1e-4 (negative control at the end).
"""

from __future__ import annotations

import itertools

import pytest
import torch
from sgdthermo.sampler.rules import (
    GradSample,
    adam,
    momentum,
    momentum_ng,
    preconditioned,
    rmsprop,
    sgd,
)

STEPS, CHAINS, DIM = 60, 3, 4
ATOL = 1e-11  # the perturbation bound of the module docstring, with margin


@pytest.fixture
def grads() -> torch.Tensor:
    """A fixed gradient sequence ``[STEPS, C, D]`` with coordinates of different scales."""
    scale = torch.tensor([0.5, 2.0, 1.0, 0.05], dtype=torch.float64)
    g = torch.randn(STEPS, CHAINS, DIM, generator=torch.Generator().manual_seed(7),
                    dtype=torch.float64)
    return (g + 0.3) * scale


def _ours(rule, theta0: torch.Tensor, grads: torch.Tensor, sigma2=None) -> torch.Tensor:
    theta, state = theta0.clone(), rule.init(theta0)
    for step in range(STEPS):
        var = None if sigma2 is None else sigma2.expand_as(theta)
        delta, state = rule.update(GradSample(grads[step], var), state, theta, step)
        theta = theta + delta
    return theta


def _torch(make_opt, theta0: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    rows = []
    for c in range(theta0.shape[0]):
        p = torch.nn.Parameter(theta0[c].clone())
        opt = make_opt([p])
        for step in range(STEPS):
            p.grad = grads[step, c].clone()
            opt.step()
        rows.append(p.detach())
    return torch.stack(rows)


@pytest.fixture
def theta0() -> torch.Tensor:
    return torch.randn(CHAINS, DIM, generator=torch.Generator().manual_seed(3),
                       dtype=torch.float64)


@pytest.mark.parametrize("lr", [0.01, 0.1, 0.4])
def test_sgd(theta0, grads, lr):
    expected = _torch(lambda p: torch.optim.SGD(p, lr=lr), theta0, grads)
    torch.testing.assert_close(_ours(sgd(lr), theta0, grads), expected,
                               rtol=0, atol=ATOL)


@pytest.mark.parametrize("lr,mu,d", list(itertools.product([0.01, 0.1], [0.5, 0.9], [0.0, 0.3])))
def test_momentum(theta0, grads, lr, mu, d):
    expected = _torch(lambda p: torch.optim.SGD(p, lr=lr, momentum=mu, dampening=d), theta0, grads)
    torch.testing.assert_close(_ours(momentum(lr, mu, d), theta0, grads), expected,
                               rtol=0, atol=ATOL)


@pytest.mark.parametrize("lr,n_g", list(itertools.product([0.01, 0.05], [1.0, 4.0, 10.0])))
def test_momentum_ng_is_pytorch_momentum(theta0, grads, lr, n_g):
    mu = 1 - 1 / n_g
    expected = _torch(lambda p: torch.optim.SGD(p, lr=lr, momentum=mu), theta0, grads)
    torch.testing.assert_close(_ours(momentum_ng(lr, n_g), theta0, grads), expected,
                               rtol=0, atol=ATOL)


@pytest.mark.parametrize("lr,alpha,eps", list(itertools.product([1e-3, 1e-2], [0.9, 0.99],
                                                                 [1e-8, 1e-3])))
def test_rmsprop(theta0, grads, lr, alpha, eps):
    expected = _torch(lambda p: torch.optim.RMSprop(p, lr=lr, alpha=alpha, eps=eps), theta0, grads)
    torch.testing.assert_close(_ours(rmsprop(lr, alpha, eps), theta0, grads), expected,
                               rtol=0, atol=ATOL)


@pytest.mark.parametrize("lr,b1,b2,eps", list(itertools.product(
    [1e-3, 3e-2], [0.0, 0.9], [0.9, 0.999], [1e-8, 1e-4])))
def test_adam(theta0, grads, lr, b1, b2, eps):
    expected = _torch(lambda p: torch.optim.Adam(p, lr=lr, betas=(b1, b2), eps=eps), theta0, grads)
    torch.testing.assert_close(_ours(adam(lr, b1, b2, eps), theta0, grads), expected,
                               rtol=0, atol=ATOL)


@pytest.mark.parametrize("power", [1, 2])
def test_preconditioned_with_known_variance_is_per_coordinate_sgd(theta0, grads, power):
    """With a constant σ² the rule equals torch SGD with one param group per coordinate."""
    sigma2 = torch.tensor([0.5, 2.0, 1.0, 4.0], dtype=torch.float64)
    lr = 0.05
    theta = _ours(preconditioned(lr, power=power, decay=0.9, eps=0.0), theta0, grads, sigma2)
    rates = lr / (sigma2 if power == 2 else sigma2.sqrt())
    rows = []
    for c in range(CHAINS):
        ps = [torch.nn.Parameter(theta0[c, i:i + 1].clone()) for i in range(DIM)]
        opt = torch.optim.SGD([{"params": [p], "lr": float(r)}
                               for p, r in zip(ps, rates, strict=True)])
        for step in range(STEPS):
            for i, p in enumerate(ps):
                p.grad = grads[step, c, i:i + 1].clone()
            opt.step()
        rows.append(torch.cat([p.detach() for p in ps]))
    torch.testing.assert_close(theta, torch.stack(rows), rtol=0, atol=ATOL)


def test_negative_control_detects_a_wrong_rule(theta0, grads):
    """The comparison is sharp: a 1% different learning rate fails it by far more than ATOL."""
    expected = _torch(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), theta0, grads)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(_ours(momentum(0.101, 0.9), theta0, grads), expected,
                                   rtol=0, atol=1e3 * ATOL)


@pytest.mark.parametrize("factory,kwargs,message", [
    (sgd, {"lr": -1.0}, "lr must be in (0.0, inf), got -1.0"),
    (momentum, {"lr": 0.1, "mu": 1.0}, "mu must be in [0.0, 1.0), got 1.0"),
    (momentum, {"lr": 0.1, "dampening": -0.1}, "dampening must be in [0.0, 1.0), got -0.1"),
    (momentum_ng, {"lr": 0.1, "n_g": 0.5}, "n_g must be in [1.0, inf), got 0.5"),
    (rmsprop, {"lr": 0.1, "alpha": 1.2}, "alpha must be in [0.0, 1.0), got 1.2"),
    (adam, {"lr": 0.1, "beta2": 1.0}, "beta2 must be in [0.0, 1.0), got 1.0"),
    (preconditioned, {"lr": 0.1, "power": 3}, "power must be one of [1, 2], got 3"),
])
def test_hyperparameter_errors(factory, kwargs, message):
    with pytest.raises(ValueError) as err:
        factory(**kwargs)
    assert str(err.value) == message
