"""A goodness-of-fit test of correlated draws against an exact CDF, with a valid p-value.

The draws are binned at the exact law's quantiles ``F⁻¹(j/M)``, j = 1 … M−1 (M = ``BINS``), so
each bin has probability ``p_j`` (1/M where F is continuous). The bin indicators of the first
M−1 bins are averaged in batches of at least 10 τ draws per chain (``estimators.batch_means``,
τ the slowest integrated time of the indicators: the one shared sizing); Hotelling's test of
their mean against ``p``,

    T² = d̄ᵀV⁻¹d̄,   (ν − k + 1)/(νk)·T² ~ F(k, ν − k + 1),

(k = M − 1, V the lugsail covariance of the mean from m batch means, ν = 0.4(m − 1)) gives the
p-value. A bin whose frequency
never varies between batches is exact and left out, unless it differs from its probability (or
a bin of probability 0 is hit): then p = 0. Size and power by simulation:
``benchmarks/exact_law_calibration.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.stats

from .contrast_tests import Means
from .estimators import batches_for, slowest_time

BINS = 10


@dataclass
class GofResult:
    """The test's statistic, degrees of freedom and p-value, and the bin frequencies."""

    f_stat: float
    dof: tuple[int, int]
    p_value: float
    expected: np.ndarray  # [M] exact bin probabilities
    observed: np.ndarray  # [M] measured frequencies


def gof_test(draws: np.ndarray, cdf: Callable[[np.ndarray], np.ndarray],
             quantile: Callable[[np.ndarray], np.ndarray], bins: int = BINS) -> GofResult:
    """Test draws ``[C, n]`` of a scalar against the law with ``cdf`` and ``quantile``."""
    edges = quantile(np.arange(1, bins) / bins)
    expected = np.diff(np.concatenate([[0.0], cdf(edges), [1.0]]))
    return gof_binned(np.searchsorted(edges, draws, side="left"), expected)


def gof_binned(index: np.ndarray, expected: np.ndarray) -> GofResult:
    """Hotelling's test of bin indices ``[C, n]`` (0 … M−1) against bin probabilities ``[M]``.

    The covariance of the mean frequencies is the lugsail batch-means estimate
    ``V = 2·V(L) − V(L/2)`` (``contrast_tests.lugsail_variance``'s matrix form; plain batch means
    of length 10 τ are too small by O(τ/L), which made the test liberal: 2.5 % at α = 1 % in
    2-D), with its eigenvalues floored at half those of ``V(L)``, and ``ν = 0.4(m − 1)`` degrees
    of freedom: ``(ν − k + 1)/(νk)·T² ~ F(k, ν − k + 1)``.
    """
    bins = len(expected)
    onehot = (index[..., None] == np.arange(bins)).astype(float)  # [C, n, M]
    observed = onehot.mean(axis=(0, 1))
    x = onehot[..., :bins - 1]
    pair = Means.of(x, batches_for(slowest_time(x), x.shape[1]))  # lengths L and L/2
    means, halves = pair.m1, pair.m2  # [m, M − 1], [2m, M − 1]
    m = means.shape[0]
    d = pair.mean - expected[:bins - 1]
    flat = means.std(axis=0) == 0  # a bin never (or always) hit: its mean is exact
    if np.any((observed > 0) & (expected == 0)) or np.any(flat & (np.abs(d) > 1e-12)):
        # an event of probability 0 happened, or a frequency that never varies is off: certain
        return GofResult(float("inf"), (bins - 1, m - bins + 1), 0.0, expected, observed)
    means, halves, d = means[:, ~flat], halves[:, ~flat], d[~flat]
    k = means.shape[1]
    nu = 0.4 * (m - 1)
    nan = GofResult(float("nan"), (k, int(nu - k + 1)), float("nan"), expected, observed)
    if nu <= k + 1 or k == 0:
        return nan
    v1 = np.atleast_2d(np.cov(means, rowvar=False)) / m
    v2 = np.atleast_2d(np.cov(halves, rowvar=False)) / halves.shape[0]
    try:
        root = np.linalg.cholesky(v1)
        inv = np.linalg.inv(root)
        w, u = np.linalg.eigh(inv @ (2 * v1 - v2) @ inv.T)  # V_L relative to V(L)
        z = u.T @ (inv @ d)
        t2 = float((z**2 / np.maximum(w, 0.5)).sum())
    except np.linalg.LinAlgError:
        return nan
    f = (nu - k + 1) / (nu * k) * t2
    return GofResult(f, (k, int(round(nu - k + 1))), float(scipy.stats.f.sf(f, k, nu - k + 1)),
                     expected, observed)
