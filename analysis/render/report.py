"""The HTML renderer of an ``ArchiveAnalysis``: one self-contained file (inline CSS and PNG figures).

It renders the same record as the terminal and ``--json`` (``RunAnalysis.as_dict``), so the three
cannot disagree; only the figures read the draws again.
"""

from __future__ import annotations

import json

import numpy as np

from ..analyze import ArchiveAnalysis, analyze_archive
from ..claims import ClaimResult
from ..diagnostics.mixing import Thresholds
from ..diagnostics.until import until_sentence
from ..law.comparison import measured_position
from ..law.exact_comparison import exact_sentence, shape_words
from ..law.exact_comparison_2d import exact_sentence_2d
from ..record import RunAnalysis
from .landscape_html import curvature_section, flatness_section, landscape_section
from .plots import temperature_bars, trace_and_rank
from .report_html import (
    converged_cell,
    convergence_section,
    current_section,
    epoch_section,
    esc,
    gibbs_components,
    layers_section,
    num,
    stationarity,
    table,
    verdict,
    withheld,
)
from .run_figures import acf_plot, ess_plot, pair_plot
from .sweep_figures import sweep_images, swept_keys
from .text import check_words

CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.8em 0;font-size:13px}.scroll{overflow-x:auto}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f3f3f3}nav{columns:2;font-size:14px}nav a{display:block}
details pre{background:#f8f8f8;padding:0.5em;overflow-x:auto}
td.l,th.l{text-align:left}.bad{color:#b00;font-weight:bold}.good{color:#070}
h2{border-bottom:1px solid #ddd;margin-top:2em}code{background:#f5f5f5;padding:1px 4px}
img{max-width:100%}.panels{display:flex;flex-wrap:wrap;gap:4px}
.panels img{max-width:32%;min-width:300px}"""


def _img(png: str | None, alt: str) -> str:
    return "" if png is None else f"<img alt='{esc(alt)}' src='data:image/png;base64,{png}'>"


def _run_section(run: RunAnalysis, r: dict) -> str:
    out = [f"<h2 id='run-{r['run']}'>Run {r['run']}: {esc(r['label'])}</h2>",
           f"<p>rule <code>{esc(json.dumps(run.spec.rule.model_dump()))}</code>, model "
           f"<code>{esc(r['model'])}</code>, batch {run.spec.run.batch_size}, sampling "
           f"{esc(run.spec.run.sampling)}, {r['chains']} chains × {r['draws']} draws"
           f"{'' if r['complete'] else ' (incomplete)'}, {r['diverged_chains']} diverged.</p>"]
    spec = esc(json.dumps(run.spec.model_dump(include={"model", "rule", "run"}), indent=2))
    out.append(f"<details><summary>what this run used (resolved config)</summary>"
               f"<pre>{spec}</pre></details>")
    if r.get("until"):
        out.append(f"<h3>Run until converged</h3><p>{esc(until_sentence(r['until']))}</p>")
    if r.get("status") != "ok":
        return "".join(out) + f"<p class=bad>{esc(r.get('status'))}</p>"
    out.append(convergence_section(r))
    out.append(gibbs_components(r["gibbs"]))
    out.append(f"<p>Temperature ratio max/min {num(r['gibbs']['temperature_ratio'])}, largest "
               f"tested off-diagonal virial term {num(r['gibbs']['max_offdiag'])}·T.</p>")
    if r.get("current"):
        out.append(current_section(r["current"]))
    if r.get("epoch"):
        out.append(epoch_section(r["epoch"]))
    if r.get("exact_law"):
        out.append(f"<h3>Exact finite-η law</h3><p>{withheld(r['exact_law'])}"
                   f"{esc(exact_sentence(r['exact_law'], shape_words(r['gibbs'])))}</p>")
    if r.get("exact_law_2d"):
        out.append(f"<h3>Exact finite-η law (2-D)</h3><p>{withheld(r['exact_law_2d'])}"
                   f"{esc(exact_sentence_2d(r['exact_law_2d']))}</p>")
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
                         num(float(cols["mean"][i])), num(float(cols["sd"][i])),
                         num(float(cols["mcse_mean"][i])), num(float(cols["r_hat"][i])),
                         num(float(cols["ess_bulk"][i])), num(float(cols["ess_tail"][i]))])
    shown = "" if not cut else f"<p>Shown: {esc('; '.join(cut))} (sgdthermo analyze --json: all).</p>"
    out.append("<h3>Diagnostics (ArviZ)</h3>" + table(
        ["quantity", "mean", "sd", "MCSE", "R-hat", "ESS bulk", "ESS tail"], rows) + shown)
    if r.get("layers"):
        out.append(layers_section(r["layers"]))
    out.append(landscape_section(r, run.spec.run.thin))
    if r.get("curvature"):
        out.append(curvature_section(r["curvature"]))
    if r.get("flatness"):
        out.append(flatness_section(r["flatness"]))
    tp, th = r["temperature"], r["theory"]
    out.append(f"<h3>Temperatures (O3)</h3><p>{stationarity(tp)}</p>")
    fl = "T fluctuation" if tp["fluctuation_exact"] else "T fluctuation (approx.)"
    head = ["i", "T virial", "β = 1/T (virial)", fl, "z (check)"]
    if th:
        head += ["T theory", "z (virial − theory)", "Var measured", "Var theory", "τ measured",
                 "τ theory"]
    rows = []
    judged = th is not None and "undecided" not in th
    for i in range(min(len(tp["virial"]), 32)):
        t, se = tp["virial"][i], tp["virial_se"][i]
        beta = num(1 / t, se / t**2) if t > 0 else "–"
        row = [str(i), num(t, se), beta, num(tp["fluctuation"][i], tp["fluctuation_se"][i]),
               "–" if tp["z"][i] is None or not np.isfinite(tp["z"][i]) else f"{tp['z'][i]:+.2f}"]
        if th:
            j = measured_position(th, i)  # None: coordinate not recorded (run.record)
            z = th["virial_z"][i]
            row += [num(th["temperature"][i]),
                    f"{z:+.2f}" if judged and z is not None and np.isfinite(z) else "–",
                    "–" if j is None else num(th["measured_variance"][j], th["variance_se"][j]),
                    num(th["variance"][i]),
                    "–" if j is None else num(th["measured_iat"][j], th["iat_se"][j]),
                    "–" if th["iat"] is None else num(th["iat"][i])]
        rows.append(row)
    d = len(tp["virial"])
    out.append(table(head, rows) + ("" if d <= 32 else
                                     f"<p>Shown: the first 32 of {d} coordinates (sgdthermo "
                                     "analyze --json: all).</p>"))
    if th:
        out.append(f"<p>Theory: {esc(th['note'])}; predicted excess loss E[L] − L* = "
                   f"{th['excess_loss']:.4g}; theory says the law is "
                   f"{'Gibbs' if th['gibbs'] else 'not Gibbs'}.</p>")
        if th.get("spike_directions"):
            sd = th["spike_directions"]
            out.append(table(["spike", "Var ûᵀθ measured", "Var ûᵀθ theory", "z"], [
                [str(j), num(m, se), num(t), f"{z:+.2f}"] for j, (m, se, t, z) in enumerate(
                    zip(sd["measured_variance"], sd["variance_se"], sd["variance"],
                        sd["variance_z"], strict=True))]))
    out.append(_img(temperature_bars(r), "temperatures"))
    out.append("<h3>The law of θ[0], θ[1] and its autocorrelation</h3>"
               + _img(pair_plot(run), "pair plot") + _img(acf_plot(run), "autocorrelation"))
    out.append("<h3>Convergence: trace, rank, local and quantile ESS</h3>"
               + _img(trace_and_rank(run), "trace and rank") + _img(ess_plot(run), "ESS"))
    return "".join(out)


def _claim_section(c: ClaimResult | None) -> str:
    if c is None:
        return ""
    cls = ("good" if c.verdict.startswith("holds") else "" if c.verdict == "undecided"
           else "bad")
    return (f"<h2 id='claim'>Claim: {esc(c.title)}</h2><p>Described in {esc(c.seed)}.</p>"
            f"<p><b>Prediction:</b> {esc(c.prediction)}</p>"
            f"<p><b>Verdict: <span class={cls}>{esc(c.verdict)}</span></b> — "
            f"{esc(c.explanation)}</p>" + table(c.columns, [[esc(x) for x in r] for r in c.rows]))


def render_html(analysis: ArchiveAnalysis) -> str:
    """The report of an analysed archive as an HTML string."""
    meta, path, runs = analysis.meta, analysis.archive, analysis.runs
    records = [r.as_dict() for r in runs]
    overview = table(
        ["run", "label", "rule", "draws × chains", "max R-hat", "min ESS bulk", "min ESS tail",
         "converged", "O3 check", "Gibbs"],
        [[str(r["run"]), esc(r["label"]), esc(r["rule"]), f"{r['draws']} × {r['chains']}",
          num(r["worst"]["max_r_hat"]) if "worst" in r else "–",
          num(r["worst"]["min_ess_bulk"]) if "worst" in r else "–",
          num(r["worst"]["min_ess_tail"]) if "worst" in r else "–",
          converged_cell(r.get("convergence")),
          esc(check_words(r["temperature"])) if "temperature" in r else "–",
          verdict(r["gibbs"]) if "gibbs" in r else esc(r.get("status"))] for r in records],
        left=3)
    sections = "".join(_run_section(run, r) for run, r in zip(runs, records, strict=True))
    config = esc(json.dumps(meta["config"], indent=2))
    sweep = _sweep_section(analysis)
    toc = [("runs", "Runs")] + ([("claim", "Claim")] if analysis.claim else []) + (
        [("sweep", "The sweep against theory")] if sweep else []) + [
        (f"run-{r['run']}", f"Run {r['run']}: {r['label']}") for r in records] + [
        ("config", "Job config")]
    nav = "<nav>" + "".join(f"<a href='#{a}'>{esc(t)}</a>" for a, t in toc) + "</nav>"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>sgdthermo report: "
            f"{esc(meta['config']['name'])}</title><style>{CSS}</style></head><body>"
            f"<h1>sgdthermo report: {esc(meta['config']['name'])}</h1>"
            f"<p>Archive <code>{esc(path)}</code>, created {esc(meta['created'])} with sgdthermo "
            f"{esc(meta['package_version'])} on {esc(meta['device'])}.</p>{nav}"
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
            shown += f"<h3>{esc(k)}</h3><div class=panels>" + "".join(
                _img(png, f"{what} against {k}") for what, png in panels) + "</div>"
    if not shown:
        return ""
    return ("<h2 id='sweep'>The sweep against theory</h2><p>Virial temperatures (±2 SE, log "
            "axis) with the exact theory (a curve where it could be recomputed along the "
            "swept value, else a bar per run); β_0/β_1 = T_1/T_0 (1 for a Gibbs law; only for "
            "two coordinates or more); the Gibbs test's family-wise p-value as −log₁₀ p "
            "against its level (a triangle at 300: p < 1e-300). With several swept keys, one "
            "series per value of the others.</p>" + shown)


def render(path: str, verify: bool = True, thresholds: Thresholds | None = None,
           top_k: int = 0, curvature_at: str = "mean", pca: int = 0,
           import_model: bool = False) -> str:
    """Analyse the archive at ``path`` (checksums first, unless not ``verify``) and render it.

    ``thresholds``: what "converged" means (``mixing.Thresholds``; the defaults when None);
    ``top_k``, ``curvature_at``, ``pca``, ``import_model``: curvature and flatness
    (``analyze_archive``).
    """
    return render_html(analyze_archive(path, verify, thresholds, top_k, curvature_at, pca,
                                       import_model))


def write_report(path: str, output: str, verify: bool = True,
                 thresholds: Thresholds | None = None, top_k: int = 0,
                 curvature_at: str = "mean", pca: int = 0, import_model: bool = False) -> None:
    """Write the report of the archive at ``path`` to ``output``."""
    text = render(path, verify, thresholds, top_k, curvature_at, pca, import_model)
    with open(output, "w", encoding="utf-8") as f:
        f.write(text)
