"""Stationary statistics of the chains against exact theory (docs/theory.md, exact laws),
with MCSE tolerances.

Every comparison is a z-score ``(measured − exact)/MCSE`` where the MCSE comes from batch means
(or, for τ, the jackknife over independent chains). ``Z_MAX = 4`` keeps the false-alarm rate of the
whole module below ~0.3% (about 40 comparisons). Each family has a negative control: the same
measurement compared with a plausible wrong answer (the continuous-time limit, the wrong
momentum convention) must fail.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from sgdthermo.analysis.diagnostics.estimators import integrated_time_se, mean_and_se
from sgdthermo.analysis.law.measure import temperatures, virial_samples
from sgdthermo.analysis.theory.linear import momentum_1d, sgd_1d, stationary_theory

from tests.conftest import quadratic_config, simulate

Z_MAX = 4.0


def measure(run):
    """Variance, temperatures and τ per coordinate, each with its standard error."""
    s = virial_samples(run)
    var, var_se = mean_and_se(s.centred**2, s.batches)
    t = temperatures(run, s)
    theta = np.asarray(run.posterior()["theta"].values)
    tau, tau_se = integrated_time_se(theta)
    return {"var": (var, var_se), "t_vir": (t.virial, t.virial_se),
            "t_fl": (t.fluctuation, t.fluctuation_se), "tau": (tau, tau_se), "samples": s}


def z(pair, exact):
    value, se = pair
    return np.abs((np.asarray(value) - np.asarray(exact)) / np.asarray(se))


@pytest.mark.parametrize("lr", [0.5, 1.5])
def test_sgd_1d_variance_temperature_iat(tmp_path, lr):
    """ηh = 0.5 (τ = 3) and ηh = 1.5 (anticorrelated, τ = 1/3, ESS > n)."""
    h, s2 = 1.0, 2.0
    run = simulate(tmp_path, quadratic_config([h], [s2], {"kind": "sgd", "lr": lr}))
    m, ref = measure(run), sgd_1d(lr, h, s2)
    assert z(m["var"], ref["var"]) < Z_MAX
    assert z(m["t_vir"], ref["temperature"]) < Z_MAX
    assert z(m["t_fl"], ref["temperature"]) < Z_MAX
    assert z(m["tau"], ref["iat"]) < Z_MAX
    # Negative control: the small-η (continuous-time OU) law ησ²/(2h) is measurably wrong.
    assert z(m["var"], lr * s2 / (2 * h)) > 3 * Z_MAX
    assert z(m["tau"], 1 / (lr * h)) > Z_MAX


def test_pytorch_momentum_1d(tmp_path):
    lr, mu, h, s2 = 0.2, 0.5, 1.0, 1.0
    cfg = quadratic_config([h], [s2], {"kind": "momentum", "lr": lr, "mu": mu})
    m, ref = measure(simulate(tmp_path, cfg)), momentum_1d(lr, mu, h, s2)
    for key, exact in (("var", ref["var"]), ("t_vir", ref["temperature"]),
                       ("t_fl", ref["temperature"]), ("tau", ref["iat"])):
        assert z(m[key], exact) < Z_MAX, key
    # Negative control: SGD's formula at the same η ignores the momentum amplification.
    assert z(m["var"], sgd_1d(lr, h, s2)["var"]) > 3 * Z_MAX


def test_seeds_ng_momentum_1d(tmp_path):
    """v ← (1 − 1/N_g)v + ηg is PyTorch momentum with μ = 1 − 1/N_g at the same η."""
    lr, n_g, h, s2 = 0.05, 4.0, 1.0, 1.0
    cfg = quadratic_config([h], [s2], {"kind": "momentum_ng", "lr": lr, "n_g": n_g},
                           draws=3000)
    m, ref = measure(simulate(tmp_path, cfg)), momentum_1d(lr, 1 - 1 / n_g, h, s2)
    assert z(m["var"], ref["var"]) < Z_MAX
    assert z(m["t_fl"], ref["temperature"]) < Z_MAX
    # Negative control: reading N_g's η as PyTorch's η·N_g (effective rate) gives a wrong law.
    assert z(m["var"], momentum_1d(lr / n_g, 1 - 1 / n_g, h, s2)["var"]) > 3 * Z_MAX


def test_sgd_2d_non_diagonal_hessian_full_covariance(tmp_path):
    """Σ solves the discrete Lyapunov equation, off-diagonal entries included."""
    hess, noise = [[2.0, 0.8], [0.8, 1.0]], [[1.0, 0.3], [0.3, 4.0]]
    cfg = quadratic_config(hess, noise, {"kind": "sgd", "lr": 0.3})
    run = simulate(tmp_path, cfg)
    th = stationary_theory(run.model, run.rule, run.spec.run)
    s = virial_samples(run)
    cov, cov_se = mean_and_se(np.einsum("cni,cnj->cnij", s.centred, s.centred), s.batches)
    assert (z((cov, cov_se), th.cov) < Z_MAX).all()
    v, v_se = mean_and_se(np.einsum("cni,cnj->cnij", s.centred, s.grads), s.batches)
    assert (z((v, v_se), th.virial) < Z_MAX).all()
    m = measure(run)
    assert (z(m["t_fl"], th.temperature) < Z_MAX).all()
    assert (z(m["tau"], th.iat) < Z_MAX).all()
    # Negative control: the continuous-time Lyapunov solution (ΛHΣ + ΣHΛ = ΛCΛ) is off.
    import scipy.linalg
    h, c = np.array(hess), np.array(noise)
    ou = scipy.linalg.solve_continuous_lyapunov(0.3 * h, 0.09 * c)
    assert (z((cov, cov_se), ou) > Z_MAX).any()


@pytest.mark.parametrize("power", [1, 2])
def test_preconditioned_temperatures(tmp_path, power):
    """η_i = η'/σ_i^p with Σ = diag(1, 4), H = I: p = 2 equalises T_i, p = 1 gives T_i ∝ σ_i."""
    lr = 0.1
    cfg = quadratic_config([1.0, 1.0], [1.0, 4.0],
                           {"kind": "preconditioned", "lr": lr, "power": power},
                           draws=3000, thin=2, burn_in=1000)
    run = simulate(tmp_path, cfg)
    th = stationary_theory(run.model, run.rule, run.spec.run)
    sigma = np.array([1.0, 2.0])
    rates = lr / sigma**power
    np.testing.assert_allclose(th.temperature, rates * sigma**2 / (2 - rates))  # 1-D closed form
    m = measure(run)
    assert (z(m["t_vir"], th.temperature) < Z_MAX).all()
    assert (z(m["t_fl"], th.temperature) < Z_MAX).all()
    assert (z(m["var"], np.diag(th.cov)) < Z_MAX).all()
    # Negative control: plain SGD's temperatures at rate η' are not what this rule gives.
    assert (z(m["t_vir"], lr * sigma**2 / (2 - lr)) > Z_MAX).any()


