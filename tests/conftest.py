"""Shared fixtures: one Ray instance per session, and in-process archive runs without Ray."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import zarr
from sgdthermo.analysis.reader import RunData, open_run
from sgdthermo.sampler.archive import open_store
from sgdthermo.sampler.in_process import create_here, run_here

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for every test that needs it (ray.init takes ~5 s)."""
    import ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def make_archive(tmp: Path, config: dict[str, Any], name: str = "a.zarr") -> str:
    """Validate a config dict and pre-allocate its archive (CPU), returning the path."""
    return create_here(config, tmp / name)


def run_local(tmp: Path, config: dict[str, Any], name: str = "a.zarr") -> str:
    """Create and fully run an archive in this process (every shard in turn, no Ray)."""
    return run_here(config, tmp / name)


def simulate(tmp: Path, config: dict[str, Any], run: int = 0) -> RunData:
    """Run a config locally and open one of its runs."""
    return open_run(run_local(tmp, config), run)


def archive_arrays(path: str) -> dict[str, np.ndarray]:
    """Every array of an archive by path (for bitwise comparisons)."""
    root = zarr.open_group(store=open_store(path, read_only=True), mode="r")
    out = {}

    def walk(group: zarr.Group, prefix: str) -> None:
        for name, arr in group.arrays():
            out[f"{prefix}{name}"] = arr[...]
        for name, sub in group.groups():
            walk(sub, f"{prefix}{name}/")

    walk(root, "")
    return out


def assert_archives_equal(a: str, b: str) -> None:
    """Bitwise equality of all arrays (NaN equal to NaN)."""
    xa, xb = archive_arrays(a), archive_arrays(b)
    assert xa.keys() == xb.keys()
    for key in xa:
        assert xa[key].dtype == xb[key].dtype, key
        assert np.array_equal(xa[key], xb[key], equal_nan=xa[key].dtype.kind == "f"), key


def quadratic_config(hessian, noise_cov, rule: dict, chains: int = 64, draws: int = 2000,
                     burn_in: int = 400, batch_size: int = 1, seed: int = 0,
                     **run: Any) -> dict[str, Any]:
    """A quadratic-model job config with sensible test defaults."""
    return {"seed": seed,
            "model": {"kind": "quadratic", "hessian": hessian, "noise_cov": noise_cov},
            "rule": rule,
            "run": {"chains": chains, "draws": draws, "burn_in": burn_in,
                    "batch_size": batch_size, "init_scale": 0.0, **run},
            "cluster": {"shard_chains": chains, "chunk_draws": draws}}
