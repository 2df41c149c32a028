"""Exact theory never reports a law that does not exist: linear regression's second-moment bound.

With state-dependent minibatch noise the variance of θ can diverge while its mean converges
(docs/theory.md, exact laws; ``sampler.linear_forms``). In 1-D at B = 1 with i.i.d.
indices the bound is exact and
elementary: ``E[(1 − ηx²)²] < 1 ⇔ η < 2E[x²]/E[x⁴]`` (2/(3h) for Gaussian x).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sgdthermo.analysis.theory.linear import stationary_theory
from sgdthermo.sampler.config import SGDConfig
from sgdthermo.sampler.jobspec import expand, validate
from sgdthermo.sampler.models.regression import LinearRegression
from sgdthermo.sampler.stability import UnstableError, check_second_moment

from tests.cluster.test_cli import GOOD, run_cli, write

RNG = np.random.default_rng(0)
X = RNG.standard_normal((4000, 1))
Y = 0.5 * X[:, 0] + RNG.standard_normal(4000)
BOUND = 2 * (X**2).mean() / (X**4).mean()  # ≈ 0.687


def model() -> LinearRegression:
    return LinearRegression(torch.tensor(X), torch.tensor(Y))


def test_bound_is_the_exact_one_dimensional_value():
    check_second_moment(model(), SGDConfig(lr=0.99 * BOUND).build(), 1, "iid")  # below: accepted
    with pytest.raises(UnstableError) as err:
        check_second_moment(model(), SGDConfig(lr=1.01 * BOUND).build(), 1, "iid")
    given = float(str(err.value).split("lr < ")[1].split(",")[0])
    assert given == pytest.approx(BOUND, rel=1e-4)
    # Negative control: the mean's bound 2/h is far looser and would accept η = 0.9.
    assert 0.9 < 2 / (X**2).mean()


def _spec(tmp_path, lr):
    np.savez(tmp_path / "d.npz", X=X, y=Y)
    job = validate({"model": {"kind": "linear_regression",
                              "data": {"file": str(tmp_path / "d.npz")}},
                    "rule": {"kind": "sgd", "lr": lr}, "run": {"batch_size": 1}})
    spec = expand(job)[0]
    return spec, spec.model.build(1)


@pytest.mark.parametrize("lr", [0.9, 1.2])
def test_theory_refuses_to_report_a_divergent_second_moment(tmp_path, lr):
    """Main computed Var = 4e112 at η = 0.9 and 1.5e244 at η = 1.2; now: no number."""
    spec, m = _spec(tmp_path, lr)
    assert stationary_theory(m, spec.rule.build(1), spec.run) is None


def test_theory_below_the_bound_matches_the_closed_form(tmp_path):
    """1-D, B = 1: Var = η²(Var_i(u_i))/(1 − E[(1−ηx²)²]) at the fixed point (affine in Var)."""
    lr = 0.5
    spec, m = _spec(tmp_path, lr)
    th = stationary_theory(m, spec.rule.build(1), spec.run)
    x, y = X[:, 0], Y
    theta = (x @ y) / (x @ x)
    u = x * (x * theta - y)
    h, m4 = (x**2).mean(), (x**4).mean()
    # Var' = (1−ηh)²Var + η²[E u² + (m4 − h²)Var]  ⇒  Var = η²E[u²]/(1 − (1−ηh)² − η²(m4 − h²))
    exact = lr**2 * (u**2).mean() / (1 - (1 - lr * h) ** 2 - lr**2 * (m4 - h**2))
    assert th is not None and th.cov[0, 0] == pytest.approx(exact, rel=1e-9)


def test_cli_refuses_before_ray(tmp_path, capsys):
    np.savez(tmp_path / "d.npz", X=X, y=Y)
    cfg = GOOD.replace('kind = "quadratic"\nhessian = [1.0, 2.0]\nnoise_cov = [1.0, 1.0]',
                       'kind = "linear_regression"\ndata = { file = "d.npz" }').replace(
        "lr = 0.1", "lr = 0.9")
    out = tmp_path / "o.zarr"
    code, text = run_cli(capsys, "run", write(tmp_path, cfg), "--out", str(out))
    assert code == 2, text
    for part in ("rule.lr", "no finite stationary variance", "lr < 0.6865", "got 0.9"):
        assert part in text, (part, text)
    assert "Traceback" not in text and not out.exists()
