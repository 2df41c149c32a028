"""Networks end to end: per-layer variables in the archive, ArviZ and the analysis; block sizing."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_local
from sgdthermo.analysis.analyze import analyze_archive
from sgdthermo.analysis.reader import open_archive
from sgdthermo.analysis.render.report import render_html
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


def _same_record(a, b) -> bool:
    """Equal structure and strings; numbers equal to 1e-12 relative (NaN equal to NaN).

    Plus 1e-10 absolute: a jackknife SE of τ (``iat_se``) is a difference of τ's of size ~20
    and can be ~1e-7, so rounding differences of τ (batched FFTs of other widths) reach it
    absolutely, not relatively.
    """
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(
            _same_record(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(
            _same_record(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return bool(np.isclose(a, b, rtol=1e-12, atol=1e-10, equal_nan=True))
    return a == b


def _flat_archive(tmp_path, cfg: dict, name: str) -> str:
    """The same job written the way archives were before per-layer arrays (one flat θ)."""
    from sgdthermo.sampler.archive import create_archive, shard_bounds
    from sgdthermo.sampler.jobspec import expand, validate
    from sgdthermo.sampler.shard import ShardRunner, state_facts
    job = validate(cfg)
    runs = expand(job)
    path = str(tmp_path / name)
    create_archive(path, job, runs, "cpu", [{**state_facts(r), "layout": "flat"} for r in runs])
    for s in range(len(shard_bounds(runs[0].run.chains, job.cluster.shard_chains))):
        ShardRunner(path, 0, s).run_until(10**9)
    return path


def test_layers_are_arrays_of_their_own_and_analyse_like_flat_theta(tmp_path):
    """On disk a network is ``w1 (chain, draw, w1_out, w1_in)``, … (plain xarray sees them, no
    flat θ); the analysis reads a lazy flat view and gives what it gives on the flat layout
    that archives had before (which still opens and resumes as it was)."""
    import warnings

    import xarray as xr
    from sgdthermo.analysis.analyze import analyze_archive
    from sgdthermo.sampler.shard import ShardRunner

    from tests.conftest import archive_arrays, make_archive
    cfg = network_job({"kind": "mlp", "hidden": [6, 5]})
    path = run_local(tmp_path, cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = xr.open_datatree(path, engine="zarr")["run_000/posterior"].to_dataset()
    assert "theta" not in post and post["w1"].dims == ("chain", "draw", "w1_out", "w1_in")
    flat = _flat_archive(tmp_path, cfg, "flat.zarr")
    a, b = open_archive(path)[0], open_archive(flat)[0]
    assert a.store.layout == "layers" and b.store.layout == "flat"
    theta_a, theta_b = a.posterior()["theta"], b.posterior()["theta"]
    np.testing.assert_array_equal(theta_a.values, theta_b.values)
    for key in (np.s_[:, :, 3:70], np.s_[1, :, 200:201], np.s_[:, 5, ::7], np.s_[2, 3, 64],
                np.s_[:, :, 40:40], np.s_[::2, 1:9, -30:]):
        np.testing.assert_array_equal(theta_a[key].values, theta_b.values[key], err_msg=str(key))
    ra, rb = analyze_archive(path).as_dict()["runs"], analyze_archive(flat).as_dict()["runs"]
    assert _same_record(ra, rb)  # every number of the record (FFT batches differ: ≤ 1e-12)
    split = make_archive(tmp_path, cfg, "split.zarr")  # the layers layout resumes bitwise
    for shard in (0, 1):
        ShardRunner(split, 0, shard).run_until(2)
        ShardRunner(split, 0, shard).run_until(10**9)
    whole, again = archive_arrays(path), archive_arrays(split)
    assert whole.keys() == again.keys()
    for key in whole:
        np.testing.assert_array_equal(whole[key], again[key], err_msg=key)
