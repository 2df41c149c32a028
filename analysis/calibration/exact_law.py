"""Simulated replicates for the exact-law goodness-of-fit test and the Gibbs test's shape part.

The seeds' ``mean`` model (``ℓ_i = ½(θ − y_i)²``, h = 1) on N = 5 examples, SGD with B = 1:
``θ' = (1 − η)θ + ηy_i`` exactly, simulated in numpy. Its exact stationary law
(``exact_law.exact_law_1d``) is non-Gaussian at finite η while a Gibbs law ``exp(−L/T)`` of this
quadratic is Gaussian, so the same draws give: the size of ``gof.gof_test`` against the exact
law (an exact null), its power against the Gaussian with the exact mean and variance (the named
alternative: "SGD is Gibbs"), and how often the Gibbs test's shape component rejects — which,
with the exact law's distance from the Gaussian beside it, validates that component.
"""

from __future__ import annotations

import numpy as np
import scipy.stats

from ...sampler.config import MeanConfig
from ..law.gibbs import gibbs_test_arrays
from ..law.gof import gof_test
from ..theory.one_d import ExactLaw1D, exact_law_1d, linearise_1d

N_EXAMPLES = 5


def mean_model_law(lr: float) -> tuple[np.ndarray, ExactLaw1D]:
    """The data ``y`` and the exact stationary law at rate ``lr``."""
    model = MeanConfig(kind="mean", n=N_EXAMPLES).build(1)
    y = model.dataset()[1]
    theta_star = float(y.mean())
    lin = linearise_1d(model, theta_star)
    law = exact_law_1d(model, lr, theta_star, lin.variance(lr))
    assert law is not None
    return y, law


def replicates(y: np.ndarray, lr: float, reps: int, chains: int, draws: int, seed: int,
               burn_in: int = 500) -> np.ndarray:
    """Independent runs ``[reps, chains, draws]`` started at θ* = ȳ."""
    rng = np.random.default_rng(seed)
    theta = np.full(reps * chains, y.mean())
    out = np.empty((draws, reps * chains))
    for t in range(burn_in + draws):
        theta = (1 - lr) * theta + lr * y[rng.integers(0, len(y), theta.shape)]
        if t >= burn_in:
            out[t - burn_in] = theta
    return out.T.reshape(reps, chains, draws)


def rejections(lr: float, reps: int, seed: int, chains: int = 8, draws: int = 2000,
               alpha: float = 0.01) -> dict[str, int]:
    """Rejections at ``alpha`` of: GOF vs exact, GOF vs Gaussian, the Gibbs shape component."""
    y, law = mean_model_law(lr)
    mean, var, _ = law.moments()
    sd = np.sqrt(var)
    out = {"exact": 0, "gaussian": 0, "shape": 0}
    for x in replicates(y, lr, reps, chains, draws, seed):
        out["exact"] += gof_test(x, law.cdf_at, law.quantile).rejects(alpha)
        out["gaussian"] += gof_test(x, lambda v: scipy.stats.norm.cdf(v, mean, sd),
                                    lambda q: scipy.stats.norm.ppf(q, mean, sd)).rejects(alpha)
        centred = (x - x.mean())[..., None]
        shape = next(c for c in gibbs_test_arrays(centred, (x - y.mean())[..., None]).components
                     if c.name == "shape")
        out["shape"] += shape.status == "ok" and shape.p_value < alpha
    return out


def gaussian_distance(lr: float) -> float:
    """Sup distance between the exact CDF and the Gaussian with its mean and variance."""
    _, law = mean_model_law(lr)
    mean, var, _ = law.moments()
    return float(np.abs(law.cdf - scipy.stats.norm.cdf(law.grid, mean, np.sqrt(var))).max())


LOGISTIC_2D = {"kind": "logistic_regression", "l2": 0.05,
               "data": {"n": 6, "d": 2, "seed": 3, "condition": 2.0}}


