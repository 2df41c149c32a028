"""A goodness-of-fit test of correlated draws against an exact law, with a defined outcome.

The draws are binned at the exact law's quantiles ``F⁻¹(j/M)``, j = 1 … M−1 (M = ``BINS``), so
each bin has probability ``p_j`` (1/M where F is continuous). The bin indicators are averaged
in batches of at least 10 τ draws per chain (``estimators.batch_means``, τ the slowest
integrated time of the indicators: the one shared sizing); Hotelling's test of their mean
against ``p``,

    T² = d̄ᵀV⁺d̄,   (ν − k + 1)/(νk)·T² ~ F(k, ν − k + 1),

(V the lugsail covariance of the mean from m batch means, ν = 0.4(m − 1), k the rank of V) gives
the p-value. Size and power by simulation: ``benchmarks/exact_law_calibration.py``.

Every input has a defined outcome, never NaN (``GofResult.outcome``):

- a draw in a bin of probability 0 (or outside every bin, NaN included): rejected, p = 0;
- bins of probability 0 that no draw hit carry no information and are dropped;
- fewer than two bins of positive probability: undecided (nothing to test);
- too few batches for the bins (ν ≤ k + 1): consecutive bins are merged by probability until
  ν > k + 1, undecided if even two bins are too many;
- a combination of bin frequencies that never varies between batches (a bin never or always
  hit; the indicators of all bins, which sum to 1): a null direction of V. It is exact, so it is
  left out when it equals its probability (to 1e-9) and rejects with p = 0 when it does not;
  the test runs on the range of V (pseudo-inverse, k = rank), undecided when that is empty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.special

from ..diagnostics.estimators import batches_for, slowest_time
from .contrast_tests import Means

BINS = 10
NULL_EIGENVALUE = 1e-12  # an eigenvalue of V below this fraction of the largest is rounding
EXACT_DEPARTURE = 1e-9  # a never-varying frequency farther than this from its probability


@dataclass
class GofResult:
    """The test's statistic, degrees of freedom and p-value, and the bin frequencies.

    ``p_value`` is ``None`` exactly when the test is undecided; ``reason`` then says why (and,
    for a certain rejection or merged bins, what happened).
    """

    f_stat: float | None
    dof: tuple[int, int]
    p_value: float | None
    expected: np.ndarray  # [M] exact bin probabilities
    observed: np.ndarray  # [M] measured frequencies
    reason: str = ""

    @property
    def outcome(self) -> str:
        """``tested``, ``rejected`` (certain: p = 0 from an impossible event), ``undecided``."""
        if self.p_value is None:
            return "undecided"
        return "rejected" if self.f_stat == float("inf") else "tested"

    def rejects(self, alpha: float) -> bool:
        """Whether the test rejects at level ``alpha`` (an undecided test does not)."""
        return self.p_value is not None and self.p_value < alpha

    def as_dict(self) -> dict:
        """JSON form (no NaN or infinity: an undecided test has ``p_value`` null)."""
        inf = self.f_stat is not None and not np.isfinite(self.f_stat)
        return {"f": None if inf else self.f_stat, "dof": list(self.dof),
                "p_value": self.p_value, "outcome": self.outcome, "reason": self.reason,
                "expected": self.expected.tolist(), "observed": self.observed.tolist()}


def gof_test(draws: np.ndarray, cdf: Callable[[np.ndarray], np.ndarray],
             quantile: Callable[[np.ndarray], np.ndarray], bins: int = BINS) -> GofResult:
    """Test draws ``[C, n]`` of a scalar against the law with ``cdf`` and ``quantile``.

    Edges that coincide (an atom heavier than 1/M) leave empty bins of probability 0, which
    ``gof_binned`` drops; a non-finite draw lies in no bin and rejects.
    """
    edges = quantile(np.arange(1, bins) / bins)
    expected = np.diff(np.concatenate([[0.0], cdf(edges), [1.0]]))
    index = np.searchsorted(edges, draws, side="left")
    return gof_binned(np.where(np.isfinite(draws), index, -1), expected)


def gof_binned(index: np.ndarray, expected: np.ndarray) -> GofResult:
    """Hotelling's test of bin indices ``[C, n]`` (0 … M−1) against bin probabilities ``[M]``.

    An index outside 0 … M−1 is a draw that lies in no bin (an event of probability 0). The
    covariance of the mean frequencies is the lugsail batch-means estimate ``V = 2·V(L) −
    V(L/2)`` (``contrast_tests.lugsail_variance``'s matrix form; plain batch means of length
    10 τ are too small by O(τ/L), which made the test liberal: 2.5 % at α = 1 % in 2-D), taken
    relative to ``V(L)`` on its range with its eigenvalues floored at one half, and ``ν = 0.4(m −
    1)`` degrees of freedom: ``(ν − k + 1)/(νk)·T² ~ F(k, ν − k + 1)``.
    """
    expected = np.asarray(expected, dtype=float)
    bins = len(expected)
    inside = (index >= 0) & (index < bins)
    observed = np.bincount(index[inside].ravel(), minlength=bins) / index.size
    impossible = (~inside).any() or np.any((observed > 0) & (expected <= 0))
    if impossible:
        return _certain(expected, observed, "a draw fell where the law has probability 0")
    keep = np.flatnonzero(expected > 0)
    if len(keep) < 2:
        return _undecided(expected, observed, "the law puts all its mass in one bin")
    onehot = (index[..., None] == keep).astype(float)  # [C, n, M'], rows sum to 1
    pair = Means.of(onehot, batches_for(slowest_time(onehot), index.shape[1]))
    m = pair.m1.shape[0]
    nu = 0.4 * (m - 1)
    groups = merge_groups(expected[keep], max_bins=int(np.ceil(nu - 1)))
    if groups is None:
        return _undecided(expected, observed, f"{m} batch means are too few for two bins")
    if len(groups) < len(keep):  # batch means are linear: a merged bin's are the sums
        pair = Means(*(np.stack([a[..., g].sum(axis=-1) for g in groups], axis=-1)
                       for a in (pair.mean, pair.m1, pair.m2)))
    p = np.array([expected[keep][g].sum() for g in groups])
    merged = (f"bins merged to {len(groups)} for {m} batch means"
              if len(groups) < len(keep) else "")
    return _hotelling(pair, p, nu, expected, observed, merged)


def merge_groups(p: np.ndarray, max_bins: int) -> list[np.ndarray] | None:
    """Consecutive bins merged into at most ``max_bins`` groups of nearly equal probability.

    Each bin goes to group ``⌊G·(P_{<j} + p_j/2) + 10⁻⁹⌋`` (G groups, P the cumulative probability):
    the groups are runs of consecutive bins. ``None`` when fewer than two groups are allowed.
    """
    if max_bins < 2:
        return None
    if len(p) <= max_bins:
        return [np.array([j]) for j in range(len(p))]
    centre = (np.cumsum(p) - p / 2) / p.sum()  # a centre on a boundary (+1e-9) goes up
    label = np.minimum((centre * max_bins + 1e-9).astype(int), max_bins - 1)
    return [np.flatnonzero(label == g) for g in np.unique(label)]


def _hotelling(pair: Means, p: np.ndarray, nu: float, expected: np.ndarray,
               observed: np.ndarray, note: str) -> GofResult:
    """T² on the range of ``V(L)``; its null directions must match exactly (module doc)."""
    d = pair.mean - p
    v1 = np.atleast_2d(np.cov(pair.m1, rowvar=False)) / pair.m1.shape[0]
    v2 = np.atleast_2d(np.cov(pair.m2, rowvar=False)) / pair.m2.shape[0]
    s, u = np.linalg.eigh(v1)
    top = float(s.max())
    live = s > NULL_EIGENVALUE * top if top > 0 else np.zeros(len(s), dtype=bool)
    if np.any(np.abs(u[:, ~live].T @ d) > EXACT_DEPARTURE):
        return _certain(expected, observed, "a bin frequency that never varies between "
                        "batches differs from its probability")
    k = int(live.sum())
    if k == 0:
        return _undecided(expected, observed, "no bin frequency varies between batches")
    white = u[:, live] / np.sqrt(s[live])  # Wᵀ V(L) W = I on the range
    w, r = np.linalg.eigh(white.T @ (2 * v1 - v2) @ white)  # the lugsail V relative to V(L)
    z = r.T @ (white.T @ d)
    t2 = float((z**2 / np.maximum(w, 0.5)).sum())
    f = (nu - k + 1) / (nu * k) * t2
    return GofResult(f, (k, int(round(nu - k + 1))), float(scipy.special.fdtrc(k, nu - k + 1, f)),
                     expected, observed, note)


def _certain(expected: np.ndarray, observed: np.ndarray, reason: str) -> GofResult:
    return GofResult(float("inf"), (len(expected) - 1, 0), 0.0, expected, observed, reason)


def _undecided(expected: np.ndarray, observed: np.ndarray, reason: str) -> GofResult:
    return GofResult(None, (0, 0), None, expected, observed, reason)


def gof_words(g: dict, bins: str = "") -> str:
    """The test's outcome in words from its JSON form (``GofResult.as_dict``).

    ``bins`` names the binning ("on 3 × 3 tertile bins "), placed after "goodness of fit".
    """
    head = f"goodness of fit {bins}"
    if g["p_value"] is None:
        return f"{head}undecided ({g['reason']})"
    if g["f"] is None:
        return f"{head}p = 0 ({g['reason']})"
    note = f"; {g['reason']}" if g.get("reason") else ""
    return f"{head}p = {g['p_value']:.3g} (F({g['dof'][0]}, {g['dof'][1]}) = {g['f']:.3g}{note})"
