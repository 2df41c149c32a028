"""A user's module on a two-node Ray cluster: every actor builds it, where the file is not.

A head and a worker on loopback, one CPU each, so the job's two shards run one actor per node.
The driver (its own process) validates the config, reads the module file, and only then, as it
starts Ray, the file is moved away: no actor can import it from its path, so each builds the
module from the text the driver sent (``cluster.user_code``). The archive must be bitwise the
in-process run, and ``resume`` must refuse while the file is missing, in one line.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from sgdthermo.cluster.driver import shard_table

from tests.cluster.test_cluster import _toml, _wait_for_port
from tests.cluster.test_node_loss import _start, _stop
from tests.conftest import assert_archives_equal, run_local

DRIVER = textwrap.dedent('''
    import sys
    from pathlib import Path

    from sgdthermo.cluster import jobs

    config, out, module, address = sys.argv[1:]
    real = jobs.init_ray

    def hide_then_start(address=None):
        Path(module).rename(module + ".hidden")  # from now on no process finds the file
        return real(address)

    jobs.init_ray = hide_then_start
    jobs.run_job(config, out, address=address)
    import ray._private.state

    actors = ray._private.state.actors().values()  # from the GCS (no dashboard needed)
    print("nodes", len({a["Address"]["NodeID"] for a in actors
                        if a["ActorClassName"].endswith("_ShardActor")}))
''')


def _own_ports(base: int) -> list[str]:
    """Ports of a node's agents that no other Ray instance of the suite uses (their defaults
    are shared, and two clusters started at once on one host would collide)."""
    return [f"--dashboard-agent-listen-port={base}", f"--dashboard-agent-grpc-port={base + 1}",
            f"--runtime-env-agent-port={base + 2}", f"--metrics-export-port={base + 3}",
            f"--node-manager-port={base + 4}", f"--object-manager-port={base + 5}"]


def _wait_for_nodes(address: str, n: int, env: dict[str, str], logs: str,
                    timeout: float = 120.0) -> None:
    """Until the cluster has ``n`` live nodes (a worker registers seconds after it starts)."""
    probe = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
             "print(sum(node['Alive'] for node in ray.nodes()))")
    start = time.monotonic()
    seen = ""
    while time.monotonic() - start < timeout:
        out = subprocess.run([sys.executable, "-c", probe, address], capture_output=True,
                             text=True, env=env, timeout=60)
        seen = out.stdout.strip().splitlines()[-1:] or out.stderr[-300:]
        if out.stdout.strip().endswith(str(n)):
            return
        time.sleep(1)
    pytest.fail(f"the cluster did not reach {n} live nodes in {timeout:.0f} s (last: {seen})\n"
                f"{_logs(logs)}")


def _logs(folder: str) -> str:
    """The last lines of the nodes' raylet and GCS logs (what a failed start left)."""
    out = []
    for path in sorted(Path(folder).glob("session_*/logs/*")):
        if path.name.startswith(("raylet", "gcs_server")) and path.suffix in (".out", ".err"):
            out.append(f"--- {path.name}\n" + "\n".join(
                path.read_text(errors="replace").splitlines()[-8:]))
    return "\n".join(out)[-4000:]


@pytest.mark.slow
def test_a_module_file_travels_to_actors_on_both_nodes(tmp_path: Path):
    module = tmp_path / "net.py"
    module.write_text("from torch import nn\n\n\ndef build(width=4):\n    return nn.Sequential("
                      "nn.Linear(3, width), nn.Tanh(), nn.Linear(width, 2))\n")
    x = np.random.default_rng(0).standard_normal((50, 3))
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 1] > 0).astype(np.int64))
    job = {"name": "two-nodes", "seed": 3,
           "model": {"kind": "torch", "module": f"{module}:build", "args": {"width": 5},
                     "data": {"file": str(tmp_path / "d.npz")}},
           "rule": {"kind": "sgd", "lr": 0.05},
           "run": {"chains": 4, "draws": 40, "burn_in": 10, "batch_size": 5},
           "cluster": {"shard_chains": 2, "chunk_draws": 20}}
    cfg = tmp_path / "job.toml"
    cfg.write_text(_toml(job))
    (tmp_path / "driver.py").write_text(DRIVER)
    port = "6399"  # test_cluster 6391, test_node_loss 6395, test_ray_job 6397
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    short_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Unix sockets need short paths
    head = _start(["--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
                   f"--temp-dir={short_dir}", *_own_ports(52410)], env)
    nodes = [head]
    try:
        _wait_for_port(int(port))
        nodes.append(_start([f"--address=127.0.0.1:{port}", "--num-cpus=1",
                             *_own_ports(52420)], env))
        _wait_for_nodes(f"127.0.0.1:{port}", 2, env, short_dir)
        path = str(tmp_path / "j.zarr")
        try:
            done = subprocess.run([sys.executable, str(tmp_path / "driver.py"), str(cfg), path,
                                   str(module), f"127.0.0.1:{port}"], capture_output=True,
                                  text=True, env=env, timeout=180)
        except subprocess.TimeoutExpired as err:
            pytest.fail(f"driver timed out: {err.stdout!r} {err.stderr!r}\n{_logs(short_dir)}")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "nodes 2" in done.stdout, done.stdout + done.stderr
        assert all(sp.done for sp in shard_table(path))
        refused = subprocess.run([sys.executable, "-m", "sgdthermo.cluster.cli", "resume",
                                  path], capture_output=True, text=True, env=env, timeout=120)
        assert refused.returncode == 2 and "is missing since the run began" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    finally:
        for proc in reversed(nodes):
            _stop(proc)
        shutil.rmtree(short_dir, ignore_errors=True)
    Path(f"{module}.hidden").rename(module)
    assert_archives_equal(path, run_local(tmp_path, job, "ref.zarr"))
