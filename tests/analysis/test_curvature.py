"""The sharpest directions (``analyze --top-k``) against exact answers on quadratics.

* Eigenpairs: a dense 3-D Hessian against ``numpy.linalg.eigh``, and a 100-D diagonal one
  through Lanczos (above the dense limit) against its known largest entries, to 1e-8.
* Temperatures along the eigenvectors and in the complement against the exact stationary law
  (``λ_j v_jᵀSv_j``), within 4 SE.
* With noise that makes SGD exactly Gibbs (``c_i = k(2 − ηh_i)``, law G0) the sharpest direction
  and the rest have one temperature; with isotropic noise they do not, and the difference is
  resolved (the negative control).
* A user's module and a partly recorded run say why they have no temperatures; a bad
  ``--top-k`` is one line, exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from sgdthermo.analysis.landscape.curvature import hessian_vector, top_eigenpairs
from sgdthermo.analysis.reader import open_run
from sgdthermo.analysis.record import analyze_run
from sgdthermo.cluster.cli import main
from sgdthermo.sampler.config import QuadraticConfig

from tests.conftest import run_local

ETA = 0.2


def test_eigenpairs_of_a_dense_hessian_are_numpys():
    h = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.3]])
    model = QuadraticConfig(hessian=h.tolist(), noise_cov=[1.0] * 3).build(1, torch.float64)
    lam, vec = top_eigenpairs(hessian_vector(model, np.array([0.3, -1.0, 2.0])), 3, 2)
    want, wvec = np.linalg.eigh(h)
    np.testing.assert_allclose(lam, want[::-1][:2], atol=1e-8)
    np.testing.assert_allclose(np.abs(vec.T @ wvec[:, ::-1][:, :2]), np.eye(2), atol=1e-8)


def test_lanczos_finds_the_largest_of_a_100_d_diagonal():
    h = np.linspace(0.1, 1.0, 100)
    h[[7, 50, 93]] = [5.0, 4.0, 3.0]
    model = QuadraticConfig(hessian=h.tolist(), noise_cov=[1.0] * 100).build(1, torch.float64)
    lam, vec = top_eigenpairs(hessian_vector(model, np.zeros(100)), 100, 3)
    np.testing.assert_allclose(lam, [5.0, 4.0, 3.0], atol=1e-8)
    assert [int(np.argmax(np.abs(v))) for v in vec.T] == [7, 50, 93]


def _run(tmp: Path, noise: list[float], name: str, record: dict | None = None) -> dict:
    run = {"chains": 16, "draws": 4000, "burn_in": 500}
    if record:
        run["record"] = record
    cfg = {"seed": 4, "model": {"kind": "quadratic", "hessian": [2.0, 1.0, 0.3],
                                "noise_cov": noise},
           "rule": {"kind": "sgd", "lr": ETA}, "run": run}
    return analyze_run(open_run(run_local(tmp, cfg, name), 0), top_k=1).as_dict()["curvature"]


def test_temperatures_along_the_sharpest_direction_are_the_exact_law(tmp_path: Path):
    iso = _run(tmp_path, [1.0, 1.0, 1.0], "iso.zarr")
    assert np.allclose(iso["eigenvalues"], [2.0])
    assert abs(iso["temperature_z"][0]) < 4 and abs(iso["complement_temperature_z"]) < 4
    # isotropic noise: T_i = ησ²/(2(2 − ηh_i))·... differs along h = 2 and the rest
    gap = iso["temperature"][0] - iso["complement_temperature"]
    se = np.hypot(iso["temperature_se"][0], iso["complement_temperature_se"])
    assert iso["temperature_exact"][0] != iso["complement_temperature_exact"]
    assert abs(gap / se) > 4, (gap, se)  # resolved: the negative control of the Gibbs case
    k = 0.5
    gibbs = _run(tmp_path, [k * (2 - ETA * h) for h in (2.0, 1.0, 0.3)], "gibbs.zarr")
    assert np.isclose(gibbs["temperature_exact"][0], gibbs["complement_temperature_exact"])
    gap = gibbs["temperature"][0] - gibbs["complement_temperature"]
    se = np.hypot(gibbs["temperature_se"][0], gibbs["complement_temperature_se"])
    assert abs(gap / se) < 4, (gap, se)


def test_partial_records_and_user_modules_say_why(tmp_path: Path):
    from types import SimpleNamespace

    from sgdthermo.analysis.landscape.curvature import curvature

    part = _run(tmp_path, [1.0, 1.0, 1.0], "p.zarr", {"coords": [0]})
    assert "recorded partly" in part["reason"] and "temperature" not in part
    assert np.allclose(part["eigenvalues"], [2.0])  # at θ* of the model, from its gradient
    user = SimpleNamespace(model=SimpleNamespace(dim=5, opaque=True, gradient_available=False))
    out = curvature(user, None, 2)  # type: ignore[arg-type]
    assert "user's module" in out["reason"] and "eigenvalues" not in out


def test_a_bad_top_k_is_one_line(tmp_path: Path, capsys):
    cfg = {"model": {"kind": "quadratic", "hessian": [1.0, 2.0], "noise_cov": [1.0, 1.0]},
           "rule": {"kind": "sgd", "lr": 0.1}, "run": {"chains": 2, "draws": 16, "burn_in": 0}}
    path = run_local(tmp_path, cfg)
    assert main(["analyze", path, "--top-k", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--top-k" in err[0] and "-1" in err[0]
    assert main(["analyze", path, "--top-k", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert np.allclose(out["runs"][0]["curvature"]["eigenvalues"], [2.0], atol=1e-9)
