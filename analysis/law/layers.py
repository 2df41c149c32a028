"""One row per layer: a network's convergence and temperature, not 10⁵ per-coordinate rows.

For each named variable of θ (a layer's weight or bias, ``RunData.variables``):

* convergence: the largest rank-normalised R-hat, the smallest bulk and tail ESS and the median
  integrated time (in draws) over its coordinates (its recorded ones, under ``run.record``);
* the layer temperature ``T_l = (1/n_l) Σ_{i∈l} T_i``, the mean of its coordinates' fluctuation
  temperatures (every coordinate, recorded or not), with a standard error that keeps the
  correlation between coordinates: the engine's per-block fluctuation sums are summed over the
  layer first, then grouped into batches of ≥ 10τ steps per chain
  (``temperature.grouped_block_means``), and ``SE = sd(group means)/√groups``;
* the spread of the layer's per-coordinate temperatures (their SD), and the mean of their
  virial temperatures beside ``T_l`` (the two agree at stationarity for constant-rate rules);
* ``β_l/β_ref = T_ref/T_l`` against the first layer, with the SE of the ratio linearised on
  the same groups: ``r_g = (T_ref,g − r·T_l,g)/T_l`` (so the two layers' shared noise counts).

Each layer's sums are read once, a layer at a time (bounded memory at any D).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..reader import RunData
from .temperature import Temperatures, grouped_block_means


def layer_summary(run: RunData, diag: dict[str, Any], temps: Temperatures,
                  tau_draws: float) -> list[dict[str, Any]] | None:
    """The per-layer rows (module docstring), or ``None`` for a model with one ``theta``.

    Args:
        run: The run.
        diag: Its diagnostics (``diagnostics.diagnostics``), by variable.
        temps: Its per-coordinate temperatures.
        tau_draws: The largest integrated time of what it recorded, in draws (the grouping).
    """
    variables = run.layers()
    if len(variables) < 2:
        return None
    recorded = (None if run.recorded_coords is None
                else np.asarray(run.recorded_coords, dtype=np.int64))
    keep = ~run.diverged_chains()
    min_steps = 10 * max(tau_draws, 1.0) * run.spec.run.thin
    groups, rows = [], []
    for name, shape, coords in variables:
        total, steps = run.fluctuation_total(coords, keep)
        per_group = grouped_block_means(total[..., None], steps, min_steps)
        g = per_group[:, 0] / max(int(np.prod(shape)), 1)
        groups.append(g)
        stats = diag.get(name, {}) if recorded is None else _recorded(diag, recorded, coords)
        t_fl = temps.fluctuation[coords]
        rows.append({
            "name": name, "shape": list(shape), "size": int(np.prod(shape)),
            "max_r_hat": _extreme(stats.get("r_hat"), np.nanmax),
            "min_ess_bulk": _extreme(stats.get("ess_bulk"), np.nanmin),
            "min_ess_tail": _extreme(stats.get("ess_tail"), np.nanmin),
            "median_iat": _extreme(stats.get("iat"), np.nanmedian),
            "t_fluct": float(g.mean()), "t_fluct_se": _se(g),
            "t_fluct_sd": float(np.std(t_fl)) if t_fl.size > 1 else 0.0,
            "t_virial": float(np.mean(temps.virial[coords])),
            "groups": int(len(g))})
    ref = groups[0]
    for row, g in zip(rows, groups, strict=True):
        ratio, se = _ratio(ref, g)
        row["beta_ratio"], row["beta_ratio_se"] = ratio, se
    return rows


def _recorded(diag: dict[str, Any], recorded: np.ndarray, coords: slice) -> dict[str, Any]:
    """The diagnostics of the recorded coordinates that lie in a layer (``run.record``)."""
    inside = (recorded >= coords.start) & (recorded < coords.stop)
    theta = diag.get("theta", {})
    return {k: np.asarray(theta[k], dtype=float)[inside] for k in
            ("r_hat", "ess_bulk", "ess_tail", "iat") if k in theta}


def _extreme(values: Any, pick: Any) -> float:
    """``pick`` over a nested list of per-coordinate values (NaN when none is finite)."""
    if values is None:
        return float("nan")
    arr = np.asarray(values, dtype=float).ravel()
    return float(pick(arr)) if np.isfinite(arr).any() else float("nan")


def _se(g: np.ndarray) -> float:
    """Standard error of the mean of group means (NaN with fewer than two groups)."""
    return float(np.std(g, ddof=1) / np.sqrt(len(g))) if len(g) > 1 else float("nan")


def _ratio(ref: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    """``mean(ref)/mean(g)`` and its linearised SE over the shared groups."""
    a, b = float(ref.mean()), float(g.mean())
    if b == 0 or not np.isfinite(a / b if b else np.nan):
        return float("nan"), float("nan")
    r = a / b
    return r, _se((ref - r * g) / b)
