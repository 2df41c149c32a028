"""One analysis record per run: diagnostics, temperatures, Gibbs test, theory beside measurement."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from .diagnostics import diagnostics, worst
from .estimators import integrated_time_se, mean_and_se
from .gibbs import gibbs_test
from .reader import RunData, open_archive
from .temperature import temperatures, virial_samples
from .theory import stationary_theory


def _z(measured: np.ndarray, se: np.ndarray, predicted: np.ndarray) -> list[float]:
    return ((measured - predicted) / se).tolist()


def theory_comparison(run: RunData, samples: Any, temps: Any) -> dict[str, Any] | None:
    """Exact theory beside measurement, differences in units of the measurement's SE."""
    th = stationary_theory(run.spec, run.model)
    if th is None:
        return None
    var, var_se = mean_and_se(samples.centred**2, samples.batches)
    theta = np.asarray(run.posterior()["theta"].values)[~run.diverged_chains()]
    tau, tau_se = integrated_time_se(theta)
    pred_var = np.diag(th.cov)
    return {
        "exact": th.exact, "note": th.note, "gibbs": th.gibbs,
        "mean": th.mean.tolist(), "measured_mean": samples.center.tolist(),
        "variance": pred_var.tolist(), "measured_variance": var.tolist(),
        "variance_se": var_se.tolist(), "variance_z": _z(var, var_se, pred_var),
        "temperature": th.temperature.tolist(),
        "virial_z": _z(temps.virial, temps.virial_se, th.temperature),
        "fluctuation_z": _z(temps.fluctuation, temps.fluctuation_se, th.temperature),
        "iat": th.iat.tolist(), "measured_iat": tau.tolist(), "iat_se": tau_se.tolist(),
        "excess_loss": th.excess_loss,
    }


def temperature_record(temps: Any) -> dict[str, Any]:
    """JSON form of ``Temperatures``: both estimates and the run's exact stationarity check."""
    out = {"virial": temps.virial.tolist(), "virial_se": temps.virial_se.tolist(),
           "fluctuation": temps.fluctuation.tolist(),
           "fluctuation_se": temps.fluctuation_se.tolist(),
           "fluctuation_exact": temps.fluctuation_exact, "check": temps.check,
           "z": temps.z.tolist(), "agreement_p": temps.agreement_p, "agree": temps.agree}
    if temps.identity_lhs is not None:
        out["identity_lhs"] = temps.identity_lhs.tolist()
        out["identity_rhs"] = temps.identity_rhs.tolist()
    return out


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return strict_json(value.tolist())
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def analyze_run(run: RunData) -> dict[str, Any]:
    """Everything ``sgdthermo analyze`` reports for one run."""
    out: dict[str, Any] = {
        "run": run.index, "label": run.label, "rule": run.spec.rule.kind,
        "model": run.spec.model.kind, "chains": run.spec.run.chains, "draws": run.draws,
        "complete": run.complete, "diverged_chains": int(run.diverged_chains().sum())}
    if run.draws < 8 or out["diverged_chains"] == out["chains"]:
        out["status"] = "not enough committed, non-diverged draws to analyze"
        return out
    diag = diagnostics(run)
    samples = virial_samples(run)
    temps = temperatures(run, samples)
    gibbs = gibbs_test(samples)
    out.update({
        "status": "ok", "diagnostics": diag, "worst": worst(diag),
        "temperature": temperature_record(temps),
        "gibbs": gibbs.as_dict(),
        "theory": theory_comparison(run, samples, temps)})
    return out


def analyze_archive(path: str) -> dict[str, Any]:
    """Analysis records of every run of an archive, and the verdict of its seed claim if any."""
    from .claims import evaluate_claim

    claim = evaluate_claim(path)
    return {"archive": path, "runs": [analyze_run(r) for r in open_archive(path)],
            "claim": claim.as_dict() if claim else None}


def _overview(result: dict[str, Any]) -> Table:
    t = Table(title=f"sgdthermo analysis: {result['archive']}")
    for col in ("run", "label", "rule", "draws×chains", "R-hat", "ESS", "stationary", "Gibbs"):
        t.add_column(col)
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
        t.add_column(c, justify="right")
    for i in range(min(len(tp["virial"]), max_rows)):
        row = [str(i), f"{tp['virial'][i]:.4g}±{tp['virial_se'][i]:.2g}",
               _beta(tp["virial"][i], tp["virial_se"][i]),
               f"{tp['fluctuation'][i]:.4g}±{tp['fluctuation_se'][i]:.2g}"]
        if th:
            row += [f"{th['temperature'][i]:.4g}", f"{th['virial_z'][i]:+.1f}",
                    f"{th['measured_variance'][i]:.4g}±{th['variance_se'][i]:.2g}",
                    f"{th['variance'][i]:.4g}",
                    f"{th['measured_iat'][i]:.3g}±{th['iat_se'][i]:.2g}", f"{th['iat'][i]:.3g}"]
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
    return (f"Gibbs test: {g['verdict']} ({g['reason']}); " + "; ".join(parts)
            + f". Stationarity check: {tp['check']}"
            + ("" if tp["fluctuation_exact"] else " (T fluct is approximate for this rule)")
            + ".")


def print_summary(result: dict[str, Any], console: Console) -> None:
    """An overview table, then one per-coordinate table per run."""
    console.print(_overview(result))
    for r in result["runs"]:
        if r.get("status") == "ok":
            console.print(_coordinates(r))
            console.print(_gibbs_line(r))
    claim = result.get("claim")
    if claim:
        t = Table(title=f"Seed claim: {claim['title']} (seed {claim['seed']})",
                  title_justify="left")
        for col in claim["columns"]:
            t.add_column(col)
        for row in claim["rows"]:
            t.add_row(*row)
        console.print(t)
        console.print(f"[bold]prediction:[/bold] {claim['prediction']}")
        console.print(f"[bold]verdict: {claim['verdict']}[/bold] — {claim['explanation']}")
