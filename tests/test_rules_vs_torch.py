"""Every rule with noise off equals the matching torch.optim optimizer, in float64."""

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


def _loss(theta: torch.Tensor) -> torch.Tensor:
    """A non-quadratic, anisotropic test loss (per chain): Σ_i a_i log cosh(θ_i − 1) + ¼θ_0²θ_1²."""
    a = torch.tensor([0.5, 2.0, 1.0, 4.0], dtype=theta.dtype)
    return (a * torch.log(torch.cosh(theta - 1.0))).sum(-1) + 0.25 * theta[..., 0] ** 2 * (
        theta[..., 1] ** 2)


def _grad(theta: torch.Tensor) -> torch.Tensor:
    t = theta.detach().requires_grad_(True)
    _loss(t).sum().backward()
    return t.grad


def _ours(rule, theta0: torch.Tensor) -> torch.Tensor:
    theta, state = theta0.clone(), rule.init(theta0)
    for step in range(STEPS):
        delta, state = rule.update(GradSample(_grad(theta)), state, theta, step)
        theta = theta + delta
    return theta


def _torch(make_opt, theta0: torch.Tensor) -> torch.Tensor:
    rows = []
    for c in range(theta0.shape[0]):
        p = torch.nn.Parameter(theta0[c].clone())
        opt = make_opt([p])
        for _ in range(STEPS):
            opt.zero_grad()
            _loss(p).backward()
            opt.step()
        rows.append(p.detach())
    return torch.stack(rows)


@pytest.fixture
def theta0() -> torch.Tensor:
    return torch.randn(CHAINS, DIM, generator=torch.Generator().manual_seed(3),
                       dtype=torch.float64)


@pytest.mark.parametrize("lr", [0.01, 0.1, 0.4])
def test_sgd(theta0, lr):
    expected = _torch(lambda p: torch.optim.SGD(p, lr=lr), theta0)
    torch.testing.assert_close(_ours(sgd(lr), theta0), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("lr,mu,d", list(itertools.product([0.01, 0.1], [0.5, 0.9], [0.0, 0.3])))
def test_momentum(theta0, lr, mu, d):
    expected = _torch(lambda p: torch.optim.SGD(p, lr=lr, momentum=mu, dampening=d), theta0)
    torch.testing.assert_close(_ours(momentum(lr, mu, d), theta0), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("lr,n_g", list(itertools.product([0.01, 0.05], [1.0, 4.0, 10.0])))
def test_momentum_ng_is_pytorch_momentum(theta0, lr, n_g):
    mu = 1 - 1 / n_g
    expected = _torch(lambda p: torch.optim.SGD(p, lr=lr, momentum=mu), theta0)
    torch.testing.assert_close(_ours(momentum_ng(lr, n_g), theta0), expected, rtol=0,
                               atol=1e-12)


@pytest.mark.parametrize("lr,alpha,eps", list(itertools.product([1e-3, 1e-2], [0.9, 0.99],
                                                                 [1e-8, 1e-3])))
def test_rmsprop(theta0, lr, alpha, eps):
    expected = _torch(lambda p: torch.optim.RMSprop(p, lr=lr, alpha=alpha, eps=eps), theta0)
    torch.testing.assert_close(_ours(rmsprop(lr, alpha, eps), theta0), expected, rtol=0,
                               atol=1e-12)


@pytest.mark.parametrize("lr,b1,b2,eps", list(itertools.product(
    [1e-3, 3e-2], [0.0, 0.9], [0.9, 0.999], [1e-8, 1e-4])))
def test_adam(theta0, lr, b1, b2, eps):
    expected = _torch(lambda p: torch.optim.Adam(p, lr=lr, betas=(b1, b2), eps=eps), theta0)
    torch.testing.assert_close(_ours(adam(lr, b1, b2, eps), theta0), expected, rtol=0,
                               atol=1e-12)


@pytest.mark.parametrize("power", [1, 2])
def test_preconditioned_with_known_variance_is_per_coordinate_sgd(theta0, power):
    """With a constant σ² the rule equals torch SGD with one param group per coordinate."""
    sigma2 = torch.tensor([0.5, 2.0, 1.0, 4.0], dtype=torch.float64)
    lr = 0.05
    rule = preconditioned(lr, power=power, decay=0.9, eps=0.0)
    theta, state = theta0.clone(), rule.init(theta0)
    for step in range(STEPS):
        g = GradSample(_grad(theta), sigma2.expand_as(theta))
        delta, state = rule.update(g, state, theta, step)
        theta = theta + delta
    rates = lr / (sigma2 if power == 2 else sigma2.sqrt())
    rows = []
    for c in range(CHAINS):
        ps = [torch.nn.Parameter(theta0[c, i:i + 1].clone()) for i in range(DIM)]
        opt = torch.optim.SGD([{"params": [p], "lr": float(r)} for p, r in zip(ps, rates, strict=True)])
        for _ in range(STEPS):
            opt.zero_grad()
            _loss(torch.cat(ps)).backward()
            opt.step()
        rows.append(torch.cat([p.detach() for p in ps]))
    torch.testing.assert_close(theta, torch.stack(rows), rtol=0, atol=1e-12)


def test_negative_control_detects_a_wrong_rule(theta0):
    """The comparison is sharp: a 1% different learning rate fails it."""
    expected = _torch(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), theta0)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(_ours(momentum(0.101, 0.9), theta0), expected, rtol=0,
                                   atol=1e-12)


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
