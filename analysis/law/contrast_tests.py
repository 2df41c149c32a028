"""Tests that the means of many autocorrelated per-draw contrasts are zero (or all equal).

The statistical building blocks of the Gibbs test (``analysis.gibbs``): lugsail batch-means
variances, a sum-of-squares test with a moment-matched reference for up to
``MAX_SUM_CONTRASTS`` contrasts, a max-|z| test beyond, and Hotelling's T² on the covariance rank.
All take per-draw arrays ``[C, n, K]`` or their per-coordinate summary ``Means`` (built block by
block of coordinates), Hotelling batch means ``[n, K]``; none forms a
K×K matrix for large K.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.special

from ..diagnostics.estimators import batch_means

MAX_SUM_CONTRASTS = 64  # sum-of-squares test up to this many contrasts, max test beyond


@dataclass
class Means:
    """All the contrast tests need of draws ``x [C, n, K]``, per coordinate.

    The grand mean and batch means at two lengths (``b`` and ``2b`` batches per chain), so that
    a test over many coordinates is fed block by block (``means_of`` on each block of
    coordinates, then ``join``) with memory bounded by the batch means, not by the draws.
    """

    mean: np.ndarray  # [K] grand mean
    m1: np.ndarray  # [C·b, K] batch means of length L
    m2: np.ndarray  # [C·2b, K] batch means of length L/2

    @classmethod
    def of(cls, x: np.ndarray, n_batches: int) -> Means:
        """The summary of ``x [C, n, K]`` with ``n_batches`` batches per chain."""
        return cls(x.mean(axis=(0, 1)), batch_means(x, n_batches),
                   batch_means(x, 2 * n_batches))

    @classmethod
    def join(cls, parts: list[Means]) -> Means:
        """Summaries of consecutive blocks of coordinates as one."""
        return cls(*(np.concatenate([getattr(p, f) for p in parts], axis=-1)
                     for f in ("mean", "m1", "m2")))


def lugsail_variance(means: Means) -> np.ndarray:
    """Variance of the grand mean of each coordinate by lugsail batch means.

    Batch means of length ``L`` underestimate ``Var(x̄)`` by ``O(τ/L)`` (about 5 % at ``L = 10τ``
    for an AR(1)), which a sum of D squared z-scores turns into a shift of ``0.05·D``: fatal at
    D = 1024. The lugsail combination ``2·v(L) − v(L/2)`` cancels the ``1/L`` term (Vats & Flegal
    2022); its relative variance is about ``5/(#batches)`` against ``2/(#batches)``, i.e.
    ``0.4·(#batches − 1)`` degrees of freedom. Floored at half the plain estimate.

    Returns:
        ``[K]`` variances of the grand mean.
    """
    m1, m2 = means.m1, means.m2
    v1 = m1.var(axis=0, ddof=1) / m1.shape[0]
    v2 = m2.var(axis=0, ddof=1) / m2.shape[0]
    return np.maximum(2 * v1 - v2, 0.5 * v1)


def quadratic_form_test(means: Means, contrast_mean: bool) -> tuple[float, float, float]:
    """Test that the means of ``x [C, n, K]`` are all zero (or all equal), K of any size.

    ``Q = Σ_k z_k²`` with ``z_k`` the k-th mean (minus the inverse-variance weighted mean when
    ``contrast_mean``) over its lugsail standard error (``lugsail_variance``). With ``ν_s`` the
    degrees of freedom of the variance estimates, each ``z_k²`` is about ``F(1, ν_s)``; under the
    null ``Q`` is referred to ``a·χ²_ν`` matching ``E[Q] = f₁ tr M`` and
    ``Var Q = 2 tr M² + (f₂ − 2) Σ_k M_kk²``, where ``M`` is the correlation matrix of ``z``
    estimated from the batch means through their Gram matrix (never ``K×K``), ``tr M²``
    corrected for its Wishart bias (Bai & Saranadasa 1996), and ``f₁ = ν_s/(ν_s−2)``,
    ``f₂ = 2ν_s²(ν_s−1)/((ν_s−2)²(ν_s−4))`` the moments of F(1, ν_s).

    Returns:
        ``(Q, ν, p)``.
    """
    var, m = lugsail_variance(means), means.m1
    n = m.shape[0]
    mean = means.mean
    rows = m - m.mean(axis=0)
    ok = (var > 0) & (rows.var(axis=0) > 0)
    if ok.sum() <= int(contrast_mean):  # no term varies (or one, against its own mean)
        return 0.0, float("nan"), float("nan")
    rows, mean, var = rows[:, ok], mean[ok], var[ok]
    w = 1.0 / var
    centre = (w * mean).sum() / w.sum() if contrast_mean else 0.0
    q = float((((mean - centre) ** 2) * w).sum())
    y = rows / np.sqrt((rows**2).sum(axis=0))  # R = yᵀy, the correlation of the means
    if contrast_mean:  # Cov z = P R P with P = I − v vᵀ, v = √w/‖√w‖ (a projection)
        v = np.sqrt(w / w.sum())
        y = y - np.outer(y @ v, v)
    gram = y @ y.T if n <= y.shape[1] else y.T @ y
    tr1, tr2 = float(np.trace(gram)), float((gram**2).sum())
    dof = n - 1
    tr2 = 2 * dof * (dof * tr2 - tr1**2) / ((dof - 1) * (dof + 2))  # 2 tr M², Wishart-corrected
    rank_max = max(1, min(y.shape[1] - int(contrast_mean), dof))
    # 2 tr M² ≥ 2(tr M)²/rank holds for M, not for an unbiased estimate of it: clipping there
    # would bias it up (the independent case sits on the bound); keep it only from absurdity.
    tr2 = float(np.clip(tr2, tr1**2 / rank_max, 2 * tr1**2))
    # z_k² is about F(1, ν) with ν = 0.4(n−1), the lugsail variance's degrees of freedom.
    # (Heavy-tailed terms such as u³∂L make the SEs noisier still, but their noise is positively
    # correlated with the numerator's; a kurtosis-based ν over-corrects: see benchmarks.)
    nu_s = max(0.4 * dof, 5.0)
    f1 = nu_s / (nu_s - 2)
    f2 = 2 * nu_s**2 * (nu_s - 1) / ((nu_s - 2) ** 2 * (nu_s - 4))
    diag = (y**2).sum(axis=0)  # M_kk
    mean_q = f1 * tr1
    var_q = tr2 + (f2 - 2) * float((diag**2).sum())
    scale, nu = var_q / (2 * mean_q), 2 * mean_q**2 / var_q
    return q, nu, float(scipy.special.chdtrc(nu, q / scale))


def max_test(means: Means, contrast_mean: bool) -> tuple[float, float, float]:
    """Max-type version of ``quadratic_form_test`` for many contrasts: ``max_k |z_k|``.

    A sum of K squared z-scores has a null mean of about K and a spread of ``√(2K)``, so a
    relative bias ε in the variance estimates shifts it by ``εK``: at K = 2048 a 3 % bias is a
    one-SD shift. The maximum is insensitive to that (a 3 % variance error changes a 4.5σ tail
    probability by about 30 %), and has power against the sparse alternatives of interest (a
    few hotter coordinates). Each ``z_k`` is referred to Student's t with the lugsail degrees of
    freedom ``0.4(n−1)``; Bonferroni over the K contrasts (valid for any correlation).

    Returns:
        ``(max |z|, ν_s, p)``.
    """
    var, m = lugsail_variance(means), means.m1
    mean = means.mean
    ok = var > 0
    if ok.sum() <= int(contrast_mean):  # no term varies (or one, against its own mean)
        return 0.0, float("nan"), float("nan")
    mean, var = mean[ok], var[ok]
    if contrast_mean:
        w = 1.0 / var
        mean = mean - (w * mean).sum() / w.sum()
        var = var * (1 - w / w.sum())
    z = float(np.max(np.abs(mean) / np.sqrt(var)))
    nu_s = max(0.4 * (m.shape[0] - 1), 5.0)
    return z, nu_s, float(min(1.0, 2 * len(mean) * scipy.special.stdtr(nu_s, -z)))


def contrast_test(x: np.ndarray | Means, n_batches: int,
                  contrast_mean: bool) -> tuple[str, float, float, float]:
    """The sum test up to ``MAX_SUM_CONTRASTS`` contrasts, the max test beyond.

    Args:
        x: Draws ``[C, n, K]``, or their ``Means`` (then ``n_batches`` is theirs already).
        n_batches: Batches per chain.
        contrast_mean: Test equal means instead of zero means.

    Returns:
        ``(statistic name, statistic, ν, p)``.
    """
    means = x if isinstance(x, Means) else Means.of(x, n_batches)
    if means.mean.shape[-1] - int(contrast_mean) <= MAX_SUM_CONTRASTS:
        return ("Q", *quadratic_form_test(means, contrast_mean))
    return ("max|z|", *max_test(means, contrast_mean))


def hotelling(h: np.ndarray, rel_tol: float = 1e-9) -> tuple[float, int, int, float]:
    """One-sample Hotelling test of ``E[h] = 0`` from rows ``h [n, k]`` on the covariance rank.

    Returns:
        ``(T², r, n − r, p)`` with ``r`` the number of informative contrasts.
    """
    n = h.shape[0]
    mean = h.mean(axis=0)
    cov = np.atleast_2d(np.cov(h, rowvar=False))
    evals, evecs = np.linalg.eigh(cov)
    keep = evals > rel_tol * max(evals.max(), 0.0) if evals.max() > 0 else evals > np.inf
    r = int(keep.sum())
    if r == 0 or n - r < 1:
        return float("nan"), r, n - r, float("nan")
    proj = evecs[:, keep].T @ mean
    t2 = float(n * (proj**2 / evals[keep]).sum())
    f = (n - r) / (r * (n - 1)) * t2
    return t2, r, n - r, float(scipy.special.fdtrc(r, n - r, f))
