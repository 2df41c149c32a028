"""Diagonal quadratics at network scale: O(D) steps and theory, bit-identical to the dense path.

A diagonal ``H`` and ``Σ`` are kept as vectors. Up to 2048 coordinates the noise map is the dense
``eigh`` root used as a permutation, so the diagonal model draws, steps and records exactly what
the dense model did (archives written before resume identically); the O(D) per-coordinate theory
equals the dense Lyapunov solution.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sgdthermo.analysis.theory.diagonal import diagonal_law
from sgdthermo.analysis.theory.linear import DENSE_MAX_DIM, skipped_reason, stationary_theory
from sgdthermo.sampler.config import QuadraticConfig, RunConfig, SGDConfig
from sgdthermo.sampler.config.rules import AdamConfig, MomentumConfig, RMSPropConfig
from sgdthermo.sampler.models import Quadratic
from sgdthermo.sampler.stability import UnstableError, check_stability

H = [1.0, 3.0, 2.0, 2.0, 0.5, 2.0, 1.0]
S = [2.0, 2.0, 1.0, 2.0, 0.0, 3.0, 2.0]  # ties and a zero: eigh's order is not a stable sort


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_diagonal_model_is_bitwise_the_dense_model(dtype):
    diag = QuadraticConfig(hessian=H, noise_cov=S).build(3, dtype)
    dense = QuadraticConfig(hessian=np.diag(H).tolist(), noise_cov=np.diag(S).tolist()).build(
        3, dtype)
    assert isinstance(diag, Quadratic) and diag.diagonal and not dense.diagonal
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    theta = torch.randn(16, len(H), dtype=dtype)
    for _ in range(3):
        b1, b2 = diag.draw(g1, 16), dense.draw(g2, 16)
        assert torch.equal(b1.noise, b2.noise)
        l1, d1 = diag.minibatch_grad(theta, b1)
        l2, d2 = dense.minibatch_grad(theta, b2)
        assert torch.equal(d1, d2) and torch.equal(l1, l2)
        assert torch.equal(diag.example_sq(theta, b1), dense.example_sq(theta, b2))
        theta = theta - 0.1 * d1
    # Negative control: an identity noise map (what a naive port would do) is not the dense one.
    z = torch.randn(4, len(H), generator=torch.Generator().manual_seed(1), dtype=dtype)
    naive = z * torch.tensor(S, dtype=dtype).sqrt() / 3**0.5
    assert not torch.equal(naive, dense.draw(torch.Generator().manual_seed(1), 4).noise)


@pytest.mark.parametrize("rule", [SGDConfig(lr=0.3), MomentumConfig(lr=0.1, mu=0.7, dampening=0.2),
                                  RMSPropConfig(lr=0.02, alpha=0.9), AdamConfig(lr=0.02)])
def test_per_coordinate_theory_equals_the_dense_solver(rule):
    model = QuadraticConfig(hessian=H, noise_cov=[s + 0.5 for s in S]).build(2)
    run = RunConfig(batch_size=2, thin=3, burn_in=999)
    dense = stationary_theory(model, rule.build(2), run)  # D ≤ 512: the dense solver
    form = model.linear_gradient(2, "iid")
    assert dense is not None and form is not None and form.diagonal
    found = diagonal_law(form, rule.build(2), 3)
    assert found is not None
    var, iat, exact = found
    np.testing.assert_allclose(var, np.diag(dense.cov), rtol=1e-10)
    np.testing.assert_allclose(iat, dense.iat, rtol=1e-8)
    assert exact == dense.exact


def test_a_large_diagonal_model_gets_theory_in_vectors_and_a_dense_one_a_reason():
    d = 20_000
    cfg = QuadraticConfig(hessian={"spectrum": "geometric", "d": d, "first": 1.0, "last": 0.01},
                          noise_cov={"spectrum": "linear", "d": d, "first": 1.0, "last": 2.0})
    model, rule, run = cfg.build(4), SGDConfig(lr=0.5).build(4), RunConfig(batch_size=4)
    th = stationary_theory(model, rule, run)
    assert th is not None and th.cov.shape == (d,) and th.virial.shape == (d,)
    h, c = np.geomspace(1.0, 0.01, d), np.linspace(1.0, 2.0, d) / 4
    np.testing.assert_allclose(th.variance, 0.5 * c / (h * (2 - 0.5 * h)), rtol=1e-10)
    assert not th.gibbs and skipped_reason(model, rule, run) is None
    big = DENSE_MAX_DIM + 1
    dense = QuadraticConfig(hessian=np.eye(big).tolist(), noise_cov=[1.0] * big).build(1)
    assert stationary_theory(dense, rule, RunConfig()) is None
    assert skipped_reason(dense, rule, RunConfig()) == (
        f"theory skipped (dense D = {big} > {DENSE_MAX_DIM})")


def test_stability_is_checked_in_o_of_d():
    cfg = QuadraticConfig(hessian={"d": 100_000, "first": 4.0, "last": 0.001},
                          noise_cov={"d": 100_000, "first": 1.0, "last": 1.0})
    model = cfg.build(1)
    check_stability(model, SGDConfig(lr=0.49).build())
    with pytest.raises(UnstableError, match="allowed: 0 < lr < 0.5"):
        check_stability(model, SGDConfig(lr=0.51).build())


def test_model_arrays_are_stored_as_arrays_not_json(tmp_path):
    """H and Σ of a 10⁴-coordinate model live in ``run_000/model/`` as float64 arrays; the run's
    attributes stay small (they held both as JSON lists before)."""
    import json

    import zarr
    from conftest import make_archive
    spectrum = {"spectrum": "geometric", "d": 10_000, "first": 1.0, "last": 0.05}
    noise = {"spectrum": "linear", "d": 10_000, "first": 1.0, "last": 4.0}
    job = {"model": {"kind": "quadratic", "hessian": spectrum, "noise_cov": noise},
           "rule": {"kind": "sgd", "lr": 0.5}, "run": {"chains": 2, "draws": 4}}
    path = make_archive(tmp_path, job)
    group = zarr.open_group(path, mode="r")["run_000"]
    model = QuadraticConfig(hessian=spectrum, noise_cov=noise).build(batch_size=1)
    np.testing.assert_array_equal(group["constant_data"]["hessian"][:], model.hessian.numpy())
    np.testing.assert_array_equal(group["constant_data"]["noise_cov"][:], model.noise_cov.numpy())
    assert len(json.dumps(dict(group.attrs))) < 20_000
    assert group.attrs["sgdthermo_run"]["model"]["structure"] == "diagonal"
