"""``sgdthermo run --dry-run``: the plan of a job, checked as ``run`` checks it, nothing started."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sgdthermo.cluster import cli
from sgdthermo.cluster.dry_run import RunCost, human_time, total_seconds

from tests.cluster.test_cli import GOOD, run_cli, write

SWEPT = GOOD.replace("draws = 10", "draws = 300\nthin = 2") + (
    '\n[sweep.grid]\n"rule.lr" = [0.1, 0.2]\n"run.chains" = [2, 6]\n')


def test_the_plan_counts_every_run(tmp_path, capsys):
    code, text = run_cli(capsys, "run", write(tmp_path, SWEPT), "--dry-run", "--json")
    assert code == 0, text
    plan = json.loads(text)
    assert [r["chains"] for r in plan["runs"]] == [2, 6, 2, 6]
    assert all(r["steps_per_chain"] == 600 for r in plan["runs"])  # burn_in 0 + 300 × thin 2
    assert plan["chain_steps"] == 600 * (2 + 6 + 2 + 6)
    assert all(r["chain_steps_per_s"] > 0 and r["archive_bytes"] > 0 for r in plan["runs"])
    assert plan["seconds"] > 0 and list(tmp_path.iterdir()) == [tmp_path / "c.toml"]


def test_the_plan_as_a_table(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, text = run_cli(capsys, "run", write(tmp_path, SWEPT), "--dry-run")
    assert code == 0 and "dry run (nothing written, Ray not started)" in text
    assert "4 run(s), 9,600 chain-steps" in text and "rule.lr=0.2, run.chains=6" in text


def test_a_dry_run_starts_no_ray(tmp_path):
    config = write(tmp_path, SWEPT)
    code = ("import contextlib, io\nfrom sgdthermo.cluster import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    assert cli.main(['run', {config!r}, '--dry-run']) == 0\n"
            "import ray\nprint(ray.is_initialized())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "False"


def test_a_dry_run_refuses_what_run_refuses(tmp_path, capsys):
    code, text = run_cli(capsys, "run", write(tmp_path, GOOD.replace("lr = 0.1", "lr = 1.5")),
                         "--dry-run")
    assert code == 2 and "rule.lr" in text and "unstable" in text
    code, text = run_cli(capsys, "run", write(tmp_path, GOOD, "d.toml"))
    assert code == 2 and "--out" in text and "--dry-run" in text
    assert len(text.strip().splitlines()) == 1


@pytest.mark.parametrize("cores,expected", [(1, 12.0), (2, 6.0), (8, 4.0)])
def test_total_time_shares_the_cores_but_not_a_shard(cores, expected):
    """Shards of 4 s, 4 s and 2+2 s: one core adds them; more cores than the longest shard
    allows cannot go below it."""
    costs = [RunCost(0, "a", 8, 100, 1.0, 100.0, 2), RunCost(1, "b", 4, 100, 1.0, 100.0, 2)]
    assert total_seconds(costs, cores) == pytest.approx(expected)


def test_human_time():
    assert [human_time(s) for s in (0.2, 12, 600, 7200)] == ["< 1 s", "12 s", "10.0 min", "2.0 h"]


def test_help_and_unknown_flags_are_quick_and_plain(capsys):
    with pytest.raises(SystemExit) as err:
        cli.main(["run", "--help"])
    assert err.value.code == 0 and "--dry-run" in capsys.readouterr().out


def test_the_archive_estimate_bounds_what_is_written(tmp_path):
    """Upper bound, sums of every block included (a 126k-parameter run once wrote 8.3 GiB
    against an estimate of 7.0 that had counted one block of sums)."""
    from sgdthermo.cluster.driver import validate_runs
    from sgdthermo.cluster.resources import estimate
    from sgdthermo.sampler.jobspec import validate

    from tests.conftest import quadratic_config, run_local

    cfg = quadratic_config([1.0] * 64, [1.0] * 64, {"kind": "sgd", "lr": 0.1}, chains=6,
                           draws=400, burn_in=0)
    cfg["cluster"] = {"shard_chains": 3, "chunk_draws": 10}  # 40 blocks: the sums dominate
    path = run_local(tmp_path, cfg)
    written = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    job = validate(cfg)
    bound = estimate(job, validate_runs(job))["archive_bytes"]
    sums = 6 * 40 * 4 * 64 * 8
    assert sums < written <= bound, (written, bound)
