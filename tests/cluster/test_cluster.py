"""The Ray layer: multi-actor jobs, actor crashes, driver kill, Ctrl-C, resume — all bitwise."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib  # noqa: F401 - configs below are written as TOML
from pathlib import Path

import numpy as np
import pytest
from sgdthermo.cluster.driver import prepare_archive, run_archive, shard_table
from sgdthermo.cluster.lease import acquire, read_lease
from sgdthermo.sampler.archive import ArchiveError
from sgdthermo.sampler.jobspec import validate

from tests.conftest import assert_archives_equal, run_local

pytestmark = pytest.mark.ray

JOB = {
    "name": "crash-test", "seed": 11,
    "model": {"kind": "quadratic", "hessian": [1.0, 2.0], "noise_cov": [1.0, 4.0]},
    "rule": {"kind": "momentum", "lr": 0.05, "mu": 0.5},
    "run": {"chains": 4, "draws": 3000, "burn_in": 500, "batch_size": 2},
    # executor "ray": these tests are of actors (small jobs run in the driver's process by default)
    "cluster": {"shard_chains": 2, "chunk_draws": 250, "max_restarts": 2, "executor": "ray"},
    "sweep": {"grid": {"rule.lr": [0.05, 0.1]}},
}


def test_two_actor_job_equals_in_process_run(ray_session, tmp_path):
    job = validate(JOB)
    path = str(tmp_path / "ray.zarr")
    prepare_archive(job, path, overwrite=False, device="cpu")
    table = run_archive(path)
    assert all(sp.done for sp in table) and len(table) == 4
    assert_archives_equal(path, run_local(tmp_path, JOB, "ref.zarr"))


def test_killed_actor_restarts_from_checkpoint_bitwise(ray_session, tmp_path):
    job = validate(JOB)
    path = str(tmp_path / "killed.zarr")
    prepare_archive(job, path, overwrite=False, device="cpu")
    killed: list[int] = []

    def kill_once(table):
        for sp in table:
            if not killed and sp.actor is not None and 1 <= sp.blocks_done < len(sp.steps) - 2:
                pid = ray_session.get(sp.actor.pid.remote())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    table = run_archive(path, on_progress=kill_once)
    assert killed, "no actor was killed"
    assert all(sp.done for sp in table)
    assert_archives_equal(path, run_local(tmp_path, JOB, "ref.zarr"))


def _toml(d: dict, prefix: str = "") -> str:
    lines, tables = [], []
    for k, v in d.items():
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            key = f'"{k}"' if "." in k else k
            lines.append(f"{key} = {_value(v)}")
    out = "\n".join(lines) + "\n"
    for k, v in tables:
        name = f"{prefix}{k}"
        out += f"\n[{name}]\n" + _toml(v, name + ".")
    return out


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return repr(v)


def _cli(*args: str, address: str = "") -> subprocess.Popen:
    """The CLI in its own process group, joining ``address`` (default: its embedded Ray)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_ADDRESS": address}
    return subprocess.Popen([sys.executable, "-m", "sgdthermo.cluster.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _cli_out(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "sgdthermo.cluster.cli", *args],
                          capture_output=True, text=True, check=True).stdout


def _wait_for_blocks(path: str, at_least: int, proc: subprocess.Popen, timeout=120) -> None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            pytest.fail(f"CLI exited early: {proc.stdout.read()}")
        try:
            if sum(sp.blocks_done for sp in shard_table(path)) >= at_least:
                return
        except Exception:  # archive not created yet
            pass
        time.sleep(0.2)
    pytest.fail("no progress")


def test_ctrl_c_and_driver_kill_then_resume_bitwise(ray_session, tmp_path):
    """Each driver joins this session's Ray instance (the embedded default is tested in
    test_cli and test_join_existing_cluster_with_address): what is tested is the driver.
    32 blocks per shard: a driver's actors run at most the one block each that it asked for
    after it stops, so every interruption lands well before the end."""
    job = {**JOB, "run": {**JOB["run"], "draws": 8000}}
    cfg = tmp_path / "job.toml"
    cfg.write_text(_toml(job))
    path = str(tmp_path / "cli.zarr")
    session = ray_session.get_runtime_context().gcs_address

    def _cli(*args: str) -> subprocess.Popen:
        return globals()["_cli"](*args, address=session)

    proc = _cli("run", str(cfg), "--out", path, "--no-progress", "--no-analyze")
    _wait_for_blocks(path, 3, proc)
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert f"sgdthermo resume {path}" in out
    done_after_interrupt = sum(sp.blocks_done for sp in shard_table(path))

    proc = _cli("resume", path, "--no-progress")
    _wait_for_blocks(path, done_after_interrupt + 4, proc)
    os.kill(proc.pid, signal.SIGKILL)  # the driver alone: its actors outlive it by seconds
    proc.wait(timeout=30)
    assert not all(sp.done for sp in shard_table(path))

    # at once, well inside the lease's 30 s expiry: its process is gone from this machine
    status = json.loads(_cli_out("status", path, "--json"))
    assert status["state"] == "interrupted" and status["driver"]["heartbeat_age_s"] < 30
    assert not any(r["complete"] for r in status["runs"])

    # the gone driver is taken over at once (after its actors stopped); while a driver runs, a
    # second one is refused and status says running; SIGTERM to the driver alone (as a
    # scheduler sends it) unwinds as Ctrl-C
    done_before_term = sum(sp.blocks_done for sp in shard_table(path))
    killed = proc.pid
    proc = _cli("resume", path, "--no-progress")
    _wait_for_blocks(path, done_before_term + 3, proc)
    _kill_group(killed)  # what the killed driver left (Ray's agents): ours to stop
    running = read_lease(path)  # what `status` reads (its states: tests/cluster/test_lease.py)
    assert running is not None and not running["stale"]
    with pytest.raises(ArchiveError, match="is being written by"):
        acquire(path)  # what a second `resume` does first
    os.kill(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, out
    assert f"taking over {path!r} from {socket.gethostname()}:{killed} (its process is gone " \
        "from this machine)" in out, out
    assert "terminated (SIGTERM); committed blocks are safe" in out, out
    assert "Traceback" not in out and "*** SIG" not in out, out

    proc = _cli("resume", path, "--no-progress")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert all(sp.done for sp in shard_table(path))
    assert_archives_equal(path, run_local(tmp_path, job, "ref.zarr"))
    np.testing.assert_array_equal(
        [sp.blocks_done for sp in shard_table(path)], [len(sp.steps) for sp in shard_table(path)])


def test_join_existing_cluster_with_address(tmp_path):
    """`--address` joins a running Ray head instead of starting the embedded instance."""
    port = "6391"
    # A cluster with token authentication (Ray >= 2.59): head and driver share the token.
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    short_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Unix sockets need short paths
    # --block keeps the head in the foreground of its own process group, so the test stops this
    # head only (`ray stop` would also kill the session's Ray instance).
    ray_cli = str(Path(sys.executable).parent / "ray")  # the venv's, even when not on PATH
    head = subprocess.Popen([ray_cli, "start", "--head", "--block", f"--port={port}",
                             "--num-cpus=1", "--node-ip-address=127.0.0.1",
                             "--include-dashboard=false", "--disable-usage-stats",
                             f"--temp-dir={short_dir}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    try:
        _wait_for_port(int(port))
        cfg = tmp_path / "job.toml"
        small = {**JOB, "run": {**JOB["run"], "draws": 500}, "sweep": {}}
        cfg.write_text(_toml(small))
        res = subprocess.run([sys.executable, "-m", "sgdthermo.cluster.cli", "run", str(cfg),
                              "--out", str(tmp_path / "j.zarr"), "--address",
                              f"127.0.0.1:{port}", "--no-progress", "--no-analyze"],
                             capture_output=True, text=True, env=env, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "ray: joined" in res.stderr
        assert all(sp.done for sp in shard_table(str(tmp_path / "j.zarr")))
        # without --address, beside that head: the embedded default starts its own instance
        res = subprocess.run([sys.executable, "-m", "sgdthermo.cluster.cli", "run", str(cfg),
                              "--out", str(tmp_path / "own.zarr"), "--no-progress",
                              "--no-analyze"],
                             capture_output=True, text=True, env=env, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "ray: local" in res.stderr
        assert_archives_equal(str(tmp_path / "own.zarr"), str(tmp_path / "j.zarr"))
        # and this small job by default runs in the driver's process: the same archive
        res = subprocess.run([sys.executable, "-m", "sgdthermo.cluster.cli", "run", str(cfg),
                              "--out", str(tmp_path / "here.zarr"), "--no-progress",
                              "--no-analyze", "--set", "cluster.executor=auto"],
                             capture_output=True, text=True, env=env, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "this process (no Ray)" in res.stderr
        assert_archives_equal(str(tmp_path / "here.zarr"), str(tmp_path / "j.zarr"))
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` drains and stops its processes
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(head.pid, signal.SIGKILL)  # anything left of this head only
        except ProcessLookupError:
            pass
        shutil.rmtree(short_dir, ignore_errors=True)


def _wait_for_port(port: int, timeout: float = 90.0) -> None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                time.sleep(3)  # the GCS accepts connections before the raylet registers
                return
        time.sleep(0.5)
    pytest.fail(f"Ray head did not open port {port}")


def test_toml_writer_roundtrip():
    import tomllib as t
    assert validate(t.loads(_toml(JOB))).model_dump() == validate(JOB).model_dump()


@pytest.fixture(autouse=True)
def _cwd(tmp_path):
    old = Path.cwd()
    os.chdir(tmp_path)
    yield
    os.chdir(old)
