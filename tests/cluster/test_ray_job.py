"""docs/clusters.md's `ray job submit` example, as written: a token-authenticated head started with
``ray start --head --block``, the job submitted through its dashboard, the head stopped alone by
SIGTERM to its ``ray start`` process (no ``ray stop``)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from sgdthermo.cluster.driver import shard_table

from tests.cluster.test_cluster import _wait_for_port
from tests.cluster.test_node_loss import RAY, _start, _stop

ROOT = Path(__file__).resolve().parents[2]


def _free() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_ray_job_submit_as_in_the_readme(ray_session, tmp_path):
    """Beside this session's own Ray instance, as on a shared host."""
    port, dashboard = 6397, 8267
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(16),
           # as with the venv activated: the job's entrypoint `sgdthermo` is found on the PATH
           # of the head that runs it (CI calls .venv/bin/python without activating)
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    short_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    # the job agent's HTTP port (default 52365) is taken by any other Ray instance on the host
    # (this session's, for one): the head gets a free one
    head = _start(["--head", f"--port={port}", "--num-cpus=2",
                   f"--dashboard-port={dashboard}", f"--dashboard-agent-listen-port={_free()}",
                   f"--temp-dir={short_dir}"], env)
    out = tmp_path / "quickstart.zarr"
    try:
        _wait_for_port(port)
        _wait_for_port(dashboard)
        for _ in range(30):  # the head's job agent registers a few seconds after the port opens
            res = subprocess.run(
                [RAY, "job", "submit", "--address", f"http://127.0.0.1:{dashboard}",
                 "--working-dir", str(ROOT / "configs"), "--",
                 "sgdthermo", "run", "quickstart.toml", "--out", str(out), "--no-progress"],
                capture_output=True, text=True, timeout=300, env=env)
            log = res.stdout + res.stderr
            if "No available agent to submit job" not in log:
                break
            time.sleep(2)
        assert res.returncode == 0, log[-3000:]
        assert "succeeded" in log and "ray: joined" in log, log[-3000:]
        assert "not Gibbs" in log  # the analysis, printed into the job's log
        assert all(sp.done for sp in shard_table(str(out)))
    finally:
        started = time.monotonic()
        _stop(head)  # SIGTERM to `ray start --block` alone: it drains and stops its processes
        stopped = time.monotonic() - started
        shutil.rmtree(short_dir, ignore_errors=True)
    assert stopped < 25, f"the head took {stopped:.0f} s to stop"
