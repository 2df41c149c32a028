"""Mandt's discrete-exact rate matrix Λ* = 2T(T·H + C̄)⁻¹ and the full-preconditioner rule.

Exact facts: at Λ* the exact stationary law of SGD on the diabetes regression is the posterior
(KL = 0 to rounding) while no scalar rate comes close (KL > 1); a run at Λ* measures KL ≈ 0
within its bootstrap SE after the plug-in bias correction, the scalar-rate run does not.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from sgdthermo.analysis.claims import evaluate_claim
from sgdthermo.analysis.claims.posterior import kl_gauss, optimal_rate_matrix
from sgdthermo.analysis.theory.linear import stationary_theory
from sgdthermo.sampler.config import MatrixConfig, SGDConfig
from sgdthermo.sampler.jobspec import expand, validate
from sgdthermo.sampler.stability import UnstableError, check_stability

from tests.conftest import run_local

DIABETES = {"kind": "linear_regression", "data": {"dataset": "diabetes"}}
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "seeds" / "14_posterior.toml"


def posterior_of(model):
    x, y = model.dataset()
    n, d = x.shape
    theta = np.linalg.lstsq(x, y, rcond=None)[0]
    t_post = float(((x @ theta - y) ** 2).sum() / (n - d)) / n
    return theta, t_post * np.linalg.inv(x.T @ x / n), t_post


@pytest.fixture(scope="module")
def diabetes():
    spec = expand(validate({"model": DIABETES, "rule": {"kind": "sgd", "lr": 0.1},
                            "run": {"batch_size": 32}}))[0]
    model = spec.model.build(32)
    mp, sp, t_post = posterior_of(model)
    return spec, model, mp, sp, t_post


def test_optimal_matrix_makes_the_exact_law_the_posterior(diabetes):
    spec, model, mp, sp, t_post = diabetes
    lam = optimal_rate_matrix(model, 32, t_post)
    th = stationary_theory(model, MatrixConfig(kind="matrix", matrix=lam.tolist()).build(32),
                           spec.run)
    assert th is not None and th.exact
    assert abs(kl_gauss(th.mean, th.cov, mp, sp)) < 1e-9
    for lr in (0.05, 0.125, 0.162):  # negative control: no scalar rate gets near it
        sgd = stationary_theory(model, SGDConfig(lr=lr).build(32), spec.run)
        assert kl_gauss(sgd.mean, sgd.cov, mp, sp) > 1.0


def test_shipped_config_holds_the_optimal_matrix(diabetes):
    _, model, _, _, t_post = diabetes
    rules = tomllib.loads(CONFIG.read_text())["sweep"]["grid"]["rule"]
    shipped = np.array(next(r for r in rules if r["kind"] == "matrix")["matrix"])
    # a 10 × 10 inverse of a matrix with condition number ≈ 60: 1e-9 covers any CPU's rounding
    np.testing.assert_allclose(shipped, optimal_rate_matrix(model, 32, t_post), rtol=1e-9,
                               atol=1e-12)


def test_matrix_rule_errors_and_stability(diabetes):
    with pytest.raises(ValueError, match="rule.matrix must be symmetric"):
        MatrixConfig(kind="matrix", matrix=[[1.0, 0.5], [0.0, 1.0]]).build()
    with pytest.raises(ValueError, match="positive definite"):
        MatrixConfig(kind="matrix", matrix=[[1.0, 2.0], [2.0, 1.0]]).build()
    rule = MatrixConfig(kind="matrix", matrix=np.eye(3).tolist()).build()
    with pytest.raises(ValueError, match="3 × 3 but the model has D = 10"):
        rule.init(torch.zeros(2, 10))
    _, model, _, _, t_post = diabetes
    lam = optimal_rate_matrix(model, 32, t_post)
    with pytest.raises(UnstableError, match="rule.lr"):
        check_stability(model, MatrixConfig(kind="matrix", matrix=lam.tolist(),
                                            lr=20.0).build(32))


def test_runs_at_the_optimal_matrix_measure_the_posterior(tmp_path, diabetes):
    _, model, _, _, t_post = diabetes
    lam = optimal_rate_matrix(model, 32, t_post)
    cfg = {"claim": "posterior", "seed": 3, "model": DIABETES,
           "rule": {"kind": "sgd", "lr": 0.162},
           "run": {"chains": 16, "draws": 6000, "thin": 6, "burn_in": 6000, "batch_size": 32,
                   "init_scale": 0.0},
           "cluster": {"shard_chains": 16, "chunk_draws": 3000},
           "sweep": {"grid": {"rule": [{"kind": "sgd", "lr": 0.162},
                                       {"kind": "matrix", "matrix": lam.tolist()}]}}}
    result = evaluate_claim(run_local(tmp_path, cfg))
    rows = {(n["rule"], n["kind"]): n for n in result.numbers["runs"]}
    optimal = rows[("matrix", "iterates")]
    assert abs(optimal["exact"]) < 1e-9
    assert optimal["kl"] < 0.5 and rows[("sgd", "iterates")]["kl"] > 2.0
    assert result.verdict == "holds", result.explanation
