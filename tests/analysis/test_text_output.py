"""The terminal summary never cuts a number: at 80 columns, narrower, and in a pipe or file."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from sgdthermo.analysis.analyze import analyze_archive
from sgdthermo.analysis.render.tables import WIDE, fit_tables, output_console
from sgdthermo.analysis.render.text import print_summary

from tests.conftest import run_local

JOB = {"seed": 1, "model": {"kind": "quadratic", "hessian": [1.0, 2.0, 0.5],
                            "noise_cov": [1.0, 9.0, 4.0]},
       "rule": {"kind": "sgd", "lr": 0.1},
       "run": {"chains": 4, "draws": 400, "burn_in": 100},
       "cluster": {"shard_chains": 2, "chunk_draws": 200},
       "sweep": {"grid": {"rule.lr": [0.05, 0.2]}}}


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    return analyze_archive(run_local(tmp_path_factory.mktemp("text"), JOB))


@pytest.mark.parametrize("width", [80, 60, WIDE])
def test_every_number_is_printed_whole_within_the_width(analysis, width):
    buf = io.StringIO()
    print_summary(analysis, Console(file=buf, width=width))
    out = buf.getvalue()
    assert max(len(line) for line in out.splitlines()) <= width
    assert "…" not in out
    tokens = set(out.split())
    for r in analysis.as_dict()["runs"]:
        tp, th = r["temperature"], r["theory"]
        for i in range(3):
            for number in (f"{tp['virial'][i]:.4g}", f"{tp['virial_se'][i]:.2g}",
                           f"{tp['fluctuation'][i]:.4g}", f"{th['variance'][i]:.4g}",
                           f"{th['measured_variance'][i]:.4g}", f"{th['iat'][i]:.3g}"):
                assert number in tokens, (number, width)
        assert f"{r['worst']['min_ess_tail']:.0f}" in tokens  # tail ESS is shown too


def test_a_table_too_wide_is_split_repeating_its_key_column():
    head = ["i"] + [f"column {j}" for j in range(12)]
    rows = [[str(i)] + [f"{1.2345678e-5 * (i + 1) * (j + 1):.6g}" for j in range(12)]
            for i in range(3)]
    tables = fit_tables("t", head, rows, 50)
    assert len(tables) > 1
    buf = io.StringIO()
    console = Console(file=buf, width=50)
    for t in tables:
        console.print(t)
    out = buf.getvalue()
    assert max(len(line) for line in out.splitlines()) <= 50
    for row in rows:
        for cell in row[1:]:
            assert cell in out.split()
    assert sum(t.columns[0].header == "i" for t in tables) == len(tables)
    # a negative control: the same cells in one 50-column table are cut (what main printed)
    one = fit_tables("t", head, rows, 10_000)[0]
    buf = io.StringIO()
    Console(file=buf, width=50).print(one)
    assert any(cell not in buf.getvalue().split() for row in rows for cell in row[1:])


def test_a_label_wider_than_the_width_wraps_at_its_spaces_and_keeps_the_key():
    label = 'rule=sgd(lr=0.2), model.noise_cov={"isotropic": 1.0, "hessian": 2.0}, seed=12345'
    rows = [["0", label, "1.001"], ["1", "short", "0.998"]]
    buf = io.StringIO()
    console = Console(file=buf, width=50)
    for t in fit_tables("t", ["run", "label", "max R-hat"], rows, 50):
        console.print(t)
    out = buf.getvalue()
    assert "…" not in out and "run" in out.split()
    assert max(len(line) for line in out.splitlines()) <= 50
    assert label.split() == [w for w in out.split() if w in label.split()]  # every word, in order
    assert "1.001" in out.split() and "0.998" in out.split()


def test_a_pipe_or_file_gets_the_wide_layout(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    assert output_console().width == WIDE  # pytest captures stdout: not a terminal
    monkeypatch.setenv("COLUMNS", "80")  # unless the user asks for a width
    assert output_console().width == 80


def test_a_p_value_that_underflowed_reads_below_1e_300_not_zero():
    from sgdthermo.analysis.law.gibbs import format_p
    assert format_p(0.0) == "< 1e-300" and format_p(1e-310) == "< 1e-300"
    assert format_p(5.71e-114) == "5.71e-114" and format_p(0.25, 2) == "0.25"
    assert format_p(float("nan")) == format_p(None) == "–"


def test_p_equals_never_reads_p_equals_less_than():
    from sgdthermo.analysis.law.gibbs import p_equals

    assert p_equals(0.0) == "p < 1e-300" and p_equals(0.0123) == "p = 0.0123"


def test_every_outcome_is_said_and_a_cut_table_says_so(tmp_path):
    """The O3 check says pass/fail with its p-value, a run says whether it converged, and a
    per-coordinate table of 20 coordinates says it shows the first 8."""
    job = {**JOB, "model": {"kind": "quadratic", "hessian": [1.0] * 20, "noise_cov": [1.0] * 20},
           "run": {"chains": 4, "draws": 2000, "burn_in": 200}, "sweep": {}}
    analysis = analyze_archive(run_local(tmp_path, job))
    buf = io.StringIO()
    print_summary(analysis, Console(file=buf, width=100))
    out = " ".join(buf.getvalue().split())  # sentences wrap at the width
    assert "(first 8 of 20; --json for all)" in out
    assert "Stationarity check, O3" in out and ("passes at the 0.1 % level" in out
                                                 or "FAILS at the 0.1 % level" in out)
    converged = analysis.runs[0].converged
    assert ("Run 0 has not converged" in out) != converged
    record = analysis.as_dict()["runs"][0]
    assert len(record["temperature"]["virial"]) == 20  # --json has them all
    entropy = record["current"]["entropy_production"]
    assert entropy == 0.0  # reversible (ΛHΣ symmetric): exactly 0, not rounding noise
    assert "entropy production 0 nats/step" in out
