"""Recording choices (``run.record``): a subset of θ, random projections, the virial from sums.

The engine runs and checkpoints every coordinate whatever is recorded, so a partial record must
be the full record's columns bit for bit; temperatures of every coordinate then come from the
engine's sums, checked against exact theory and the full-gradient virial, with a negative
control for the O3 check from sums.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr
from sgdthermo.analysis.law.comparison import measured_position
from sgdthermo.analysis.reader import open_run
from sgdthermo.analysis.record import analyze_run
from sgdthermo.sampler.jobspec import ConfigError, expand, validate
from sgdthermo.sampler.shard import build_engine, state_facts

from tests.conftest import run_local

QUAD = {"kind": "quadratic", "hessian": {"d": 12, "first": 0.5, "last": 2.0},
        "noise_cov": {"d": 12, "first": 1.0, "last": 3.0}}
LINREG = {"kind": "linear_regression", "data": {"n": 64, "d": 6, "condition": 3}}


def job(model, record=None, seed=3, draws=300, burn_in=100, chains=4, init_scale=1.0,
        lr=0.2):
    run = {"chains": chains, "draws": draws, "burn_in": burn_in, "thin": 2, "batch_size": 4,
           "init_scale": init_scale}
    if record is not None:
        run["record"] = record
    return {"seed": seed, "model": model, "rule": {"kind": "sgd", "lr": lr}, "run": run,
            "cluster": {"shard_chains": 2, "chunk_draws": 100}}


@pytest.mark.parametrize("model,kernel", [(QUAD, "native"), (LINREG, "native")])
def test_a_partial_record_is_the_full_record_restricted(tmp_path, model, kernel):
    """Same seed: the recorded columns, the final state and every per-coordinate sum are the
    full run's bit for bit (recording does not touch the random stream); projections are θU."""
    full = run_local(tmp_path, job(model), "full.zarr")
    part = run_local(tmp_path, job(model, {"coords": [1, 4, 5], "projections": 3}), "p.zarr")
    a, b = zarr.open_group(full, mode="r")["run_000"], zarr.open_group(part, mode="r")["run_000"]
    ia = zarr.open_group(full, mode="r")["_sgdthermo/run_000"]  # checkpoints, sums
    ib = zarr.open_group(part, mode="r")["_sgdthermo/run_000"]
    assert a.attrs["sgdthermo_run"]["kernel"] == kernel
    theta = a["posterior"]["theta"][:]
    np.testing.assert_array_equal(b["posterior"]["theta"][:], theta[..., [1, 4, 5]])
    np.testing.assert_array_equal(b["posterior"]["coord"][:], [1, 4, 5])
    u = b["constant_data"]["directions"][:]
    assert u.shape == (theta.shape[-1], 3)
    np.testing.assert_allclose(np.linalg.norm(u, axis=0), 1.0, rtol=1e-14)
    np.testing.assert_allclose(b["posterior"]["projection"][:], theta @ u, rtol=1e-12,
                               atol=1e-12)
    for group, name in (("checkpoint/slot1", "params"), ("fluctuation", "sum"),
                        ("fluctuation", "identity")):
        np.testing.assert_array_equal(ib[group][name][:], ia[group][name][:], err_msg=name)
    assert "virial" not in ia["fluctuation"] and "virial" in ib["fluctuation"]


def test_virial_sums_are_the_sums_of_theta_and_its_minibatch_gradient():
    """The engine's sums against the same steps taken one at a time, and a chain that diverges
    at its first step adds nothing."""
    spec = expand(validate(job(LINREG, {"every": 2})))[0]
    engine = build_engine(spec, 3)
    assert engine.virial
    gen, ref = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    state = engine.init(gen, 1.0)
    engine.init(ref, 1.0)
    params = state.params.clone()
    params[1] = 1.7e308  # diverges at the first step
    state = state._replace(params=params)
    _, rec = engine.run_block(gen, state, 20, 2)
    sums = torch.zeros(3, 3, 6, dtype=torch.float64)
    s = state
    for _ in range(20):
        theta = s.params
        s, _, g, _, _ = engine.step(ref, s, record=True, guard=True)
        live = ~s.diverged.unsqueeze(-1)
        sums += torch.stack([torch.where(live, theta, 0.0), torch.where(live, theta * g, 0.0),
                             torch.where(live, g, 0.0)], 1).double()
    torch.testing.assert_close(rec.virial_sum, sums, rtol=1e-12, atol=1e-12)
    assert (rec.virial_sum[1] == 0).all() and (rec.virial_sum[0] != 0).all()


