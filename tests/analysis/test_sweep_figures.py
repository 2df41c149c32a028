"""The sweep figures: one panel per image, one series per level of the other swept keys, each
with its own theory; no ratio panel for one coordinate; −log₁₀ p; tick labels that do not collide.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from sgdthermo.analysis.analyze import analyze_archive
from sgdthermo.analysis.render.plots import ticks_overlap
from sgdthermo.analysis.render.sweep_figures import P_FLOOR, label_parts, sweep_panels

from tests.conftest import quadratic_config, run_local

RULES = [{"kind": "sgd", "lr": 0.05}, {"kind": "preconditioned", "lr": 0.05, "power": 1},
         {"kind": "preconditioned", "lr": 0.05, "power": 2}]


@pytest.fixture(scope="module")
def two_factor(tmp_path_factory):
    cfg = quadratic_config([1.0, 1.0], [1.0, 9.0], RULES[0], chains=8, draws=2000, burn_in=1000,
                           thin=5)
    cfg["sweep"] = {"grid": {"run.batch_size": [1, 4], "rule": RULES}}
    return analyze_archive(run_local(tmp_path_factory.mktemp("two"), cfg))


def _curves(ax: plt.Axes) -> list:
    return [line for line in ax.get_lines() if len(line.get_xdata()) > 1
            and line.get_linestyle() != "None" and line.get_linestyle() != ":"]


def test_label_parts_cut_only_at_swept_keys():
    label = "run.batch_size=4, rule=preconditioned(lr=0.05, power=2)"
    assert label_parts(label, ["run.batch_size", "rule"]) == {
        "run.batch_size": "4", "rule": "preconditioned(lr=0.05, power=2)"}


def test_one_series_per_level_of_the_other_key(two_factor):
    keys = ["run.batch_size", "rule"]
    panels = dict(sweep_panels(two_factor.runs, "run.batch_size", keys, 0.01))
    assert list(panels) == ["temperatures", "beta ratio", "Gibbs p"]
    ax = panels["temperatures"].axes[0]
    names = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(names) == 3 and all(n.startswith("rule=") for n in names)
    curves = _curves(ax)  # every rule has exact theory: 2 coordinates × 3 rules, own colours
    assert len(curves) == 6 and len({c.get_color() for c in curves}) == 3
    # each rule's curve is its own theory: at B = 1 the three rules' T_1 differ
    starts = sorted({round(float(c.get_ydata()[0]), 6) for c in curves})
    assert len(starts) >= 4
    rule_axis = dict(sweep_panels(two_factor.runs, "rule", keys, 0.01))["temperatures"]
    legend = [t.get_text() for t in rule_axis.axes[0].get_legend().get_texts()]
    assert legend == ["run.batch_size=1", "run.batch_size=4"]


def test_rule_ticks_are_readable(two_factor):
    keys = ["run.batch_size", "rule"]
    for _, fig in sweep_panels(two_factor.runs, "rule", keys, 0.01):
        ax = fig.axes[0]
        assert [t.get_text().replace("\n", "") for t in ax.get_xticklabels()] == [
            "sgd", "preconditioned(power=1)", "preconditioned(power=2)"]
        assert not ticks_overlap(fig, ax)


def test_the_overlap_check_sees_colliding_labels():
    """Negative control: long labels at close ticks collide."""
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_xticks([0, 1, 2], ["a long label here"] * 3)
    fig.canvas.draw()
    assert ticks_overlap(fig, ax)
    plt.close(fig)


def test_p_values_on_a_minus_log10_axis(two_factor):
    ax = dict(sweep_panels(two_factor.runs, "rule", ["run.batch_size", "rule"], 0.01))[
        "Gibbs p"].axes[0]
    assert "log₁₀" in ax.get_ylabel() and ax.get_ylim()[0] == 0.0
    drawn = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections])
    ps = np.array([r.gibbs.p_value for r in two_factor.runs])
    assert np.isfinite(ps).sum() >= 4  # enough effective draws for most runs' test
    expected = np.where(np.isfinite(ps), np.minimum(-np.log10(np.maximum(ps, 1e-300)), P_FLOOR),
                        0.0)  # no p-value: a cross at 0
    assert np.allclose(sorted(drawn), sorted(expected))


def test_one_coordinate_has_no_ratio_panel(tmp_path):
    cfg = {"seed": 1, "model": {"kind": "mean", "n": 20}, "rule": {"kind": "sgd", "lr": 0.1},
           "run": {"chains": 8, "draws": 600, "burn_in": 100, "init_scale": 0.0},
           "cluster": {"shard_chains": 8, "chunk_draws": 600},
           "sweep": {"grid": {"rule.lr": [0.1, 0.2, 0.4]}}}
    analysis = analyze_archive(run_local(tmp_path, cfg))
    panels = sweep_panels(analysis.runs, "rule.lr", ["rule.lr"], 0.01)
    assert [name for name, _ in panels] == ["temperatures", "Gibbs p"]
