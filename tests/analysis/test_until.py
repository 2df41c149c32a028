"""run.until: the burn-in judged by Yaida's FDR test, draws extended until targets, bitwise resume.

Exact theory (docs/theory.md law S1: 1-D SGD on ``L = hθ²/2`` with gradient noise σ²/B): ``a = 1 − ηh``,
``E θ_t² = a^{2t} m₀ + s∞(1 − a^{2t})``, ``s∞ = ησ²/(Bh(2 − ηh))`` — so the bias left at the
judged burn-in is known exactly.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
import xarray as xr
from sgdthermo.analysis.diagnostics.estimators import mean_and_se
from sgdthermo.analysis.diagnostics.until import fdr_ratio, until_record, until_sentence
from sgdthermo.analysis.reader import open_run
from sgdthermo.cluster.driver import prepare_archive, run_archive, shard_table
from sgdthermo.cluster.until import advance, shard_ratios, until_status
from sgdthermo.sampler.archive import RunStore
from sgdthermo.sampler.archive.until_state import STOP_BITS, WARMUP_CAPPED, WARMUP_STATIONARY
from sgdthermo.sampler.jobspec import ConfigError, validate
from sgdthermo.sampler.shard import ShardRunner

from tests.conftest import assert_archives_equal, make_archive

H, SIGMA2, LR, INIT = 0.1, 1.0, 0.1, 30.0
A = 1 - LR * H
S_INF = LR * SIGMA2 / (H * (2 - LR * H))


def job(until: dict, chains: int = 64, draws: int = 400, burn_in: int = 0, seed: int = 3,
        hessian: float = H, shard_chains: int = 32) -> dict:
    """A 1-D quadratic SGD job started far from its stationary law (θ₀ ~ N(0, 30²))."""
    return {"seed": seed, "model": {"kind": "quadratic", "hessian": [hessian],
                                    "noise_cov": [SIGMA2]},
            "rule": {"kind": "sgd", "lr": LR},
            "run": {"chains": chains, "draws": draws, "burn_in": burn_in,
                    "init_scale": INIT, "until": until},
            "cluster": {"shard_chains": shard_chains, "chunk_draws": 100}}


def run_until_local(path: str) -> None:
    """The driver's loop without Ray: every shard to the barrier, then the run's decision."""
    store = RunStore(path, 0)
    runners = [ShardRunner(path, 0, s) for s in range(len(store.shards))]
    steps: list[int] | None = [0]
    while steps is not None:
        allowed = len(RunStore(path, 0).blocks)
        for r in runners:
            r.run_until(allowed)
        steps = advance(path, 0)


def exact_second_moment(t: int) -> float:
    """``E θ_t²`` from θ₀ ~ N(0, INIT²)."""
    return A ** (2 * t) * INIT**2 + S_INF * (1 - A ** (2 * t))


@pytest.fixture(scope="module")
def converged(tmp_path_factory):
    path = make_archive(tmp_path_factory.mktemp("until"), job(
        {"ess_bulk": 300, "r_hat": 1.05, "mcse_rel": 0.05, "max_draws": 20000}))
    run_until_local(path)
    return path


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="run.until needs at least one target"):
        validate(job({"max_draws": 1000}))
    with pytest.raises(ConfigError, match="run.until.max_draws must be at least run.draws"):
        validate(job({"ess_bulk": 100, "max_draws": 100}))
    with pytest.raises(ConfigError, match="r_hat needs at least 2 chains"):
        validate(job({"r_hat": 1.01, "max_draws": 1000}, chains=1, shard_chains=1))


def test_fdr_ratio_is_one_at_stationarity_and_minus_drift_otherwise():
    """The identity's two sides from explicit 1-D SGD steps: R ≈ 1 stationary, ≪ 1 in a transient."""
    rng = np.random.default_rng(0)
    c, n = 64, 2000
    theta = np.empty((c, n + 1))
    theta[:, 0] = rng.normal(0, np.sqrt(S_INF), c)
    steps = np.empty((c, n))
    for t in range(n):
        s = LR * (H * theta[:, t] + rng.normal(0, 1, c))
        steps[:, t], theta[:, t + 1] = s, theta[:, t] - s
    sums = np.stack([(theta[:, :-1] * steps).sum(1), steps.sum(1), 0.5 * (steps**2).sum(1)], -1)
    stationary = fdr_ratio(sums[:, None, :, None], np.zeros(1))
    assert abs(stationary - 1) < 0.05
    far = theta[:, :-1] + 10.0 * A ** np.arange(n)  # not a chain: the control breaks telescoping
    sums_far = np.stack([(far * steps).sum(1), steps.sum(1), 0.5 * (steps**2).sum(1)], -1)
    # telescoping: Σ(θ−c)s − ½Σs² = ½(θ_0² − θ_n²) per chain, exactly
    lhs = sums[:, 0] - sums[:, 2]
    assert np.allclose(lhs, 0.5 * (theta[:, 0] ** 2 - theta[:, -1] ** 2), rtol=1e-9, atol=1e-9)
    assert not np.allclose(sums_far[:, 0] - sums_far[:, 2],
                           0.5 * (far[:, 0] ** 2 - theta[:, -1] ** 2), rtol=1e-3)


