"""SGLD: the injected noise in the engine, the exact law with it, bitwise resume.

1-D closed form (the SGD law S1 of docs/theory.md with the injected variance 2ηT added per step):
``Var θ = (ησ² + 2T)/(h(2 − ηh))`` for ``θ' = (1 − ηh)θ − η(ξ_B) + √(2ηT)ζ``.
"""

from __future__ import annotations

import numpy as np
import pytest
from sgdthermo.analysis.diagnostics.estimators import mean_and_se
from sgdthermo.analysis.record import analyze_run
from sgdthermo.analysis.theory.linear import stationary_theory
from sgdthermo.sampler.shard import ShardRunner

from tests.conftest import archive_arrays, make_archive, quadratic_config, run_local, simulate

H, SIGMA2, LR, T = 1.0, 1.0, 0.1, 0.2


def closed_form(lr: float = LR, temperature: float = T) -> float:
    return (lr * SIGMA2 + 2 * temperature) / (H * (2 - lr * H))


def test_exact_theory_has_the_injected_noise(tmp_path):
    run = simulate(tmp_path, quadratic_config([H], [SIGMA2], {"kind": "sgld", "lr": LR,
                                                            "temperature": T}, chains=32))
    th = stationary_theory(run.model, run.rule, run.spec.run)
    assert th is not None and th.exact
    assert th.variance[0] == pytest.approx(closed_form(), rel=1e-10)
    theta = np.asarray(run.posterior()["theta"].values)
    var, se = mean_and_se((theta - theta.mean()) ** 2)
    assert abs(var[0] - closed_form()) < 4 * se[0]
    # negative control: the law without the injected noise (plain SGD at the same η)
    assert abs(var[0] - closed_form(temperature=0.0)) > 10 * se[0]


def test_sgld_temperatures_agree_with_theory(tmp_path):
    run = analyze_run(simulate(tmp_path, quadratic_config(
        [H, 0.3], [SIGMA2, 4.0], {"kind": "sgld", "lr": LR, "temperature": T}, chains=32)))
    temps = run.temperatures
    assert temps.check == "O3" and temps.fluctuation_exact  # (η/2)g² + T is exact
    assert np.all(np.abs(run.estimates.comparison.variance_z) < 4)


def test_sgld_resumes_bitwise(tmp_path):
    cfg = quadratic_config([H], [SIGMA2], {"kind": "sgld", "lr": LR, "temperature": T},
                           chains=4, draws=400, burn_in=0)
    cfg["cluster"]["chunk_draws"] = 100
    whole = run_local(tmp_path, cfg, "whole.zarr")
    cut = make_archive(tmp_path, cfg, "cut.zarr")
    ShardRunner(cut, 0, 0).run_until(2)
    ShardRunner(cut, 0, 0).run_until(10)  # a new runner restores from the checkpoint
    a, b = archive_arrays(whole), archive_arrays(cut)
    assert all(np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f") for k in a)
