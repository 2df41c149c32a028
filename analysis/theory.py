"""Exact finite-η stationary laws of linear-gradient models (THEORY.md, "Quadratic models").

Every constant-rate rule here is a heavy-ball recursion ``z' = Az + Bξ`` of ``z = (θ − θ*, b)``
(``sampler.linear_forms``; Adam's EMA form: μ = d = β₁), so the stationary covariance solves the
discrete Lyapunov equation ``Σ_z = AΣ_zAᵀ + B C̄ Bᵀ`` (``scipy.linalg.solve_discrete_lyapunov``);
for μ = 0 it reduces to ``Σ = (I−ΛH)Σ(I−ΛH)ᵀ + ΛC̄Λ``. ``C̄ = E[C(θ)]`` is the minibatch noise
covariance: ``Σ_noise/B`` for ``quadratic``; for ``linear_regression`` and ``mean`` it is
state-dependent but closed in Σ (``sampler.linear_forms.RegressionNoise``) and is solved by
fixed-point iteration, which converges iff the stationary second moment exists. Epoch
reshuffling has no stationary formula (its batches are dependent). RMSProp and Adam get the
*approximate* law with their rates frozen at the self-consistent stationary ``E[g_i²]``.

Derived predictions: virial matrix ``V = ΣH`` (``V_ij = E[(θ_i − θ*_i)∂_jL]``), temperatures
``T_i = V_ii``, excess loss ``E[L] − L* = ½ tr(HΣ)``, and the integrated autocorrelation time of
each θ_i at the recorded thinning, ``τ_i = 1 + 2[A_t(I − A_t)⁻¹Σ_z]_ii / Σ_ii`` with
``A_t = A^thin``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ..sampler.config import RunSpec
from ..sampler.linear_forms import RegressionNoise, heavy_ball_matrices, noise_factor
from ..sampler.models import LinearRegression, Model, Quadratic, ScaledModel


@dataclass
class StationaryTheory:
    """Predicted stationary law of one run."""

    mean: np.ndarray  # [D] θ*
    cov: np.ndarray  # [D, D]
    virial: np.ndarray  # [D, D] ΣH
    temperature: np.ndarray  # [D]
    iat: np.ndarray  # [D] at the run's thinning
    excess_loss: float
    exact: bool
    note: str
    transition: np.ndarray | None = None  # [2D, 2D] A of the joint (δ, buffer) recursion
    state_cov: np.ndarray | None = None  # [2D, 2D] stationary Σ_z

    @property
    def gibbs(self) -> bool:
        """Whether the predicted law satisfies O12 (``ΣH = T·I``)."""
        t = self.temperature.mean()
        return bool(np.allclose(self.virial, t * np.eye(len(self.temperature)),
                                rtol=1e-6, atol=1e-9 * abs(t)))


def _rule_form(spec: RunSpec, model: Model,
               second_moment: np.ndarray) -> tuple[np.ndarray, float, float, bool] | None:
    """``(rates [D], μ, d, exact)`` of the run's rule; adaptive rates from ``E[g²]``."""
    r, d = spec.rule, model.dim
    if r.kind == "sgd":
        return np.full(d, r.lr), 0.0, 0.0, True
    if r.kind == "momentum":
        return np.full(d, r.lr), r.mu, r.dampening, True
    if r.kind == "momentum_ng":
        return np.full(d, r.lr), 1 - 1 / r.n_g, 0.0, True
    if r.kind == "preconditioned":
        if isinstance(model, Quadratic):
            s2, exact = np.diag(model.noise_cov.double().cpu().numpy()), True
        elif isinstance(model, LinearRegression):  # σ_i² frozen at the optimum: approximate
            x, y = model.x.double().cpu().numpy(), model.y.double().cpu().numpy()
            h = x.T @ x / len(y) + model.l2 * np.eye(model.dim)
            theta = np.linalg.solve(h, x.T @ y / len(y))
            g = x * (x @ theta - y)[:, None]
            s2, exact = g.var(axis=0), False
        else:
            return None
        scale = s2 if r.power == 2 else np.sqrt(s2)
        return r.lr / (scale + r.eps), 0.0, 0.0, exact
    if r.kind == "rmsprop":
        root = np.sqrt(second_moment + r.eps) if r.eps_inside_sqrt else (
            np.sqrt(second_moment) + r.eps)
        return r.lr / root, 0.0, 0.0, False
    if r.kind == "adam":
        return r.lr / (np.sqrt(second_moment) + r.eps), r.beta1, r.beta1, False
    return None