def test_partial_run_temperatures_match_theory_and_the_full_gradient_virial(tmp_path):
    """Every coordinate's virial temperature from the sums (10 of 40 recorded): within its SE of
    exact theory and of the full run's full-gradient virial; the O3 check from sums passes."""
    model = {"kind": "quadratic", "hessian": {"d": 40, "first": 0.5, "last": 2.0},
             "noise_cov": {"d": 40, "first": 1.0, "last": 3.0}}
    cfg = job(model, draws=3000, burn_in=200, chains=8)
    full = analyze_run(open_run(run_local(tmp_path, cfg, "full.zarr"), 0))
    cfg["run"]["record"] = {"every": 4, "projections": 4}
    part = analyze_run(open_run(run_local(tmp_path, cfg, "part.zarr"), 0))
    tf, tp = full.temperatures, part.temperatures
    assert tp.virial.shape == (40,) and part.gibbs.verdict == "undecided"
    z_theory = part.estimates.comparison.virial_z
    assert abs(z_theory.mean()) < 0.5 and 0.7 < np.sqrt((z_theory**2).mean()) < 1.3
    z_full = (tp.virial - tf.virial) / np.hypot(tp.virial_se, tf.virial_se)
    assert np.sqrt((z_full**2).mean()) < 1.3  # the same chains: if anything, closer than N(0,1)
    assert tp.check == "O3" and tp.agree, tp.agreement_p
    comp = part.estimates.comparison.as_dict()
    assert comp["coords"] == list(range(0, 40, 4)) and len(comp["measured_variance"]) == 10
    assert measured_position(comp, 8) == 2 and measured_position(comp, 9) is None
    diag = part.estimates.diagnostics
    assert diag["theta"]["coord"] == list(range(0, 40, 4)) and len(diag["projection"]["iat"]) == 4
    with pytest.raises(ValueError, match="run.record"):
        _ = part.samples


def test_o3_check_from_sums_fails_out_of_stationarity(tmp_path):
    """Negative control: no burn-in from a far start; the telescoped difference is large."""
    cfg = job(QUAD, {"every": 3}, burn_in=0, draws=50, chains=32, init_scale=5.0, lr=0.05)
    t = analyze_run(open_run(run_local(tmp_path, cfg), 0)).temperatures
    assert t.check == "O3" and not t.agree, t.agreement_p


def test_record_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="run.record: give coords or every, not both"):
        validate(job(QUAD, {"coords": [1], "every": 2}))
    with pytest.raises(ConfigError, match="run.record.coords: must be strictly increasing"):
        validate(job(QUAD, {"coords": [3, 1]}))
    epoch = job(LINREG, {"every": 2})
    epoch["run"]["sampling"] = "epoch"
    with pytest.raises(ConfigError, match="unbiased only for sampling"):
        validate(epoch)
    with pytest.raises(ValueError, match=r"run.record.coords: indices must be in \[0, 12\)"):
        state_facts(expand(validate(job(QUAD, {"coords": [2, 12]})))[0])


def test_a_partial_run_resumes_bitwise(tmp_path):
    """Stopped after two blocks per shard and resumed by fresh runners: every array (θ's subset,
    projections, virial sums, checkpoints) equals an uninterrupted run's."""
    from sgdthermo.sampler.shard import ShardRunner

    from tests.conftest import archive_arrays, make_archive
    cfg = job(QUAD, {"every": 5, "projections": 2})
    whole = run_local(tmp_path, cfg, "whole.zarr")
    split = make_archive(tmp_path, cfg, "split.zarr")
    for shard in (0, 1):
        ShardRunner(split, 0, shard).run_until(2)
        ShardRunner(split, 0, shard).run_until(10**9)
    a, b = archive_arrays(whole), archive_arrays(split)
    assert a.keys() == b.keys() and "_sgdthermo/run_000/fluctuation/virial" in a
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_o3_check_from_sums_size_and_power():
    """Size under the exact null (at most α, binomial 3-SE bound; the t over 8 chains of a
    telescoped difference with exponential tails is conservative: ~0.01 at α = 0.05) and power
    against a fluctuation term 2 % too large (≥ 0.9), 300 replicates each."""
    from sgdthermo.analysis.calibration.gibbs import o3_sums_pvalues
    null = o3_sums_pvalues(300, seed=10)
    assert (null < 0.05).mean() <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 300)
    assert (o3_sums_pvalues(300, seed=11, mis_scale=1.02) < 0.01).mean() >= 0.9


