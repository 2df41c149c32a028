"""Yaida's fluctuation–dissipation relation per layer: a stationarity check at any D.

At stationarity of a constant-rate rule (docs/theory.md identities O2, O3), summed over a
layer's coordinates ``i ∈ l``,

    O_L(l) = Σ_{i∈l} E[(θ_i − c_i) ∂_iL(θ)]      (dissipation: the virial side)
    O_R(l) = Σ_{i∈l} E[f_i]                       (fluctuation: ``f = (η/2)κ u²``, the rule's term)

are equal (Yaida 2019, FDR1, here per layer and for the whole model). Both are reported per
coordinate of the layer (divided by its size: the layer's mean virial and fluctuation
temperatures), with their ratio ``O_L/O_R``, its standard error, and the z-score of
``O_L − O_R``:

* θ recorded in full: ``O_L`` from the draws and their full-batch gradients (one series per
  chain, ``Σ_{i∈l}(θ_i − θ̄_i)∂_iL`` per draw, batch means sized to its own τ), ``O_R`` from the
  engine's fluctuation sums (grouped by ≥ 10τ steps): independent estimates,
  ``z = (O_L − O_R)/√(SE_L² + SE_R²)``;
* θ recorded partly, or a user's module: both from the engine's sums of the same steps, whose
  difference telescopes, so the SE is the spread of per-chain totals (``identity_check``).

One layer's sums are read at a time (bounded memory at any D).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..diagnostics.estimators import mean_and_se
from ..law.temperature import VirialSamples, grouped_block_means, identity_check
from ..reader import RunData


def layer_fdr(run: RunData, samples: VirialSamples | None,
              tau_draws: float) -> dict[str, Any] | None:
    """``runs[i].fdr``: the whole model, and each layer of a network (module docstring).

    Args:
        run: The run.
        samples: Its centred draws and full-batch gradients (None: the virial from sums).
        tau_draws: The largest integrated time of what it recorded, in draws.
    """
    keep = ~run.diverged_chains()
    if keep.sum() < 2:
        return None
    layers = run.layers() or [("theta", (run.model.dim,), slice(0, run.model.dim))]
    min_steps = 10 * max(tau_draws, 1.0) * run.spec.run.thin
    rows = [_row(run, name, coords, keep, samples, min_steps) for name, _, coords in layers]
    out: dict[str, Any] = {"overall": _combine(rows)}
    if len(rows) > 1:
        out["layers"] = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    return out


def _row(run: RunData, name: str, coords: slice, keep: np.ndarray,
         samples: VirialSamples | None, min_steps: float) -> dict[str, Any]:
    n = max(coords.stop - coords.start, 1)
    if samples is None:
        return _paired(name, n, _sums_totals(run, coords, keep))
    total, steps = run.fluctuation_total(coords, keep)
    s = samples.columns(coords)
    series = np.sum(s.centred * s.grads, axis=-1)  # [C, n] per draw
    groups = grouped_block_means(total[..., None], steps, min_steps)[:, 0]
    return _independent(name, n, series, groups, s.tau)


def _sums_totals(run: RunData, coords: slice, keep: np.ndarray) -> np.ndarray:
    """Per-chain totals ``[C, 2]`` of the dissipation and fluctuation sums over ``coords``.

    Read in bounded slices of coordinates (``RunData.coordinate_slices``); the centre is each
    coordinate's mean ``θ̄_i`` from the same sums.
    """
    _, steps = run.fluctuation(slice(coords.start, coords.start + 1))
    totals = np.zeros((int(keep.sum()), 2))
    for part in run.coordinate_slices(coords, fields=4):
        virial = run.virial_sums(part)
        assert virial is not None, "a run without draws-based virial keeps the virial sums"
        v = virial[keep]
        center = v[:, :, 0].sum(axis=(0, 1)) / (v.shape[0] * max(steps.sum(), 1))
        totals[:, 0] += (v[:, :, 1] - center * v[:, :, 2]).sum(axis=(1, 2))
        totals[:, 1] += run.fluctuation(part)[0][keep].sum(axis=(1, 2))
    return totals / max(steps.sum(), 1)


def _paired(name: str, n: int, totals: np.ndarray) -> dict[str, Any]:
    """Both sides from the same steps: per-chain totals ``[C, 2]`` (dissipation, fluctuation).

    Their difference telescopes, so the SE is their spread over chains (``identity_check``).
    """
    c = totals.shape[0]
    stacked = np.stack([totals[:, 0], np.zeros(c), totals[:, 1]], axis=1)[:, None, :, None]
    lhs, rhs, z = identity_check(stacked, np.ones(1), np.zeros(1))
    o_l, o_r = float(lhs[0]), float(rhs[0])
    ratio = o_l / o_r if o_r != 0 else float("nan")
    lin = (totals[:, 0] - ratio * totals[:, 1]) / o_r if o_r != 0 else np.full(c, np.nan)
    return {"name": name, "size": n, "virial": o_l / n, "virial_se": _se(totals[:, 0]) / n,
            "fluct": o_r / n, "fluct_se": _se(totals[:, 1]) / n, "ratio": ratio,
            "ratio_se": _se(lin), "z": _finite(float(z[0])), "estimates": "paired",
            "_totals": totals}


def _independent(name: str, n: int, series: np.ndarray, groups: np.ndarray,
                 tau: float) -> dict[str, Any]:
    """The virial side from draws (series ``[C, n]``), the fluctuation side from sums (groups)."""
    o_l_arr, se_l_arr = mean_and_se(series, tau=tau)
    o_l, se_l = float(o_l_arr), float(se_l_arr)
    o_r, se_r = float(groups.mean()), _se(groups)
    ratio = o_l / o_r if o_r != 0 else float("nan")
    ratio_se = (abs(ratio) * float(np.hypot(se_l / o_l, se_r / o_r))
                if o_l != 0 and o_r != 0 else float("nan"))
    with np.errstate(divide="ignore", invalid="ignore"):  # no spread: z undefined (None)
        z = float(np.float64(o_l - o_r) / np.hypot(se_l, se_r))
    return {"name": name, "size": n, "virial": o_l / n, "virial_se": se_l / n,
            "fluct": o_r / n, "fluct_se": se_r / n, "ratio": ratio, "ratio_se": ratio_se,
            "z": _finite(z), "estimates": "independent", "_series": series,
            "_groups": groups, "_tau": tau}


def _combine(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole model: every layer's series or per-chain totals added, then judged once."""
    n = sum(r["size"] for r in rows)
    if "_totals" in rows[0]:
        row = _paired("all", n, sum(r["_totals"] for r in rows))
    else:
        row = _independent("all", n, sum(r["_series"] for r in rows),
                           sum(r["_groups"] for r in rows), max(r["_tau"] for r in rows))
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _se(x: np.ndarray) -> float:
    """Standard error of the mean (NaN with fewer than two values)."""
    return float(np.std(x, ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def _finite(z: float) -> float | None:
    return z if np.isfinite(z) else None
