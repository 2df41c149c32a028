"""Displacement against lag: does θ diffuse like t, like t^c, or settle (Kunin et al. 2021)?

The mean squared displacement over a lag of k draws, per chain,

    MSD_c(k) = (1/n_k) Σ_t ‖θ_{c,t+k} − θ_{c,t}‖²     (summed over a layer's coordinates),

averaged over chains, at lags spaced geometrically from 1 to a quarter of the draws. Its growth
exponent is the least-squares slope of ``log MSD`` on ``log k``: 1 for free diffusion (a flat
direction: ``MSD = 2Dk``), 0 for a chain that has settled in a basin (an Ornstein–Uhlenbeck
coordinate: ``MSD → 2 Var θ`` once k passes its correlation time), between them for anomalous
diffusion. The late exponent is the same slope over the longer half of the lags (in log lag):
≈ 0 once a settled chain has saturated, still 1 for free diffusion. Their standard errors are
the jackknife over chains (each leave-one-chain-out fit). The plateau ratio
``MSD(k_max)/(2 Σ Var θ)`` compares the longest lag with a settled chain's limit: ≈ 1 when
saturated, ≈ 3/4 for a random walk (whose within-chain variance grows with the run).
Streamed over the recorded coordinates, a block at a time (each draw read once); lags are in
draws, so in steps multiply by ``run.thin``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..diagnostics.blocks import columns
from ..reader import RunData

N_LAGS = 16
BLOCK = 1024  # coordinates per read: a column of C × n × 1024 draws (whole stored chunks)
STEP = 256  # coordinates converted to float64 and summed at once


def lags_for(n: int, n_lags: int = N_LAGS) -> np.ndarray:
    """Geometric lags ``1 … n//4`` in draws (distinct integers; empty when ``n < 8``)."""
    top = n // 4
    if top < 2:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.round(np.geomspace(1, top, n_lags)).astype(np.int64))


