"""Small jobs in the driver's own process (``cluster.executor``): no Ray, the same archive.

* ``auto`` picks the process for a small CPU job with no cluster named or running, and Ray for
  everything else (each rule built directly: size, ``--address``, ``RAY_ADDRESS``, a running
  Ray, ``run.until``, CUDA); an explicit choice is kept.
* A job run in the process equals the same job run shard by shard (``run_local``) and, in
  ``test_cluster``, the same job on Ray, bit for bit.
* SIGTERM while blocks commit: exit 143, "terminated (SIGTERM)", no traceback; ``resume``
  (in the process again) ends with the archive of an uninterrupted run.
"""

from __future__ import annotations

import signal

from sgdthermo.cluster import cli
from sgdthermo.cluster.executors import SMALL_WORK, choose_executor, job_work
from sgdthermo.sampler.jobspec import validate

from tests.cluster.test_cluster import _toml, _wait_for_blocks
from tests.cluster.test_sigterm import _cli, _terminated
from tests.conftest import assert_archives_equal, run_local

SMALL = {"seed": 3, "model": {"kind": "quadratic", "hessian": [1.0, 2.0],
                              "noise_cov": [1.0, 4.0]},
         "rule": {"kind": "sgd", "lr": 0.1},
         "run": {"chains": 4, "draws": 600, "burn_in": 100},
         "cluster": {"shard_chains": 2, "chunk_draws": 200}}


def _job(**cluster: object) -> object:
    return validate({**SMALL, "cluster": {**SMALL["cluster"], **cluster}})


def test_auto_picks_the_process_only_for_small_local_cpu_jobs(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    job = _job()
    assert job_work(job, [2]) == 4 * (100 + 600) * 2
    assert choose_executor(job, [2], None, False) == "process"
    assert choose_executor(job, [SMALL_WORK], None, False) == "ray"  # too much work
    assert choose_executor(job, [2], "127.0.0.1:6379", False) == "ray"  # a cluster named
    assert choose_executor(job, [2], None, True) == "ray"  # a notebook's or test's Ray
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    assert choose_executor(job, [2], None, False) == "ray"
    monkeypatch.delenv("RAY_ADDRESS")
    assert choose_executor(_job(device="cuda"), [2], None, False) == "ray"
    until = validate({**SMALL, "run": {**SMALL["run"], "until": {"r_hat": 1.1, "max_draws": 2000}}})
    assert choose_executor(until, [2], None, False) == "ray"
    assert choose_executor(_job(executor="ray"), [2], None, False) == "ray"
    assert choose_executor(_job(executor="process"), [SMALL_WORK], "x:1", True) == "process"


def test_a_job_in_the_process_is_the_shard_by_shard_archive(tmp_path, capsys):
    cfg = tmp_path / "small.toml"
    cfg.write_text(_toml({**SMALL, "cluster": {**SMALL["cluster"], "executor": "process"}}))
    out = str(tmp_path / "here.zarr")
    assert cli.main(["run", str(cfg), "--out", out, "--no-progress", "--no-analyze"]) == 0
    assert "this process (no Ray)" in capsys.readouterr().err
    assert_archives_equal(out, run_local(tmp_path, {**SMALL, "cluster": {
        **SMALL["cluster"], "executor": "process"}}, "ref.zarr"))


SLOW = {"seed": 5, "model": {"kind": "mlp", "hidden": [16]},
        "rule": {"kind": "sgd", "lr": 0.05},
        "run": {"chains": 4, "draws": 1500, "burn_in": 0, "batch_size": 8},
        "cluster": {"shard_chains": 2, "chunk_draws": 75, "executor": "process"}}


def test_sigterm_in_the_process_is_143_and_resumes_bitwise(tmp_path):
    cfg = tmp_path / "slow.toml"
    cfg.write_text(_toml(SLOW))
    path = str(tmp_path / "t.zarr")
    proc = _cli("run", str(cfg), "--out", path, "--no-progress", "--no-analyze")
    _wait_for_blocks(path, 3, proc)
    proc.send_signal(signal.SIGTERM)
    assert f"sgdthermo resume {path}" in _terminated(proc)
    proc = _cli("resume", path, "--no-progress")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "this process (no Ray)" in out
    assert_archives_equal(path, run_local(tmp_path, SLOW, "ref.zarr"))
