"""The chain engine: batched equals one-by-one, divergence, sampling schemes, determinism."""

from __future__ import annotations

import pytest
import torch
from sgdthermo.sampler.engine import ChainState
from sgdthermo.sampler.jobspec import expand, validate
from sgdthermo.sampler.minibatch import IndexSampler
from sgdthermo.sampler.shard import build_engine

CONFIGS = {
    "quadratic-momentum": ({"kind": "quadratic", "hessian": [[2.0, 0.5], [0.5, 1.0]],
                            "noise_cov": [1.0, 3.0]}, {"kind": "momentum", "lr": 0.1}),
    "linreg-adam": ({"kind": "linear_regression", "data": {"n": 64, "d": 3}},
                    {"kind": "adam", "lr": 0.01}),
    "logistic-preconditioned": ({"kind": "logistic_regression", "data": {"n": 64, "d": 3}},
                                {"kind": "preconditioned", "lr": 0.01, "power": 1}),
    "mlp-rmsprop": ({"kind": "mlp", "hidden": [4], "n": 64}, {"kind": "rmsprop", "lr": 1e-3}),
}


def _engine(name, chains, batch=4, sampling="iid"):
    model, rule = CONFIGS[name]
    job = validate({"model": model, "rule": rule,
                    "run": {"batch_size": batch, "sampling": sampling}})
    return build_engine(expand(job)[0], chains)


def _slice(state: ChainState, c: int) -> ChainState:
    s = slice(c, c + 1)
    return ChainState(state.params[s], type(state.rule_state)(*(t[s] for t in state.rule_state)),
                      state.diverged[s], state.perm[s], state.step)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_batched_equals_one_by_one(name):
    """C chains stepped together equal each chain stepped alone on the same randomness."""
    batched, single = _engine(name, 5), _engine(name, 1)
    gen = torch.Generator().manual_seed(0)
    state = batched.init(gen, 1.0)
    singles = [_slice(state, c) for c in range(5)]
    for _ in range(25):
        batch, perm = batched.draw(gen, state)
        state = batched.apply(state, batch, perm)[0]
        singles = [single.apply(s, batch.select(slice(c, c + 1)), perm[c:c + 1])[0]
                   for c, s in enumerate(singles)]
    for c in range(5):
        torch.testing.assert_close(state.params[c:c + 1], singles[c].params, rtol=1e-12,
                                   atol=1e-14)


def test_diverged_chain_is_frozen_and_others_continue():
    engine = _engine("quadratic-momentum", 3)
    gen = torch.Generator().manual_seed(0)
    state = engine.init(gen, 1.0)
    params = state.params.clone()
    params[1] = 1e308  # overflows to inf at the first step
    state = state._replace(params=params)
    reference = _slice(state, 0)
    state, rec = engine.run_block(gen, state, 20, 5)
    assert rec.diverged[1].all() and not rec.diverged[[0, 2]].any()
    assert torch.isfinite(state.params).all()
    assert (state.params[1] == 1e308).all()  # frozen at its last finite value
    assert (rec.fluct_sum[1] == 0).all() and (rec.fluct_sum[0] > 0).all()
    assert not torch.equal(state.params[0], reference.params[0])  # chain 0 moved on


def test_sampling_schemes():
    gen = torch.Generator().manual_seed(0)
    s = IndexSampler("without_replacement", 10, 6, 50, torch.device("cpu"))
    idx, _ = s.draw(gen, s.initial_perm(), 0)
    assert all(len(set(row.tolist())) == 6 for row in idx)
    e = IndexSampler("epoch", 10, 3, 4, torch.device("cpu"))
    perm, seen = e.initial_perm(), []
    for step in range(3):  # one epoch: 3 batches of 3, the 10th example dropped
        idx, perm = e.draw(gen, perm, step)
        seen.append(idx)
    epoch = torch.cat(seen, dim=1)
    assert all(len(set(row.tolist())) == 9 for row in epoch)
    idx, perm2 = e.draw(gen, perm, 3)
    assert not torch.equal(perm2, perm)  # reshuffled at the epoch boundary


@pytest.mark.parametrize("scheme,b,message", [
    ("bogus", 2, "run.sampling must be one of ['iid', 'without_replacement', 'epoch']"),
    ("epoch", 11, "run.batch_size must be at most N = 10 for sampling 'epoch', got 11"),
])
def test_sampler_errors(scheme, b, message):
    with pytest.raises(ValueError) as err:
        IndexSampler(scheme, 10, b, 1, torch.device("cpu"))
    assert message in str(err.value)


def test_quadratic_refuses_non_iid_sampling():
    with pytest.raises(ValueError, match=r"run.sampling must be one of \['iid', 'gaussian', "
                       r"'full'\] for model 'quadratic'"):
        _engine("quadratic-momentum", 1, sampling="epoch")


def test_same_seed_same_chains_and_block_split_invariance():
    """Running 40 steps as one block or as 4 blocks gives bitwise the same chains."""
    a, b = _engine("linreg-adam", 3), _engine("linreg-adam", 3)
    ga, gb = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    sa, ra = a.run_block(ga, a.init(ga, 1.0), 40, 10)
    sb = b.init(gb, 1.0)
    thetas = []
    for _ in range(4):
        sb, rb = b.run_block(gb, sb, 10, 10)
        thetas.append(rb.theta)
    assert torch.equal(sa.params, sb.params)
    assert torch.equal(ra.theta, torch.cat(thetas, dim=1))


def test_preconditioned_estimates_sigma2_at_batch_size_one():
    """Regression: at B = 1 there is no within-batch spread; σ̂² must still approach Var(y)."""
    y = torch.randn(200, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2.0
    job = validate({"model": {"kind": "mean", "values": y.tolist()},
                    "rule": {"kind": "preconditioned", "lr": 0.05, "decay": 0.999},
                    "run": {"batch_size": 1}})
    engine = build_engine(expand(job)[0], 64)
    gen = torch.Generator().manual_seed(1)
    state = engine.init(gen, 0.0)
    state, _ = engine.run_block(gen, state, 6000, 10)
    rate = state.rule_state.rate.mean().item()
    sigma2 = float(y.var(correction=0))
    # σ̂² estimates Σ_1 + E(∂L)² = σ²(1 + T/σ²·h) ≈ σ²(1 + η'/2): allow 5% (MC error ~1%).
    assert rate == pytest.approx(0.05 / sigma2, rel=0.05)
    assert 0.05 / sigma2 * 0.9 < rate  # not the ε-floored blow-up of a zero variance
