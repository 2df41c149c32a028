"""The probability current against exact theory, and the zero-current test's size and power.

Exact: ``A_1 = Σ(I − ΛH)ᵀ − (I − ΛH)Σ`` for SGD (docs/theory.md, exact laws), zero iff ΛHΣ
is symmetric;
momentum's from the joint (δ, buffer) recursion. Measured ``A_k`` must agree with it within
4 of its own batch-means SEs, and must *not* agree with a wrong answer (the reversible zero).
The test of zero current is run on many simulated replicates under an exact null (diagonal H
and noise: ΛHΣ diagonal) and a named alternative (H rotated by 0.3 rad against the noise axes);
its rejection rates are checked with binomial bounds.
"""

from __future__ import annotations

import numpy as np
import pytest
from sgdthermo.analysis.calibration.current import rejections
from sgdthermo.analysis.law.current import (
    current_sentence,
    entropy_production,
    exact_current,
)
from sgdthermo.analysis.record import analyze_run
from sgdthermo.analysis.theory.linear import stationary_theory
from sgdthermo.sampler.config import QuadraticConfig, RunConfig, SGDConfig
from sgdthermo.sampler.rules import UpdateRule

from tests.conftest import quadratic_config, simulate


def _rotated(angle: float, spectrum=(1.0, 3.0)) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    r = np.array([[c, -s], [s, c]])
    return r @ np.diag(spectrum) @ r.T


def _theory(hessian, noise, rule: UpdateRule):
    model = QuadraticConfig(kind="quadratic", hessian=np.asarray(hessian).tolist(),
                            noise_cov=list(noise)).build(1)
    return stationary_theory(model, rule, RunConfig())


def test_sgd_exact_current_is_the_closed_form_and_vanishes_when_reversible():
    lr, h = 0.2, _rotated(0.5)
    th = _theory(h, (1.0, 9.0), SGDConfig(lr=lr).build())
    m = np.eye(2) - lr * h
    closed = th.cov @ m.T - m @ th.cov
    np.testing.assert_allclose(exact_current(th, 1, [(0, 1)], [1])[0, 0], closed[0, 1],
                               rtol=1e-10)
    assert abs(closed[0, 1]) > 0.01
    assert entropy_production(th) > 0.01
    diagonal = _theory([1.0, 2.0], (1.0, 9.0), SGDConfig(lr=lr).build())  # ΛHΣ diagonal
    assert np.abs(exact_current(diagonal, 1, [(0, 1)], [1, 2, 5])).max() < 1e-12
    assert abs(entropy_production(diagonal)) < 1e-10


@pytest.mark.parametrize("rule", [{"kind": "sgd", "lr": 0.2},
                                  {"kind": "momentum", "lr": 0.05, "mu": 0.6}])
def test_measured_current_matches_exact_theory(tmp_path, rule):
    h = _rotated(0.5)
    cfg = quadratic_config(h.tolist(), [1.0, 9.0], rule, chains=32, draws=6000, burn_in=600)
    run = analyze_run(simulate(tmp_path, cfg))
    c = run.estimates.current
    assert c is not None and c.exact is not None and c.pairs == [(0, 1)]
    z = (c.measured - c.exact) / c.se
    assert np.abs(z).max() < 4, z
    assert np.abs(c.exact[0]).max() > 8 * c.se[0].max()  # a current the data must resolve
    wrong = np.abs(c.measured / c.se)[0]  # negative control: "reversible" (A = 0) is rejected
    assert wrong.max() > 8
    assert c.zero_rejected
    assert (c.entropy_production is None) == (rule["kind"] == "momentum")  # buffer feeds back
    record = run.as_dict()["current"]  # what analyze --json, the text and the report show
    assert record["exact"] is not None and record["zero_rejected"]
    assert "zero current rejected" in current_sentence(record)


def test_zero_current_test_size_and_power():
    """400 replicates of 4 chains × 3 000 draws each, α = 0.01 (``calibration.current``).

    Size under the exact null (diagonal H and noise): at most 9 rejections (P(X ≥ 10) ≈ 0.003
    for a test of size 0.01). Power against H rotated by 0.05 rad: at least 90 %
    (the power curve is in ``benchmarks/RESULTS.md``).
    """
    n = 400
    null = rejections(0.0, n, seed=1)
    assert null <= 9, f"size {null}/{n}"
    alt = rejections(0.05, n, seed=2)  # a rotation of 3°
    assert alt >= 0.9 * n, f"power {alt}/{n}"


@pytest.mark.parametrize("lr", [0.3, 0.8])  # ηh = 0.3, 0.6 and 0.8, 1.6 (anticorrelated)
def test_lag_covariance_gives_sgd_autocorrelation_exactly(lr):
    """docs/theory.md law S1: on a diagonal quadratic SGD's ρ_k = (1 − ηh_i)^k (alternating if
    ηh > 1)."""
    th = _theory([1.0, 2.0], (1.0, 1.0), SGDConfig(lr=lr).build())
    covs = np.array([np.diag(th.lag_covariance(k)) for k in range(6)])
    expected = (1 - lr * np.array([1.0, 2.0])) ** np.arange(6)[:, None]
    np.testing.assert_allclose(covs / covs[0], expected, rtol=1e-9, atol=1e-12)
