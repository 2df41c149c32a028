"""``--import-model``: the sharpest directions of a user's module, with its source checked.

A quadratic ``ℓ_i(θ) = ½θᵀHθ − ξ_iᵀθ`` with a dense H is written to files as a user would (the
module, its loss, its data). Read plainly, the archive runs none of that code and ``--top-k``
says why it has no eigenvalues. With ``--import-model`` the module is rebuilt from its file:

* the two largest eigenvalues are H's (to 1e-8: the central differences are exact on a quadratic);
* the variance temperature ``λ_j Var(v_j·θ)`` along each eigenvector is the exact stationary
  law's ``λ_j v_jᵀSv_j`` (S from the built-in quadratic's theory with the same noise), within
  4 SE; the law at a wrong rate is rejected (the negative control);
* a changed source is refused in one line naming the field (exit 2), and the archive is left as
  it was; a module given in Python is given again to ``open_archive``.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sgdthermo.analysis.reader import open_archive
from sgdthermo.analysis.record import analyze_run
from sgdthermo.cluster.cli import main

from tests.conftest import run_local

MODULE = textwrap.dedent('''
    import torch
    from torch import nn


    class Quadratic(nn.Module):
        def __init__(self, h):
            super().__init__()
            self.theta = nn.Parameter(torch.zeros(len(h)))
            self.register_buffer("h", torch.tensor(h), persistent=False)

        def forward(self, xi):
            return 0.5 * self.theta @ (self.h @ self.theta) - xi @ self.theta


    def build(h):
        return Quadratic(h)


    def passthrough(output, y):
        return output
''')

H = [[1.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 0.2]]
LR, B = 0.4, 4


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("import_model")
    (tmp / "quad.py").write_text(MODULE)
    xi = np.random.default_rng(8).multivariate_normal(
        [0, 0, 0], [[1.0, 0.4, 0.0], [0.4, 0.6, 0.1], [0.0, 0.1, 0.5]], 256)
    xi -= xi.mean(0)  # ∇L = Hθ exactly
    np.savez(tmp / "xi.npz", x=xi, y=np.zeros(len(xi)))
    config = {"model": {"kind": "torch", "module": f"{tmp}/quad.py:build", "args": {"h": H},
                        "loss": f"{tmp}/quad.py:passthrough", "init": "shared",
                        "data": {"file": str(tmp / "xi.npz")}},
              "rule": {"kind": "sgd", "lr": LR},
              "run": {"chains": 16, "draws": 3000, "burn_in": 100, "batch_size": B, "thin": 2}}
    run_local(tmp, config)
    return tmp, {"config": config, "noise": (xi.T @ xi / len(xi)).tolist()}


def _json(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    assert main(["analyze", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)["runs"][0]["curvature"]


def _exact_along(vec: np.ndarray, lr: float, noise: list[list[float]]) -> np.ndarray:
    from sgdthermo.analysis.theory.linear import stationary_theory
    from sgdthermo.sampler.config import QuadraticConfig, RunConfig, SGDConfig

    model = QuadraticConfig(hessian=H, noise_cov=noise).build(B)
    cov = stationary_theory(model, SGDConfig(lr=lr).build(B),
                            RunConfig(chains=16, draws=3000, batch_size=B, thin=2)).cov
    lam = np.linalg.eigvalsh(np.asarray(H))[::-1][: vec.shape[1]]
    return lam * np.einsum("dk,de,ek->k", vec, cov, vec)


def test_without_import_no_user_code_runs_and_the_reason_names_the_flag(archive, capsys):
    tmp, _ = archive
    out = _json(capsys, str(tmp / "a.zarr"), "--top-k", "1")
    assert "eigenvalues" not in out and "--import-model" in out["reason"]


def test_imported_module_gives_the_exact_eigenvalues_and_temperatures(archive, capsys):
    tmp, facts = archive
    out = _json(capsys, str(tmp / "a.zarr"), "--top-k", "2", "--import-model")
    np.testing.assert_allclose(out["eigenvalues"], np.linalg.eigvalsh(H)[::-1][:2], atol=1e-8)
    _, vectors = np.linalg.eigh(np.asarray(H))
    vec = vectors[:, ::-1][:, :2]
    t, se = np.asarray(out["temperature_variance"]), np.asarray(out["temperature_variance_se"])
    for lr, agrees in ((LR, True), (0.75 * LR, False)):  # the negative control: a wrong rate
        z = (t - _exact_along(vec, lr, facts["noise"])) / se
        assert bool(np.all(np.abs(z) < 4)) == agrees, (lr, z)
    assert "virial" in out["reason"]  # the gradient at every draw is not taken


def test_a_changed_source_is_refused_in_one_line(archive, capsys):
    tmp, _ = archive
    source = tmp / "quad.py"
    text = source.read_text()
    source.write_text(text + "\n# edited\n")
    try:
        assert main(["analyze", str(tmp / "a.zarr"), "--top-k", "1", "--import-model"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "model.module" in err[0] and "has changed" in err[0], err
    finally:
        source.write_text(text)
    assert main(["verify", str(tmp / "a.zarr")]) == 0  # nothing written was touched


def test_a_module_given_in_python_is_given_again(archive):
    import importlib.util

    tmp, facts = archive
    spec = importlib.util.spec_from_file_location("quad_given", tmp / "quad.py")
    assert spec is not None and spec.loader is not None
    quad = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quad)
    xi = np.load(tmp / "xi.npz")
    run = open_archive(str(tmp / "a.zarr"), model=quad.build(H), loss=quad.passthrough,
                       data=(xi["x"], xi["y"]))[0]
    out = analyze_run(run, top_k=1).as_dict()["curvature"]
    np.testing.assert_allclose(out["eigenvalues"], [np.linalg.eigvalsh(H)[-1]], atol=1e-8)
