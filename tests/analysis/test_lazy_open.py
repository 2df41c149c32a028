"""Archives open lazily and chunked with plain xarray + dask (the optional ``dask`` extra)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from sgdthermo.analysis import open_archive

from tests.conftest import run_local

dask = pytest.importorskip("dask")

CONFIG = {"seed": 2, "model": {"kind": "quadratic", "hessian": [1.0, 2.0, 3.0],
                               "noise_cov": [1.0, 1.0, 1.0]},
          "rule": {"kind": "sgd", "lr": 0.1},
          "run": {"chains": 4, "draws": 600, "burn_in": 0},
          "cluster": {"shard_chains": 2, "chunk_draws": 200}}


def test_open_datatree_with_chunks_is_lazy_and_equal(tmp_path):
    path = run_local(tmp_path, CONFIG)
    tree = xr.open_datatree(path, engine="zarr", chunks={})
    theta = tree["run_000/posterior"]["theta"]
    assert isinstance(theta.data, dask.array.Array)  # nothing read yet
    assert theta.shape == (4, 600, 3)
    assert theta.chunks[1] == (200, 200, 200)  # the archive's chunks along draws
    eager = open_archive(path)[0].posterior()["theta"].values
    np.testing.assert_array_equal(theta.values, eager)
    assert float(theta.mean().compute()) == pytest.approx(float(eager.mean()), rel=1e-12)
