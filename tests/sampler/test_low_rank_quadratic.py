"""Diagonal-plus-low-rank quadratics: the factored matrix, the model, O(Dk²) theory, stability.

Exact references: dense matrices and the dense Lyapunov solver (``theory.stationary_theory`` at
D ≤ 512); statistical checks use SEs from the shared autocorrelation helper via ``analyze_run``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from sgdthermo.analysis.record import analyze_run
from sgdthermo.analysis.theory.linear import DENSE_MAX_DIM, skipped_reason, stationary_theory
from sgdthermo.analysis.theory.low_rank import low_rank_law, why_not
from sgdthermo.sampler.config import QuadraticConfig, RunConfig, SGDConfig
from sgdthermo.sampler.config.rules import MomentumConfig, MomentumNgConfig, RMSPropConfig
from sgdthermo.sampler.jobspec import format_validation_error
from sgdthermo.sampler.linear_forms import LinearGradient
from sgdthermo.sampler.low_rank import DiagPlusLowRank
from sgdthermo.sampler.models import DataError
from sgdthermo.sampler.stability import UnstableError, check_stability

RNG = np.random.default_rng(5)


def _matrix(d: int, k: int) -> DiagPlusLowRank:
    return DiagPlusLowRank(RNG.uniform(0.5, 2.0, d), RNG.standard_normal((d, k)) / np.sqrt(d),
                           np.array([9.0, 3.0, 0.0, 1.0])[:k])


def _config(d: int, noise: dict, spikes=(5.0, 2.0, 0.0)) -> QuadraticConfig:
    return QuadraticConfig(hessian={"diagonal": {"d": d, "first": 0.5, "last": 3.0},
                                    "spikes": list(spikes), "seed": 3}, noise_cov=noise)


def test_factored_matrix_products_diagonals_and_resolvents_equal_dense_ones():
    m = _matrix(40, 4)
    dense = m.dense()
    x = RNG.standard_normal((40, 3))
    np.testing.assert_allclose(m.matvec(x), dense @ x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.diagonal(), np.diag(dense), rtol=1e-14)
    for shift in (0.0, 50.0, -1.0):  # below, above and (for 0) just below the spectrum
        inv = np.linalg.inv(dense - shift * np.eye(40))
        np.testing.assert_allclose(m.resolvent_diagonal(shift), np.diag(inv), rtol=1e-10)
        off = np.sqrt((inv**2).sum() - (np.diag(inv) ** 2).sum())
        assert m.resolvent_offdiagonal_norm(shift) == pytest.approx(off, rel=1e-8)
    big = _matrix(700, 3)  # Lanczos above 512 coordinates
    scale = RNG.uniform(0.5, 1.5, 700)
    root = np.sqrt(scale)
    exact = np.linalg.eigvalsh(root[:, None] * big.dense() * root[None, :]).max()
    assert big.max_eigenvalue(scale) == pytest.approx(exact, rel=1e-9)
    assert m.scaled(2.0).affine_in(m) == pytest.approx((0.0, 2.0))
    other = DiagPlusLowRank(m.diag + 1.0, m.factors, m.weights * 0.5)
    assert other.affine_in(m) is None  # 1 + 0.5·d is not 1 + d/2 + …: diag not affine in H


def test_model_gradient_is_h_theta_and_its_noise_has_covariance_sigma_over_b():
    model = _config(6, {"isotropic": 0.5, "hessian": 2.0}).build(batch_size=4)
    form = model.linear_gradient(4, "iid")
    h, c = form.hessian.dense(), form.const.dense()
    theta = torch.as_tensor(RNG.standard_normal((3, 6)))
    loss, grad = model.full_loss_grad(theta)
    # signed entries: compared to the scale of the vector, not each to itself (an entry near 0
    # carries the rounding of the whole sum)
    ref = theta.numpy() @ h
    np.testing.assert_allclose(grad.numpy(), ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_allclose(loss.numpy(), 0.5 * np.einsum("ci,ij,cj->c", theta, h, theta),
                               rtol=1e-12)
    gen = torch.Generator().manual_seed(0)
    n = 200_000
    xi = model.draw(gen, n).noise.numpy()
    emp = xi.T @ xi / n
    se = np.sqrt((np.outer(np.diag(c), np.diag(c)) + c**2) / n)  # SE of a Gaussian covariance
    assert np.abs((emp - c) / se).max() < 5
    no_spikes = np.diag(np.diag(c))  # negative control: the bulk alone is rejected
    assert np.abs((emp - no_spikes) / se).max() > 5


@pytest.mark.parametrize("rule", [SGDConfig(lr=0.1), MomentumConfig(lr=0.02, mu=0.8, dampening=0.3),
                                  MomentumNgConfig(lr=0.02, n_g=5)], ids=lambda r: r.kind)
@pytest.mark.parametrize("noise", [{"isotropic": 0.7, "hessian": 1.3}, {"hessian": 1.0},
                                   {"isotropic": 2.0}], ids=["affine", "hessian", "isotropic"])
def test_o_dk2_theory_equals_the_dense_lyapunov_solver(rule, noise):
    model = _config(48, noise).build(4)
    built, run = rule.build(4), RunConfig(batch_size=4)
    dense = stationary_theory(model, built, run)  # D ≤ 512: the dense solver
    law = low_rank_law(model.linear_gradient(4, "iid"), built)
    assert dense is not None and law is not None
    np.testing.assert_allclose(law.variance, dense.variance, rtol=1e-10)
    np.testing.assert_allclose(law.temperature, np.diag(dense.virial), rtol=1e-10)
    off = np.sqrt((dense.virial**2).sum() - (np.diag(dense.virial) ** 2).sum())
    assert law.virial_offdiagonal == pytest.approx(off, rel=1e-8) and off > 0
    u = law.directions  # the two spikes with s > 0 (the zero-weight one has no direction)
    assert u.shape == (48, 2)
    projected = u.T @ dense.cov @ u  # off-diagonals may be near 0: atol at the matrix's scale
    np.testing.assert_allclose(law.directions_cov, projected, rtol=1e-10,
                               atol=1e-10 * np.abs(projected).max())
    assert not dense.gibbs


def test_large_models_get_structured_theory_or_a_reason():
    d = DENSE_MAX_DIM + 100
    model = _config(d, {"isotropic": 1.0, "hessian": 1.0}).build(1)
    run = RunConfig()
    th = stationary_theory(model, SGDConfig(lr=0.1).build(), run)
    assert th is not None and th.variance.shape == (d,) and th.iat is None
    assert th.exact and not th.gibbs and th.virial_offdiagonal > 0
    rms = RMSPropConfig(lr=0.01).build()
    assert why_not(model.linear_gradient(1, "iid"), rms) == "per-coordinate rates"
    assert stationary_theory(model, rms, run) is None
    assert "per-coordinate rates" in skipped_reason(model, rms, run)
    other = QuadraticConfig(hessian=model_config_hessian(d), noise_cov={
        "diagonal": [1.0] * d, "spikes": [1.0], "seed": 9}).build(1)
    assert "noise not of the form αI + βH" in skipped_reason(other, SGDConfig(lr=0.1).build(),
                                                              run)
    no_spikes = QuadraticConfig(hessian=model_config_hessian(d, ()), noise_cov={
        "isotropic": 1.0}).build(1)
    flat = stationary_theory(no_spikes, SGDConfig(lr=0.1).build(), run)
    assert flat is not None and flat.virial_offdiagonal == 0.0  # diagonal H: the virial is too


def model_config_hessian(d: int, spikes=(5.0, 2.0)) -> dict:
    return {"diagonal": {"d": d, "first": 0.5, "last": 3.0}, "spikes": list(spikes), "seed": 3}


def test_stability_uses_the_largest_eigenvalue_of_the_factored_hessian():
    d = 2000
    model = _config(d, {"isotropic": 1.0}).build(1)
    form = model.linear_gradient(1, "iid")
    bound = 2.0 / form.hessian.max_eigenvalue()
    assert bound == pytest.approx(2.0 / np.linalg.eigvalsh(form.hessian.dense()).max(), rel=1e-9)
    assert bound < 2.0 / 3.0  # the spikes lift λ_max above the bulk's largest value
    check_stability(model, SGDConfig(lr=0.99 * bound).build())
    with pytest.raises(UnstableError, match=f"allowed: 0 < lr < {bound:.6g}"):
        check_stability(model, SGDConfig(lr=1.01 * bound).build())


def test_config_errors_name_the_field():
    with pytest.raises(DataError, match=r"model.hessian.directions: expected 2 rows"):
        QuadraticConfig(hessian={"diagonal": [1.0, 2.0], "spikes": [1.0, 1.0],
                                 "directions": [[1.0, 0.0]]}, noise_cov=[1.0, 1.0]).build(1)
    with pytest.raises(ValidationError) as err:
        QuadraticConfig(hessian={"diagonal": [1.0], "spikes": [-1.0]}, noise_cov=[1.0])
    assert format_validation_error(err.value, "model.") == (
        "model.hessian.spikes.0: Input should be greater than or equal to 0 (got -1.0)")
    with pytest.raises(ValidationError) as err:
        QuadraticConfig(hessian=[1.0], noise_cov={"isotropic": -1.0})
    assert format_validation_error(err.value, "model.").startswith("model.noise_cov.isotropic:")
    with pytest.raises(DataError, match="model.hessian.diagonal: must be positive"):
        QuadraticConfig(hessian={"diagonal": [1.0, 0.0], "spikes": [1.0]},
                        noise_cov=[1.0, 1.0]).build(1)


def test_noise_of_hessian_on_diagonal_and_dense_models_is_alpha_i_plus_beta_h():
    diag = QuadraticConfig(hessian=[1.0, 3.0], noise_cov={"isotropic": 0.5, "hessian": 2.0})
    np.testing.assert_array_equal(diag.build(1).noise_cov.numpy(), [2.5, 6.5])
    dense = QuadraticConfig(hessian=[[2.0, 1.0], [1.0, 2.0]], noise_cov={"hessian": 1.0})
    np.testing.assert_array_equal(dense.build(1).noise_cov.numpy(), [[2.0, 1.0], [1.0, 2.0]])


def test_measured_variances_match_the_o_dk2_law_and_not_the_bulk_alone(tmp_path):
    """End to end above the dense limit: 8 chains of SGD on a 520-coordinate spiked quadratic.

    z = (measured − theory)/SE per coordinate (SE sized to τ): their mean and rms over the
    coordinates are those of N(0, 1) within generous bounds (coordinates are correlated through
    the spikes). Negative control: the law of the bulk alone (spikes dropped) is rejected.
    τ ≈ 28 draws here, ~140 effective draws per chain: with fewer (2000 draws at thin 2, ~38 per
    chain) the SEs are themselves so noisy that the rms of z grows to ~1.3 (measured).
    """
    from conftest import simulate
    d = DENSE_MAX_DIM + 8
    hessian = {"diagonal": {"d": d, "first": 1.0, "last": 0.5}, "spikes": [60.0, 30.0], "seed": 1}
    job = {"seed": 2, "model": {"kind": "quadratic", "hessian": hessian,
                                "noise_cov": {"isotropic": 1.0, "hessian": 1.0}},
           "rule": {"kind": "sgd", "lr": 0.025},
           "run": {"chains": 8, "draws": 4000, "burn_in": 800, "thin": 4},
           "cluster": {"shard_chains": 8, "chunk_draws": 1000}}
    run = analyze_run(simulate(tmp_path, job))
    comp = run.estimates.comparison
    assert comp is not None and comp.theory.note.startswith("exact (diagonal plus low rank")
    z = comp.variance_z
    assert abs(z.mean()) < 0.35 and 0.8 < np.sqrt((z**2).mean()) < 1.25, (z.mean(), z.std())
    form = run.model.linear_gradient(1, "iid")  # B = 1: C̄ = Σ = I + H
    h = form.hessian
    bulk_h = DiagPlusLowRank(h.diag, h.factors, 0 * h.weights)
    bulk = LinearGradient(bulk_h, form.theta_star, DiagPlusLowRank(1.0 + h.diag, h.factors,
                                                                   0 * h.weights),
                          None, form.example_var, True)
    along = run.as_dict()["theory"]["spike_directions"]
    assert np.abs(along["variance_z"]).max() < 4, along  # Var ûᵀθ along both spikes
    wrong = low_rank_law(bulk, run.rule)
    assert wrong is not None
    # A spike moves one direction of D: per coordinate the bulk's law is nearly right (O(1/D))
    z_bulk = (comp.variance - wrong.variance) / comp.variance_se
    assert abs(z_bulk.mean()) < 0.35
    # but along the spikes it is wrong by far more than the SE (the negative control); with no
    # spikes the law is diagonal, so Var ûᵀθ = Σ_i û_i² Var θ_i
    bulk_along = np.square(h.spike_directions()).T @ wrong.variance
    z_wrong = (np.asarray(along["measured_variance"]) - bulk_along) / np.asarray(
        along["variance_se"])
    assert np.abs(z_wrong).min() > 10, z_wrong


def test_factors_are_stored_as_arrays_in_the_archive(tmp_path):
    import zarr
    from conftest import make_archive
    hessian = model_config_hessian(3000)
    job = {"model": {"kind": "quadratic", "hessian": hessian, "noise_cov": {"isotropic": 1.0}},
           "rule": {"kind": "sgd", "lr": 0.1}, "run": {"chains": 2, "draws": 4}}
    group = zarr.open_group(make_archive(tmp_path, job), mode="r")["run_000"]
    model = QuadraticConfig(hessian=hessian, noise_cov={"isotropic": 1.0}).build(1)
    h = model.linear_gradient(1, "iid").hessian
    np.testing.assert_array_equal(group["constant_data"]["hessian_factors"][:], h.factors)
    np.testing.assert_array_equal(group["constant_data"]["hessian_weights"][:], [5.0, 2.0])
    np.testing.assert_array_equal(group["constant_data"]["noise_cov_diag"][:], np.ones(3000))
    facts = group.attrs["sgdthermo_run"]["model"]
    assert facts["structure"] == "diagonal_plus_low_rank" and facts["hessian_rank"] == 2
