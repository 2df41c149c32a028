"""The rules a network user expects, against exact theory on a quadratic.

Nesterov momentum and coupled weight decay are linear on a quadratic, so their stationary
covariance solves a discrete Lyapunov equation (``linear_forms.heavy_ball_matrices`` with
``nesterov``; ``models.weight_decay`` shifts H to H + λI). Each run's covariance is compared
within 4 standard errors, and the theory that ignores the feature (plain heavy ball; no decay)
must be rejected. Each also passes the exact stationarity check the analysis runs (identity R
for Nesterov, whose heavy-ball fluctuation term is not exact; O3 for decayed SGD). Equality
with torch.optim step for step is in ``test_torch_model.py``; AdamW has no exact law.
"""

from __future__ import annotations

import numpy as np
import pytest
from sgdthermo.analysis.diagnostics.estimators import mean_and_se
from sgdthermo.analysis.law.measure import temperatures, virial_samples
from sgdthermo.analysis.theory.linear import stationary_theory
from sgdthermo.sampler.config import MomentumConfig, SGDConfig
from sgdthermo.sampler.models.weight_decay import with_weight_decay

from tests.conftest import quadratic_config, simulate

HESS, NOISE = [[2.0, 0.5], [0.5, 1.0]], [[1.0, 0.2], [0.2, 2.0]]
CASES = {
    "nesterov": ({"kind": "momentum", "lr": 0.1, "mu": 0.6, "nesterov": True},
                 lambda run: (run.model, MomentumConfig(lr=0.1, mu=0.6).build())),
    "sgd weight decay": ({"kind": "sgd", "lr": 0.3, "weight_decay": 0.8},
                         lambda run: (run.model.inner, run.rule)),
    "nesterov weight decay": ({"kind": "momentum", "lr": 0.1, "mu": 0.6, "nesterov": True,
                               "weight_decay": 0.8},
                              lambda run: (run.model.inner, run.rule)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_exact_covariance_and_stationarity(tmp_path, name: str):
    rule, ignoring = CASES[name]
    run = simulate(tmp_path, quadratic_config(HESS, NOISE, rule, chains=32, draws=3000))
    s = virial_samples(run)
    cov, se = mean_and_se(np.einsum("cni,cnj->cnij", s.centred, s.centred), s.batches)
    theory = stationary_theory(run.model, run.rule, run.spec.run)
    assert theory is not None and theory.exact
    assert (np.abs(cov - theory.cov) < 4 * se).all(), (cov, theory.cov, se)
    wrong = stationary_theory(*ignoring(run), run.spec.run)
    assert (np.abs(cov - wrong.cov) > 4 * se).any(), (cov, wrong.cov)  # the negative control
    temps = temperatures(run, s)
    assert temps.agree is True, temps.check
    assert temps.check == ("rate-weighted identity" if "nesterov" in name else "O3")


def test_stability_bounds():
    """Nesterov diverges at ηλ = 2(1+μ)/(1+2μ) (not heavy ball's 2(1+μ)); decay raises λ."""
    from sgdthermo.sampler.config import QuadraticConfig
    from sgdthermo.sampler.stability import UnstableError, check_stability

    model = QuadraticConfig(hessian=[1.0], noise_cov=[1.0]).build(1)
    bound = 2 * 1.5 / 2.0  # μ = 0.5
    check_stability(model, MomentumConfig(lr=0.99 * bound, mu=0.5, nesterov=True).build())
    with pytest.raises(UnstableError, match="rule.lr"):
        check_stability(model, MomentumConfig(lr=1.01 * bound, mu=0.5, nesterov=True).build())
    check_stability(model, MomentumConfig(lr=1.01 * bound, mu=0.5).build())  # heavy ball: 3
    with pytest.raises(UnstableError, match="rule.lr"):
        check_stability(with_weight_decay(model, 1.0), SGDConfig(lr=1.5).build())
