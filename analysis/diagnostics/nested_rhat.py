"""Nested R-hat: convergence of many short chains started in groups (Margossian et al. 2024).

With ``run.superchains = K`` the C chains start in K groups of ``M = C/K``, each group from
one point. For one coordinate, with chain means ``x̄_{km}``, superchain means ``x̄_k``, their
mean ``x̄``, the chains' variances ``s²_{km}`` (n − 1 in the denominator) and N draws:

    B_ν = (1/(K − 1)) Σ_k (x̄_k − x̄)²                       between superchains
    W_ν = (1/K) Σ_k [ (1/(M − 1)) Σ_m (x̄_{km} − x̄_k)² + (1/M) Σ_m s²_{km} ]
    nR̂ = √(1 + B_ν / W_ν)

(the first term of ``W_ν`` is 0 when M = 1, the second when N = 1). It is close to 1 once the
superchains have forgotten their starts, even when each chain alone is too short for R-hat's
own ESS to mean much. A superchain with a diverged chain is left out whole (the groups must be
equal); a coordinate whose chains never move has no nR̂ (NaN). Streamed over blocks of
recorded coordinates.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..reader import RunData
from .blocks import map_blocks


def nested_r_hat(x: np.ndarray, superchains: int) -> np.ndarray:
    """``nR̂`` per coordinate of draws ``x [C, n, d]``, chains grouped as ``c // (C/K)``.

    Raises:
        ValueError: ``superchains`` does not divide the number of chains, or is below 2.
    """
    c, n = x.shape[:2]
    if superchains < 2 or c % superchains:
        raise ValueError(f"superchains must be ≥ 2 and divide the {c} chains, got {superchains}")
    m = c // superchains
    xs = x.reshape(superchains, m, n, -1)
    chain_mean = xs.mean(axis=2)  # [K, M, d]
    chain_var = xs.var(axis=2, ddof=1) if n > 1 else np.zeros_like(chain_mean)
    super_mean = chain_mean.mean(axis=1)  # [K, d]
    between_chains = chain_mean.var(axis=1, ddof=1) if m > 1 else np.zeros_like(super_mean)
    within = (between_chains + chain_var.mean(axis=1)).mean(axis=0)
    between = super_mean.var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.sqrt(1 + between / within)
    out[~np.isfinite(out) | (within <= 0)] = np.nan
    return out


def nested_record(run: RunData, width: int = 512) -> dict[str, Any] | None:
    """``runs[i].nested_r_hat``: the largest nR̂ overall and per layer (``None``: no superchains).

    Over the recorded coordinates of the superchains whose chains all stayed finite.
    """
    k = run.spec.run.superchains
    if k is None:
        return None
    m = run.spec.run.chains // k
    bad = run.diverged_chains().reshape(k, m).any(axis=1)
    kept = int((~bad).sum())
    base = {"superchains": k, "chains_per_superchain": m, "superchains_used": kept}
    if kept < 2:
        return {**base, "max": None, "reason": "fewer than 2 superchains without a diverged chain"}
    rows = np.repeat(~bad, m)
    theta = run.posterior()["theta"]
    values = np.concatenate(map_blocks(theta, lambda b: nested_r_hat(b, kept), width, rows))
    out: dict[str, Any] = {**base, "max": _max(values)}
    if len(values) <= 64:
        out["theta"] = [None if not np.isfinite(v) else float(v) for v in values]
    layers = run.layers()
    if len(layers) > 1:
        coords = (np.arange(len(values)) if run.recorded_coords is None
                  else np.asarray(run.recorded_coords))
        out["layers"] = [{"name": name, "max": _max(values[(coords >= w.start)
                                                           & (coords < w.stop)])}
                         for name, _, w in layers]
    return out


def _max(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else None
