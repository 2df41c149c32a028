"""The exact stationarity check of rules with adaptive rates (docs/theory.md identity R).

For ``θ' = θ − p⊙g`` with ``p`` depending on θ and on the step's own minibatch, stationarity of
``E[(θ_i − c_i)²]`` gives ``E[(θ_i − c_i)p_ig_i] = ½E[p_i²g_i²]`` exactly; the engine accumulates
both sides. Each rule's stationary run must agree within its MCSE (χ² over coordinates at the
0.1 % level), and a run sampled during its transient (no burn-in, started far away) must not:
the check can fail. The approximate O3 form is never z-tested for these rules.
"""

from __future__ import annotations

import numpy as np
import pytest
from sgdthermo.analysis.law.measure import temperatures

from tests.conftest import simulate

LINREG = {"kind": "linear_regression", "data": {"n": 64, "d": 2, "condition": 3}}
MEAN = {"kind": "mean", "n": 50, "loc": 1.0, "scale": 0.5}
RULES = {
    "rmsprop": (LINREG, {"kind": "rmsprop", "lr": 0.01, "alpha": 0.9}),
    "adam": (LINREG, {"kind": "adam", "lr": 0.01, "beta1": 0.5, "beta2": 0.9}),
    "normalized": (LINREG, {"kind": "normalized", "lr": 0.02}),
    "loss_proportional": (LINREG, {"kind": "loss_proportional", "lr": 0.05}),
    "multiplicative": (MEAN, {"kind": "multiplicative", "lr": 0.1, "eps": 0.01}),
}


def config(model, rule, burn_in=2000, draws=1000, init_scale=0.0, seed=0, chains=16):
    return {"seed": seed, "model": model, "rule": rule,
            "run": {"chains": chains, "draws": draws, "burn_in": burn_in, "batch_size": 4,
                    "init_scale": init_scale, "init": "optimum" if init_scale == 0 else "random"},
            "cluster": {"shard_chains": chains, "chunk_draws": min(250, draws)}}


@pytest.mark.parametrize("name", list(RULES))
def test_rate_weighted_identity_holds_at_stationarity(tmp_path, name):
    model, rule = RULES[name]
    t = temperatures(simulate(tmp_path, config(model, rule)))
    assert t.check == "rate-weighted identity" and not t.fluctuation_exact
    assert t.agree, (t.z, t.identity_lhs, t.identity_rhs)
    assert np.all(np.abs(t.z) < 4)
    # Both sides are of the size of the step's fluctuation, not zero by construction.
    assert np.all(t.identity_rhs > 0)


@pytest.mark.parametrize("name", list(RULES))
def test_rate_weighted_identity_fails_out_of_stationarity(tmp_path, name):
    """Negative control: draws taken while the chains still relax from far away.

    The per-chain difference telescopes to ``[(θ_start − c)² − (θ_end − c)²]/(2N)``, which a
    random far start makes large but also spread out (``θ_start² ~ 9χ²₁``): 64 chains.
    """
    model, rule = RULES[name]
    t = temperatures(simulate(tmp_path, config(model, rule, burn_in=0, draws=100,
                                               init_scale=3.0, chains=64)))
    assert t.check == "rate-weighted identity"
    assert not t.agree, t.z


def test_constant_rate_rules_keep_the_o3_check(tmp_path):
    """SGD's fluctuation temperature is exact: its check is the O3 agreement."""
    t = temperatures(simulate(tmp_path, config(LINREG, {"kind": "sgd", "lr": 0.05})))
    assert t.check == "O3" and t.fluctuation_exact and t.agree


def test_multiplicative_fluctuation_temperature_uses_its_rate(tmp_path):
    """The approximate O3 form of η max(ε, |θ_i|) ĝ_i carries the max(ε, |θ_i|) factor: at
    θ* ≈ 0.2 dropping it (main) put the fluctuation temperature 5× above the virial one."""
    model = {**MEAN, "loc": 0.2, "scale": 0.2}
    t = temperatures(simulate(tmp_path, config(model, RULES["multiplicative"][1])))
    ratio = float(t.fluctuation[0] / t.virial[0])
    assert 0.8 < ratio < 1.25, ratio
    theta_star = 0.2
    assert ratio / theta_star > 3  # the factor-free form would read about 5× too hot
