"""The report's landscape sections: curvature, diffusion and dissipation, with their figures.

Curvature (``--top-k``): the temperature along each of the sharpest Hessian directions and in
the complement, as bars with ±2 SE and the exact values where the loss is quadratic.


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


def eigen_temperature_bars(cv: dict[str, Any]) -> str | None:
    """Bars of ``T_j`` (±2 SE) along ``v_1 … v_K`` and in the complement, exact values as dots."""
    if "temperature" not in cv:
        return None
    t = [*cv["temperature"], cv["complement_temperature"]]
    se = [*cv["temperature_se"], cv["complement_temperature_se"]]
    names = [f"v{j + 1}\nλ={lam:.3g}" for j, lam in enumerate(cv["eigenvalues"])] + ["rest"]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(t) + 2), 3.6))
    x = np.arange(len(t))
    ax.bar(x, t, yerr=2 * np.nan_to_num(np.asarray(se, dtype=float)), capsize=3,
           color="#4a7ab5", label="virial T ± 2 SE")
    if "temperature_exact" in cv:
        ax.plot(x, [*cv["temperature_exact"], cv["complement_temperature_exact"]], "o",
                color="#c0392b", label="exact")
    ax.set_xticks(x, names, fontsize=7)
    ax.set_ylabel("temperature")
    ax.set_title("Temperature along the sharpest directions")
    ax.legend(fontsize=7)
    return to_png(fig)


def curvature_section(cv: dict[str, Any]) -> str:
    """The sharpest directions' table and bars (``landscape.curvature``)."""
    if "temperature" not in cv and "temperature_variance" not in cv:
        lam = ", ".join(num(x) for x in cv.get("eigenvalues", []))
        return (f"<h3>Sharpest directions</h3><p>Eigenvalues {esc(lam or '–')}; no temperatures: "
                f"{esc(cv.get('reason', ''))}.</p>")
    if "temperature" not in cv:  # a user's module: the variance temperature only
        rows = [[f"v{j + 1}", num(lam), num(cv["temperature_variance"][j],
                                            _se(cv["temperature_variance_se"][j]))]
                for j, lam in enumerate(cv["eigenvalues"])]
        return (f"<h3>Sharpest directions (at the {esc(cv.get('at'))})</h3><p>The {cv['k']} "
                f"largest Hessian eigenvalues and the variance temperature along each; "
                f"{esc(cv.get('reason', ''))}.</p>" + table(["direction", "λ", "λ·Var"], rows))
    exact = "temperature_exact" in cv
    rows = [[f"v{j + 1}", num(lam), num(cv["temperature"][j], _se(cv["temperature_se"][j])),
             num(cv["temperature_variance"][j], _se(cv["temperature_variance_se"][j]))]
            + ([num(cv["temperature_exact"][j]), num(cv["temperature_z"][j])] if exact else [])
            for j, lam in enumerate(cv["eigenvalues"])]
    rows.append([f"rest ({cv['complement_dim']})", "–",
                 num(cv["complement_temperature"], _se(cv["complement_temperature_se"])), "–"]
                + ([num(cv["complement_temperature_exact"]),
                    num(cv["complement_temperature_z"])] if exact else []))
    head = ["direction", "λ", "T virial", "λ·Var"] + (["T exact", "z"] if exact else [])
    png = eigen_temperature_bars(cv)
    img = "" if png is None else f"<img alt='eigen-temperatures' src='data:image/png;base64,{png}'>"
    return (f"<h3>Sharpest directions (at the {esc(cv.get('at'))})</h3><p>The {cv['k']} largest "
            "Hessian eigenvalues (Lanczos on Hessian-vector products) and the virial temperature "
            "along each eigenvector and in the rest of the space.</p>" + table(head, rows) + img)


def flatness_plot(fl: dict[str, Any]) -> str | None:
    """Variance against curvature along the principal components (log–log), with the fit."""
    var, curv = np.asarray(fl.get("variance", [])), np.asarray(fl.get("curvature", []))
    use = (curv > 0) & (var > 0) if len(curv) == len(var) else np.zeros(0, dtype=bool)
    if use.sum() < 2:
        return None
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.loglog(curv[use], var[use], "o", label="principal components")
    if fl.get("exponent") is not None and np.isfinite(fl["exponent"]):
        x = np.geomspace(curv[use].min(), curv[use].max(), 20)
        a = np.mean(np.log(var[use]) + fl["exponent"] * np.log(curv[use]))
        ax.loglog(x, np.exp(a) * x ** -fl["exponent"], "--",
                  label=f"σ² ∝ c^−ψ, ψ = {fl['exponent']:.3g}")
    ax.set_xlabel("curvature along the component, uᵀHu")
    ax.set_ylabel("variance along it")
    ax.set_title("Variance against flatness")
    ax.legend(fontsize=7)
    return to_png(fig)


def flatness_section(fl: dict[str, Any]) -> str:
    """The variance–flatness table and scatter (``landscape.flatness``)."""
    curv = fl.get("curvature") or [None] * len(fl.get("variance", []))
    rows = [[f"u{j + 1}", num(v), num(c)] for j, (v, c) in enumerate(
        zip(fl.get("variance", []), curv, strict=True))]
    fit = ("" if fl.get("exponent") is None else
           f" Fitted ψ = {num(fl['exponent'], _se(fl.get('exponent_se')))} over "
           f"{fl.get('components_used')} components.")
    reason = f" {esc(fl['reason'])}." if fl.get("reason") else ""
    if fl.get("resolved") is False:
        reason += (f" {fl['unresolved_pairs']} pair(s) of neighbouring variances are not told "
                   "apart (gap under 2 SE): those components mix, and ψ is biased; run longer.")
    png = flatness_plot(fl)
    img = "" if png is None else f"<img alt='variance-flatness' src='data:image/png;base64,{png}'>"
    return ("<h3>Variance against flatness</h3><p>The trajectory's top principal components "
            "(randomised PCA of the draws, centred at their grand mean): the variance along "
            f"each beside the loss curvature along it, and log σ² = a − ψ log c.{fit}{reason}</p>"
            + table(["component", "variance", "curvature"], rows) + img)


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
