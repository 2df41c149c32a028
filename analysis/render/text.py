"""The terminal renderer of an ``ArchiveAnalysis``: an overview table, per-run tables, the claim."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from ..analyze import ArchiveAnalysis
from ..diagnostics.mixing import convergence_words
from ..diagnostics.until import until_sentence
from ..law.comparison import measured_position
from ..law.current import current_sentence
from ..law.epoch_phases import epoch_sentence
from ..law.exact_comparison import exact_sentence, shape_words
from ..law.exact_comparison_2d import exact_sentence_2d
from ..law.gibbs import format_p, p_equals
from .tables import fit_tables


def _num(x: float, fmt: str = ".4g") -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:{fmt}}"


def check_words(tp: dict[str, Any]) -> str:
    """The exact stationarity identity's outcome in a cell: pass, FAIL or – (none possible)."""
    if tp.get("agree") is None:
        return "–"
    word = "pass" if tp["agree"] else "FAIL"
    return word if tp.get("check") == "O3" else f"{word} (rate-w.)"


def _overview(result: dict[str, Any], width: int) -> list[Table]:
    """One line per run: draws, worst R-hat and ESS, convergence, the O3 check and Gibbs."""
    head = ["run", "label", "rule", "draws×chains", "max R-hat", "min ESS bulk",
            "min ESS tail", "converged", "O3 check", "Gibbs", "p"]
    rows = []
    for r in result["runs"]:
        if r.get("status") != "ok":
            rows.append([str(r["run"]), r["label"], r["rule"], str(r["draws"]), "–", "–", "–",
                         "–", "–", r.get("status", ""), "–"])
            continue
        w, g = r["worst"], r["gibbs"]
        rows.append([str(r["run"]), r["label"], r["rule"], f"{r['draws']}×{r['chains']}",
                     _num(w["max_r_hat"], ".3f"), _num(w["min_ess_bulk"], ".0f"),
                     _num(w["min_ess_tail"], ".0f"), convergence_words(r.get("convergence")),
                     check_words(r["temperature"]), g["verdict"], format_p(g["p_value"], 2)])
    return fit_tables(f"sgdthermo analysis: {result['archive']}", head, rows, width)


def _beta(t: float, se: float) -> tuple[str, str]:
    """``β = 1/T`` and its delta-method SE ``se/T²``."""
    return (f"{1 / t:.4g}", f"{se / t**2:.2g}") if t > 0 else ("–", "–")


def _coordinates(r: dict[str, Any], width: int, max_rows: int = 8) -> list[Table]:
    tp, th = r["temperature"], r["theory"]
    judged = th is not None and "undecided" not in th
    fl = "T fluct" if tp.get("fluctuation_exact", True) else "T fluct ≈"
    head = ["i", "T virial", "± SE", "β = 1/T", "± SE", fl, "± SE"] + (
        ["T theory", "z vir", "Var", "± SE", "Var theory", "τ", "± SE", "τ theory"] if th else [])
    rows = []
    for i in range(min(len(tp["virial"]), max_rows)):
        row = [str(i), f"{tp['virial'][i]:.4g}", f"{tp['virial_se'][i]:.2g}",
               *_beta(tp["virial"][i], tp["virial_se"][i]),
               f"{tp['fluctuation'][i]:.4g}", f"{tp['fluctuation_se'][i]:.2g}"]
        if th:
            j = measured_position(th, i)  # None: coordinate not recorded (run.record)
            z = th["virial_z"][i]
            row += [f"{th['temperature'][i]:.4g}",
                    f"{z:+.1f}" if judged and z is not None and np.isfinite(z) else "–",
                    "–" if j is None else f"{th['measured_variance'][j]:.4g}",
                    "–" if j is None else f"{th['variance_se'][j]:.2g}",
                    f"{th['variance'][i]:.4g}",
                    "–" if j is None else f"{th['measured_iat'][j]:.3g}",
                    "–" if j is None else f"{th['iat_se'][j]:.2g}",
                    "–" if th["iat"] is None else f"{th['iat'][i]:.3g}"]
        rows.append(row)
    d = len(tp["virial"])
    part = "" if d <= max_rows else f" (first {max_rows} of {d}; --json for all)"
    return fit_tables(f"run {r['run']} ({r['label']}): per-coordinate temperatures{part}", head,
                      rows, width)