def test_burn_in_is_judged_where_the_exact_transient_has_decayed(converged):
    store = RunStore(converged, 0)
    state = store.until
    assert state.warmup == WARMUP_STATIONARY and (state.stationary_step > 0).all()
    # the first barrier (one block, θ₀ 30 sd away) is far from stationary: the test said so
    assert state.stationary_step.min() > 100
    for t in state.stationary_step:  # exact relative excess of E θ² left at the judged step
        assert abs(exact_second_moment(int(t)) / S_INF - 1) < 0.05
    assert exact_second_moment(100) / S_INF > 100  # negative control: the first block is not
    burn = sum(b.steps for b in store.blocks if b.group == "warmup")
    assert burn == int(state.stationary_step.max())


def test_posterior_after_judged_burn_in_has_the_exact_variance(converged):
    run = open_run(converged, 0)
    theta = np.asarray(run.posterior()["theta"].values)
    var, se = mean_and_se((theta - theta.mean()) ** 2)
    assert abs(var[0] - S_INF) < 4 * se[0], (var, se, S_INF)
    # negative control: the same check on the first warm-up block (the transient) fails
    warm = np.asarray(run.tree["warmup_posterior"]["theta"].values)[:, :100]
    wvar, wse = mean_and_se((warm - warm.mean()) ** 2)
    assert abs(wvar[0] - S_INF) > 4 * wse[0]


def test_stops_at_the_first_check_that_meets_every_target(converged):
    store = RunStore(converged, 0)
    state = store.until
    assert state.stop == STOP_BITS["ess_bulk"] | STOP_BITS["r_hat"] | STOP_BITS["mcse_rel"]
    tree = xr.open_datatree(converged, engine="zarr")
    idata = az.from_datatree(tree["run_000"])
    post = idata.posterior  # cut to the draws taken: ArviZ sees exactly the run
    assert post.sizes["draw"] == state.posterior_draws < 20000
    assert idata.warmup_posterior.sizes["draw"] == state.warmup_draws
    assert float(az.ess(post, method="bulk")["theta"].min()) >= 300
    assert float(az.rhat(post)["theta"].max()) <= 1.05
    if state.posterior_draws > 400:  # it did not stop late: one chunk earlier missed a target
        early = post.isel(draw=slice(0, state.posterior_draws - 100))
        theta = early["theta"].values[..., 0]
        mean, se = mean_and_se(((theta - theta.mean()) ** 2)[..., None])
        assert (float(az.ess(early, method="bulk")["theta"].min()) < 300
                or float(az.rhat(early)["theta"].max()) > 1.05 or se[0] / mean[0] > 0.05)
    record = until_record(open_run(converged, 0))
    assert record["stopped_by"] == ["ess_bulk", "r_hat", "mcse_rel"]
    assert "stopped at" in until_sentence(record) and "by its targets" in until_sentence(record)


def test_caps_stop_the_run_and_are_reported(tmp_path):
    path = make_archive(tmp_path, job({"ess_bulk": 10**6, "max_draws": 300, "max_burn_in": 200},
                                      draws=200, hessian=0.01))
    run_until_local(path)
    state = RunStore(path, 0).until
    assert state.warmup == WARMUP_CAPPED and state.warmup_draws == 200
    assert state.stop == STOP_BITS["max_draws"] and state.posterior_draws == 300
    sentence = until_sentence(until_record(open_run(path, 0)))
    assert "max_burn_in" in sentence and "max_draws = 300" in sentence
    assert abs(shard_ratios(RunStore(path, 0), 2) - 1).min() > 0.02  # why it was not judged
    assert_same_progress(path)