def rejections_2d(reps: int, seed: int, lr: float = 0.3, chains: int = 8, draws: int = 2000,
                  alpha: float = 0.01) -> dict[str, int]:
    """2-D logistic SGD (B = 1): rejections of the 3 × 3 tertile-bin test.

    Against the exact density (size) and against the linearised Gaussian ``N(θ*, Σ_lin)`` on
    the same bins (power against the small-η approximation).
    """
    from ...sampler.config import LogisticRegressionConfig
    from ..law.gof import gof_binned
    from ..theory.two_d import (
        exact_law_2d,
        glm_curvature,
        linear_covariance,
        newton_optimum,
        quantile_bins,
    )

    model = LogisticRegressionConfig.model_validate(LOGISTIC_2D).build(1)
    parts = model.glm_parts()
    assert parts is not None
    x, y, l2, residual = parts
    theta_star = newton_optimum(parts, np.zeros(2))
    _, h, _, c = glm_curvature(parts, theta_star)
    cov = linear_covariance(h, c, lr)
    law = exact_law_2d(parts, lr, theta_star, cov)
    assert law is not None
    edges, exact = quantile_bins(law)
    gauss = _gaussian_bins(edges, theta_star, cov)
    rng = np.random.default_rng(seed)
    theta = np.tile(theta_star, (reps * chains, 1))
    out = np.empty((draws, reps * chains, 2))
    for t in range(300 + draws):
        i = rng.integers(0, len(y), len(theta))
        z = (x[i] * theta).sum(axis=1)
        theta = theta - lr * (x[i] * residual(z, y[i])[:, None] + l2 * theta)
        if t >= 300:
            out[t - 300] = theta
    counts = {"exact": 0, "gaussian": 0}
    for run in out.transpose(1, 0, 2).reshape(reps, chains, draws, 2):
        index = (3 * np.searchsorted(edges[0], run[..., 0])
                 + np.searchsorted(edges[1], run[..., 1]))
        counts["exact"] += gof_binned(index, exact).rejects(alpha)
        counts["gaussian"] += gof_binned(index, gauss).rejects(alpha)
    return counts


def _gaussian_bins(edges: list[np.ndarray], mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Probabilities of the 3 × 3 bins between ``edges`` under ``N(mean, cov)``."""
    law = scipy.stats.multivariate_normal(mean, cov)
    ex = np.concatenate([[-np.inf], edges[0], [np.inf]])
    ey = np.concatenate([[-np.inf], edges[1], [np.inf]])

    def cdf(a: float, b: float) -> float:
        if a == -np.inf or b == -np.inf:
            return 0.0
        a, b = min(a, mean[0] + 50 * np.sqrt(cov[0, 0])), min(b, mean[1] + 50 * np.sqrt(cov[1, 1]))
        return float(law.cdf([a, b]))
    return np.array([cdf(ex[i + 1], ey[j + 1]) - cdf(ex[i], ey[j + 1]) - cdf(ex[i + 1], ey[j])
                     + cdf(ex[i], ey[j]) for i in range(3) for j in range(3)])


def ar1_chains(chains: int, draws: int, phi: float, rng: np.random.Generator,
               coords: int | None = None, start: np.ndarray | None = None) -> np.ndarray:
    """AR(1) chains ``[C, n]`` (``[C, n, K]`` with ``coords``): ``z_t = φz_{t−1} + √(1 − φ²)ε_t``.

    N(0, 1) marginals: stationary from the start unless ``start [C(, K)]`` is given.
    """
    shape = (chains,) if coords is None else (chains, coords)
    z = np.empty((shape[0], draws, *shape[1:]))
    z[:, 0] = rng.normal(size=shape) if start is None else start
    noise = rng.normal(size=z.shape) * np.sqrt(1 - phi**2)
    for t in range(1, draws):
        z[:, t] = phi * z[:, t - 1] + noise[:, t]
    return z


def rejections_few_batches(reps: int, seed: int, chains: int = 16, draws: int = 2000,
                           phi: float = 0.999, shift: float = 1.0,
                           alpha: float = 0.01) -> dict[str, int]:
    """The GOF test where batches are too few for its bins (``gof`` merges them).

    Stationary AR(1) chains with N(0, 1) marginals and ``τ ≈ (1 + φ)/(1 − φ)`` ≈ ``draws``: one
    batch per chain, so 16 chains leave ν = 6 and the 10 decile bins are merged to 5. Counts
    rejections against N(0, 1) (size: an exact null), against N(``shift``, 1) (power) and runs
    whose bins were merged.
    """
    rng = np.random.default_rng(seed)
    out = {"exact": 0, "shifted": 0, "merged": 0}
    for _ in range(reps):
        z = ar1_chains(chains, draws, phi, rng)
        exact = gof_test(z, scipy.stats.norm.cdf, scipy.stats.norm.ppf)
        out["exact"] += exact.rejects(alpha)
        out["merged"] += "merged" in exact.reason
        out["shifted"] += gof_test(z, lambda v: scipy.stats.norm.cdf(v, shift),
                                   lambda q: scipy.stats.norm.ppf(q, shift)).rejects(alpha)
    return out
