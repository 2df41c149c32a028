"""SIGTERM at any moment: exit 143, "terminated (SIGTERM)", no traceback, no Ray retry noise.

A scheduler (Slurm, Kubernetes, `ray job stop`) sends SIGTERM whenever it likes: during start-up
(imports, validation, Ray's own start, which installs its own handler), while the driver waits
in a blocking ``ray.wait`` (where Ray turns the exception our handler raises into a plain
``KeyboardInterrupt``), and while actors commit blocks. Each answers the same way, and the
archive resumes to the bits of an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from sgdthermo.cluster.driver import shard_table
from sgdthermo.cluster.signals import on_sigterm

from tests.cluster.test_cluster import JOB, _toml, _wait_for_blocks
from tests.conftest import assert_archives_equal, run_local

pytestmark = pytest.mark.ray

SLOW = {**JOB, "run": {**JOB["run"], "draws": 8000}}
NOISE = ("Traceback", "retries remaining", "*** SIG", "SystemExit")


def _handles_sigterm(pid: int, timeout: float = 30.0) -> None:
    """Wait until the process has a handler for SIGTERM (its SigCgt mask in /proc)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        with open(f"/proc/{pid}/status") as f:
            mask = next(line for line in f if line.startswith("SigCgt:")).split()[1]
        if int(mask, 16) & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.01)
    pytest.fail("the CLI never installed a SIGTERM handler")


def _cli(*args: str, address: str = "") -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_ADDRESS": address}
    return subprocess.Popen([sys.executable, "-m", "sgdthermo.cluster.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)


def _terminated(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, out
    assert "terminated (SIGTERM)" in out, out
    assert not any(n in out for n in NOISE), out
    return out


def test_sigterm_during_start_up_and_during_blocks(ray_session, tmp_path):
    cfg = tmp_path / "job.toml"
    cfg.write_text(_toml(SLOW))
    path = str(tmp_path / "t.zarr")
    # start-up, as soon as the handler is there: before Ray, before the archive exists
    proc = _cli("run", str(cfg), "--out", path, "--no-progress", "--no-analyze")
    _handles_sigterm(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _terminated(proc)
    # during the job's blocks (the driver waits in ray.wait), twice, then resume to the end
    session = ray_session.get_runtime_context().gcs_address
    proc = _cli("run", str(cfg), "--out", path, "--no-progress", "--no-analyze", "--overwrite",
                address=session)
    for at_least in (2, None):
        _wait_for_blocks(path, at_least or sum(sp.blocks_done for sp in shard_table(path)) + 2,
                         proc)
        proc.send_signal(signal.SIGTERM)
        assert f"sgdthermo resume {path}" in _terminated(proc)
        if at_least is not None:
            proc = _cli("resume", path, "--no-progress", address=session)
    proc = _cli("resume", path, "--no-progress", address=session)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert_archives_equal(path, run_local(tmp_path, SLOW, "ref.zarr"))


def test_sigterm_inside_a_blocking_ray_get_is_still_sigterm(ray_session):
    """Why the flag: blocked in ray.get (or a long ray.wait), Ray runs our handler from its own
    signal check, catches the Terminated it raises and raises a plain KeyboardInterrupt (the
    driver then said "interrupted", exit 130, in 2 of 2 tries on another machine)."""
    from sgdthermo.cluster.signals import Terminated, handle_sigterm, was_terminated

    @ray_session.remote
    def slow() -> int:
        time.sleep(30)
        return 1

    ref = slow.remote()
    restore = handle_sigterm()
    timer = threading.Timer(1.0, os.kill, args=(os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as caught:
            ray_session.get(ref)
    finally:
        timer.join()
        restore()
        ray_session.cancel(ref, force=True)
    assert type(caught.value) is KeyboardInterrupt and not isinstance(caught.value, Terminated)
    assert was_terminated(caught.value)
    assert signal.getsignal(signal.SIGTERM) is not on_sigterm  # restored
