"""The terminal renderer of an ``ArchiveAnalysis``: an overview table, per-run tables, the claim."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from .analyze import ArchiveAnalysis
from .record import measured_position


def _overview(result: dict[str, Any]) -> Table:
    """One line per run: draws, worst R-hat and ESS, stationarity and the Gibbs verdict."""
    t = Table(title=f"sgdthermo analysis: {result['archive']}")
    for col in ("run", "label", "rule", "draws×chains", "R-hat", "ESS", "stationary", "Gibbs"):
        t.add_column(col, overflow="fold")
    for r in result["runs"]:
        if r.get("status") != "ok":
            t.add_row(str(r["run"]), r["label"], r["rule"], str(r["draws"]), "-", "-", "-",
                      r.get("status", ""))
            continue
        w, g, agree = r["worst"], r["gibbs"], r["temperature"]["agree"]
        p = "" if g["p_value"] is None or not np.isfinite(g["p_value"]) else (
            f" p={g['p_value']:.2g}")
        t.add_row(str(r["run"]), r["label"], r["rule"], f"{r['draws']}×{r['chains']}",
                  f"{w['max_r_hat']:.3f}", f"{w['min_ess_bulk']:.0f}",
                  "-" if agree is None else ("yes" if agree else "NO"), g["verdict"] + p)
    return t


def _beta(t: float, se: float) -> str:
    """``β = 1/T`` with the delta-method SE ``se/T²``."""
    return f"{1 / t:.4g}±{se / t**2:.2g}" if t > 0 else "–"


def _coordinates(r: dict[str, Any], max_rows: int = 8) -> Table:
    tp, th = r["temperature"], r["theory"]
    t = Table(title=f"run {r['run']} ({r['label']}): per-coordinate temperatures", title_justify="left")
    fl = "T fluct" if tp.get("fluctuation_exact", True) else "T fluct ≈"
    cols = ["i", "T virial", "β = 1/T", fl] + (["T theory", "z vir", "Var", "Var theory", "τ",
                                            "τ theory"] if th else [])
    for c in cols:
        t.add_column(c, justify="right", overflow="fold")
    for i in range(min(len(tp["virial"]), max_rows)):
        row = [str(i), f"{tp['virial'][i]:.4g}±{tp['virial_se'][i]:.2g}",
               _beta(tp["virial"][i], tp["virial_se"][i]),
               f"{tp['fluctuation'][i]:.4g}±{tp['fluctuation_se'][i]:.2g}"]
        if th:
            j = measured_position(th, i)  # None: coordinate not recorded (run.record)
            row += [f"{th['temperature'][i]:.4g}", f"{th['virial_z'][i]:+.1f}",
                    "–" if j is None else
                    f"{th['measured_variance'][j]:.4g}±{th['variance_se'][j]:.2g}",
                    f"{th['variance'][i]:.4g}",
                    "–" if j is None else f"{th['measured_iat'][j]:.3g}±{th['iat_se'][j]:.2g}",
                    "–" if th["iat"] is None else f"{th['iat'][i]:.3g}"]
        t.add_row(*row)
    return t


def _gibbs_line(r: dict[str, Any]) -> str:
    """The Gibbs verdict with its reason and each component's p-value, and the check used."""
    g, tp = r["gibbs"], r["temperature"]
    parts = []
    for c in g["components"]:
        p = c["p_value"]
        parts.append(f"{c['name']} " + (f"p={p:.2g}" if c["status"] == "ok" and np.isfinite(p)
                                         else c["status"]))
    return (f"Gibbs test: {g['verdict']} ({g['reason']})" + "".join(f"; {p}" for p in parts)
            + f". Stationarity check: {tp['check']}"
            + ("" if tp["fluctuation_exact"] else " (T fluct is approximate for this rule)")
            + ".")


def _spike_line(along: dict[str, Any]) -> str:
    """Var ûᵀθ along each spike of a low-rank model: measured ± SE against exact theory."""
    parts = [f"{m:.4g}±{se:.2g} (theory {t:.4g}, z {z:+.1f})" for m, se, t, z in zip(
        along["measured_variance"], along["variance_se"], along["variance"],
        along["variance_z"], strict=True)]
    return "Var ûᵀθ along the spikes: " + "; ".join(parts) + "."


def print_summary(analysis: ArchiveAnalysis, console: Console) -> None:
    """An overview table, then one per-coordinate table per run, then the claim."""
    result = analysis.as_dict()
    console.print(_overview(result))
    for r in result["runs"]:
        if r.get("status") == "ok":
            console.print(_coordinates(r))
            console.print(_gibbs_line(r))
            along = (r.get("theory") or {}).get("spike_directions")
            if along:
                console.print(_spike_line(along))
    claim = result.get("claim")
    if claim:
        t = Table(title=f"Seed claim: {claim['title']} (seed {claim['seed']})",
                  title_justify="left")
        for col in claim["columns"]:
            t.add_column(col, overflow="fold")
        for row in claim["rows"]:
            t.add_row(*row)
        console.print(t)
        console.print(f"[bold]prediction:[/bold] {claim['prediction']}")
        console.print(f"[bold]verdict: {claim['verdict']}[/bold] — {claim['explanation']}")
