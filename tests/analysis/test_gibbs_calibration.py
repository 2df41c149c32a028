"""The Gibbs test is itself tested: size on exact-Gibbs nulls and power on named alternatives.

Cheap simulated draws (numpy, no Ray, ``analysis.calibration``): SGD on a diagonal quadratic with
noise ``c_i = k(2 − ηh_i)`` is exactly Gibbs at finite η (docs/theory.md, exact laws).
Each check is binomial: the
bounds are chosen so that a test with the intended rate fails them with probability < 0.5 %, while
the defects they guard against (a reference distribution off by the degenerate contrasts of
issue 6, or a test that always answers "Gibbs") fail them for sure. Full tables, at α = 0.01 and
D up to 1024, are in benchmarks/RESULTS.md (``benchmarks/gibbs_calibration.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from sgdthermo.analysis.calibration.gibbs import Case, simulate
from sgdthermo.analysis.law.gibbs import gibbs_test_arrays

ALPHA = 0.05  # rejections at 5 % are frequent enough to bound with ~100 replicates


def p_values(case: Case, reps: int, seed: int, chains=8, draws=2000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(reps):
        theta, grads = simulate(case, chains, draws, rng)
        out.append(gibbs_test_arrays(theta - theta.mean(axis=(0, 1)), grads).p_value)
    return np.array(out)


@pytest.mark.parametrize("dim,reps", [(1, 120), (2, 100), (8, 80), (32, 60)])
def test_size_on_exact_gibbs_nulls(dim, reps):
    """Family-wise rejections at α = 0.05 within binomial bounds; p-values not piled up at 1."""
    p = p_values(Case(dim), reps, seed=dim)
    k = int((p < ALPHA).sum())
    lo = scipy.stats.binom.ppf(0.0025, reps, ALPHA / 4)  # Bonferroni may be conservative ...
    hi = scipy.stats.binom.isf(0.0025, reps, 1.5 * ALPHA)  # ... never liberal beyond 1.5α
    assert lo <= k <= hi, (k, lo, hi)
    # The old degenerate Hotelling test gave 8-D null p-values ≥ 0.41: not uniform at all.
    assert np.mean(p < 0.5) > 0.25


def test_power_against_a_few_hotter_coordinates():
    """Issue 6 target: 4 of 32 coordinates 10 % hotter, 8 chains × 2000 draws, τ ≈ 10: ≥ 0.8
    at α = 0.01 (measured 0.94 over 100 replicates)."""
    p = p_values(Case(32, "hotter", 4 / 32, 0.10), 30, seed=101)
    assert (p < 0.01).sum() >= 19  # binomial(30, 0.8): P(X < 19) < 0.01


def test_power_against_coupling_and_skewness():
    """Coupled noise (equal temperatures) and a skewed 1-D law are both rejected."""
    assert (p_values(Case(8, "coupling", 0.0, 0.2), 10, seed=102) < 0.01).sum() >= 9
    assert (p_values(Case(1, "skewed"), 10, seed=103) < 0.01).sum() >= 9


def test_power_at_d_1024():
    """32 of 1024 coordinates 10 % hotter (the max-type test over many coordinates)."""
    p = p_values(Case(1024, "hotter", 32 / 1024, 0.10), 6, seed=104)
    assert (p < 0.01).sum() >= 3  # measured power 0.88: P(X < 3 | 0.8) = 0.017
