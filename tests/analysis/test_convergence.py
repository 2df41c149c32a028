"""The vectorised diagnostics equal ArviZ 0.23's to 1e-6 (rank R-hat, bulk/tail ESS, MCSE).

Cases cover what trips a vectorised port of ArviZ's loops: strong positive and negative
autocorrelation (early and late cut-offs of Geyer's sequence), ties (average ranks), few draws,
chains at different levels (large R-hat), a skewed law, and a constant coordinate.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest
from sgdthermo.analysis.diagnostics.convergence import block_size, diagnose_block, ess
from sgdthermo.analysis.diagnostics.run_diagnostics import diagnose_array

RNG = np.random.default_rng(1)


def ar1(c: int, n: int, k: int, phi: float) -> np.ndarray:
    x = np.zeros((c, n, k))
    e = RNG.standard_normal((c, n, k))
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


CASES = {
    "ar(0.9)": ar1(4, 500, 7, 0.9),
    "ar(-0.5)": ar1(2, 200, 3, -0.5),
    "iid, odd n": RNG.standard_normal((3, 101, 5)),
    "ties": RNG.integers(0, 3, (4, 60, 4)).astype(float),
    "short": RNG.standard_normal((2, 9, 3)),
    "chains apart": ar1(4, 300, 3, 0.95) + np.arange(4)[:, None, None],
    "skewed": np.exp(ar1(4, 400, 3, 0.7)),
    "constant": np.concatenate([np.ones((3, 50, 1)), RNG.standard_normal((3, 50, 1))], -1),
    "a nan draw": np.where(np.arange(3)[None, None, :] == 1,
                           np.pad(np.full((2, 1, 1), np.nan), ((0, 0), (0, 39), (0, 0)),
                                  constant_values=0.5), RNG.standard_normal((2, 40, 3))),
}


def arviz(x: np.ndarray) -> dict[str, np.ndarray]:
    ds = az.convert_to_dataset({"v": x})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"r_hat": az.rhat(ds, method="rank")["v"].values,
                "ess_bulk": az.ess(ds, method="bulk")["v"].values,
                "ess_tail": az.ess(ds, method="tail")["v"].values,
                "mcse_mean": az.mcse(ds, method="mean")["v"].values}


@pytest.mark.parametrize("name", list(CASES))
def test_equals_arviz(name):
    x = CASES[name]
    ours, ref = diagnose_block(x), arviz(x)
    for q, expected in ref.items():
        np.testing.assert_allclose(ours[q], expected, rtol=1e-6, atol=0, equal_nan=True,
                                   err_msg=f"{name}: {q}")


def test_the_comparison_sees_a_wrong_ess():
    """Negative control: ESS from unsplit chains (a plausible porting slip) differs from ArviZ."""
    x = CASES["chains apart"]
    from sgdthermo.analysis.diagnostics.convergence import z_scale

    wrong = ess(z_scale(np.moveaxis(x, -1, 0).copy()))
    assert np.abs(wrong / arviz(x)["ess_bulk"] - 1).max() > 1e-3


def test_streaming_blocks_give_the_same_numbers():
    import xarray as xr

    x = ar1(3, 120, 50, 0.5)
    da = xr.DataArray(x, dims=("chain", "draw", "coord"))
    whole = diagnose_block(x)
    # A budget that forces blocks of a few coordinates.
    streamed = diagnose_array(da, budget_bytes=3 * 120 * 2 * 64 * 7)
    assert block_size(3, 120, 3 * 120 * 2 * 64 * 7) == 7
    # Batched FFTs of different widths may round the last bit differently (SIMD lanes): equal
    # to 1e-12, far inside the 1e-6 agreement with ArviZ.
    for q in ("r_hat", "ess_bulk", "ess_tail", "mcse_mean"):
        np.testing.assert_allclose(streamed[q], whole[q], rtol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_average_ranks_equal_scipy_with_ties(seed):
    import scipy.stats
    from sgdthermo.analysis.diagnostics.convergence import average_ranks

    rng = np.random.default_rng(seed)
    a = np.concatenate([rng.integers(0, 4, (3, 200)).astype(float),  # many ties
                        rng.standard_normal((2, 200)).astype(np.float32).astype(float),
                        np.abs(rng.standard_normal((2, 200)).round(1))], axis=0)
    np.testing.assert_array_equal(average_ranks(a), scipy.stats.rankdata(a, axis=1))
