"""A goodness-of-fit test of correlated draws against an exact CDF, with a valid p-value.

The draws are binned at the exact law's quantiles ``F⁻¹(j/M)``, j = 1 … M−1 (M = ``BINS``), so
each bin has probability ``p_j`` (1/M where F is continuous). The bin indicators of the first
M−1 bins are averaged in batches of at least 10 τ draws per chain (``estimators.batch_means``,
τ the slowest integrated time of the indicators: the one shared sizing), which are nearly
independent and normal; Hotelling's test of their mean against ``p``,

    T² = m·d̄ᵀS⁻¹d̄,   (m − k)/(k(m − 1))·T² ~ F(k, m − k),

(m batch means, k = M − 1, S their sample covariance) gives the p-value. Size and power by
simulation: ``benchmarks/exact_law_calibration.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.stats

from .estimators import batch_means, batches_for, slowest_time

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
    """Hotelling's test of bin indices ``[C, n]`` (0 … M−1) against bin probabilities ``[M]``."""
    bins = len(expected)
    onehot = (index[..., None] == np.arange(bins)).astype(float)  # [C, n, M]
    observed = onehot.mean(axis=(0, 1))
    k = bins - 1
    x = onehot[..., :k]
    means = batch_means(x, batches_for(slowest_time(x), x.shape[1]))  # [m, k]
    m = means.shape[0]
    nan = GofResult(float("nan"), (k, m - k), float("nan"), expected, observed)
    if m <= k + 1:
        return nan
    d = means.mean(axis=0) - expected[:k]
    s = np.cov(means, rowvar=False)
    try:
        t2 = float(m * d @ np.linalg.solve(s, d))
    except np.linalg.LinAlgError:
        return nan
    f = (m - k) / (k * (m - 1)) * t2
    return GofResult(f, (k, m - k), float(scipy.stats.f.sf(f, k, m - k)), expected, observed)
