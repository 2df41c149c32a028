"""Every shipped config validates, expands and builds (models, rules, stability)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sgdthermo.cluster.driver import validate_runs
from sgdthermo.sampler.jobspec import expand, load_job

CONFIGS = sorted((Path(__file__).parent.parent / "configs").rglob("*.toml"))


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
    runs = expand(load_job(Path(__file__).parent.parent / "configs" / "batch_scaling.toml"))
    ratios = {r.rule.lr / r.run.batch_size for r in runs}
    assert len(runs) == 4 and len(ratios) == 1