def regression_noise(model: LinearRegression, batch_size: int, sampling: str) -> RegressionNoise:
    """``C̄(Σ)`` of a ``linear_regression``/``mean`` run (``sampler.linear_forms``)."""
    x, y, n = model.x.double().cpu().numpy(), model.y.double().cpu().numpy(), model.n_examples
    h = x.T @ x / n + model.l2 * np.eye(model.dim)
    theta_star = np.linalg.solve(h, x.T @ y / n)
    u = x * (x @ theta_star - y)[:, None] + model.l2 * theta_star
    return RegressionNoise(x, u, noise_factor(n, batch_size, sampling), theta_star)


class _Noise:
    """``C̄(Σ)`` of a run, or ``ok = False`` when no exact noise model exists."""

    def __init__(self, spec: RunSpec, model: Model) -> None:
        self.ok, self.regression = True, None
        if isinstance(model, Quadratic):
            self.const = model.noise_cov.double().cpu().numpy() / spec.run.batch_size
            return
        if not isinstance(model, LinearRegression) or spec.run.sampling == "epoch":
            self.ok = False
            return
        self.regression = regression_noise(model, spec.run.batch_size, spec.run.sampling)
        self.theta_star = self.regression.theta_star

    def __call__(self, cov: np.ndarray) -> np.ndarray:
        return self.const if self.regression is None else self.regression(cov)


def stationary_theory(spec: RunSpec, model: Model, max_iter: int = 500,
                      tol: float = 1e-13) -> StationaryTheory | None:
    """The exact (or, for adaptive rules, approximate) stationary law, or ``None`` if unknown.

    ``None`` too when the fixed-point iteration for state-dependent noise does not converge to
    1e-13 within ``max_iter`` steps (the stationary second moment may not exist: see
    ``sampler.linear_forms``): a number that did not converge is never returned.
    """
    if isinstance(model, ScaledModel):  # loss units: no closed form is kept for scaled losses
        return None
    h = model.exact_hessian()
    noise = _Noise(spec, model)
    if h is None or not noise.ok:
        return None
    d = h.shape[0]
    mean = np.zeros(d) if isinstance(model, Quadratic) else noise.theta_star
    cov = np.zeros((d, d))
    for _ in range(max_iter):
        c_bar = noise(cov)
        form = _rule_form(spec, model, np.diag(h @ cov @ h) + np.diag(c_bar))
        if form is None:
            return None
        rates, mu, damp, exact = form
        a, b = heavy_ball_matrices(h, rates, mu, damp)
        if np.abs(np.linalg.eigvals(a)).max() >= 1:
            return None
        sz = scipy.linalg.solve_discrete_lyapunov(a, b @ c_bar @ b.T)
        new = sz[:d, :d]
        if not np.isfinite(new).all():
            return None
        done = np.abs(new - cov).max() <= tol * max(np.abs(new).max(), 1e-300)
        cov = new
        if done:
            break
    else:
        return None
    a_t = np.linalg.matrix_power(a, spec.run.thin)
    lag_sum = a_t @ np.linalg.solve(np.eye(2 * d) - a_t, sz)
    iat = 1 + 2 * np.diag(lag_sum)[:d] / np.diag(cov)
    virial = cov @ h
    note = "exact" if exact else "approximate: adaptive rates frozen at stationary E[g²]"
    return StationaryTheory(mean, cov, virial, np.diag(virial).copy(), iat,
                            0.5 * float(np.trace(h @ cov)), exact, note, a, sz)


def sgd_1d(lr: float, h: float, sigma2: float) -> dict[str, float]:
    """THEORY.md 1-D closed forms for SGD: variance, temperature and τ (a check on the solver)."""
    var = lr * sigma2 / (h * (2 - lr * h))
    return {"var": var, "temperature": h * var, "iat": (2 - lr * h) / (lr * h)}


def momentum_1d(lr: float, mu: float, h: float, sigma2: float) -> dict[str, float]:
    """THEORY.md 1-D closed forms for PyTorch momentum (d = 0)."""
    var = lr * sigma2 * (1 + mu) / (h * (1 - mu) * (2 * (1 + mu) - lr * h))
    iat = (1 - mu) * (2 * (1 + mu) - lr * h) / (lr * h * (1 + mu))
    return {"var": var, "temperature": h * var, "iat": iat}
