"""Networks end to end: per-layer variables in the archive, ArviZ and the analysis; block sizing."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_local
from sgdthermo.analysis.analyze import analyze_archive
from sgdthermo.analysis.reader import open_archive
from sgdthermo.analysis.report import render_html
from sgdthermo.sampler.archive.schema import BLOCK_BYTES, block_draws


def network_job(model: dict) -> dict:
    return {"seed": 3, "model": {**model, "n": 200},
            "rule": {"kind": "sgd", "lr": 0.05},
            "run": {"chains": 4, "draws": 24, "burn_in": 10, "thin": 2, "batch_size": 8},
            "cluster": {"shard_chains": 2, "chunk_draws": 8}}


@pytest.mark.parametrize("model,names", [
    ({"kind": "mlp", "hidden": [6, 5]}, ["w1", "b1", "w2", "b2", "w3", "b3"]),
    ({"kind": "cnn", "channels": [2], "hidden": [4]},
     ["conv1_w", "conv1_b", "w1", "b1", "w2", "b2"]),
])
def test_network_parameters_by_layer_in_arviz_and_analysis(tmp_path, model, names):
    path = run_local(tmp_path, network_job(model))
    run = open_archive(path)[0]
    idata = run.inference_data()
    assert list(idata.posterior.data_vars) == names
    w1 = idata.posterior["w1"]
    fan_in = 64 if model["kind"] == "mlp" else 2 * 64
    assert w1.dims == ("chain", "draw", "w1_out", "w1_in")
    assert w1.shape == (4, 24, model["hidden"][0], fan_in)
    # the layer is exactly its block of the flat θ the archive stores
    theta = np.asarray(run.posterior()["theta"].values)
    lo = sum(int(np.prod(v.shape[2:])) for k, v in idata.posterior.items()
             if names.index(k) < names.index("w1"))
    np.testing.assert_array_equal(
        w1.values.reshape(4, 24, -1), theta[..., lo:lo + w1.shape[2] * w1.shape[3]])
    assert idata.posterior["b1"].dims == ("chain", "draw", "w1_out")

    record = analyze_archive(path).runs[0]
    assert record.status == "ok"
    diag = record.estimates.diagnostics
    assert [k for k in diag if k in names] == names and "theta" not in diag
    assert np.shape(diag["w1"]["r_hat"]) == w1.shape[2:]
    # the per-layer numbers are the per-coordinate numbers, reshaped
    flat = np.concatenate([np.ravel(diag[k]["ess_bulk"]) for k in names])
    assert flat.shape == (theta.shape[-1],) and np.isfinite(flat).all()
    assert record.estimates.worst["min_ess_bulk"] <= flat.min()
    assert "w1[0,0]" in render_html(analyze_archive(path))


def test_quadratic_keeps_one_theta_variable(tmp_path):
    job = {"seed": 0, "model": {"kind": "quadratic", "hessian": [1.0, 2.0],
                                "noise_cov": [1.0, 1.0]},
           "rule": {"kind": "sgd", "lr": 0.1}, "run": {"chains": 2, "draws": 20}}
    path = run_local(tmp_path, job)
    run = open_archive(path)[0]
    assert list(run.inference_data().posterior.data_vars) == ["theta"]
    assert [v[0] for v in run.variables()] == ["theta"]


def test_block_draws_cap_the_memory_of_a_block():
    assert block_draws(256, 4, 10, 4) == 256  # small models: the configured chunk
    assert block_draws(256, 64, 126_090, 4) == 8  # 64 chains × 1.26·10⁵ float32: 8 draws
    assert 64 * 126_090 * 4 * block_draws(256, 64, 126_090, 4) <= BLOCK_BYTES
    assert block_draws(256, 64, 10**8, 8) == 1  # never zero


def test_a_loss_scaled_network_keeps_its_layers():
    from sgdthermo.sampler.config import MLPConfig
    plain = MLPConfig(hidden=[4]).build(batch_size=2)
    scaled = MLPConfig(hidden=[4], loss_scale=2.0).build(batch_size=2)
    assert scaled.variables() == plain.variables() and len(plain.variables()) == 4