def chain_sums(x: np.ndarray, lags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per chain: ``Σ_coords MSD_c(k)`` at each lag ``[C, K]`` and ``Σ_coords Var_c θ`` ``[C]``.

    Without a ``[C, n, d]`` temporary per lag: with the draws centred per chain (differences
    unchanged) and ``s_t = ‖x_t‖²``,

        Σ_t ‖x_{t+k} − x_t‖² = Σ_{t≥k} s_t + Σ_{t<n−k} s_t − 2 x_{k:}·x_{:n−k},

    the first two from prefix sums of ``s`` and the last one BLAS dot product per chain.

    Args:
        x: Draws ``[C, n, d]`` of d coordinates.
        lags: Lags in draws.
    """
    x = np.ascontiguousarray(x - x.mean(axis=1, keepdims=True))
    c, n = x.shape[:2]
    sq = np.einsum("cnd,cnd->cn", x, x)
    cum = np.concatenate([np.zeros((c, 1)), np.cumsum(sq, axis=1)], axis=1)
    msd = np.zeros((c, len(lags)))
    for j, k in enumerate(int(k) for k in lags):
        for chain in range(c):
            cross = float(np.dot(x[chain, k:].ravel(), x[chain, : n - k].ravel()))
            msd[chain, j] = (cum[chain, n] - cum[chain, k] + cum[chain, n - k] - 2 * cross)
        msd[:, j] /= n - k
    return msd, sq.mean(axis=1)


def fit(msd: np.ndarray, var: np.ndarray, lags: np.ndarray, n: int = 1) -> dict[str, Any]:
    """Exponent, its jackknife SE over chains, and the plateau ratio, from per-chain sums.

    Args:
        msd: ``[C, K]`` per-chain MSD at each lag (summed over coordinates).
        var: ``[C]`` per-chain variance (summed over coordinates).
        lags: ``[K]`` lags.
        n: How many coordinates the sums cover.

    A layer with no recorded coordinate, or whose coordinates never move (MSD 0 at every lag),
    has no exponent: NaN, with the reason.
    """
    mean = msd.mean(axis=0)
    out: dict[str, Any] = {"msd": mean.tolist()}
    reason = ("fewer than 8 draws" if len(lags) < 2 else "no recorded coordinate" if n == 0
              else "the coordinates never move" if not np.all(mean > 0)
              else "non-finite draws" if not np.all(np.isfinite(mean)) else None)
    if reason is not None:
        nan = float("nan")
        return {**out, "exponent": nan, "exponent_se": nan, "exponent_late": nan,
                "exponent_late_se": nan, "plateau_ratio": nan, "reason": reason}
    late = np.log(lags) >= np.log(lags).mean()
    exponent, exponent_se = _jackknife(msd, lags, np.ones(len(lags), dtype=bool))
    late_exp, late_se = _jackknife(msd, lags, late)
    plateau = float(mean[-1] / (2 * var.mean())) if var.mean() > 0 else float("nan")
    return {**out, "exponent": exponent, "exponent_se": exponent_se, "exponent_late": late_exp,
            "exponent_late_se": late_se, "plateau_ratio": plateau}


def _jackknife(msd: np.ndarray, lags: np.ndarray, use: np.ndarray) -> tuple[float, float]:
    """The log–log slope over the lags ``use`` picks, and its jackknife SE over chains."""
    x = np.log(lags[use])
    fitted = slope(x, np.log(msd.mean(axis=0)[use]))
    c = msd.shape[0]
    if c < 2 or use.sum() < 2:
        return fitted, float("nan")
    rest = (msd.sum(axis=0) - msd)[:, use] / (c - 1)  # leave-one-chain-out means
    return fitted, jackknife_se(np.array([slope(x, np.log(r)) for r in rest if np.all(r > 0)]))


def jackknife_se(loo: np.ndarray) -> float:
    """``√((m − 1)/m Σ (x_(−c) − x̄)²)`` over leave-one-out estimates (NaN below two)."""
    m = len(loo)
    return float(np.sqrt((m - 1) / m * np.sum((loo - loo.mean()) ** 2))) if m > 1 else float("nan")


def slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y on x; NaN unless x takes two values."""
    xc = x - x.mean()
    den = float(np.dot(xc, xc))
    return float(np.dot(xc, y - y.mean()) / den) if den > 0 else float("nan")


def displacement(run: RunData) -> dict[str, Any] | None:
    """``runs[i].displacement``: lags, then the fit overall and per layer (module docstring).

    Over the recorded coordinates of the non-diverged chains; ``None`` when fewer than two
    chains are left or fewer than 8 draws are committed.
    """
    keep = ~run.diverged_chains()
    lags = lags_for(run.draws)
    if keep.sum() < 1 or len(lags) < 2:
        return None
    theta = run.posterior()["theta"]
    coords = (np.arange(theta.shape[-1]) if run.recorded_coords is None
              else np.asarray(run.recorded_coords))
    layers = run.layers()
    owner = np.zeros(len(coords), dtype=np.int64)
    for j, (_, _, where) in enumerate(layers):
        owner[(coords >= where.start) & (coords < where.stop)] = j
    n_layers = max(len(layers), 1)
    msd = np.zeros((n_layers, int(keep.sum()), len(lags)))
    var = np.zeros((n_layers, int(keep.sum())))
    for lo, column in columns(theta, BLOCK, keep):  # in the stored dtype
        mine = owner[lo:lo + column.shape[-1]]
        for j in np.unique(mine):
            idx = np.flatnonzero(mine == j)
            for a in range(0, len(idx), STEP):  # float64 a few hundred coordinates at a time
                m, v = chain_sums(np.asarray(column[..., idx[a:a + STEP]], dtype=float), lags)
                msd[j] += m
                var[j] += v
    counts = np.bincount(owner, minlength=n_layers)
    out: dict[str, Any] = {"lags": lags.tolist(), "lag_unit": "draws",
                           "overall": fit(msd.sum(axis=0), var.sum(axis=0), lags, len(coords))}
    if len(layers) > 1:
        out["layers"] = [{"name": name, "coords": int(counts[j]),
                          **fit(msd[j], var[j], lags, int(counts[j]))}
                         for j, (name, _, _) in enumerate(layers)]
    return out
