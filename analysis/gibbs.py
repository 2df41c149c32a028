"""The Gibbs test of THEORY.md O12: equal temperatures and vanishing off-diagonal virial terms.

A Gibbs law ``p ∝ exp(−L/T)`` implies ``E[(θ_i − c_i)∂_jL] = T δ_ij`` (Stein's identity). With the
virial matrix ``V`` estimated by batch means ``V^(1..n)``, the null hypothesis ``V = T·I`` is the
k-vector of contrasts ``h(V) = (V_11 − V_22, …, V_{D−1,D−1} − V_DD, V_ij for i ≠ j) = 0``,
``k = (D−1) + D(D−1)``. The statistic is Hotelling's ``T² = n h̄ᵀ S⁻¹ h̄`` with ``S`` the sample
covariance of the per-batch contrasts, and ``F = (n−k)/(k(n−1)) · T² ~ F(k, n−k)`` under the null.
For ``D > 16`` the test runs on 8 random orthonormal projections (``U V Uᵀ = T·I`` under Gibbs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats

from .temperature import FULL_MATRIX_MAX_DIM, VirialSamples, virial_batches

ALPHA = 0.01


@dataclass
class GibbsResult:
    """Outcome of the O12 test for one run."""

    statistic: float  # Hotelling T²
    f_value: float
    df: tuple[int, int]
    p_value: float
    verdict: str  # "Gibbs", "not Gibbs" or "undecided"
    temperature_ratio: float  # max T_i / min T_i of the diagonal
    max_offdiag: float  # max |V_ij| / mean T over i ≠ j
    projected: bool

    def as_dict(self) -> dict:
        """JSON-friendly form."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def contrasts(v: np.ndarray) -> np.ndarray:
    """``h(V)`` for a stack ``[n, D, D]`` → ``[n, k]``."""
    d = v.shape[-1]
    diag = np.diagonal(v, axis1=-2, axis2=-1)
    off = v[:, ~np.eye(d, dtype=bool)]
    return np.concatenate([diag[:, :-1] - diag[:, 1:], off], axis=1)


def hotelling(h: np.ndarray) -> tuple[float, float, tuple[int, int], float]:
    """One-sample Hotelling test of ``E[h] = 0`` from rows ``h [n, k]``."""
    n, k = h.shape
    if n <= k:
        return float("nan"), float("nan"), (k, n - k), float("nan")
    mean = h.mean(axis=0)
    cov = np.cov(h, rowvar=False).reshape(k, k)
    t2 = float(n * mean @ np.linalg.lstsq(cov, mean, rcond=None)[0])
    f = (n - k) / (k * (n - 1)) * t2
    return t2, f, (k, n - k), float(scipy.stats.f.sf(f, k, n - k))


def gibbs_test(samples: VirialSamples, seed: int = 0, alpha: float = ALPHA) -> GibbsResult:
    """Test ``V = T·I`` on the run's virial samples."""
    d = samples.centred.shape[-1]
    directions, projected = None, d > FULL_MATRIX_MAX_DIM
    if projected:
        q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, 8)))
        directions = q.T
    batches = virial_batches(samples, directions)
    if d == 1 and not projected:
        return GibbsResult(float("nan"), float("nan"), (0, 0), float("nan"),
                           "Gibbs (1-D: always)", 1.0, 0.0, False)
    t2, f, df, p = hotelling(contrasts(batches))
    v = batches.mean(axis=0)
    diag = np.diag(v)
    off = np.abs(v[~np.eye(v.shape[0], dtype=bool)])
    verdict = "undecided" if not np.isfinite(p) else ("Gibbs" if p >= alpha else "not Gibbs")
    return GibbsResult(t2, f, df, p, verdict, float(diag.max() / diag.min()),
                       float(off.max() / abs(diag.mean())), projected)