def assert_same_progress(path: str, wait_s: float = 15.0) -> None:
    """``status`` reads the archive once without rebuilding runs: the same rows as rebuilt.

    Right after an interrupt an abandoned actor may still commit its block (actors outlive the
    driver by a few seconds), so the two reads are compared once the archive holds still.
    """
    import time

    from sgdthermo.cluster.status import _status_rebuilt
    from sgdthermo.sampler.archive.progress import archive_progress

    deadline = time.monotonic() + wait_s
    while True:
        once = [p.as_dict() for p in archive_progress(path)[1]]
        rebuilt = _status_rebuilt(path)[1]
        if once == rebuilt or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert once == rebuilt


@pytest.mark.ray
def test_interrupted_and_resumed_until_job_is_bitwise_the_uninterrupted_one(ray_session,
                                                                            tmp_path):
    config = job({"ess_bulk": 200, "r_hat": 1.05, "max_draws": 20000}, chains=8,
                 shard_chains=4, hessian=1.0)
    whole = str(tmp_path / "whole.zarr")
    prepare_archive(validate(config), whole, overwrite=False, device="cpu")
    run_archive(whole)
    local = make_archive(tmp_path, config, "local.zarr")
    run_until_local(local)
    assert_archives_equal(whole, local)  # the order shards finish in decides nothing
    warm = RunStore(whole, 0).n_warmup  # warm-up blocks per shard (2 shards)
    for stop_after in (warm, 2 * warm + 3):  # blocks committed: in the warm-up, then sampling
        cut = str(tmp_path / f"cut{stop_after}.zarr")
        prepare_archive(validate(config), cut, overwrite=False, device="cpu")
        seen = []

        def interrupt(table, stop_after=stop_after, seen=seen):
            if sum(sp.blocks_done for sp in table) >= stop_after and not seen:
                seen.append(1)
                raise KeyboardInterrupt

        with pytest.raises(Exception, match="interrupted"):
            run_archive(cut, on_progress=interrupt)
        phase = until_status(cut, 0)["until"]  # what `sgdthermo status` shows meanwhile
        assert phase.startswith("warming up" if stop_after == warm else "sampling"), phase
        assert_same_progress(cut)
        assert not all(sp.done for sp in shard_table(cut))
        run_archive(cut)
        assert until_status(cut, 0)["until"].startswith("stopped by ess_bulk")
        assert_same_progress(cut)
        assert_archives_equal(whole, cut)


def test_equilibration_test_operating_characteristics():
    """Binomial bounds on the simulated judgement (full tables: benchmarks/RESULTS.md).

    200 replicate shards of 32 chains, tolerance 0.02, blocks of 100 steps: a transient from
    θ₀ ~ N(0, 30²) is judged with at most 5 % excess of E θ² left (observed 0/400; the count
    bound 8 has probability < 10⁻³ at a true rate of 1 %); a driftless random walk is accepted
    before 30 blocks at most 8 times (observed 0/400); the exact stationary law is accepted by
    block 20 at least 170 times (observed 99 %). Negative control: a tolerance so wide that the
    second look always passes fails the first two bounds.
    """
    from sgdthermo.analysis.calibration.until import (
        exact_excess,
        judged_blocks,
        simulate,
        stationary_variance,
    )

    def transient_and_walk(tol: float) -> tuple[int, int]:
        k = judged_blocks(*simulate(H, INIT, 200, 32, 30, 100, 21), tol)
        excess = exact_excess(H, INIT, np.where(k > 0, k, 30) * 100)
        walk = judged_blocks(*simulate(0.0, 0.0, 200, 32, 30, 100, 22), tol)
        return int((excess > 0.05).sum()), int((walk > 0).sum())

    early, walked = transient_and_walk(0.02)
    assert early <= 8 and walked <= 8, (early, walked)
    k = judged_blocks(*simulate(H, np.sqrt(stationary_variance(H)), 200, 32, 30, 100, 23), 0.02)
    assert ((k > 0) & (k <= 20)).sum() >= 170
    early, walked = transient_and_walk(1e6)  # negative control: the second look always passes
    assert early > 8 and walked > 8