def _layers(r: dict[str, Any], width: int, max_rows: int = 40) -> list[Table]:
    """One row per layer (``layers.layer_summary``): convergence, T_l ± SE, spread, β ratio.

    With superchains (``run.superchains``) the largest nested R-hat of each layer sits beside
    its rank-normalised R-hat.
    """
    layers = r.get("layers") or []
    nested = {row["name"]: row["max"] for row in (r.get("nested_r_hat") or {}).get("layers", [])}
    head = ["layer", "size", "max R-hat", *(["max nR̂"] if nested else []), "min ESS", "τ med",
            "T layer", "± SE", "T sd", "T virial", "β/β₀", "± SE"]
    rows = [[row["name"], str(row["size"]), _num(row["max_r_hat"], ".3f"),
             *([_num(nested.get(row["name"], float("nan")), ".3f")] if nested else []),
             _num(row["min_ess_bulk"], ".0f"), _num(row["median_iat"], ".3g"),
             _num(row["t_fluct"]), _num(row["t_fluct_se"], ".2g"), _num(row["t_fluct_sd"], ".2g"),
             _num(row["t_virial"]), _num(row["beta_ratio"]), _num(row["beta_ratio_se"], ".2g")]
            for row in layers[:max_rows]]
    part = "" if len(layers) <= max_rows else f" (first {max_rows} of {len(layers)}; --json)"
    first = layers[0]["name"] if layers else ""
    return fit_tables(f"run {r['run']} ({r['label']}): per layer, β₀ of {first}{part}", head,
                      rows, width)


def _landscape(r: dict[str, Any], width: int) -> list[Table]:
    """Diffusion and dissipation, per layer and overall (``landscape``)."""
    disp, fdr = r.get("displacement") or {}, r.get("fdr") or {}
    by_name = {row["name"]: row for row in disp.get("layers", [])}
    by_name["all"] = disp.get("overall", {})
    fdr_rows = [*fdr.get("layers", []), {**fdr.get("overall", {}), "name": "all"}]
    head = ["layer", "MSD exponent", "± SE", "late", "± SE", "plateau", "FDR ratio", "± SE", "z"]
    rows = []
    for f in fdr_rows:
        d = by_name.get(f["name"], {})
        rows.append([f["name"], _num(d.get("exponent"), ".3f"), _num(d.get("exponent_se"), ".2g"),
                     _num(d.get("exponent_late"), ".3f"), _num(d.get("exponent_late_se"), ".2g"),
                     _num(d.get("plateau_ratio"), ".3f"), _num(f.get("ratio"), ".4g"),
                     _num(f.get("ratio_se"), ".2g"), _num(f.get("z"), ".2f")])
    lags = disp.get("lags") or [0]
    return fit_tables(f"run {r['run']} ({r['label']}): diffusion over lags {lags[0]}–{lags[-1]} "
                      f"draws, fluctuation–dissipation (O_L/O_R)", head, rows, width)


def _curvature(r: dict[str, Any], width: int) -> list[Table]:
    """The sharpest Hessian directions and the temperature along each (``--top-k``)."""
    cv = r["curvature"]
    title = f"run {r['run']} ({r['label']}): the {cv['k']} sharpest directions at the {cv.get('at')}"
    if "temperature" not in cv and "temperature_variance" not in cv:
        lam = ", ".join(_num(x) for x in cv.get("eigenvalues", []))
        return fit_tables(title, ["eigenvalues", "why no temperatures"],
                          [[lam or "–", cv.get("reason", "")]], width)
    virial, exact = "temperature" in cv, "temperature_exact" in cv
    head = (["direction", "λ"] + (["T virial", "± SE"] if virial else []) + ["λ·Var", "± SE"]
            + (["T exact", "z"] if exact else []))
    rows = []
    for j, lam in enumerate(cv["eigenvalues"]):
        row = [f"v{j + 1}", _num(lam)]
        if virial:
            row += [_num(cv["temperature"][j]), _num(cv["temperature_se"][j], ".2g")]
        row += [_num(cv["temperature_variance"][j]), _num(cv["temperature_variance_se"][j], ".2g")]
        if exact:
            row += [_num(cv["temperature_exact"][j]), _num(cv["temperature_z"][j], "+.2f")]
        rows.append(row)
    if not virial:
        return fit_tables(f"{title} (no virial: {cv.get('reason', '')})", head, rows, width)
    perp = [f"rest ({cv['complement_dim']})", "–", _num(cv["complement_temperature"]),
            _num(cv["complement_temperature_se"], ".2g"), "–", "–"]
    if exact:
        perp += [_num(cv["complement_temperature_exact"]),
                 _num(cv["complement_temperature_z"], "+.2f")]
    return fit_tables(title, head, rows + [perp], width)


def flatness_sentence(fl: dict[str, Any]) -> str:
    """Variance against flatness in one line (``--pca``)."""
    head = f"Variance–flatness over the top {fl['k']} principal components: "
    if fl.get("exponent") is None:
        return head + fl.get("reason", "no fit") + "."
    caution = ("" if fl.get("resolved", True) else
               f" Not resolved: {fl['unresolved_pairs']} pair(s) of neighbouring variances lie "
               "within 2 SE, so those components mix and ψ is biased; run longer.")
    return (head + f"σ² ∝ c^−ψ with ψ = {_num(fl['exponent'], '.3f')} ± "
            f"{_num(fl.get('exponent_se', float('nan')), '.2g')} ({fl['components_used']} "
            f"components; variances {_num(max(fl['variance']))} … "
            f"{_num(min(fl['variance']))}).{caution}")


