"""A user's module in the archive: bitwise resume, named layers, and reading without its code.

The module (BatchNorm and Dropout, so buffers and forward randomness are carried) is written to a
file as a user would; the archive must resume bitwise from a partial commit, present each layer
as an ArviZ variable with dims named after it, and open, analyze and verify after the user's
files are gone (reading an archive never imports code).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from sgdthermo.analysis.analyze import analyze_archive
from sgdthermo.analysis.reader import open_archive
from sgdthermo.sampler.archive import verify_archive
from sgdthermo.sampler.models import user_code
from sgdthermo.sampler.shard import ShardRunner

from tests.conftest import archive_arrays, make_archive, run_local

NET = textwrap.dedent('''
    from torch import nn


    def build(width=5):
        return nn.Sequential(nn.Linear(3, width), nn.BatchNorm1d(width), nn.Tanh(),
                             nn.Dropout(0.25), nn.Linear(width, 2))
''')


@pytest.fixture
def job(tmp_path: Path) -> dict:
    (tmp_path / "net.py").write_text(NET)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 3))
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0] > 0).astype(np.int64))
    return {"model": {"kind": "torch", "module": f"{tmp_path}/net.py:build", "l2": 0.05,
                      "data": {"file": str(tmp_path / "d.npz")}},
            "rule": {"kind": "momentum", "lr": 0.05, "mu": 0.5},
            "run": {"chains": 4, "draws": 40, "burn_in": 8, "batch_size": 4, "thin": 2},
            "cluster": {"shard_chains": 2, "chunk_draws": 8}}


def test_resume_from_any_commit_is_bitwise(tmp_path: Path, job: dict):
    whole = run_local(tmp_path, job)
    split = make_archive(tmp_path, job, "split.zarr")
    for shard in (0, 1):
        ShardRunner(split, 0, shard).run_until(2)  # killed after two commits
        ShardRunner(split, 0, shard).run_until(10**9)  # a fresh process resumes
    a, b = archive_arrays(whole), archive_arrays(split)
    assert a.keys() == b.keys()
    assert any("buffer_1.running_mean" in k for k in a)  # the running statistics are kept
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_archive_opens_without_the_users_code(tmp_path: Path, job: dict, monkeypatch):
    path = run_local(tmp_path, job)
    (tmp_path / "net.py").unlink()

    def refuse(*args, **kwargs):
        raise AssertionError("reading an archive imported user code")

    monkeypatch.setattr(user_code, "load_callable", refuse)
    monkeypatch.setattr(user_code, "_import_file", refuse)
    run = open_archive(path)[0]
    post = run.inference_data().posterior
    assert post["0.weight"].dims == ("chain", "draw", "0.out", "0.in")
    assert post["1.bias"].dims == ("chain", "draw", "1.channel")
    assert post["4.bias"].shape == (4, 40, 2)
    assert run.model.opaque and run.model.dim == 3 * 5 + 5 + 5 + 5 + 5 * 2 + 2
    record = analyze_archive(path).as_dict()["runs"][0]
    assert record["status"] == "ok"
    assert len(record["temperature"]["virial"]) == run.model.dim  # from the engine's sums
    assert "user's module" in record["gibbs"]["reason"]
    assert verify_archive(path).ok


class Quadratic(torch.nn.Module):
    """``ℓ_i(θ) = ½θᵀHθ − ξ_iᵀθ`` with ``H = diag(h)``: a quadratic written as a user's module.

    ``forward`` returns the per-example losses, and the loss passes them through.
    """

    def __init__(self, h: list[float]) -> None:
        super().__init__()
        self.theta = torch.nn.Parameter(torch.zeros(len(h)))
        self.register_buffer("h", torch.tensor(h), persistent=False)

    def forward(self, xi: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.h * self.theta**2).sum() - xi @ self.theta


def passthrough(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The module's output is already the per-example loss."""
    return output


H, LR, B = [1.0, 0.5], 0.4, 4


def _noise() -> np.ndarray:
    """N = 256 examples ξ_i from a correlated Gaussian, centred exactly (∇L = Hθ)."""
    xi = np.random.default_rng(8).multivariate_normal([0, 0], [[1.0, 0.4], [0.4, 0.6]], 256)
    return xi - xi.mean(0)


def _variance_z(draws: np.ndarray, var: np.ndarray) -> np.ndarray:
    """z of each coordinate's sample variance against ``var``, SE from ArviZ's ESS of (θ−θ̄)²."""
    import arviz as az

    sq = (draws - draws.mean(axis=(0, 1))) ** 2
    out = []
    for i in range(draws.shape[-1]):
        ess = float(az.ess(sq[..., i], method="bulk"))
        out.append((sq[..., i].mean() - var[i]) / (sq[..., i].std() / np.sqrt(ess)))
    return np.asarray(out)


def test_a_quadratic_module_matches_the_builtin_quadratic_and_exact_theory(ray_session,
                                                                            tmp_path: Path):
    """The module, loss and data given as Python objects (``run_job(model=, loss=, data=)``)."""
    from sgdthermo.analysis.theory.linear import stationary_theory
    from sgdthermo.cluster import run_job
    from sgdthermo.sampler.config import QuadraticConfig, RunConfig, SGDConfig

    xi = _noise()
    cov = (xi.T @ xi / len(xi)).tolist()  # iid draws with replacement: Var g_B = Σ/B exactly
    run = {"chains": 16, "draws": 3000, "burn_in": 100, "batch_size": B, "thin": 2}
    job = {"model": {"kind": "torch", "init": "shared"}, "rule": {"kind": "sgd", "lr": LR},
           "run": run, "cluster": {"shard_chains": 8}}
    path = run_job(job, str(tmp_path / "module.zarr"), model=Quadratic(H), loss=passthrough,
                   data=(xi, np.zeros(len(xi))))
    ours = open_archive(path)[0].posterior()["theta"].values
    builtin_job = {"model": {"kind": "quadratic", "hessian": [[H[0], 0.0], [0.0, H[1]]],
                             "noise_cov": cov}, "rule": {"kind": "sgd", "lr": LR}, "run": run}
    builtin = open_archive(run_local(tmp_path, builtin_job, "builtin.zarr"))[0]
    theirs = builtin.posterior()["theta"].values
    model = QuadraticConfig(hessian=[[H[0], 0.0], [0.0, H[1]]], noise_cov=cov).build(B)
    for lr, agrees in ((LR, True), (0.75 * LR, False)):  # the negative control: a wrong rate
        theory = stationary_theory(model, SGDConfig(lr=lr).build(B), RunConfig(**run))
        z = _variance_z(ours, np.diag(theory.cov))
        assert bool(np.all(np.abs(z) < 4)) == agrees, (lr, z)
    z_builtin = _variance_z(theirs, np.diag(stationary_theory(
        model, SGDConfig(lr=LR).build(B), RunConfig(**run)).cov))
    assert np.all(np.abs(z_builtin) < 4), z_builtin
    se = np.hypot(*(ours.var(axis=(0, 1)) / np.abs(_variance_z(a, np.zeros(2)))
                    for a in (ours, theirs)))
    assert np.all(np.abs(ours.var(axis=(0, 1)) - theirs.var(axis=(0, 1))) < 4 * se)
