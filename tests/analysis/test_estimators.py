"""The one IAT and SE helper against exact autocorrelation times and against ArviZ.

Chains are simulated exactly in numpy (AR(1) for SGD on a 1-D quadratic, the AR(2) of heavy-ball
momentum), started at stationarity. Exact τ (docs/theory.md law S1): SGD ``(2 − ηh)/(ηh)``, momentum
``(1−μ)(2(1+μ) − ηh)/(ηh(1+μ))``.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest
import scipy.signal
from sgdthermo.analysis.diagnostics.estimators import (
    integrated_time,
    integrated_time_se,
    mean_and_se,
)

C, N = 8, 4000


def sgd_chains(eta_h: float, rng, c=C, n=N, burn=3000) -> np.ndarray:
    e = rng.standard_normal((c, n + burn))
    return scipy.signal.lfilter([1.0], [1.0, -(1 - eta_h)], e, axis=1)[:, burn:, None]


def momentum_chains(eta_h: float, mu: float, rng, c=C, n=N, burn=5000) -> np.ndarray:
    """x_{t+1} = (1 + μ − ηh)x_t − μx_{t−1} − ηξ_t (PyTorch heavy ball on ½hx²)."""
    e = rng.standard_normal((c, n + burn))
    a = [1.0, -(1 + mu - eta_h), mu]
    return scipy.signal.lfilter([1.0], a, e, axis=1)[:, burn:, None]


def sgd_tau(eta_h):
    return (2 - eta_h) / eta_h


def momentum_tau(eta_h, mu):
    return (1 - mu) * (2 * (1 + mu) - eta_h) / (eta_h * (1 + mu))


@pytest.mark.parametrize("eta_h", [0.2, 0.5, 1.0, 1.5, 1.8, 1.9, 1.95])
def test_iat_matches_exact_sgd_including_anticorrelated(eta_h):
    """ρ_k = (1−ηh)^k alternates for ηh > 1; the window follows the envelope, not τ."""
    x = sgd_chains(eta_h, np.random.default_rng(int(eta_h * 100)))
    tau, se = integrated_time_se(x)
    assert abs(tau[0] - sgd_tau(eta_h)) < 4 * se[0], (tau, se)
    # The old window of 10·max(τ, 1) lags read 0.384 at ηh = 1.9 (exact 0.0526).
    assert se[0] < 0.25 * max(sgd_tau(eta_h), 0.1)


@pytest.mark.parametrize("eta_h,mu", [(0.2, 0.5), (0.05, 0.9), (0.5, 0.9), (1.5, 0.5)])
def test_iat_matches_exact_momentum(eta_h, mu):
    """Heavy-ball chains are non-reversible and oscillate; their negative lobes must be kept."""
    x = momentum_chains(eta_h, mu, np.random.default_rng(int(eta_h * 1000 + mu * 10)))
    tau, se = integrated_time_se(x)
    assert abs(tau[0] - momentum_tau(eta_h, mu)) < 4 * se[0], (tau, se)


def test_iat_negative_control_wrong_formula_is_rejected():
    """The z-test can fail: the continuous-time τ = 2/(ηh) − 1 … at ηh = 1.5 it is 0.333
    against the OU value 2/(ηh) = 1.33, which the estimate must exclude."""
    x = sgd_chains(1.5, np.random.default_rng(1))
    tau, se = integrated_time_se(x)
    assert abs(tau[0] - 2 / 1.5) > 10 * se[0]


def test_jackknife_se_is_calibrated_over_seeds():
    """20 seeds of a small case: |z| > 2 in about 5 % (t with 7 df: 8 %), never far more."""
    z = []
    for seed in range(20):
        x = sgd_chains(0.2, np.random.default_rng(seed), n=2000)
        tau, se = integrated_time_se(x)
        z.append((tau[0] - sgd_tau(0.2)) / se[0])
    z = np.array(z)
    assert np.mean(np.abs(z) > 2) <= 0.25  # binomial(20, 0.085): P(≥ 6) < 0.01
    assert 0.4 < np.std(z) < 1.8


def test_pooled_iat_is_unbiased_where_averaging_chains_is_not():
    """Pooling autocovariances (one centre for all chains) against averaging per-chain τ.

    A chain centred on its own mean has autocorrelations that sum to −½, which biases a short
    chain's τ down by O(τ²/n); the pooled estimate has no such bias.
    """
    rng = np.random.default_rng(5)
    pooled, averaged = [], []
    for _ in range(30):
        x = sgd_chains(0.2, rng, n=1000)
        pooled.append(integrated_time(x)[0])
        averaged.append(np.mean([integrated_time(x[c:c + 1])[0] for c in range(C)]))
    exact, se = sgd_tau(0.2), np.std(pooled) / np.sqrt(len(pooled))
    assert abs(np.mean(pooled) - exact) < 3 * se
    assert np.mean(averaged) < exact - 4 * se


def test_ess_agrees_with_arviz():
    """C·n/τ against ArviZ's mean ESS (Geyer, split chains) on a positively correlated chain."""
    x = sgd_chains(0.2, np.random.default_rng(3))[..., 0]
    ours = x.size / integrated_time(x[..., None])[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = float(az.ess(x, method="mean"))
    assert abs(ours / theirs - 1) < 0.15, (ours, theirs)


@pytest.mark.parametrize("eta_h", [0.1, 1.9])
def test_mean_se_sized_to_tau_matches_exact_long_run_variance(eta_h):
    """SE of the mean against the exact ``Var(x̄) = σ²τ/(C·n)``, over 40 replicates.

    A fixed 30 batches per chain (what the claims used) is too small at τ = 19 (ηh = 0.1).
    """
    rng = np.random.default_rng(11)
    var = 1.0 / (1 - (1 - eta_h) ** 2)
    exact = np.sqrt(var * sgd_tau(eta_h) / (C * 2000))
    ses = [mean_and_se(sgd_chains(eta_h, rng, n=2000))[1][0] for _ in range(40)]
    assert abs(np.mean(ses) / exact - 1) < 0.1, (np.mean(ses), exact)
