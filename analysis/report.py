"""The HTML renderer of an ``ArchiveAnalysis``: one self-contained file (inline CSS and PNG figures).

It renders the same record as the terminal and ``--json`` (``RunAnalysis.as_dict``), so the three
cannot disagree; only the figures read the draws again.
"""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np

from .analyze import ArchiveAnalysis, analyze_archive
from .claims import ClaimResult
from .current import current_sentence
from .epoch_phases import epoch_sentence
from .exact_comparison import exact_sentence, shape_words
from .exact_comparison_2d import exact_sentence_2d
from .gibbs import format_p, p_equals
from .mixing import Thresholds, convergence_words
from .plots import temperature_bars, trace_and_rank
from .record import RunAnalysis, measured_position
from .run_figures import acf_plot, ess_plot, pair_plot
from .sweep_figures import sweep_images, swept_keys
from .text import check_words
from .until import until_sentence

CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.8em 0;font-size:13px}.scroll{overflow-x:auto}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f3f3f3}nav{columns:2;font-size:14px}nav a{display:block}
details pre{background:#f8f8f8;padding:0.5em;overflow-x:auto}
td.l,th.l{text-align:left}.bad{color:#b00;font-weight:bold}.good{color:#070}
h2{border-bottom:1px solid #ddd;margin-top:2em}code{background:#f5f5f5;padding:1px 4px}
img{max-width:100%}.panels{display:flex;flex-wrap:wrap;gap:4px}
.panels img{max-width:32%;min-width:300px}"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _num(v: float, se: float | None = None) -> str:
    if v is None or not np.isfinite(v):
        return "–"
    return f"{v:.4g}" if se is None else f"{v:.4g} ± {se:.2g}"


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    head = "".join(f"<th class={'l' if i < left else ''}>{_e(h)}</th>"
                   for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td class={'l' if i < left else ''}>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<div class=scroll><table><tr>{head}</tr>{body}</table></div>"


def _verdict(g: dict) -> str:
    cls = {"Gibbs": "good", "not Gibbs": "bad"}.get(g["verdict"], "")
    p = "" if not np.isfinite(g["p_value"]) else f" (family-wise {p_equals(g['p_value'])})"
    return f"<span class={cls}>{_e(g['verdict'])}</span>{_e(p)}"


def _gibbs_components(g: dict) -> str:
    rows = [[_e(c["name"]), _e(c["status"]), _e(c["statistic_kind"]), _num(c["statistic"]),
             _e(", ".join(f"{d:.4g}" for d in c["df"])), format_p(c["p_value"]), _e(c["reason"])]
            for c in g["components"]]
    return (f"<p>Gibbs test: {_verdict(g)} — {_e(g['reason'])}. Bonferroni over the applicable "
            f"components at α = {g['alpha']}; {g['batches']} batch means.</p>"
            + _table(["component", "status", "statistic", "value", "df", "p", "note"], rows))


def _converged(c: dict | None) -> str:
    words = convergence_words(c)
    return f"<span class=bad>{_e(words)}</span>" if words.startswith("NO") else _e(words)


def _convergence_section(r: dict) -> str:
    """Whether the chains converged, against the stated thresholds; what is withheld if not."""
    c = r.get("convergence")
    if not c:
        return ""
    limits = (f"max R-hat ≤ {c['r_hat_max']:g} (rank-normalised, split), min bulk and tail ESS "
              f"≥ {c['ess_min']:g}, and the exact stationarity identity where there is one")
    notes = "".join(f" ({_e(n)})" for n in c["notes"])
    if c["converged"]:
        return f"<p>Converged: {_e(limits)} hold{notes}.</p>"
    return (f"<p class=bad>Not converged: {_e('; '.join(c['reasons']))}{notes}.</p><p>Checked: "
            f"{_e(limits)}. Every verdict below that assumes a stationary law (the Gibbs test, "
            "z-scores against theory, exact-law and current tests) is undecided; the numbers "
            "are shown as measured. Run longer (run.draws, run.burn_in) or use run.until.</p>")


def _withheld(record: dict) -> str:
    return "<b>Undecided (chains not converged):</b> " if "undecided" in record else ""


def _stationarity(tp: dict) -> str:
    """One sentence on the run's exact stationarity check."""
    if tp["agree"] is None:
        return ("No exact stationarity check: this rule's rates are adaptive and the archive "
                "predates the rate-weighted identity; the fluctuation temperature is "
                "approximate.")
    ok = "passes" if tp["agree"] else "<span class=bad>fails</span>"
    what = ("virial and fluctuation temperatures agree (O3, exact for constant rates)"
            if tp["check"] == "O3" else "E[(θ−c)·p·g] = ½E[(p·g)²] (rate-weighted identity; "
            "this rule's fluctuation temperature is only approximate)")
    return f"Stationarity check {ok}: {what}, χ² {p_equals(tp['agreement_p'])}."


def _img(png: str | None, alt: str) -> str:
    return "" if png is None else f"<img alt='{_e(alt)}' src='data:image/png;base64,{png}'>"


def _run_section(run: RunAnalysis, r: dict) -> str:
    out = [f"<h2 id='run-{r['run']}'>Run {r['run']}: {_e(r['label'])}</h2>",
           f"<p>rule <code>{_e(json.dumps(run.spec.rule.model_dump()))}</code>, model "
           f"<code>{_e(r['model'])}</code>, batch {run.spec.run.batch_size}, sampling "
           f"{_e(run.spec.run.sampling)}, {r['chains']} chains × {r['draws']} draws"
           f"{'' if r['complete'] else ' (incomplete)'}, {r['diverged_chains']} diverged.</p>"]
    spec = _e(json.dumps(run.spec.model_dump(include={"model", "rule", "run"}), indent=2))
    out.append(f"<details><summary>what this run used (resolved config)</summary>"
               f"<pre>{spec}</pre></details>")
    if r.get("until"):
        out.append(f"<h3>Run until converged</h3><p>{_e(until_sentence(r['until']))}</p>")
    if r.get("status") != "ok":
        return "".join(out) + f"<p class=bad>{_e(r.get('status'))}</p>"
    out.append(_convergence_section(r))
    out.append(_gibbs_components(r["gibbs"]))
    out.append(f"<p>Temperature ratio max/min {_num(r['gibbs']['temperature_ratio'])}, largest "
               f"tested off-diagonal virial term {_num(r['gibbs']['max_offdiag'])}·T.</p>")
    if r.get("current"):
        out.append(_current_section(r["current"]))
    if r.get("epoch"):
        out.append(_epoch_section(r["epoch"]))
    if r.get("exact_law"):
        out.append(f"<h3>Exact finite-η law</h3><p>{_withheld(r['exact_law'])}"
                   f"{_e(exact_sentence(r['exact_law'], shape_words(r['gibbs'])))}</p>")
    if r.get("exact_law_2d"):
        out.append(f"<h3>Exact finite-η law (2-D)</h3><p>{_withheld(r['exact_law_2d'])}"
                   f"{_e(exact_sentence_2d(r['exact_law_2d']))}</p>")
    rows, cut = [], []
    for var, stats in r["diagnostics"].items():
        shape = np.shape(stats["r_hat"])
        cols = {k: np.ravel(np.asarray(stats[k], dtype=float)) for k in
                ("mean", "sd", "mcse_mean", "r_hat", "ess_bulk", "ess_tail")}
        if len(cols["r_hat"]) > 8:
            cut.append(f"{var}: first 8 of {len(cols['r_hat'])}")
        for i in range(min(len(cols["r_hat"]), 8)):
            at = ",".join(str(j) for j in np.unravel_index(i, shape)) if shape else ""
            rows.append([f"{var}[{at}]" if shape else var,
                         _num(float(cols["mean"][i])), _num(float(cols["sd"][i])),
                         _num(float(cols["mcse_mean"][i])), _num(float(cols["r_hat"][i])),
                         _num(float(cols["ess_bulk"][i])), _num(float(cols["ess_tail"][i]))])
    shown = "" if not cut else f"<p>Shown: {_e('; '.join(cut))} (sgdthermo analyze --json: all).</p>"
    out.append("<h3>Diagnostics (ArviZ)</h3>" + _table(
        ["quantity", "mean", "sd", "MCSE", "R-hat", "ESS bulk", "ESS tail"], rows) + shown)
    tp, th = r["temperature"], r["theory"]
    out.append(f"<h3>Temperatures (O3)</h3><p>{_stationarity(tp)}</p>")
    fl = "T fluctuation" if tp["fluctuation_exact"] else "T fluctuation (approx.)"
    head = ["i", "T virial", "β = 1/T (virial)", fl, "z (check)"]
    if th:
        head += ["T theory", "z (virial − theory)", "Var measured", "Var theory", "τ measured",
                 "τ theory"]
    rows = []
    judged = th is not None and "undecided" not in th
    for i in range(min(len(tp["virial"]), 32)):
        t, se = tp["virial"][i], tp["virial_se"][i]
        beta = _num(1 / t, se / t**2) if t > 0 else "–"
        row = [str(i), _num(t, se), beta, _num(tp["fluctuation"][i], tp["fluctuation_se"][i]),
               "–" if tp["z"][i] is None or not np.isfinite(tp["z"][i]) else f"{tp['z'][i]:+.2f}"]
        if th:
            j = measured_position(th, i)  # None: coordinate not recorded (run.record)
            z = th["virial_z"][i]
            row += [_num(th["temperature"][i]),
                    f"{z:+.2f}" if judged and z is not None and np.isfinite(z) else "–",
                    "–" if j is None else _num(th["measured_variance"][j], th["variance_se"][j]),
                    _num(th["variance"][i]),
                    "–" if j is None else _num(th["measured_iat"][j], th["iat_se"][j]),
                    "–" if th["iat"] is None else _num(th["iat"][i])]
        rows.append(row)
    d = len(tp["virial"])
    out.append(_table(head, rows) + ("" if d <= 32 else
                                     f"<p>Shown: the first 32 of {d} coordinates (sgdthermo "
                                     "analyze --json: all).</p>"))
    if th:
        out.append(f"<p>Theory: {_e(th['note'])}; predicted excess loss E[L] − L* = "
                   f"{th['excess_loss']:.4g}; theory says the law is "
                   f"{'Gibbs' if th['gibbs'] else 'not Gibbs'}.</p>")
        if th.get("spike_directions"):
            sd = th["spike_directions"]
            out.append(_table(["spike", "Var ûᵀθ measured", "Var ûᵀθ theory", "z"], [
                [str(j), _num(m, se), _num(t), f"{z:+.2f}"] for j, (m, se, t, z) in enumerate(
                    zip(sd["measured_variance"], sd["variance_se"], sd["variance"],
                        sd["variance_z"], strict=True))]))
    out.append(_img(temperature_bars(r), "temperatures"))
    out.append("<h3>The law of θ[0], θ[1] and its autocorrelation</h3>"
               + _img(pair_plot(run), "pair plot") + _img(acf_plot(run), "autocorrelation"))
    out.append("<h3>Convergence: trace, rank, local and quantile ESS</h3>"
               + _img(trace_and_rank(run), "trace and rank") + _img(ess_plot(run), "ESS"))
    return "".join(out)


def _current_section(c: dict) -> str:
    """The probability current: the sentence, then A_k per lag for the first pairs."""
    rows = []
    for p, (i, j) in enumerate(c["pairs"][:3]):
        for k, lag in enumerate(c["lags"]):
            exact = "–" if c["exact"] is None else _num(c["exact"][k][p])
            z = "–" if c["z_vs_exact"] is None else f"{c['z_vs_exact'][k][p]:+.2f}"
            rows.append([f"A[{i},{j}]", str(lag), _num(c["measured"][k][p], c["se"][k][p]),
                         exact, z])
    theory = "exact" if c.get("theory_exact", True) else "approximate theory"
    return (f"<h3>Probability current</h3><p>{_withheld(c)}{_e(current_sentence(c))}</p>"
            + _table(["entry", "lag (draws)", "measured ± SE", theory, "z"], rows))


def _epoch_section(e: dict) -> str:
    """Epoch reshuffling: the sentence, then every visited phase against its exact law."""
    rows = []
    for j, phase in enumerate(e["phases"]):
        for c, coord in enumerate(e["coords"]):
            rows.append([str(phase), str(coord), _num(e["measured"][j][c], e["se"][j][c]),
                         _num(e["exact"][j][c]), f"{e['z'][j][c]:+.2f}"])
    return (f"<h3>Epoch reshuffling, per epoch phase</h3><p>{_withheld(e)}"
            f"{_e(epoch_sentence(e))}</p>"
            + _table(["phase", "i", "Var θ_i measured ± SE", "exact", "z"], rows))


def _claim_section(c: ClaimResult | None) -> str:
    if c is None:
        return ""
    cls = ("good" if c.verdict.startswith("holds") else "" if c.verdict == "undecided"
           else "bad")
    return (f"<h2 id='claim'>Claim: {_e(c.title)}</h2><p>Described in {_e(c.seed)}.</p>"
            f"<p><b>Prediction:</b> {_e(c.prediction)}</p>"
            f"<p><b>Verdict: <span class={cls}>{_e(c.verdict)}</span></b> — "
            f"{_e(c.explanation)}</p>" + _table(c.columns, [[_e(x) for x in r] for r in c.rows]))


def render_html(analysis: ArchiveAnalysis) -> str:
    """The report of an analysed archive as an HTML string."""
    meta, path, runs = analysis.meta, analysis.archive, analysis.runs
    records = [r.as_dict() for r in runs]
    overview = _table(
        ["run", "label", "rule", "draws × chains", "max R-hat", "min ESS bulk", "min ESS tail",
         "converged", "O3 check", "Gibbs"],
        [[str(r["run"]), _e(r["label"]), _e(r["rule"]), f"{r['draws']} × {r['chains']}",
          _num(r["worst"]["max_r_hat"]) if "worst" in r else "–",
          _num(r["worst"]["min_ess_bulk"]) if "worst" in r else "–",
          _num(r["worst"]["min_ess_tail"]) if "worst" in r else "–",
          _converged(r.get("convergence")),
          _e(check_words(r["temperature"])) if "temperature" in r else "–",
          _verdict(r["gibbs"]) if "gibbs" in r else _e(r.get("status"))] for r in records],
        left=3)
    sections = "".join(_run_section(run, r) for run, r in zip(runs, records, strict=True))
    config = _e(json.dumps(meta["config"], indent=2))
    sweep = _sweep_section(analysis)
    toc = [("runs", "Runs")] + ([("claim", "Claim")] if analysis.claim else []) + (
        [("sweep", "The sweep against theory")] if sweep else []) + [
        (f"run-{r['run']}", f"Run {r['run']}: {r['label']}") for r in records] + [
        ("config", "Job config")]
    nav = "<nav>" + "".join(f"<a href='#{a}'>{_e(t)}</a>" for a, t in toc) + "</nav>"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>sgdthermo report: "
            f"{_e(meta['config']['name'])}</title><style>{CSS}</style></head><body>"
            f"<h1>sgdthermo report: {_e(meta['config']['name'])}</h1>"
            f"<p>Archive <code>{_e(path)}</code>, created {_e(meta['created'])} with sgdthermo "
            f"{_e(meta['package_version'])} on {_e(meta['device'])}.</p>{nav}"
            f"<h2 id='runs'>Runs</h2>{overview}{_claim_section(analysis.claim)}{sweep}"
            f"{sections}<h2 id='config'>Job config</h2><p>As written, before the sweep "
            f"expands it: each run's own values are in its section.</p><pre>{config}</pre>"
            f"</body></html>")


def _sweep_section(analysis: ArchiveAnalysis) -> str:
    """Per swept key: temperatures, β ratio and Gibbs −log₁₀ p against it, with theory."""
    keys = swept_keys(analysis.meta["config"])
    alpha = next((r.gibbs.alpha for r in analysis.runs if r.ok), 0.01)
    shown = ""
    for k in keys:
        panels = sweep_images(analysis.runs, k, keys, alpha)
        if panels:
            shown += f"<h3>{_e(k)}</h3><div class=panels>" + "".join(
                _img(png, f"{what} against {k}") for what, png in panels) + "</div>"
    if not shown:
        return ""
    return ("<h2 id='sweep'>The sweep against theory</h2><p>Virial temperatures (±2 SE, log "
            "axis) with the exact theory (a curve where it could be recomputed along the "
            "swept value, else a bar per run); β_0/β_1 = T_1/T_0 (1 for a Gibbs law; only for "
            "two coordinates or more); the Gibbs test's family-wise p-value as −log₁₀ p "
            "against its level (a triangle at 300: p < 1e-300). With several swept keys, one "
            "series per value of the others.</p>" + shown)


def render(path: str, verify: bool = True, thresholds: Thresholds | None = None) -> str:
    """Analyse the archive at ``path`` (checksums first, unless not ``verify``) and render it.

    ``thresholds``: what "converged" means (``mixing.Thresholds``; the defaults when None).
    """
    return render_html(analyze_archive(path, verify, thresholds))


def write_report(path: str, output: str, verify: bool = True,
                 thresholds: Thresholds | None = None) -> None:
    """Write the report of the archive at ``path`` to ``output``."""
    text = render(path, verify, thresholds)
    with open(output, "w", encoding="utf-8") as f:
        f.write(text)
