"""Detecting settings that are certainly unstable before any chain runs.

For models whose Hessian is exactly known (``quadratic``, ``mean``, ``linear_regression``) the
deterministic part of a constant-rate linear rule diverges when the rate exceeds the classical
bound (THEORY.md): SGD needs ``η·h_max < 2``; PyTorch momentum ``η(1−d)·h_max < 2(1+μ)``; the
seeds' N_g momentum ``η·h_max < 2(2 − 1/N_g)``; preconditioned SGD with the known noise of a
``quadratic`` needs the eigenvalues of ``Λ^{1/2} H Λ^{1/2}`` below 2. For ``linear_regression``
(i.i.d. or without-replacement batches) a constant-rate rule also needs a finite stationary
second moment, a stricter bound (``sampler.linear_forms``; 1-D Gaussian x at B = 1: ηh < 2/3).
"""

from __future__ import annotations

import numpy as np
import torch

from .config import MomentumConfig, MomentumNgConfig, PreconditionedConfig, RuleConfig, SGDConfig
from .linear_forms import (
    RegressionNoise,
    constant_rate_form,
    heavy_ball_matrices,
    noise_factor,
    second_moment_radius,
)
from .models import LinearRegression, Model, Quadratic, ScaledModel

SECOND_MOMENT_MAX_DIM = 64  # the second-moment check costs O(D⁶) per power step beyond this


class UnstableError(ValueError):
    """A rate for which the chain certainly diverges."""


def check_stability(model: Model, rule: RuleConfig) -> None:
    """Raise ``UnstableError`` naming ``rule.lr`` when the run would diverge deterministically."""
    h = model.exact_hessian()
    if h is None:
        return
    h_max = float(np.linalg.eigvalsh(h).max())
    if isinstance(rule, SGDConfig):
        bound, what = 2.0 / h_max, "SGD needs lr·h_max < 2"
    elif isinstance(rule, MomentumConfig):
        bound = 2.0 * (1 + rule.mu) / ((1 - rule.dampening) * h_max)
        what = "momentum needs lr·(1−dampening)·h_max < 2(1+mu)"
    elif isinstance(rule, MomentumNgConfig):
        bound = 2.0 * (2 - 1 / rule.n_g) / h_max
        what = "N_g momentum needs lr·h_max < 2(2 − 1/n_g)"
    elif isinstance(rule, PreconditionedConfig) and isinstance(model, Quadratic | ScaledModel):
        if not isinstance(getattr(model, "inner", model), Quadratic):
            return
        scale = model.scale if isinstance(model, ScaledModel) else 1.0
        sigma2 = scale**2 * torch.diagonal(model.noise_cov).double().cpu().numpy()
        inv = 1.0 / (sigma2 if rule.power == 2 else np.sqrt(sigma2))
        root = np.sqrt(inv)
        bound = 2.0 / float(np.linalg.eigvalsh(root[:, None] * h * root[None, :]).max())
        what = "preconditioned SGD needs lr·λ_max(Λ^½HΛ^½) < 2 with Λ = diag(1/σ^p)"
    else:
        return
    if rule.lr >= bound:
        raise UnstableError(
            f"rule.lr: {rule.lr} is unstable for this model ({what}, h_max = {h_max:.6g}); "
            f"allowed: 0 < lr < {bound:.6g}, got {rule.lr}")


def _radius(model: LinearRegression, noise: RegressionNoise, h: np.ndarray, lr: float,
            mu: float, damp: float) -> float:
    a, b = heavy_ball_matrices(h, np.full(model.dim, lr), mu, damp)
    if np.abs(np.linalg.eigvals(a)).max() >= 1:
        return float("inf")
    return second_moment_radius(a, b, noise)


def check_second_moment(model: Model, rule: RuleConfig, batch_size: int, sampling: str) -> None:
    """Raise ``UnstableError`` naming ``rule.lr`` when θ has no finite stationary variance.

    Only for constant-rate rules on ``linear_regression`` with i.i.d. or without-replacement
    batches and D ≤ 64; the bound is found by bisection on ``ρ(𝓛(lr)) = 1``.
    """
    form = constant_rate_form(rule)
    if (not isinstance(model, LinearRegression) or form is None or model.dim > SECOND_MOMENT_MAX_DIM
            or sampling not in ("iid", "without_replacement")):
        return
    lr, mu, damp = form
    x = model.x.double().cpu().numpy()
    n = x.shape[0]
    noise = RegressionNoise(x, np.zeros_like(x), noise_factor(n, batch_size, sampling))
    h = model.exact_hessian()
    assert h is not None
    if _radius(model, noise, h, lr, mu, damp) < 1:
        return
    lo, hi = 0.0, lr
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _radius(model, noise, h, mid, mu, damp) < 1 else (lo, mid)
    raise UnstableError(
        f"rule.lr: {lr} gives θ no finite stationary variance on this linear regression (its "
        f"minibatch noise grows with θ, so the variance diverges although the mean converges); "
        f"allowed: 0 < lr < {lo:.6g}, got {lr}")
