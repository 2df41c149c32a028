"""Convergence diagnostics of a run: R-hat, bulk/tail ESS and MCSE for every recorded quantity.

Every coordinate of θ is diagnosed at any D, streamed in blocks of coordinates read lazily from
the archive, so memory is bounded by one block (``convergence.block_size``), not by the run; the
loss, the full loss and, above 16 coordinates, eight random projections of θ are diagnosed too.
The numbers are ArviZ's (``convergence``, checked against ``arviz.rhat``/``ess``/``mcse``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..reader import RunData
from .blocks import WORKERS, columns, map_blocks
from .convergence import block_size, diagnose_block
from .estimators import integrated_time_se

PROJECTIONS_ABOVE_DIM = 16  # random projections of θ are added above this many coordinates
N_PROJECTIONS = 8


def diagnose_with_iat(x: np.ndarray) -> dict[str, np.ndarray]:
    """``diagnose_block`` plus the integrated autocorrelation time ``iat`` and its ``iat_se``.

    The windowed estimate of ``estimators.integrated_time_se`` (pooled over chains, jackknife SE;
    in draws), which the theory comparison reads: computed in the same pass over the draws.
    """
    tau, tau_se = integrated_time_se(x)
    return {**diagnose_block(x), "iat": tau, "iat_se": tau_se}


def diagnose_array(values: xr.DataArray, budget_bytes: float = 2**28,
                   workers: int = WORKERS, iat: bool = False) -> dict[str, Any]:
    """Diagnostics of a ``(chain, draw[, coord])`` array, reading coordinate blocks lazily.

    Args:
        values: The draws (lazy).
        budget_bytes: Memory of the FFT temporaries of all workers together.
        workers: Threads.
        iat: Add ``iat`` and ``iat_se`` per coordinate (``diagnose_with_iat``).

    Returns:
        ``{quantity: list per coordinate}`` for vector variables, floats for scalar ones.
    """
    fn = diagnose_with_iat if iat else diagnose_block
    if values.ndim == 2:
        out = fn(np.asarray(values.values, dtype=float)[..., None])
        return {q: float(v[0]) for q, v in out.items()}
    c, n, _ = values.shape
    parts = map_blocks(values, fn, block_size(c, n, budget_bytes / workers), workers=workers)
    return {q: np.concatenate([p[q] for p in parts]).tolist() for q in parts[0]}


def projections(theta: xr.DataArray, seed: int = 0, k: int = N_PROJECTIONS) -> xr.DataArray:
    """``θ·U`` for k random directions ``U [D, k]`` (entries ``N(0, 1/D)``), read by columns."""
    c, n, d = theta.shape
    u = np.random.default_rng(seed).standard_normal((d, k)) / np.sqrt(d)
    out = np.zeros((c, n, k))
    for lo, column in columns(theta, block_size(c, n)):
        out += np.asarray(column, dtype=float) @ u[lo:lo + column.shape[-1]]
    return xr.DataArray(out, dims=("chain", "draw", "projection"))


def diagnostics(run: RunData, budget_bytes: float = 2**28,
                workers: int = WORKERS) -> dict[str, dict[str, Any]]:
    """R-hat, bulk/tail ESS, MCSE of the mean, mean and sd per variable and coordinate.

    θ's coordinates are reported per named variable (``theta`` for most models; ``w1``, ``b1``,
    … with their shapes for networks), with their integrated autocorrelation times (``iat``,
    ``iat_se``, in draws), plus the loss, the full loss and projections: the run's recorded
    ones (``run.record.projections``, with ``iat``) or eight random ones of the recorded θ.
    """
    stats, post = run.sample_stats(), run.posterior()
    theta = post["theta"]
    if theta.sizes["draw"] < 4:
        return {}
    out = {"loss": diagnose_array(stats["loss"])}
    if "full_loss" in stats:
        out["full_loss"] = diagnose_array(stats["full_loss"])
    per_coord = diagnose_array(theta, budget_bytes, workers, iat=True)
    if run.partial:  # θ recorded partly: label the recorded coordinates
        per_coord["coord"] = np.asarray(run.recorded_coords).tolist()
    for name, shape, _, coords in run.variables():  # w1, b1, … for networks; else theta
        out[name] = {q: np.reshape(np.asarray(v)[coords], shape).tolist()
                     for q, v in per_coord.items()}
    for name in sorted(str(v) for v in post.data_vars if str(v).endswith("_norm")):
        out[name] = diagnose_array(post[name])  # per-layer norms (``run.record.layer_norms``)
    if "projection" in post:  # recorded by the run (``run.record.projections``): of all of θ
        out["projection"] = diagnose_array(post["projection"], budget_bytes, workers, iat=True)
    elif theta.sizes["coord"] > PROJECTIONS_ABOVE_DIM:
        out["projection"] = diagnose_array(projections(theta), budget_bytes, workers)
    return out


def worst(diag: dict) -> dict[str, float]:
    """Largest R-hat and smallest bulk/tail ESS over all diagnosed quantities."""
    rh, eb, et = [], [], []
    for stats in diag.values():
        rh += np.ravel(np.asarray(stats["r_hat"], dtype=float)).tolist()
        eb += np.ravel(np.asarray(stats["ess_bulk"], dtype=float)).tolist()
        et += np.ravel(np.asarray(stats["ess_tail"], dtype=float)).tolist()
    def extreme(values: list[float], pick: Any) -> float:
        finite = [v for v in values if np.isfinite(v)]
        return float(pick(finite)) if finite else float("nan")

    # each on its own: a point mass has no R-hat (0/0) but its ESS is every draw
    return {"max_r_hat": extreme(rh, max), "min_ess_bulk": extreme(eb, min),
            "min_ess_tail": extreme(et, min)}
