"""Losing a worker node mid-run: the driver replaces its actors and the job finishes by itself.

A two-node Ray cluster on loopback: a head with no CPUs (so every actor lives on the worker)
and a worker node, each started with ``ray start --block`` in its own process group. The worker
node is SIGKILLed (raylet and every actor on it, as when a machine is lost) after the job has
committed a few blocks; a second worker joins. The driver must finish with exit 0, say what it
did, and leave an archive bitwise equal to an uninterrupted run.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from sgdthermo.cluster.driver import shard_table

from tests.cluster.test_cluster import _toml, _wait_for_blocks, _wait_for_port
from tests.conftest import assert_archives_equal, run_local

JOB = {
    "name": "node-loss", "seed": 5,
    "model": {"kind": "quadratic", "hessian": [1.0, 2.0], "noise_cov": [1.0, 3.0]},
    "rule": {"kind": "rmsprop", "lr": 0.01},  # the torch step path: slow enough to be cut
    "run": {"chains": 4, "draws": 20000, "burn_in": 0},
    # no restarts by Ray itself: the lost actors die for good, and the driver must replace them
    "cluster": {"shard_chains": 2, "chunk_draws": 2500, "max_restarts": 0},
}
RAY = str(Path(sys.executable).parent / "ray")


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([RAY, "start", "--block", "--node-ip-address=127.0.0.1",
                             "--disable-usage-stats", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    """Stop one node: SIGTERM to its ``ray start --block`` process, which drains and stops its
    own processes (a few seconds); its whole group is killed if it is still there after 30 s.
    Signalling the group instead makes the GCS go before the drain that needs it (~60 s)."""
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of this node only
    except ProcessLookupError:
        pass


def _lose(proc: subprocess.Popen) -> None:
    """The machine is gone: its raylet and every actor on it at once."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.slow
def test_a_lost_worker_node_is_survived_bitwise(tmp_path):
    port = "6395"
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(16),
           # the GCS declares a silent node dead after 3 missed 0.5 s checks (default ~30 s)
           "RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "3"}
    short_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Unix sockets need short paths
    head = _start(["--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false",
                   f"--temp-dir={short_dir}"], env)
    nodes: list[subprocess.Popen] = []
    try:
        _wait_for_port(int(port))
        nodes.append(_start([f"--address=127.0.0.1:{port}", "--num-cpus=2"], env))
        cfg = tmp_path / "job.toml"
        cfg.write_text(_toml(JOB))
        path = str(tmp_path / "j.zarr")
        driver = subprocess.Popen(
            [sys.executable, "-m", "sgdthermo.cluster.cli", "run", str(cfg), "--out", path,
             "--address", f"127.0.0.1:{port}", "--no-progress", "--no-analyze"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            start_new_session=True)
        _wait_for_blocks(path, 2, driver, timeout=180)
        _lose(nodes[0])
        assert not all(sp.done for sp in shard_table(path))
        nodes.append(_start([f"--address=127.0.0.1:{port}", "--num-cpus=2"], env))
        out, _ = driver.communicate(timeout=300)
        assert driver.returncode == 0, out
        assert "actor lost" in out and "continues from its last commit" in out, out
        assert "Traceback" not in out, out
        assert all(sp.done for sp in shard_table(path))
        assert_archives_equal(path, run_local(tmp_path, JOB, "ref.zarr"))
    finally:
        for proc in (*nodes, head):
            _stop(proc)
        shutil.rmtree(short_dir, ignore_errors=True)
