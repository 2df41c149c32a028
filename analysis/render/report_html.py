"""The HTML pieces of a run's section in the report: tables, verdicts and the checks behind them.

``report`` assembles the page; the pieces here render one JSON record each
(``RunAnalysis.as_dict``), so the HTML says what the text and ``--json`` say.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from ..diagnostics.mixing import convergence_words
from ..law.current import current_sentence
from ..law.epoch_phases import epoch_sentence
from ..law.gibbs import format_p, p_equals


def esc(x: Any) -> str:
    """``x`` as escaped HTML text."""
    return html.escape(str(x))


def num(v: float, se: float | None = None) -> str:
    """``v`` (``± se``) to 4 significant digits; ``–`` when it is not a number."""
    if v is None or not np.isfinite(v):
        return "–"
    return f"{v:.4g}" if se is None else f"{v:.4g} ± {se:.2g}"


def table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A scrollable table; the first ``left`` columns left-aligned (cells are HTML)."""
    head = "".join(f"<th class={'l' if i < left else ''}>{esc(h)}</th>"
                   for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td class={'l' if i < left else ''}>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<div class=scroll><table><tr>{head}</tr>{body}</table></div>"


def verdict(g: dict) -> str:
    """The Gibbs verdict, coloured, with its family-wise p-value."""
    cls = {"Gibbs": "good", "not Gibbs": "bad"}.get(g["verdict"], "")
    p = "" if not np.isfinite(g["p_value"]) else f" (family-wise {p_equals(g['p_value'])})"
    return f"<span class={cls}>{esc(g['verdict'])}</span>{esc(p)}"


def gibbs_components(g: dict) -> str:
    """The Gibbs verdict, then each component with its statistic, df and p-value."""
    rows = [[esc(c["name"]), esc(c["status"]), esc(c["statistic_kind"]), num(c["statistic"]),
             esc(", ".join(f"{d:.4g}" for d in c["df"])), format_p(c["p_value"]), esc(c["reason"])]
            for c in g["components"]]
    return (f"<p>Gibbs test: {verdict(g)} — {esc(g['reason'])}. Bonferroni over the applicable "
            f"components at α = {g['alpha']}; {g['batches']} batch means.</p>"
            + table(["component", "status", "statistic", "value", "df", "p", "note"], rows))


def converged_cell(c: dict | None) -> str:
    """The run table's ``converged`` cell (red when not)."""
    words = convergence_words(c)
    return f"<span class=bad>{esc(words)}</span>" if words.startswith("NO") else esc(words)


def convergence_section(r: dict) -> str:
    """Whether the chains converged, against the stated thresholds; what is withheld if not."""
    c = r.get("convergence")
    if not c:
        return ""
    limits = (f"max R-hat ≤ {c['r_hat_max']:g} (rank-normalised, split), min bulk and tail ESS "
              f"≥ {c['ess_min']:g}, and the exact stationarity identity where there is one")
    notes = "".join(f" ({esc(n)})" for n in c["notes"])
    if c["converged"]:
        return f"<p>Converged: {esc(limits)} hold{notes}.</p>"
    return (f"<p class=bad>Not converged: {esc('; '.join(c['reasons']))}{notes}.</p><p>Checked: "
            f"{esc(limits)}. Every verdict below that assumes a stationary law (the Gibbs test, "
            "z-scores against theory, exact-law and current tests) is undecided; the numbers "
            "are shown as measured. Run longer (run.draws, run.burn_in) or use run.until.</p>")


def withheld(record: dict) -> str:
    """The prefix of a withheld comparison's sentence (empty when it was judged)."""
    return "<b>Undecided (chains not converged):</b> " if "undecided" in record else ""


def stationarity(tp: dict) -> str:
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


def current_section(c: dict) -> str:
    """The probability current: the sentence, then A_k per lag for the first pairs."""
    rows = []
    for p, (i, j) in enumerate(c["pairs"][:3]):
        for k, lag in enumerate(c["lags"]):
            exact = "–" if c["exact"] is None else num(c["exact"][k][p])
            z = "–" if c["z_vs_exact"] is None else f"{c['z_vs_exact'][k][p]:+.2f}"
            rows.append([f"A[{i},{j}]", str(lag), num(c["measured"][k][p], c["se"][k][p]),
                         exact, z])
    theory = "exact" if c.get("theory_exact", True) else "approximate theory"
    return (f"<h3>Probability current</h3><p>{withheld(c)}{esc(current_sentence(c))}</p>"
            + table(["entry", "lag (draws)", "measured ± SE", theory, "z"], rows))


def epoch_section(e: dict) -> str:
    """Epoch reshuffling: the sentence, then every visited phase against its exact law."""
    rows = []
    for j, phase in enumerate(e["phases"]):
        for c, coord in enumerate(e["coords"]):
            rows.append([str(phase), str(coord), num(e["measured"][j][c], e["se"][j][c]),
                         num(e["exact"][j][c]), f"{e['z'][j][c]:+.2f}"])
    return (f"<h3>Epoch reshuffling, per epoch phase</h3><p>{withheld(e)}"
            f"{esc(epoch_sentence(e))}</p>"
            + table(["phase", "i", "Var θ_i measured ± SE", "exact", "z"], rows))


def layers_section(layers: list[dict]) -> str:
    """One row per layer (``layers.layer_summary``): convergence and the layer temperature."""
    rows = [[esc(row["name"]), str(row["size"]), num(row["max_r_hat"]), num(row["min_ess_bulk"]),
             num(row["min_ess_tail"]), num(row["median_iat"]),
             num(row["t_fluct"], row["t_fluct_se"]), num(row["t_fluct_sd"]), num(row["t_virial"]),
             num(row["beta_ratio"], row["beta_ratio_se"])] for row in layers]
    return ("<h3>Per layer</h3><p>T layer: the mean of the layer's fluctuation temperatures, its "
            "SE from batches of its summed per-block sums (correlations between coordinates "
            "kept); T sd: their spread over the layer; β/β₀: the inverse-temperature ratio to "
            f"the first layer ({esc(layers[0]['name'])}).</p>" + table(
                ["layer", "size", "max R-hat", "min ESS bulk", "min ESS tail", "median τ",
                 "T layer", "T sd", "T virial (mean)", "β/β₀"], rows))
