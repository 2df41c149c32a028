"""Displacement and the per-layer fluctuation–dissipation relation, against known answers.

* Displacement on arrays with a known law: a random walk (a flat direction) has exponent 1,
  an AR(1) chain (an Ornstein–Uhlenbeck coordinate) saturates at ``2 Var``; through the
  pipeline, SGD on a 1-D quadratic has ``MSD(k) = 2 Var (1 − (1 − ηh)^k)`` exactly (law S1),
  checked at every lag within 4 standard errors of the chains' spread.
* The fluctuation–dissipation relation holds on a stationary quadratic (|z| < 4, ratio 1 within
  4 SE) whether θ is recorded in full (independent estimates) or partly (paired sums), and is
  flagged (|z| > 4) on chains still relaxing from a far start (the negative control; 64
  chains, because the paired form's SE is the spread over chains of each one's own start).
* Networks get one row per layer of each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sgdthermo.analysis.landscape.displacement import chain_sums, fit, lags_for
from sgdthermo.analysis.reader import open_run
from sgdthermo.analysis.record import analyze_run

from tests.conftest import run_local

ETA, H, SIGMA2 = 0.2, 1.0, 1.0


def _fit(x: np.ndarray) -> dict:
    lags = lags_for(x.shape[1])
    return fit(*chain_sums(x, lags), lags, x.shape[-1])


def test_a_random_walk_has_exponent_one_and_no_plateau():
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.standard_normal((16, 4000, 3)), axis=1)
    out = _fit(walk)
    assert abs(out["exponent"] - 1.0) < 4 * out["exponent_se"] and out["exponent_se"] < 0.05
    assert abs(out["exponent_late"] - 1.0) < 4 * out["exponent_late_se"]
    assert abs(out["plateau_ratio"] - 0.75) < 0.1  # (n/4) / (2 · n/6): no plateau


def test_an_ar1_chain_saturates_at_twice_its_variance():
    rng = np.random.default_rng(1)
    phi, n = 0.5, 4000
    x = np.zeros((16, n, 2))
    noise = rng.standard_normal((16, n, 2))
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    out = _fit(x)
    assert abs(out["plateau_ratio"] - 1.0) < 0.05
    assert abs(out["exponent_late"]) < 4 * out["exponent_late_se"] < 0.1  # saturated
    assert out["exponent"] < 0.2  # the negative control of the random walk's exponent 1


def test_coordinates_that_never_move_have_no_exponent():
    out = _fit(np.ones((4, 64, 2)))
    assert np.isnan(out["exponent"]) and out["reason"] == "the coordinates never move"
    assert _fit(np.zeros((4, 6, 1)))["reason"] == "fewer than 8 draws"


def _quadratic(tmp: Path, record: dict | None = None, init_scale: float = 1.0,
               burn_in: int = 400, h: list[float] | None = None, name: str = "q.zarr",
               chains: int = 16):
    run = {"chains": chains, "draws": 3000, "burn_in": burn_in, "init_scale": init_scale}
    if record:
        run["record"] = record
    cfg = {"seed": 3, "model": {"kind": "quadratic", "hessian": h or [H], "noise_cov":
                                [SIGMA2] * len(h or [H])},
           "rule": {"kind": "sgd", "lr": ETA}, "run": run}
    return analyze_run(open_run(run_local(tmp, cfg, name), 0)).as_dict()


def test_the_msd_of_sgd_on_a_quadratic_is_the_exact_law(tmp_path: Path):
    out = _quadratic(tmp_path)
    run = open_run(str(tmp_path / "q.zarr"), 0)
    theta = np.asarray(run.posterior()["theta"].values)
    lags = np.asarray(out["displacement"]["lags"])
    per_chain, _ = chain_sums(theta, lags)
    se = per_chain.std(axis=0, ddof=1) / np.sqrt(per_chain.shape[0])
    var = ETA * SIGMA2 / (H * (2 - ETA * H))
    exact = 2 * var * (1 - (1 - ETA * H) ** lags)
    measured = np.asarray(out["displacement"]["overall"]["msd"])
    assert np.all(np.abs(measured - exact) < 4 * se), (measured, exact, se)
    assert np.abs(measured - 2 * var).max() > 4 * se.max()  # short lags are below the plateau


@pytest.mark.parametrize("record", [None, {"coords": [1]}])
def test_fdr_holds_at_stationarity_and_is_flagged_while_relaxing(tmp_path: Path, record):
    fdr = _quadratic(tmp_path, record, h=[1.0, 0.5])["fdr"]["overall"]
    assert fdr["estimates"] == ("independent" if record is None else "paired")
    assert abs(fdr["z"]) < 4 and abs(fdr["ratio"] - 1) < 4 * fdr["ratio_se"]
    far = _quadratic(tmp_path, record, init_scale=30.0, burn_in=0, h=[1.0, 0.005],
                     name="far.zarr", chains=64)["fdr"]["overall"]
    assert abs(far["z"]) > 4, far


def test_a_network_gets_one_row_per_layer(tmp_path: Path):
    cfg = {"model": {"kind": "mlp", "hidden": [3], "n": 40}, "rule": {"kind": "sgd", "lr": 0.05},
           "run": {"chains": 4, "draws": 64, "burn_in": 16, "batch_size": 4}}
    out = analyze_run(open_run(run_local(tmp_path, cfg), 0)).as_dict()
    names = ["w1", "b1", "w2", "b2"]
    assert [r["name"] for r in out["fdr"]["layers"]] == names
    assert [r["name"] for r in out["displacement"]["layers"]] == names
    assert out["fdr"]["overall"]["size"] == sum(r["size"] for r in out["fdr"]["layers"])
    total = sum(r["virial"] * r["size"] for r in out["fdr"]["layers"])
    assert np.isclose(out["fdr"]["overall"]["virial"] * out["fdr"]["overall"]["size"], total)


def test_one_late_lag_has_no_late_exponent():
    """Eight draws leave lags 1 and 2: the late half holds one lag, so no slope (NaN, no
    warning), while the exponent over both is defined."""
    import warnings

    rng = np.random.default_rng(5)
    x = np.cumsum(rng.standard_normal((4, 8, 2)), axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = _fit(x)
    assert np.isnan(out["exponent_late"]) and np.isfinite(out["exponent"])


def test_msd_sums_equal_the_direct_differences_even_far_from_zero():
    """The prefix-sum and dot-product form equals Σ‖x_{t+k} − x_t‖² written out, to 1e-10,
    for a random walk riding on an offset 500× its steps (where the form could cancel)."""
    rng = np.random.default_rng(3)
    x = 5.0 + 0.01 * np.cumsum(rng.standard_normal((3, 200, 7)), axis=1)
    lags = lags_for(200)
    msd, var = chain_sums(x, lags)
    direct = np.stack([np.mean(np.sum((x[:, k:] - x[:, :-k]) ** 2, axis=-1), axis=1)
                       for k in lags], axis=1)
    np.testing.assert_allclose(msd, direct, rtol=1e-10)
    np.testing.assert_allclose(var, np.var(x, axis=1).sum(axis=-1), rtol=1e-12)
