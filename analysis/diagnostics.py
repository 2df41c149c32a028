"""Convergence diagnostics through ArviZ: rank-normalised split R-hat, bulk/tail ESS, MCSE.

Small models are diagnosed on every coordinate of θ; large ones on summaries (the loss and eight
random projections of θ), since ArviZ loops over elements.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import xarray as xr

from .reader import RunData

PER_COORD_MAX_DIM = 16


def diagnostic_dataset(run: RunData, seed: int = 0) -> xr.Dataset:
    """The quantities to diagnose, as ``(chain, draw[, coord])`` variables."""
    theta = run.posterior()["theta"]
    out = {"loss": run.sample_stats()["loss"]}
    if "full_loss" in run.sample_stats():
        out["full_loss"] = run.sample_stats()["full_loss"]
    if theta.sizes["coord"] <= PER_COORD_MAX_DIM:
        out["theta"] = theta
    else:
        d = theta.sizes["coord"]
        u = np.random.default_rng(seed).standard_normal((d, 8)) / np.sqrt(d)
        out["projection"] = xr.DataArray(np.asarray(theta.values) @ u,
                                         dims=("chain", "draw", "projection"))
    return xr.Dataset(out).load()


def diagnostics(run: RunData) -> dict[str, dict[str, list[float] | float]]:
    """R-hat, bulk/tail ESS and MCSE of the mean per variable (lists for vector variables)."""
    ds = diagnostic_dataset(run)
    if ds.sizes["draw"] < 4:
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = {"r_hat": az.rhat(ds, method="rank"), "ess_bulk": az.ess(ds, method="bulk"),
                 "ess_tail": az.ess(ds, method="tail"), "mcse_mean": az.mcse(ds, method="mean"),
                 "mean": ds.mean(dim=("chain", "draw")), "sd": ds.std(dim=("chain", "draw"))}
    out: dict[str, dict] = {}
    for var in ds.data_vars:
        out[str(var)] = {}
        for name, res in parts.items():
            value = np.asarray(res[var].values, dtype=float)
            out[str(var)][name] = value.tolist() if value.ndim else float(value)
    return out


def worst(diag: dict) -> dict[str, float]:
    """Largest R-hat and smallest bulk/tail ESS over all diagnosed quantities."""
    rh, eb, et = [], [], []
    for stats in diag.values():
        rh += np.atleast_1d(stats["r_hat"]).tolist()
        eb += np.atleast_1d(stats["ess_bulk"]).tolist()
        et += np.atleast_1d(stats["ess_tail"]).tolist()
    if not rh:
        return {"max_r_hat": float("nan"), "min_ess_bulk": float("nan"),
                "min_ess_tail": float("nan")}
    return {"max_r_hat": float(np.nanmax(rh)), "min_ess_bulk": float(np.nanmin(eb)),
            "min_ess_tail": float(np.nanmin(et))}
