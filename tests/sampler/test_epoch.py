"""Epoch reshuffling: the exact cyclostationary law per phase, measured against it.

Checks: the closed form (equal curvature) equals the general method over used-example sets to
rounding; both equal a direct numpy simulation within its MCSE; the engine's epoch runs match
the law per phase (negative control: the without-replacement stationary law, which ignores the
dependence between an epoch's batches, is rejected); claims 8 and 1 under epoch reshuffling.
"""

from __future__ import annotations

import numpy as np
import pytest
from sgdthermo.analysis.claims import evaluate_claim
from sgdthermo.analysis.claims.common import FAILS, FIRST_ORDER
from sgdthermo.analysis.diagnostics.estimators import mean_and_se
from sgdthermo.analysis.law.temperature import thinning_stride
from sgdthermo.analysis.record import analyze_run
from sgdthermo.analysis.theory import epoch as et
from sgdthermo.analysis.theory.linear import stationary_theory
from sgdthermo.sampler.jobspec import expand, validate

from tests.conftest import run_local, simulate


def built(model: dict, rule: dict, batch: int, sampling: str = "epoch"):
    spec = expand(validate({"model": model, "rule": rule,
                            "run": {"batch_size": batch, "sampling": sampling}}))[0]
    return spec.model.build(batch), spec.rule.build(batch)


@pytest.mark.parametrize("rule", [{"kind": "sgd", "lr": 0.3},
                                  {"kind": "momentum", "lr": 0.1, "mu": 0.5}])
@pytest.mark.parametrize("n", [6, 7])  # 7: one example dropped per epoch
def test_closed_form_equals_the_general_method(rule, n):
    model, built_rule = built({"kind": "mean", "n": n}, rule, 2)
    law = et.epoch_law(model, built_rule, 2)
    assert law is not None and law.method.startswith("closed form")
    p, r = model.example_affine()
    h = p.mean(axis=0)
    hb = built_rule.linear_form(np.ones(1), np.ones(1), True)
    general = et._general_law(p, r, h, np.linalg.solve(h, r.mean(axis=0)), 2, n // 2,
                              (hb.rates, hb.mu, hb.dampening))
    # small, well-conditioned linear algebra (contractions, 3–4 matrices): rounding only
    np.testing.assert_allclose(general.phase_cov, law.phase_cov, rtol=1e-9)
    np.testing.assert_allclose(general.phase_mean, law.phase_mean, atol=1e-12)


def test_general_law_equals_a_direct_simulation():
    """2-D least squares, N = 7, B = 2 (unequal curvature): numpy simulation per phase."""
    model, rule = built({"kind": "linear_regression",
                         "data": {"n": 7, "d": 2, "seed": 4, "condition": 1.0}},
                        {"kind": "sgd", "lr": 0.2}, 2)
    law = et.epoch_law(model, rule, 2)
    assert law is not None and law.method == "exact over used-example sets"
    x, y = model.dataset()
    rng = np.random.default_rng(0)
    c, k = 4000, 3
    theta = np.tile(law.theta_star, (c, 1))
    rows: list[list[np.ndarray]] = [[] for _ in range(k)]
    for epoch in range(300):
        perm = np.argsort(rng.random((c, 7)), axis=1)
        for j in range(k):
            if epoch >= 50:
                rows[j].append(theta.copy())
            idx = perm[:, 2 * j:2 * j + 2]
            xb, yb = x[idx], y[idx]
            resid = np.einsum("cbi,ci->cb", xb, theta) - yb
            theta = theta - 0.2 * np.einsum("cbi,cb->ci", xb, resid) / 2
    for j in range(k):
        draws = np.stack(rows[j], axis=1)  # [C, epochs, 2]
        dev = draws - law.phase_mean[j]
        second, se = mean_and_se(dev[..., 0:1] * dev[..., 1:2])
        assert abs(second[0] - law.phase_cov[j, 0, 1]) < 4 * se[0]
        var, se = mean_and_se(dev**2)
        assert np.all(np.abs(var - np.diag(law.phase_cov[j])) < 4 * se)


