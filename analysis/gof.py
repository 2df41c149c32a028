"""A goodness-of-fit test of correlated draws against an exact CDF, with a valid p-value.

The draws are binned at the exact law's quantiles ``F⁻¹(j/M)``, j = 1 … M−1 (M = ``BINS``), so
each bin has probability ``p_j`` (1/M where F is continuous). The bin indicators of the first
M−1 bins are averaged in batches of at least 10 τ draws per chain (``estimators.batch_means``,
τ the slowest integrated time of the indicators: the one shared sizing), which are nearly
independent and normal; Hotelling's test of their mean against ``p``,

    T² = m·d̄ᵀS⁻¹d̄,   (m − k)/(k(m − 1))·T² ~ F(k, m − k),

(m batch means, k = M − 1, S their sample covariance) gives the p-value. A bin whose frequency
never varies between batches is exact and left out, unless it differs from its probability (or
a bin of probability 0 is hit): then p = 0. Size and power by simulation:
``benchmarks/exact_law_calibration.py``.
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
    x = onehot[..., :bins - 1]
    means = batch_means(x, batches_for(slowest_time(x), x.shape[1]))  # [m, M − 1]
    m = means.shape[0]
    d = means.mean(axis=0) - expected[:bins - 1]
    flat = means.std(axis=0) == 0  # a bin never (or always) hit: its mean is exact
    if np.any((observed > 0) & (expected == 0)) or np.any(flat & (np.abs(d) > 1e-12)):
        # an event of probability 0 happened, or a frequency that never varies is off: certain
        return GofResult(float("inf"), (bins - 1, m - bins + 1), 0.0, expected, observed)
    means, d = means[:, ~flat], d[~flat]
    k = means.shape[1]
    nan = GofResult(float("nan"), (k, m - k), float("nan"), expected, observed)
    if m <= k + 1 or k == 0:
        return nan
    s = np.atleast_2d(np.cov(means, rowvar=False))
    try:
        t2 = float(m * d @ np.linalg.solve(s, d))
    except np.linalg.LinAlgError:
        return nan
    f = (m - k) / (k * (m - 1)) * t2
    return GofResult(f, (k, m - k), float(scipy.stats.f.sf(f, k, m - k)), expected, observed)
