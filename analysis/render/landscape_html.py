"""The report's diffusion and dissipation section: a log–log displacement plot and its table.

The plot shows ``MSD(k)`` against the lag ``k`` (in steps) for the whole model and each layer,
on log axes, with a slope-1 line (free diffusion) through the first point of the whole model:
a settled chain bends away from it to a plateau. The table beside it gives each layer's
exponent, late exponent and plateau ratio (``landscape.displacement``) and its
fluctuation–dissipation ratio ``O_L/O_R`` with its z-score (``landscape.fdr``).
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from .plots import to_png
from .report_html import esc, num, table

MAX_LINES = 8  # layers drawn (the whole model always is)


def displacement_plot(disp: dict[str, Any], thin: int) -> str | None:
    """Log–log MSD against lag in steps; ``None`` when nothing moved."""
    lags = np.asarray(disp.get("lags") or [], dtype=float) * thin
    series = [("all", disp["overall"]["msd"])] + [
        (row["name"], row["msd"]) for row in disp.get("layers", [])[:MAX_LINES]]
    series = [(n, np.asarray(m, dtype=float)) for n, m in series
              if len(m) == len(lags) and np.all(np.asarray(m) > 0)]
    if len(lags) < 2 or not series:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, msd in series:
        ax.loglog(lags, msd, marker="o", ms=3, lw=2.2 if name == "all" else 1.2, label=name)
    first = series[0][1][0]
    ax.loglog(lags, first * lags / lags[0], "k--", lw=0.8, label="slope 1 (free diffusion)")
    ax.set_xlabel("lag (steps)")
    ax.set_ylabel("mean squared displacement")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Displacement against lag")
    return to_png(fig)


def landscape_section(r: dict[str, Any], thin: int) -> str:
    """The section's HTML: the plot and one row per layer and for the whole model."""
    disp, fdr = r.get("displacement") or {}, r.get("fdr") or {}
    if not disp and not fdr:
        return ""
    by_name = {row["name"]: row for row in disp.get("layers", [])}
    by_name["all"] = disp.get("overall", {})
    rows = []
    for f in [*fdr.get("layers", []), {**fdr.get("overall", {}), "name": "all"}]:
        d = by_name.get(f.get("name"), {})
        rows.append([esc(f.get("name")), num(d.get("exponent"), _se(d.get("exponent_se"))),
                     num(d.get("exponent_late"), _se(d.get("exponent_late_se"))),
                     num(d.get("plateau_ratio")), num(f.get("ratio"), _se(f.get("ratio_se"))),
                     "–" if f.get("z") is None else f"{f['z']:+.2f}"])
    png = displacement_plot(disp, thin) if disp else None
    img = "" if png is None else f"<img alt='displacement' src='data:image/png;base64,{png}'>"
    return ("<h3>Diffusion and dissipation</h3><p>Mean squared displacement against lag: its "
            "exponent (1 for free diffusion, 0 for a settled chain; late: over the longer "
            "lags) and plateau ratio MSD(k_max)/(2 Var θ); Yaida's fluctuation–dissipation "
            "ratio O_L/O_R (1 at stationarity) with the z-score of O_L − O_R.</p>"
            + table(["layer", "exponent", "late exponent", "plateau", "O_L/O_R", "z"], rows)
            + img)


def _se(x: float | None) -> float | None:
    return x if x is not None and np.isfinite(x) else None