def test_blocks_are_sized_by_what_is_recorded(tmp_path):
    """A shard holds only the recorded part of a block: 64 chains of 10⁵ float32 coordinates get
    10 draws per block in full (256 MiB), the default 256 when every 100th is recorded."""
    from tests.conftest import make_archive
    model = {"kind": "quadratic", "hessian": {"d": 100_000, "first": 0.5, "last": 2.0},
             "noise_cov": {"d": 100_000, "first": 1.0, "last": 3.0}}
    cfg = job(model, chains=64)
    cfg["run"]["dtype"] = "float32"
    cfg["cluster"] = {"shard_chains": 64, "chunk_draws": 256}
    full = zarr.open_group(make_archive(tmp_path, cfg, "full.zarr"), mode="r")
    cfg["run"]["record"] = {"every": 100, "projections": 8}
    part = zarr.open_group(make_archive(tmp_path, cfg, "part.zarr"), mode="r")
    assert full["run_000"].attrs["sgdthermo_run"]["chunk_draws"] == 10
    assert part["run_000"].attrs["sgdthermo_run"]["chunk_draws"] == 256
    assert part["run_000"]["posterior"]["theta"].shape == (64, 300, 1000)


def test_layer_norms_are_the_norms_of_the_full_runs_layers(tmp_path):
    """``layer_norms``: ``‖w1‖, ‖b1‖, …`` per draw (one ``theta_norm`` for a quadratic), equal
    to the norms of the full record's layers, and diagnosed as scalars."""
    mlp = {"kind": "mlp", "hidden": [8]}
    cfg = job(mlp, draws=40, burn_in=20, lr=0.05)
    full = run_local(tmp_path, cfg, "full.zarr")
    cfg["run"]["record"] = {"every": 50, "layer_norms": True}
    run = open_run(run_local(tmp_path, cfg, "part.zarr"), 0)
    theta = open_run(full, 0).posterior()["theta"].values  # flat view of the stored layers
    post = run.posterior()
    lo = 0
    for name, shape, _, _ in open_run(full, 0).variables():
        size = int(np.prod(shape))
        np.testing.assert_allclose(post[f"{name}_norm"].values,
                                   np.linalg.norm(theta[..., lo:lo + size], axis=-1), rtol=1e-12)
        lo += size
    assert lo == theta.shape[-1]
    diag = analyze_run(run).estimates.diagnostics
    assert {"w1_norm", "b1_norm", "w2_norm", "b2_norm"} <= diag.keys()
    assert isinstance(diag["w1_norm"]["r_hat"], float)
    cfg = job(QUAD, {"layer_norms": True})
    quad = open_run(run_local(tmp_path, cfg, "quad.zarr"), 0).posterior()
    np.testing.assert_allclose(quad["theta_norm"].values,
                               np.linalg.norm(quad["theta"].values, axis=-1), rtol=1e-12)


def test_draws_stored_as_float16(tmp_path):
    """``run.record.dtype = "float16"``: θ, projections and norms stored in half precision,
    equal to the float32 run's draws rounded once; checksums verify; the analysis runs; the
    dry-run size counts 2 bytes per recorded number."""
    from sgdthermo.analysis.analyze import analyze_archive
    from sgdthermo.analysis.reader import open_archive
    from sgdthermo.cluster.resources import run_archive_bytes
    from sgdthermo.sampler.archive import verify_archive
    from sgdthermo.sampler.shard import state_facts

    record = {"projections": 2, "layer_norms": True}
    job = {"model": {"kind": "mlp", "hidden": [6], "n": 100}, "rule": {"kind": "sgd", "lr": 0.1},
           "run": {"chains": 4, "draws": 50, "burn_in": 10, "batch_size": 8, "dtype": "float32",
                   "record": {**record, "dtype": "float16"}}}
    half = run_local(tmp_path, job, "half.zarr")
    full_job = {**job, "run": {**job["run"], "record": record}}
    full = run_local(tmp_path, full_job, "full.zarr")
    a, b = open_archive(half)[0].posterior(), open_archive(full)[0].posterior()
    for name in ("theta", "projection", "w1_norm"):
        assert a[name].dtype == np.float16 and b[name].dtype == np.float32
        np.testing.assert_array_equal(a[name].values, b[name].values.astype(np.float16))
    assert verify_archive(half).ok
    assert analyze_archive(half).as_dict()["runs"][0]["status"] == "ok"
    sizes = [run_archive_bytes(expand(validate(j))[0], state_facts(expand(validate(j))[0]), 64,
                               256) for j in (job, full_job)]
    draws = 4 * 50 * (6 * 64 + 6 + 10 * 6 + 10 + 2 + 4)
    assert sizes[1] - sizes[0] == 2 * draws  # 4 bytes against 2 per recorded number