@pytest.mark.parametrize("sampling", ["iid", "without_replacement"])
def test_linear_regression_state_dependent_noise_exact(tmp_path, sampling):
    """Least squares: the noise depends on θ, yet the second-moment recursion closes exactly."""
    cfg = {"seed": 1, "model": {"kind": "linear_regression", "data": {"n": 40, "d": 2,
                                                                       "condition": 3.0}},
           "rule": {"kind": "sgd", "lr": 0.2},
           "run": {"chains": 64, "draws": 2000, "burn_in": 400, "batch_size": 4,
                   "sampling": sampling, "init_scale": 0.0},
           "cluster": {"shard_chains": 64, "chunk_draws": 2000}}
    run = simulate(tmp_path, cfg)
    th = stationary_theory(run.model, run.rule, run.spec.run)
    m = measure(run)
    assert (z(m["var"], np.diag(th.cov)) < Z_MAX).all()
    assert (z(m["t_vir"], th.temperature) < Z_MAX).all()
    assert (z(m["t_fl"], th.temperature) < Z_MAX).all()
    # Negative control: ignoring the finite-population factor (N−B)/(N−1) (or applying it to
    # i.i.d. batches) is detected.
    factor = (40 - 4) / (40 - 1)
    wrong = th.temperature * (factor if sampling == "iid" else 1 / factor)
    assert (z(m["t_vir"], wrong) > 2.5).any() or (z(m["var"], np.diag(th.cov) / th.temperature
                                                    * wrong) > Z_MAX).any()


def test_z_scores_are_calibrated_over_seeds(tmp_path):
    """20 seeds of a small 1-D SGD case: the z-scores of variance, both temperatures and τ
    against exact theory behave like N(0, 1) (|z| > 2 in about 5 %), so the MCSEs used by every
    test here are neither too small (false alarms) nor too large (tests that cannot fail)."""
    lr, h, s2 = 0.3, 1.0, 2.0
    ref = sgd_1d(lr, h, s2)
    zs = []
    for seed in range(20):
        cfg = quadratic_config([h], [s2], {"kind": "sgd", "lr": lr}, chains=8, draws=2000,
                               burn_in=200, seed=seed)
        m = measure(simulate(tmp_path / str(seed), cfg))
        # (T_virial = h·Var draw by draw for a 1-D quadratic: its z would duplicate Var's.)
        for key, exact in (("var", ref["var"]), ("t_fl", ref["temperature"]),
                           ("tau", ref["iat"])):
            value, se = m[key]
            zs.append(float((np.asarray(value)[0] - exact) / np.asarray(se)[0]))
    z = np.array(zs).reshape(20, 3)
    # Σz² of 60 independent N(0,1) scores is χ²₆₀: outside its central 99.8 % the SEs are too
    # small (false alarms) or too large (tests that cannot fail). Measured: 71.6 (|z| > 2 in
    # 8 of 60; the jackknife z of τ is t(7)-like, 8.6 % beyond 2).
    q = float((z**2).sum())
    assert scipy.stats.chi2.ppf(0.001, 60) < q < scipy.stats.chi2.isf(0.001, 60), (q, z)
    assert np.sum(np.abs(z) > 2) <= 12 and abs(z.mean()) < 0.4, z