def nested_sentence(nr: dict[str, Any]) -> str:
    """Nested R-hat in one line: the largest overall and per layer."""
    head = (f"Nested R-hat ({nr['superchains_used']} of {nr['superchains']} superchains of "
            f"{nr['chains_per_superchain']} chains): ")
    if nr.get("max") is None:
        return head + nr.get("reason", "not defined (no coordinate moves)") + "."
    layers = "; ".join(f"{row['name']} {_num(row['max'], '.4f')}" for row in nr.get("layers", []))
    return head + f"max {_num(nr['max'], '.4f')}" + (f" (per layer: {layers})." if layers
                                                       else ".")


def check_sentence(tp: dict[str, Any]) -> str:
    """The exact stationarity identity: which one, whether it passed, and its p-value."""
    what = {"O3": "O3 (virial = fluctuation temperature, exact for this rule)",
            "rate-weighted identity": "the rate-weighted identity E[(θ−c)·p·g] = ½E[(p·g)²]"
            }.get(tp["check"], tp["check"])
    if tp.get("agree") is None:
        outcome = "not made (nothing exact could be checked)"
    else:
        outcome = (f"{'passes' if tp['agree'] else 'FAILS'} at the 0.1 % level "
                   f"(χ² {p_equals(tp['agreement_p'], 2)})")
    tail = "" if tp["fluctuation_exact"] else "; T fluct is approximate for this rule"
    return f"Stationarity check, {what}: {outcome}{tail}."


def _gibbs_line(r: dict[str, Any]) -> str:
    """The Gibbs verdict with its reason and each component's p-value; the check used below."""
    g = r["gibbs"]
    parts = []
    for c in g["components"]:
        p = c["p_value"]
        parts.append(f"{c['name']} " + (p_equals(p, 2) if c["status"] == "ok"
                                         and np.isfinite(p) else c["status"]))
    return (f"Gibbs test: {g['verdict']} ({g['reason']})" + "".join(f"; {p}" for p in parts)
            + ".\n" + check_sentence(r["temperature"]))


def convergence_sentence(r: dict[str, Any]) -> str | None:
    """Why the run's stationary verdicts are withheld (None when it converged)."""
    c = r.get("convergence")
    if not c or c["converged"]:
        return None
    return (f"Run {r['run']} has not converged: {'; '.join(c['reasons'])} (thresholds R-hat ≤ "
            f"{c['r_hat_max']:g}, bulk and tail ESS ≥ {c['ess_min']:g}). Every verdict that "
            "assumes a stationary law (the Gibbs test, z against theory, exact-law and current "
            "tests) is undecided; the numbers are shown as measured.")


def undecided_prefix(record: dict[str, Any] | None) -> str:
    """``"[undecided: chains not converged] "`` for a record whose test was withheld."""
    return "[undecided: chains not converged] " if record and "undecided" in record else ""


def _spike_line(along: dict[str, Any]) -> str:
    """Var ûᵀθ along each spike of a low-rank model: measured ± SE against exact theory."""
    parts = [f"{m:.4g}±{se:.2g} (theory {t:.4g}, z {z:+.1f})" for m, se, t, z in zip(
        along["measured_variance"], along["variance_se"], along["variance"],
        along["variance_z"], strict=True)]
    return "Var ûᵀθ along the spikes: " + "; ".join(parts) + "."


def print_summary(analysis: ArchiveAnalysis, console: Console) -> None:
    """An overview table, then one per-coordinate table per run, then the claim."""
    result = analysis.as_dict()
    for table in _overview(result, console.width):
        console.print(table)
    for r in result["runs"]:
        if r.get("until"):
            console.print(until_sentence(r["until"]))
        if r.get("status") == "ok":
            for table in (_layers(r, console.width) if r.get("layers")
                          else _coordinates(r, console.width)):
                console.print(table)
            if r.get("fdr"):
                for table in _landscape(r, console.width):
                    console.print(table)
            if r.get("curvature"):
                for table in _curvature(r, console.width):
                    console.print(table)
            if r.get("flatness"):
                console.print(flatness_sentence(r["flatness"]), highlight=False)
            if r.get("nested_r_hat"):
                console.print(nested_sentence(r["nested_r_hat"]), highlight=False)
            late = convergence_sentence(r)
            if late:
                console.print(late, highlight=False)
            console.print(_gibbs_line(r), highlight=False)
            for key, sentence in (("current", current_sentence), ("epoch", epoch_sentence),
                                  ("exact_law", lambda e, g=r["gibbs"]: exact_sentence(
                                      e, shape_words(g))),
                                  ("exact_law_2d", exact_sentence_2d)):
                if r.get(key):
                    console.print(undecided_prefix(r[key]) + sentence(r[key]),
                                  highlight=False, markup=False)
            along = (r.get("theory") or {}).get("spike_directions")
            if along:
                console.print(_spike_line(along))
    claim = result.get("claim")
    if claim:
        for table in fit_tables(f"Claim: {claim['title']} ({claim['seed']})",
                                list(claim["columns"]), [list(r) for r in claim["rows"]],
                                console.width):
            console.print(table)
        console.print(f"[bold]prediction:[/bold] {claim['prediction']}")
        console.print(f"[bold]verdict: {claim['verdict']}[/bold] — {claim['explanation']}")
