"""The seeds' rules, schedules and the full / gaussian schemes against exact answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sgdthermo.sampler.jobspec import expand, validate
from sgdthermo.sampler.models import SurrogateBatch
from sgdthermo.sampler.rules import (
    GradSample,
    adam_min_t,
    loss_proportional,
    multiplicative,
    normalized,
    scheduled,
    sgd,
    tz,
)
from sgdthermo.sampler.rules.schedule import schedule_factor
from sgdthermo.sampler.shard import build_engine

F64 = torch.float64


def _run(rule, grads, theta0=None, losses=None):
    theta = torch.zeros_like(grads[0]) if theta0 is None else theta0.clone()
    state = rule.init(theta)
    for t, g in enumerate(grads):
        loss = None if losses is None else losses[t]
        delta, state = rule.update(GradSample(g, loss=loss), state, theta, t)
        theta = theta + delta
    return theta, state


def test_adam_min_t_matches_a_scalar_reference_and_bias_correction_closed_form():
    rng = np.random.default_rng(0)
    g = rng.standard_normal((30, 2, 3))
    lr, n_g, n_s, eps = 0.1, 4.0, 9.0, 1e-8
    theta, state = _run(adam_min_t(lr, n_g, n_s, eps), torch.as_tensor(g))
    ref = np.zeros((2, 3))
    for c in range(2):
        for i in range(3):
            mu = s = th = 0.0
            for t in range(1, 31):
                mu += (g[t - 1, c, i] - mu) / min(t, n_g)
                s += (g[t - 1, c, i] ** 2 - s) / min(t, n_s)
                th -= lr * mu / np.sqrt(s + eps)
            ref[c, i] = th
    np.testing.assert_allclose(theta.numpy(), ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    # Seed problem 4: with x_t = c the min(t, N) average is exactly c from the first step.
    const = torch.full((12, 1, 2), 2.5, dtype=F64)
    _, state = _run(adam_min_t(lr, 100.0, 100.0), const)
    assert torch.allclose(state.mu, torch.tensor(2.5, dtype=F64))
    assert torch.allclose(state.s, torch.tensor(6.25, dtype=F64))


def test_normalized_multiplicative_loss_proportional_formulas():
    g = torch.tensor([[3.0, -4.0]], dtype=F64)
    theta = torch.tensor([[0.001, -2.0]], dtype=F64)
    delta, _ = normalized(0.1, 1e-8).update(GradSample(g), (), theta, 0)
    torch.testing.assert_close(delta, -0.1 * g / np.sqrt(12.5 + 1e-8))
    delta, _ = multiplicative(0.1, 0.01).update(GradSample(g), (), theta, 0)
    torch.testing.assert_close(delta, -0.1 * torch.tensor([[0.01, 2.0]], dtype=F64) * g)
    loss = torch.tensor([0.7], dtype=F64)
    delta, _ = loss_proportional(0.1).update(GradSample(g, loss=loss), (), theta, 0)
    torch.testing.assert_close(delta, -0.1 * 0.7 * g)


def test_tz_warm_up_and_rates():
    """σ̃² averages the per-example variance handed over by the engine (not the minibatch ĝ²)."""
    rng = np.random.default_rng(1)
    g = torch.as_tensor(rng.standard_normal((60, 1, 2)) * 0.5 + [1.0, 0.0])
    v = torch.full_like(g[0], 2.0)  # per-example variance (8× the minibatch ĝ variance, B = 8)
    rule = tz(batch_size=1, k=10, lambda_b=16.0, lambda_eta=0.1)  # cap 1.6, not reached

    def run(grads):
        theta, state = torch.zeros_like(grads[0]), rule.init(torch.zeros_like(grads[0]))
        for t, gt in enumerate(grads):
            delta, state = rule.update(GradSample(gt, v), state, theta, t)
            theta = theta + delta
        return theta, state

    theta, state = run(g[:10])
    assert torch.equal(theta, torch.zeros_like(theta))  # no movement during warm-up
    assert torch.equal(state.b_star, torch.full_like(theta, 10.0))
    _, state = run(g)
    # An average (from 0) of the constant v, whatever the gradients: 0 < σ̃² ≤ v.
    assert (state.s_avg > 0).all() and (state.s_avg <= v + 1e-12).all()
    var = state.s_avg
    torch.testing.assert_close(state.b_star, 16.0 * var / (state.g_avg**2 + 1e-12))
    torch.testing.assert_close(state.rate, 0.1 * state.g_avg**2 / (var + 1e-12))
    assert state.rate[0, 0] > 10 * state.rate[0, 1]  # signal coordinate moves, noise one barely
    # Negative control: with v doubled σ̃² doubles (it is v's average, not ĝ²'s).
    v2 = 2 * v
    theta2, state2 = torch.zeros_like(g[0]), rule.init(torch.zeros_like(g[0]))
    for t, gt in enumerate(g[:11]):
        state2 = rule.update(GradSample(gt, v2), state2, theta2, t)[1]
    theta1, state1 = torch.zeros_like(g[0]), rule.init(torch.zeros_like(g[0]))
    for t, gt in enumerate(g[:11]):
        state1 = rule.update(GradSample(gt, v), state1, theta1, t)[1]
    torch.testing.assert_close(state2.s_avg, 2 * state1.s_avg)


def test_schedules():
    assert schedule_factor("inverse", 100, 100.0, 1.0) == pytest.approx(0.5)
    assert schedule_factor("power", 300, 100.0, 0.5) == pytest.approx(0.5)
    g = torch.ones(5, 1, 1, dtype=F64)
    theta, _ = _run(scheduled(sgd(1.0), "inverse", t0=1.0), g)
    assert theta.item() == pytest.approx(-sum(1 / (1 + t) for t in range(5)))
    with pytest.raises(ValueError, match="power must be in"):
        scheduled(sgd(1.0), "power", power=1.5)
    # The fluctuation term is scaled by the factor of the step it belongs to (read from the
    # sample, not from state hidden in the closure): s(3) = 1/4 for t0 = 1.
    rule, g3 = scheduled(sgd(1.0), "inverse", t0=1.0), torch.full((1, 1), 2.0, dtype=F64)
    fl = rule.fluctuation(GradSample(g3, step=3), ())
    assert fl.item() == pytest.approx(0.25 * sgd(1.0).fluctuation(GradSample(g3), ()).item())


def _engine(model, rule, sampling, chains, batch_size=1):
    job = validate({"model": model, "rule": rule,
                    "run": {"sampling": sampling, "batch_size": batch_size}})
    return build_engine(expand(job)[0], chains)


def test_full_sampling_is_gradient_descent():
    """sampling = full: θ_t = (I − ηH)^t θ₀ exactly, whatever the seed."""
    model = {"kind": "quadratic", "hessian": [[2.0, 0.5], [0.5, 1.0]], "noise_cov": [1.0, 1.0]}
    eng = _engine(model, {"kind": "sgd", "lr": 0.1}, "full", 3)
    gen = torch.Generator().manual_seed(0)
    state = eng.init(gen, 1.0)
    theta0 = state.params.clone()
    state, _ = eng.run_block(gen, state, 20, 20)
    a = torch.eye(2, dtype=F64) - 0.1 * torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=F64)
    torch.testing.assert_close(state.params, theta0 @ torch.linalg.matrix_power(a, 20).T)


def test_gaussian_surrogate_has_the_minibatch_covariance():
    """sampling = gaussian: noise ~ N(0, Σ_1(θ)/B) at θ (z-tests on all entries)."""
    model = {"kind": "linear_regression", "data": {"n": 30, "d": 2}}
    eng = _engine(model, {"kind": "sgd", "lr": 0.1}, "gaussian", 20000, batch_size=4)
    gen = torch.Generator().manual_seed(0)
    theta = torch.tensor([[0.3, -0.2]], dtype=F64).expand(20000, -1).contiguous()
    batch, _ = eng.draw(gen, eng.init(gen, 0.0))
    _, g, _ = eng.gradient(theta, batch)
    _, full = eng.model.full_loss_grad(theta[:1])
    noise = (g - full).numpy()
    _, per_ex = eng.model.example_grads(theta[:1], eng.model.all_examples(1))
    centred = (per_ex[0] - per_ex[0].mean(0)).numpy()
    exact = centred.T @ centred / 30 / 4
    emp = np.cov(noise, rowvar=False)
    se = np.sqrt((exact**2 + np.outer(np.diag(exact), np.diag(exact))) / 20000)
    assert (np.abs(emp - exact) / se < 4).all()
    assert (np.abs(emp - exact * 4) / se > 4).all()  # negative control: forgetting 1/B


def test_rmsprop_per_example_rate_does_not_depend_on_batch_size():
    """At fixed θ, s → E_i[g_i²] for every B; standard RMSProp's s → E[g_B²], which shrinks."""
    model = {"kind": "linear_regression", "data": {"n": 200, "d": 2, "noise_std": 2.0}}
    out = {}
    for kind in ("rmsprop_per_example", "rmsprop"):
        for b in (1, 16):
            eng = _engine(model, {"kind": kind, "lr": 1e-12, "alpha": 0.999}, "iid", 64, b)
            gen = torch.Generator().manual_seed(b)
            state = eng.init(gen, 0.0)
            state, _ = eng.run_block(gen, state, 5000, 5000)
            out[kind, b] = state.rule_state.square_avg.mean(0).numpy()
    theta = torch.zeros(1, 2, dtype=F64)
    _, per_ex = eng.model.example_grads(theta, eng.model.all_examples(1))
    exact = (per_ex[0] ** 2).mean(0).numpy()
    np.testing.assert_allclose(out["rmsprop_per_example", 1], exact, rtol=0.03)
    np.testing.assert_allclose(out["rmsprop_per_example", 16], exact, rtol=0.03)
    assert (out["rmsprop", 16] < 0.5 * out["rmsprop", 1]).all()


