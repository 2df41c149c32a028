"""Every shipped config validates, expands and builds (models, rules, stability)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sgdthermo.cluster.driver import validate_runs
from sgdthermo.sampler.jobspec import expand, load_job

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").rglob("*.toml"))


def test_configs_exist():
    names = {p.name for p in CONFIGS}
    assert {"quickstart.toml", "rmsprop_gibbs.toml", "batch_scaling.toml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_builds(path):
    job = load_job(path)
    runs = expand(job)
    facts = validate_runs(job)
    assert len(facts) == len(runs) >= 1
    assert all(r.label for r in runs)


def test_batch_scaling_keeps_lr_over_b_fixed():
    runs = expand(load_job(Path(__file__).resolve().parents[2] / "configs" / "batch_scaling.toml"))
    ratios = {r.rule.lr / r.run.batch_size for r in runs}
    assert len(runs) == 4 and len(ratios) == 1


def test_sweep_labels_name_what_differs_between_whole_tables():
    """Two runs of one rule kind that differ in a field must not share a label."""
    from sgdthermo.sampler.jobspec import expand, validate

    job = validate({"model": {"kind": "quadratic", "hessian": [1.0, 2.0], "noise_cov": [1.0, 1.0]},
                    "rule": {"kind": "sgd", "lr": 0.1},
                    "sweep": {"zip": {"rule": [{"kind": "preconditioned", "lr": 0.1, "power": 1},
                                               {"kind": "preconditioned", "lr": 0.1, "power": 2},
                                               {"kind": "sgd", "lr": 0.1}],
                                      "run.batch_size": [1, 2, 4]}}})
    labels = [r.label for r in expand(job)]
    assert labels == ["rule=preconditioned(power=1), run.batch_size=1",
                      "rule=preconditioned(power=2), run.batch_size=2",
                      "rule=sgd, run.batch_size=4"]
    assert len(set(labels)) == len(labels)
