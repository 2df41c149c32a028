"""No verdict on chains that have not converged (``analysis.mixing``), in text, JSON and HTML.

A quadratic at a rate so small that the chains stay where they start (R-hat ≫ 1) against the
same quadratic at a rate that mixes (the negative control: every verdict is made). The judgement
itself is tested on hand-built inputs: each threshold, one chain, a point mass, a failed identity.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from rich.console import Console
from sgdthermo.analysis.analyze import analyze_archive
from sgdthermo.analysis.diagnostics.mixing import Thresholds, judge
from sgdthermo.analysis.render.report import render_html
from sgdthermo.analysis.render.text import print_summary
from sgdthermo.cluster import cli

from tests.conftest import quadratic_config, run_local


def _job(lr: float, claim: str | None = None) -> dict:
    cfg = quadratic_config([1.0, 1.0], [1.0, 9.0], {"kind": "sgd", "lr": lr}, chains=8,
                           draws=2000, burn_in=0, init_scale=3.0)
    cfg["sweep"] = {"grid": {"rule.lr": [lr, 2 * lr]}}
    if claim:
        cfg["claim"] = claim
    return cfg


@pytest.fixture(scope="module")
def stuck(tmp_path_factory) -> str:
    """Chains that barely move: η = 1e-4 from θ₀ ~ N(0, 3²), τ ≈ 5000 steps ≫ 2000 draws."""
    return run_local(tmp_path_factory.mktemp("stuck"), _job(1e-4, "batch_scaling"))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> str:
    """The control: η = 0.1, τ ≈ 5 steps, 2000 draws of 8 chains."""
    return run_local(tmp_path_factory.mktemp("mixed"), _job(0.1, "batch_scaling"))


def test_stuck_chains_get_no_verdict(stuck):
    analysis = analyze_archive(stuck)
    for run in analysis.runs:
        c = run.convergence
        assert c is not None and not c.converged and c.max_r_hat > 1.05
        assert any("R-hat" in r for r in c.reasons) and any("ESS" in r for r in c.reasons)
        assert run.gibbs.verdict == "undecided" and "not converged" in run.gibbs.reason
        assert np.isfinite(run.gibbs.p_value) or run.gibbs.p_value != run.gibbs.p_value
    claim = analysis.claim
    assert claim is not None and claim.verdict == "undecided"
    assert "have not converged" in claim.explanation and "run 0" in claim.explanation
    assert claim.numbers["unconverged_runs"] == [0, 1] and claim.rows  # the table is kept
    record = analysis.to_json()["runs"][0]
    json.dumps(record, allow_nan=False)
    assert record["convergence"]["converged"] is False
    assert record["convergence"]["r_hat_max"] == 1.05 and record["convergence"]["ess_min"] == 400
    assert "not converged" in record["theory"]["undecided"]
    assert "not converged" in record["current"]["undecided"]


def test_stuck_chains_in_text_and_report(stuck, tmp_path):
    analysis = analyze_archive(stuck)
    out = tmp_path / "out.txt"
    with out.open("w") as f:
        print_summary(analysis, Console(file=f, width=100))
    text = out.read_text()
    assert "converged" in text and "O3 check" in text and "NO (R-hat)" in text
    assert "Run 0 has not converged: max R-hat" in text and "undecided" in text
    assert "[undecided: chains not converged] Probability current" in text
    assert "verdict: undecided" in text
    html = render_html(analysis)
    assert "Not converged: max R-hat" in html and "Undecided (chains not converged)" in html


def test_converged_chains_are_judged(mixed):
    """Negative control: the same job at a rate that mixes gets every verdict."""
    analysis = analyze_archive(mixed)
    for run in analysis.runs:
        assert run.converged, run.convergence.reason
        assert run.gibbs.verdict == "not Gibbs"  # σ² = 1, 9: two temperatures
    assert analysis.claim is not None and analysis.claim.verdict != "undecided"
    assert "undecided" not in analysis.to_json()["runs"][0]["theory"]


def test_thresholds_are_the_users(stuck, capsys):
    loose = analyze_archive(stuck, thresholds=Thresholds(r_hat_max=1e6, ess_min=0))
    for run in loose.runs:  # only the stationarity identity is left to fail (it does: a drift)
        assert all("identity" in r for r in run.convergence.reasons), run.convergence.reasons
    code = cli.main(["analyze", stuck, "--json", "--r-hat-max", "1e6", "--ess-min", "0"])
    record = json.loads(capsys.readouterr().out)["runs"][0]["convergence"]
    assert code == 0 and (record["r_hat_max"], record["ess_min"]) == (1e6, 0)
    assert all("identity" in r for r in record["reasons"])
    for flag, value, words in (("--r-hat-max", "0.5", "≥ 1"), ("--ess-min", "-1", "≥ 0"),
                               ("--r-hat-max", "nan", "≥ 1")):
        code = cli.main(["analyze", stuck, flag, value])
        err = capsys.readouterr().err
        assert code == 2 and flag in err and words in err and value in err
        assert len(err.strip().splitlines()) == 1


def test_a_transient_claim_judges_what_it_claims(tmp_path):
    """Claim 3 needs θ frozen (η = 1e-6): not converged on purpose, and it says so."""
    cfg = quadratic_config([1.0, 1.0], [1.0, 4.0], {"kind": "momentum", "lr": 1e-6, "mu": 0.5},
                           chains=16, draws=2000, burn_in=100, thin=1)
    cfg["claim"] = "weighted_average"
    analysis = analyze_archive(run_local(tmp_path, cfg))
    assert not analysis.runs[0].converged
    assert analysis.claim is not None and analysis.claim.verdict == "holds"
    assert "not stationary on purpose" in analysis.claim.explanation


WORST = {"max_r_hat": 1.002, "min_ess_bulk": 3000.0, "min_ess_tail": 2500.0}


@pytest.mark.parametrize("worst,chains,failed", [
    (WORST, 8, []),
    ({**WORST, "max_r_hat": 1.06}, 8, ["max R-hat 1.06 > 1.05"]),
    ({**WORST, "min_ess_bulk": 399.0}, 8, ["min bulk ESS 399 < 400"]),
    ({**WORST, "min_ess_tail": float("nan")}, 8, ["tail ESS undefined"]),
    ({**WORST, "max_r_hat": float("nan")}, 1, []),  # one chain: no R-hat, noted
    ({**WORST, "max_r_hat": float("nan")}, 4, []),  # nothing varies: a point mass, noted
    ({}, 4, ["bulk ESS undefined", "tail ESS undefined"]),  # no diagnostics at all
])
def test_judge_each_check(worst, chains, failed):
    c = judge(worst, None, chains)
    assert c.reasons == failed and c.converged == (not failed)
    if chains == 1:
        assert "2 chains" in c.notes[0]


def test_a_failed_identity_is_not_convergence():
    class Temps:
        agree, check, agreement_p = False, "O3", 1e-9

    c = judge(WORST, Temps(), 8)  # type: ignore[arg-type]
    assert not c.converged and "O3" in c.reason and "1e-09" in c.reason


@pytest.mark.parametrize("kwargs", [{"r_hat_max": 0.99}, {"ess_min": -1.0},
                                    {"r_hat_max": float("inf")}])
def test_thresholds_refuse_nonsense(kwargs):
    with pytest.raises(ValueError, match="must be"):
        Thresholds(**kwargs)


def test_the_gate_is_calibrated_by_simulation():
    """Size and power with binomial margins (tables: benchmarks/mixing_calibration.py).

    Stationary AR(1) chains (τ = 9, 8 × 1000 draws, 10 coordinates) are rarely flagged at the
    default R-hat bound, and mostly flagged at 1.01 (why the default is 1.05); a chain stuck
    1 SD away and chains started 10 SD out with τ ≈ 2000 are flagged almost always."""
    from sgdthermo.analysis.calibration.mixing import flag_rate

    size, reps = flag_rate("stationary", 60, 3, 8, 1000, 10, 0.8)
    assert size <= 3, size  # expected ≈ 0
    strict, _ = flag_rate("stationary", 60, 3, 8, 1000, 10, 0.8, Thresholds(1.01, 400))
    assert strict >= 20, strict
    for name, phi in (("stuck chain", 0.8), ("far start", 0.999)):
        power, _ = flag_rate(name, 60, 4, 8, 1000, 10 if name == "stuck chain" else 1, phi)
        assert power >= 57, (name, power)
