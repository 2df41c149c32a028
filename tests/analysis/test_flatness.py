"""Variance against flatness (``analyze --pca K``) against exact answers on quadratics.

* The streamed randomised PCA equals the exact PCA of the draws centred at their grand mean (numpy's
  ``eigh`` of their covariance) where its range covers every coordinate, to 1e-9.
* SGD on a diagonal quadratic with isotropic noise has ``Var_i = ησ²/(h_i(2 − ηh_i))``: the
  fitted ψ equals the slope of the exact law (≈ 1) within 4 SE. With noise shaped like the
  curvature (``Σ = βH``) ``Var_i = ηβ/(2 − ηh_i)`` is nearly flat: ψ equals that law's slope
  (≈ 0) and is told apart from 1 (the negative control). Those nearly equal variances are
  flagged as unresolved components (their sample directions mix); the isotropic ones are not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sgdthermo.analysis.landscape.flatness import principal_components
from sgdthermo.analysis.reader import open_run
from sgdthermo.analysis.record import analyze_run

from tests.conftest import run_local

ETA = 0.1
H = [3.0, 2.0, 1.4, 1.0, 0.7, 0.5, 0.35, 0.25]


def _job(noise: list[float], draws: int = 3000) -> dict:
    return {"seed": 6, "model": {"kind": "quadratic", "hessian": H, "noise_cov": noise},
            "rule": {"kind": "sgd", "lr": ETA},
            "run": {"chains": 16, "draws": draws, "burn_in": 400}}


def test_the_streamed_pca_is_the_exact_pca(tmp_path: Path):
    run = open_run(run_local(tmp_path, _job([1.0] * 8, 400)), 0)
    dirs, var, per_chain = principal_components(run, 3)
    theta = np.asarray(run.posterior()["theta"].values, dtype=float)
    x = (theta - theta.mean(axis=(0, 1))).reshape(-1, 8)
    want, vecs = np.linalg.eigh(x.T @ x / (x.shape[0] - 1))
    np.testing.assert_allclose(var, want[::-1][:3], rtol=1e-9)
    np.testing.assert_allclose(np.abs(dirs.T @ vecs[:, ::-1][:, :3]), np.eye(3), atol=1e-9)
    assert per_chain.shape == (16, 3)


def _exact_slope(var: np.ndarray) -> float:
    x = np.log(H) - np.log(H).mean()
    return float(-np.dot(x, np.log(var) - np.log(var).mean()) / np.dot(x, x))


def test_psi_is_the_exact_laws_slope_and_tells_noise_shapes_apart(tmp_path: Path):
    h = np.asarray(H)
    iso = analyze_run(open_run(run_local(tmp_path, _job([1.0] * 8), "i.zarr"), 0),
                      pca=8).as_dict()["flatness"]
    want = _exact_slope(ETA / (h * (2 - ETA * h)))
    # the sample components lie near the axes, off by O(1/√ESS) in angle: uᵀHu near h_i
    np.testing.assert_allclose(sorted(iso["curvature"]), sorted(H), rtol=0.02)
    assert abs(iso["exponent"] - want) < 4 * iso["exponent_se"], (iso["exponent"], want)
    shaped = analyze_run(open_run(run_local(tmp_path, _job(H), "s.zarr"), 0),
                         pca=8).as_dict()["flatness"]
    flat = _exact_slope(ETA / (2 - ETA * h))
    assert abs(shaped["exponent"] - flat) < 4 * shaped["exponent_se"], (shaped, flat)
    assert abs(shaped["exponent"] - want) > 4 * shaped["exponent_se"]  # the negative control
    # variances 3 % apart cannot be told apart at this length: flagged; 40 % apart are not
    assert iso["resolved"] and iso["unresolved_pairs"] == 0
    assert not shaped["resolved"] and shaped["unresolved_pairs"] >= 4