def test_new_rule_configs_build_and_validate():
    for rule in ({"kind": "adam_min_t", "lr": 0.01}, {"kind": "tz", "k": 5},
                 {"kind": "normalized", "lr": 0.1}, {"kind": "multiplicative", "lr": 0.1},
                 {"kind": "loss_proportional", "lr": 0.1},
                 {"kind": "sgd", "lr": 0.1, "schedule": {"kind": "power", "power": 0.6}}):
        eng = _engine({"kind": "mean", "n": 10}, rule, "iid", 2)
        gen = torch.Generator().manual_seed(0)
        state, rec = eng.run_block(gen, eng.init(gen, 1.0), 20, 5)
        assert torch.isfinite(rec.theta).all(), rule
    with pytest.raises(Exception, match="schedule"):
        validate({"model": {"kind": "mean"}, "rule": {"kind": "sgd", "lr": 0.1,
                                                       "schedule": {"kind": "cosine"}}})


def test_batch_select_restricts_the_chains():
    b = SurrogateBatch(weights=torch.arange(6.0).view(3, 2))
    assert torch.equal(b.select(slice(1, 2)).weights, torch.tensor([[2.0, 3.0]]))


def test_find_optimum_and_init_at_optimum():
    from sgdthermo.sampler.optimum import find_optimum

    job = validate({"model": {"kind": "mlp", "hidden": [3], "n": 60, "l2": 0.01},
                    "rule": {"kind": "sgd", "lr": 0.01},
                    "run": {"init": "optimum", "dtype": "float64"}})
    spec = expand(job)[0]
    eng = build_engine(spec, 4)
    theta = find_optimum(eng.model)
    _, grad = eng.model.full_loss_grad(theta[None])
    assert grad.abs().max() < 1e-7
    assert torch.equal(theta, find_optimum(eng.model))  # deterministic
    state = eng.init(torch.Generator().manual_seed(0), 1.0, theta)
    assert torch.equal(state.params, theta.expand(4, -1))
    # Linear regression: L-BFGS finds the least-squares solution.
    lin = build_engine(expand(validate({"model": {"kind": "linear_regression"},
                                        "rule": {"kind": "sgd", "lr": 0.01}}))[0], 1).model
    x, y = lin.x.numpy(), lin.y.numpy()
    theta_lin = find_optimum(lin)
    assert lin.full_loss_grad(theta_lin[None])[1].abs().max() < 1e-6
    np.testing.assert_allclose(theta_lin.numpy(), np.linalg.lstsq(x, y, rcond=None)[0],
                               atol=1e-6)  # ill-conditioned H: θ accurate to ~1e-7
