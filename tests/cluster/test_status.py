"""``status`` answers from one read of the archive, and output commands stop quietly in a pipe."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sgdthermo.cluster.status import _status_rebuilt
from sgdthermo.sampler.archive.progress import archive_progress, block_steps
from sgdthermo.sampler.shard import ShardRunner

from tests.conftest import make_archive, quadratic_config, run_local

JOB = quadratic_config([1.0, 2.0], [1.0, 1.0], {"kind": "sgd", "lr": 0.1}, chains=6,
                       draws=250, burn_in=30, thin=3)
JOB["cluster"] = {"shard_chains": 4, "chunk_draws": 100}  # shards of 4 and 2 chains
JOB["sweep"] = {"grid": {"rule.lr": [0.1, 0.2]}}


def test_block_steps_follow_the_schedule():
    assert block_steps(10, 250, 100, 3) == [30, 300, 300, 150]
    assert block_steps(0, 0, 100, 1) == []


def test_progress_equals_the_rebuilt_runs_at_every_stage(tmp_path):
    path = make_archive(tmp_path, JOB)
    stages = []
    for blocks in (0, 1, 3, 10**9):  # nothing, a warm-up block, part of the draws, all
        ShardRunner(path, 0, 0).run_until(blocks)
        rows = [p.as_dict() for p in archive_progress(path)[1]]
        assert rows == _status_rebuilt(path)[1]
        stages.append(rows[0])
    assert [s["chain_steps"] for s in stages] == [0, 4 * 30, 4 * 630, 4 * 780]
    assert stages[-1]["shards_done"] == 1 and not stages[-1]["complete"]  # shard 1 not run
    assert stages[-1]["total_chain_steps"] == 6 * 780


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> str:
    return run_local(tmp_path_factory.mktemp("status"), JOB)


def test_status_loads_neither_torch_nor_the_config(archive):
    code = ("import sys, json, io, contextlib\n"
            "from sgdthermo.cluster import cli\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n"
            f"    assert cli.main(['status', {archive!r}, '--json']) == 0\n"
            "print(json.dumps({'heavy': sorted(m for m in ('torch', 'ray', "
            "'sgdthermo.sampler.config.models') if m in sys.modules), "
            "'status': json.loads(out.getvalue())}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    result = json.loads(done.stdout)
    assert result["heavy"] == []
    assert result["status"]["state"] == "complete" and len(result["status"]["runs"]) == 2


def test_a_closed_pipe_ends_quietly(archive):
    """``sgdthermo analyze A | head -3``: the reader stops; no traceback, SIGPIPE's 141."""
    script = (f"{sys.executable} -m sgdthermo.cluster.cli analyze {archive} --no-verify "
              "| head -3 >/dev/null; echo ${PIPESTATUS[0]}")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300,
                          env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"})
    assert done.stdout.strip() == "141", done.stderr
    assert "Traceback" not in done.stderr and "Error" not in done.stderr, done.stderr
