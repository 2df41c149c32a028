"""CUDA: device placement, checkpointed CUDA generator state and bitwise resume on a GPU.

Skipped only when this machine has no CUDA device (the CPU suite covers the same paths on CPU).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sgdthermo.analysis.reader import open_run
from sgdthermo.analysis.record import analyze_run
from sgdthermo.sampler.archive import RunStore, create_archive
from sgdthermo.sampler.jobspec import expand, validate
from sgdthermo.sampler.shard import ShardRunner, state_facts

from tests.conftest import archive_arrays

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

CONFIGS = {
    "quadratic": {"model": {"kind": "quadratic", "hessian": [1.0, 2.0], "noise_cov": [1.0, 4.0]},
                  "rule": {"kind": "momentum", "lr": 0.1, "mu": 0.5}},
    "linreg": {"model": {"kind": "linear_regression", "data": {"n": 256, "d": 4}},
               "rule": {"kind": "adam", "lr": 0.01}, "run": {"batch_size": 8}},
    "fused-quadratic": {"model": {"kind": "quadratic", "hessian": [1.0, 2.0],
                                  "noise_cov": [1.0, 4.0]}, "rule": {"kind": "sgd", "lr": 0.1}},
    "cnn": {"model": {"kind": "cnn", "channels": [2], "hidden": [4], "n": 100},
            "rule": {"kind": "sgd", "lr": 0.05}, "run": {"batch_size": 8}},
}


def _cuda_archive(tmp_path, name: str, cfg: dict) -> str:
    config = {**cfg, "run": {"chains": 6, "draws": 40, "burn_in": 20, **cfg.get("run", {})},
              "cluster": {"shard_chains": 3, "chunk_draws": 10}}
    job = validate(config)
    runs = expand(job)
    path = str(tmp_path / f"{name}.zarr")
    create_archive(path, job, runs, "cuda", [state_facts(r) for r in runs])
    return path


@pytest.mark.parametrize("name", list(CONFIGS))
def test_cuda_resume_is_bitwise_identical_and_analyses_on_cpu(tmp_path, name):
    whole = _cuda_archive(tmp_path / "a", name, CONFIGS[name])
    split = _cuda_archive(tmp_path / "b", name, CONFIGS[name])
    for shard in range(2):
        runner = ShardRunner(whole, 0, shard)
        assert runner.device.type == "cuda" and runner.engine.model.device.type == "cuda"
        runner.run_until(10**9)
        ShardRunner(split, 0, shard).run_until(2)  # stop after two blocks: a new process
        ShardRunner(split, 0, shard).run_until(10**9)  # restores the CUDA generator state
    a, b = archive_arrays(whole), archive_arrays(split)
    assert [k for k in a if not np.array_equal(a[k], b[k], equal_nan=True)] == []
    assert RunStore(whole, 0).committed().tolist() == [6, 6]
    record = analyze_run(open_run(whole, 0))  # the reader rebuilds the model on the CPU
    assert record.ok and np.isfinite(record.temperatures.virial).all()


def test_cuda_user_module_with_batchnorm_and_dropout_resumes_bitwise(tmp_path):
    """The torch kind on CUDA: per-chain buffers and Dropout seeds restore from a checkpoint."""
    (tmp_path / "net.py").write_text(
        "from torch import nn\n\n\ndef build():\n    return nn.Sequential(nn.Linear(3, 6), "
        "nn.BatchNorm1d(6), nn.Tanh(), nn.Dropout(0.2), nn.Linear(6, 2))\n")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3))
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0] > 0).astype(np.int64))
    cfg = {"model": {"kind": "torch", "module": f"{tmp_path}/net.py:build",
                     "data": {"file": str(tmp_path / "d.npz")}},
           "rule": {"kind": "momentum", "lr": 0.05, "mu": 0.5}, "run": {"batch_size": 8}}
    whole = _cuda_archive(tmp_path / "a", "torch", cfg)
    split = _cuda_archive(tmp_path / "b", "torch", cfg)
    for shard in range(2):
        ShardRunner(whole, 0, shard).run_until(10**9)
        ShardRunner(split, 0, shard).run_until(2)
        ShardRunner(split, 0, shard).run_until(10**9)
    a, b = archive_arrays(whole), archive_arrays(split)
    assert [k for k in a if not np.array_equal(a[k], b[k], equal_nan=True)] == []
    assert analyze_run(open_run(whole, 0)).ok
