"""A user's module in the archive: bitwise resume, named layers, and reading without its code.

The module (BatchNorm and Dropout, so buffers and forward randomness are carried) is written to a
file as a user would; the archive must resume bitwise from a partial commit, present each layer
as an ArviZ variable with dims named after it, and open, analyze and verify after the user's
files are gone (reading an archive never imports code).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from sgdthermo.analysis.analyze import analyze_archive
from sgdthermo.analysis.reader import open_archive
from sgdthermo.sampler.archive import verify_archive
from sgdthermo.sampler.models import user_code
from sgdthermo.sampler.shard import ShardRunner

from tests.conftest import archive_arrays, make_archive, run_local

NET = textwrap.dedent('''
    from torch import nn


    def build(width=5):
        return nn.Sequential(nn.Linear(3, width), nn.BatchNorm1d(width), nn.Tanh(),
                             nn.Dropout(0.25), nn.Linear(width, 2))
''')


@pytest.fixture
def job(tmp_path: Path) -> dict:
    (tmp_path / "net.py").write_text(NET)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 3))
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0] > 0).astype(np.int64))
    return {"model": {"kind": "torch", "module": f"{tmp_path}/net.py:build", "l2": 0.05,
                      "data": {"file": str(tmp_path / "d.npz")}},
            "rule": {"kind": "momentum", "lr": 0.05, "mu": 0.5},
            "run": {"chains": 4, "draws": 40, "burn_in": 8, "batch_size": 4, "thin": 2},
            "cluster": {"shard_chains": 2, "chunk_draws": 8}}


def test_resume_from_any_commit_is_bitwise(tmp_path: Path, job: dict):
    whole = run_local(tmp_path, job)
    split = make_archive(tmp_path, job, "split.zarr")
    for shard in (0, 1):
        ShardRunner(split, 0, shard).run_until(2)  # killed after two commits
        ShardRunner(split, 0, shard).run_until(10**9)  # a fresh process resumes
    a, b = archive_arrays(whole), archive_arrays(split)
    assert a.keys() == b.keys()
    assert any("buffer_1.running_mean" in k for k in a)  # the running statistics are kept
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_archive_opens_without_the_users_code(tmp_path: Path, job: dict, monkeypatch):
    path = run_local(tmp_path, job)
    (tmp_path / "net.py").unlink()

    def refuse(*args, **kwargs):
        raise AssertionError("reading an archive imported user code")

    monkeypatch.setattr(user_code, "load_callable", refuse)
    monkeypatch.setattr(user_code, "_import_file", refuse)
    run = open_archive(path)[0]
    post = run.inference_data().posterior
    assert post["0.weight"].dims == ("chain", "draw", "0.out", "0.in")
    assert post["1.bias"].dims == ("chain", "draw", "1.channel")
    assert post["4.bias"].shape == (4, 40, 2)
    assert run.model.opaque and run.model.dim == 3 * 5 + 5 + 5 + 5 + 5 * 2 + 2
    record = analyze_archive(path).as_dict()["runs"][0]
    assert record["status"] == "ok"
    assert len(record["temperature"]["virial"]) == run.model.dim  # from the engine's sums
    assert "user's module" in record["gibbs"]["reason"]
    assert verify_archive(path).ok