def test_engine_epoch_runs_match_the_law_per_phase(tmp_path):
    cfg = {"seed": 5, "model": {"kind": "mean", "n": 20},
           "rule": {"kind": "sgd", "lr": 0.1},
           "run": {"chains": 32, "draws": 3000, "burn_in": 1000, "thin": 5, "batch_size": 5,
                   "sampling": "epoch", "init_scale": 0.0},
           "cluster": {"shard_chains": 32, "chunk_draws": 1000}}
    run = analyze_run(simulate(tmp_path, cfg))
    epoch = run.estimates.epoch
    assert epoch is not None and list(epoch.phases) == [0, 1, 2, 3]
    assert epoch.p_value > 1e-3, epoch.as_dict()
    assert run.theory is not None and "4 of 4 epoch phases" in run.theory.note
    # negative control: the without-replacement law (independent batches) per phase
    wor = stationary_theory(run.model, run.rule, run.spec.run.model_copy(
        update={"sampling": "without_replacement"}))
    theta = np.asarray(run.posterior()["theta"].values)
    control = (epoch.measured[:, 0] - wor.variance[0]) / epoch.se[:, 0]
    assert np.abs(control).max() > 10
    # the exact epoch average against the draws' own variance
    m, se, exact = epoch.average
    assert abs(m[0] - exact[0]) < 4 * se[0]
    assert abs(theta.var() - wor.variance[0]) > 10 * se[0]


def test_subsampling_stride_visits_every_phase():
    for period, thin in ((4, 5), (62, 7), (15, 7), (250, 1)):
        stride = thinning_stride(64, 4000, 4000, period, thin)
        assert np.gcd(stride, period) == 1, (period, stride)


def test_batch_scaling_under_epoch_reshuffling(tmp_path):
    """N = 1024 divisible by every B (K ≥ 16): the rule holds in the small-rate limit (spread
    ≈ 1/K² < 1 %); N = 1030 drops 6 examples per epoch at B = 16, 64: it fails."""
    base = {"claim": "batch_scaling", "seed": 2, "model": {"kind": "mean", "n": 1024},
            "rule": {"kind": "sgd", "lr": 0.01},
            "run": {"chains": 32, "draws": 1500, "thin": 7, "burn_in": 1400,
                    "init_scale": 0.0, "sampling": "epoch"},
            "cluster": {"shard_chains": 32, "chunk_draws": 500},
            "sweep": {"zip": {"run.batch_size": [1, 16, 64], "rule.lr": [0.01, 0.16, 0.64]}}}
    result = evaluate_claim(run_local(tmp_path, base))
    assert result.verdict == FIRST_ORDER, result.explanation
    assert result.numbers["small_rate_spread"] < 0.01
    base["model"]["n"] = 1030  # 1030 mod 16 = 6, mod 64 = 6 examples dropped per epoch
    result = evaluate_claim(run_local(tmp_path, base, "b.zarr"))
    assert result.verdict == FAILS and "N mod B" in result.explanation, result.explanation


def test_per_phase_test_size_and_power():
    """200 replicates (full table: benchmarks/RESULTS.md): size at α = 0.01 at most 8
    rejections (observed 2/400; P(X > 8 | p = 0.01) < 10⁻³), power against the law at 1.05 η
    and against independent batches at least 190 (observed 400/400 each)."""
    from sgdthermo.analysis.calibration.epoch import rejections

    r = rejections(200, seed=13, factors=(1.0, 1.05))
    assert r["1 η"] <= 8 and r["1.05 η"] >= 190 and r["independent batches"] >= 190, r


def test_report_of_an_epoch_sweep_with_a_zero_gibbs_p(tmp_path):
    """An epoch run's Gibbs p is 0: the sweep figure draws −log₁₀ p, with an underflowed p as
    a triangle at 300 inside the axis (a log axis of p once went subnormal and broke)."""
    from sgdthermo.analysis.analyze import analyze_archive
    from sgdthermo.analysis.render import sweep_figures
    from sgdthermo.analysis.render.report import render_html

    cfg = {"seed": 5, "model": {"kind": "mean", "n": 20}, "rule": {"kind": "sgd", "lr": 0.1},
           "run": {"chains": 32, "draws": 3000, "burn_in": 1000, "thin": 5, "batch_size": 5,
                   "init_scale": 0.0},
           "cluster": {"shard_chains": 32, "chunk_draws": 1000},
           "sweep": {"grid": {"run.sampling": ["epoch", "iid"]}}}
    analysis = analyze_archive(run_local(tmp_path, cfg))
    assert min(r.gibbs.p_value for r in analysis.runs) == 0.0
    html = render_html(analysis)
    assert "<h3>run.sampling</h3>" in html and "Epoch reshuffling, per epoch phase" in html
    keys = ["run.sampling"]
    panels = dict(sweep_figures.sweep_panels(analysis.runs, "run.sampling", keys, 0.01))
    ax = panels["Gibbs p"].axes[0]
    low, high = ax.get_ylim()  # −log₁₀ p: the underflowed p sits at 300, inside the axis
    assert low == 0.0 and sweep_figures.P_FLOOR < high < 400
    drawn = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections])
    assert sweep_figures.P_FLOOR in drawn and np.all(np.isfinite(drawn))
