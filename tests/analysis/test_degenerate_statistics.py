"""The statistical tests on degenerate input: every case built directly, every outcome defined.

Goodness of fit: a zero-probability bin, a covariance that is singular by construction, a bin
never or always hit, too few batches for the bins, a single bin, NaN draws and near-tied atoms.
The Gibbs test: coordinates that never move (all of them, or some), and components none of
whose terms vary. Each gives a p-value, a certain rejection or "undecided" with its reason —
never NaN, never an exception — on every CPU, because each case is degenerate exactly, not by a
rounding that one BLAS kernel makes and another does not.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from sgdthermo.analysis.calibration.exact_law import ar1_chains
from sgdthermo.analysis.law.gof import gof_binned, gof_test, gof_words, merge_groups
from sgdthermo.analysis.theory.one_d import merge_ties, tie_tolerance


def ar1_bins(chains: int, draws: int, phi: float, bins: int, seed: int) -> np.ndarray:
    """Bin indices of a stationary AR(1) chain binned at its exact deciles (a valid null)."""
    z = ar1_chains(chains, draws, phi, np.random.default_rng(seed))
    return np.minimum((scipy.stats.norm.cdf(z) * bins).astype(int), bins - 1)


def test_a_zero_probability_bin_never_hit_leaves_the_statistic_unchanged():
    """The discrete law's failure: with a bin of probability 0 appended, the other bins'
    indicators sum to 1 in every batch (a covariance singular by construction). The test is
    the same as without that bin, to rounding, and never NaN."""
    index = ar1_bins(8, 2000, 0.3, 10, seed=1)
    plain = gof_binned(index, np.full(10, 0.1))
    padded = gof_binned(index, np.concatenate([np.full(10, 0.1), [0.0]]))
    assert plain.outcome == padded.outcome == "tested"
    assert padded.p_value == pytest.approx(plain.p_value, rel=1e-9)
    assert padded.dof == plain.dof == (9, plain.dof[1])
    # and a zero bin in the middle (coinciding quantile edges) likewise
    middle = gof_binned(np.where(index >= 5, index + 1, index),
                        np.concatenate([np.full(5, 0.1), [0.0], np.full(5, 0.1)]))
    assert middle.p_value == pytest.approx(plain.p_value, rel=1e-9)


def test_a_draw_where_the_law_has_no_mass_rejects_with_certainty():
    index = ar1_bins(8, 500, 0.3, 10, seed=2)
    index[3, 17] = 10  # the appended bin of probability 0
    r = gof_binned(index, np.concatenate([np.full(10, 0.1), [0.0]]))
    assert r.outcome == "rejected" and r.p_value == 0.0 and "probability 0" in r.reason
    outside = ar1_bins(8, 500, 0.3, 10, seed=2)
    outside[0, 0] = -1  # in no bin at all
    assert gof_binned(outside, np.full(10, 0.1)).p_value == 0.0


def test_nan_draws_lie_in_no_bin():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 400))
    ok = gof_test(x, scipy.stats.norm.cdf, scipy.stats.norm.ppf)
    assert ok.outcome == "tested" and 0 < ok.p_value <= 1
    x[1, 5] = np.nan
    r = gof_test(x, scipy.stats.norm.cdf, scipy.stats.norm.ppf)
    assert r.outcome == "rejected" and r.p_value == 0.0


def test_a_bin_never_hit_rejects_unless_its_probability_is_negligible():
    index = ar1_bins(8, 1000, 0.3, 9, seed=4)  # bins 0 … 8; bin 9 never hit
    wrong = gof_binned(index, np.full(10, 0.1))  # bin 9 should have 10 %: certain rejection
    assert wrong.outcome == "rejected" and "never varies" in wrong.reason
    tiny = np.concatenate([np.full(9, (1 - 1e-12) / 9), [1e-12]])  # 1e-12 away: left out
    r = gof_binned(index, tiny)
    assert r.outcome == "tested" and r.dof[0] == 8
    assert r.p_value == pytest.approx(gof_binned(index, np.full(9, 1 / 9)).p_value, rel=1e-6)


def test_frequencies_that_never_vary_are_exact():
    """Alternating bins with batches of even length: every batch holds exactly half of each,
    so V = 0. Equal to the law: undecided (nothing varies); off it: certain rejection."""
    index = np.tile([0, 1], (8, 300))  # 600 draws: 30 batches of 20, 60 of 10
    even = gof_binned(index, np.array([0.5, 0.5]))
    assert even.outcome == "undecided" and even.p_value is None and "varies" in even.reason
    assert gof_binned(index, np.array([0.4, 0.6])).outcome == "rejected"


def test_one_bin_is_undecided():
    index = np.zeros((4, 100), dtype=int)
    r = gof_binned(index, np.array([0.0, 1.0, 0.0])[[1, 0, 2]])  # all mass in bin 0
    assert r.outcome == "undecided" and "one bin" in r.reason
    assert gof_words(r.as_dict()).startswith("goodness of fit undecided (")


def test_too_few_batches_merge_bins_then_undecided():
    """τ ≈ 2000 draws: one batch per chain. 16 chains (ν = 6) leave room for 5 merged bins;
    2 chains (ν = 0.4) for none."""
    slow = ar1_bins(16, 2000, 0.999, 10, seed=5)
    r = gof_binned(slow, np.full(10, 0.1))
    assert r.outcome == "tested" and r.dof[0] == 4 and "merged to 5" in r.reason
    assert 0 < r.p_value <= 1
    few = gof_binned(slow[:2], np.full(10, 0.1))
    assert few.outcome == "undecided" and "too few" in few.reason


def test_merge_groups_keeps_runs_of_consecutive_bins():
    groups = merge_groups(np.full(10, 0.1), 4)
    assert [g.tolist() for g in groups] == [[0, 1], [2, 3, 4], [5, 6], [7, 8, 9]]
    assert merge_groups(np.full(3, 1 / 3), 5) == [np.array([0]), np.array([1]), np.array([2])]
    assert merge_groups(np.full(3, 1 / 3), 1) is None


def test_json_form_has_no_nan_or_infinity():
    import json

    index = ar1_bins(2, 2000, 0.999, 10, seed=6)
    for r in (gof_binned(index, np.full(10, 0.1)),
              gof_binned(np.full((4, 50), 7), np.full(10, 0.1))):
        json.dumps(r.as_dict(), allow_nan=False)


def test_near_tied_atoms_are_one_atom():
    """Values one ulp apart, exact duplicates and values apart by far more than rounding."""
    y = np.array([1.0, np.nextafter(1.0, 2.0), 2.0, 2.0, 3.0, 3.0 + 1e-6])
    law = merge_ties(y, tie_tolerance(np.float64, y))
    assert law.atoms.tolist() == pytest.approx([1.0, 2.0, 3.0, 3.0 + 1e-6])
    assert law.masses.tolist() == pytest.approx([2 / 6, 2 / 6, 1 / 6, 1 / 6])
    x = np.array([1.0, np.nextafter(1.0, 0.0), 2.0 + 1e-13, 3.0 + 1e-6, 1.5, np.nan])
    assert law.atom_of(x).tolist() == [0, 0, 1, 3, -1, -1]
    # float32 draws of the same atoms: their rounding (~1e-7) is not "off the support"
    assert law.atom_of(np.float32([1.0, 3.0])).tolist() == [0, 2]


def test_a_dataset_with_near_tied_values_at_eta_one(tmp_path):
    """The mean model at η = 1 on data with a value repeated one ulp apart, placed where the
    two copies would fall into different bins: one atom of mass 2/N, and the engine's draws
    (y_i up to rounding) fit it. Negative control: as two atoms, rounding moves draws from one
    copy to the other (the draws are i.i.d. at η = 1, so the binomial SE is exact)."""
    from sgdthermo.analysis.record import analyze_run

    from tests.conftest import simulate

    y = np.sort(np.random.default_rng(7).normal(size=20))
    y[2] = np.nextafter(y[1], np.inf)  # sorted positions 1 and 2: bins {0, 1}, {2, 3}, …
    job = {"seed": 4, "model": {"kind": "mean", "values": y.tolist()},
           "rule": {"kind": "sgd", "lr": 1.0},
           "run": {"chains": 32, "draws": 2000, "burn_in": 100, "init_scale": 0.0},
           "cluster": {"shard_chains": 32, "chunk_draws": 2000}}
    run = analyze_run(simulate(tmp_path, job))
    e = run.estimates.exact_law
    assert e is not None and e.method.startswith("discrete")
    assert e.gof.outcome == "tested" and e.gof.p_value > 1e-3, e.gof
    law = merge_ties(y, tie_tolerance(np.float64, y))
    assert len(law.atoms) == 19 and law.masses.max() == pytest.approx(2 / 20)
    theta = np.asarray(run.posterior()["theta"].values).ravel()
    assert np.isin(theta, y).mean() < 1  # some draws are y_i only up to rounding
    atoms = np.unique(y)  # the pair as two atoms, each draw to its nearest
    freq = np.bincount(np.abs(theta[:, None] - atoms).argmin(axis=1), minlength=20) / theta.size
    se = np.sqrt(0.05 * 0.95 / theta.size)
    assert np.abs(freq[1:3] - 0.05).max() > 3 * se, freq[1:3]


def test_merged_bins_keep_the_size_and_some_power():
    """100 replicates of 16 chains so slow that each is one batch (bins merged to 5): at most 6
    rejections of the exact law at α = 0.01 (P(X > 6 | p = 0.01) < 10⁻³; 0/400 measured: the
    test is conservative here), at least 35 of N(1, 1) (measured 0.50 over 400: P(X < 35 |
    0.5) < 0.002). Full table: benchmarks/RESULTS.md."""
    from sgdthermo.analysis.calibration.exact_law import rejections_few_batches

    r = rejections_few_batches(100, seed=51)
    assert r["merged"] == 100 and r["exact"] <= 6 and r["shifted"] >= 35, r


def test_gibbs_test_on_coordinates_that_never_move():
    from sgdthermo.analysis.law.gibbs import gibbs_test_arrays

    rng = np.random.default_rng(8)
    moving = rng.normal(size=(8, 2000, 2))
    grads = moving + 0.3 * rng.normal(size=moving.shape)
    still = np.full((8, 2000, 1), 0.1)  # constant, and its mean rounds: θ − θ̄ ≠ 0 exactly
    r = gibbs_test_arrays(np.concatenate([moving, still - still.mean()], -1),
                          np.concatenate([grads, np.zeros_like(still)], -1), 1.0)
    assert r.verdict == "not Gibbs" and r.p_value == 0.0
    assert "1 of 3 coordinates never vary" in r.reason
    assert [c.status for c in r.components] == ["ok", "ok", "ok"]
    point = gibbs_test_arrays(np.zeros((4, 500, 3)), rng.normal(size=(4, 500, 3)), 1.0)
    assert point.verdict == "undecided" and "point mass" in point.reason
    assert all(c.status == "undecided" for c in point.components)
    # negative control: the same moving coordinates alone are tested as usual
    assert gibbs_test_arrays(moving, grads, 1.0).components[0].statistic_kind in ("Q", "max|z|")


def test_a_component_whose_terms_never_vary_is_undecided():
    from sgdthermo.analysis.law.contrast_tests import Means, max_test, quadratic_form_test

    flat = Means(np.array([0.5, 0.5]), np.full((40, 2), 0.5), np.full((80, 2), 0.5))
    for test in (quadratic_form_test, max_test):
        for contrast in (True, False):
            assert np.isnan(test(flat, contrast)[2])
    one = Means(np.array([0.5, 0.2]), np.column_stack([np.linspace(0, 1, 40), np.full(40, 0.2)]),
                np.column_stack([np.linspace(0, 1, 80), np.full(80, 0.2)]))
    assert np.isnan(quadratic_form_test(one, True)[2])  # one varying term against its own mean
    assert np.isfinite(quadratic_form_test(one, False)[2])


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # 0/0 z-scores
@pytest.mark.parametrize("noise,verdict", [([1.0, 0.0], "not Gibbs"), ([0.0, 0.0], "undecided")])
def test_a_coordinate_without_noise_through_the_pipeline(tmp_path, noise, verdict):
    """A quadratic with no gradient noise along a coordinate: SGD sits at θ*_i exactly after
    the burn-in (it used to raise ZeroDivisionError in `analyze`)."""
    from sgdthermo.analysis.record import analyze_run

    from tests.conftest import quadratic_config, simulate

    job = quadratic_config([1.0, 2.0], noise, {"kind": "sgd", "lr": 0.1}, chains=8, draws=4000,
                           burn_in=2000)
    run = analyze_run(simulate(tmp_path, job))
    assert run.gibbs.verdict == verdict, run.gibbs.reason
    assert ("never vary" if verdict == "not Gibbs" else "point mass") in run.gibbs.reason
    # the O3 check leaves the still coordinate's 0/0 out: a p-value when another one moves
    temps = run.temperatures
    assert temps.virial[1] == temps.fluctuation[1] == 0
    assert np.isfinite(temps.agreement_p) == (verdict == "not Gibbs"), temps.agreement_p


def test_o3_check_on_degenerate_z_scores():
    from sgdthermo.analysis.law.temperature import FluctuationSums, combine

    with np.errstate(divide="ignore", invalid="ignore"):
        same = combine(np.array([1.0, 0.0]), np.array([0.1, 0.0]), np.zeros(2), 1.0,
                       FluctuationSums(np.array([[[1.0, 0.0]]] * 4), np.array([1]), None),
                       exact=True)
        unequal = combine(np.array([1.0, 0.5]), np.array([0.1, 0.0]), np.zeros(2), 1.0,
                          FluctuationSums(np.array([[[1.0, 0.0]]] * 4), np.array([1]), None),
                          exact=True)
    assert np.isnan(same.z[1]) and same.agreement_p == 1.0  # 0/0 left out; coordinate 0 agrees
    assert np.isinf(unequal.z[1]) and unequal.agreement_p == 0.0  # unequal with no spread
