"""The sharpest directions of the loss, and the temperature along each (``analyze --top-k K``).

At a point θ₀ (the chains' mean, or θ* with ``--curvature-at optimum``) the K largest
eigenpairs ``(λ_j, v_j)`` of the Hessian come from Lanczos (ARPACK's ``eigsh``) on
Hessian-vector products, each a central difference of two full-batch gradients,

    H v ≈ (∇L(θ₀ + εv) − ∇L(θ₀ − εv)) / (2ε),

exact for a quadratic and O(ε²) otherwise (ε = 1e-5 in float64, 3e-3 in float32, where the
gradient's rounding sets the floor); no Hessian is formed beyond ``D ≤ 64``, where it is built
column by column and diagonalised. Along each ``v_j``, from the draws and their full-batch
gradients (the run's one gradient pass):

* the virial temperature ``T_j = E[(v_j·(θ − θ̄))(v_j·∇L(θ))]`` with its batch-means SE;
* the variance temperature ``λ_j Var(v_j·θ)`` (equal to ``T_j`` for a Gibbs law near θ₀);
* in the complement, ``T_⊥ = (E[(θ − θ̄)·∇L] − Σ_j T_j)/(D − K)`` per coordinate, with its SE.

For a quadratic the exact stationary covariance S gives ``T_j = λ_j v_jᵀSv_j`` and
``T_⊥ = (tr(SH) − Σ_j λ_j v_jᵀSv_j)/(D − K)``, printed beside the measurement with z-scores.
The temperatures need θ recorded in full and a model whose gradient the reader can evaluate
(not a user's module, whose code an archive's reader never imports); otherwise the record
says why. With θ recorded partly the chains' mean comes from the engine's per-coordinate sums
of θ, so the eigenvalues are still there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ...sampler.models import Model
from ...sampler.optimum import optimum
from ..diagnostics.blocks import columns
from ..diagnostics.estimators import mean_and_se
from ..law.temperature import VirialSamples
from ..reader import RunData
from ..theory.linear import StationaryTheory

DENSE_MAX = 64  # up to this D the Hessian is built column by column


def hessian_vector(model: Model, point: np.ndarray) -> Any:
    """``v ↦ H(point) v`` by central differences of full-batch gradients (module docstring)."""
    eps = 1e-5 if model.dtype == torch.float64 else 3e-3
    base = torch.as_tensor(point, dtype=model.dtype)

    def product(v: np.ndarray) -> np.ndarray:
        step = torch.as_tensor(np.ravel(v), dtype=model.dtype) * eps
        grads = model.full_loss_grad(torch.stack([base + step, base - step]))[1]
        return ((grads[0] - grads[1]) / (2 * eps)).double().numpy()

    return product


def top_eigenpairs(hvp: Any, d: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest eigenvalues ``[k]`` (descending) and unit eigenvectors ``[D, k]``."""
    if d <= DENSE_MAX:
        h = np.stack([hvp(e) for e in np.eye(d)], axis=1)
        lam, vec = np.linalg.eigh(0.5 * (h + h.T))
    else:
        from scipy.sparse.linalg import LinearOperator, eigsh  # only when asked (--top-k)

        op = LinearOperator((d, d), matvec=hvp, dtype=np.float64)
        start = np.random.default_rng(seed).standard_normal(d)
        lam, vec = eigsh(op, k=k, which="LA", v0=start, tol=1e-10)
    order = np.argsort(lam)[::-1][:k]
    return lam[order], vec[:, order]


def curvature(run: RunData, samples: VirialSamples | None, k: int, at: str = "mean",
              theory: StationaryTheory | None = None) -> dict[str, Any]:
    """``runs[i].curvature``: eigenvalues, the temperatures along them and in the complement."""
    d = run.model.dim
    k = min(k, d - 1) if d > 1 else 1
    if not run.model.gradient_available:
        return {"k": k, "reason": "the model is a user's module, whose code is not imported "
                "when an archive is read: no gradient to take products of (--import-model "
                "rebuilds it from its source, checked against the archive)"}
    point = (np.asarray(optimum(run.model), dtype=float) if at == "optimum"
             else mean_point(run, samples))
    if point is None:
        return {"k": k, "reason": "no chains' mean of every coordinate (θ recorded partly "
                "without the engine's sums); use --curvature-at optimum"}
    lam, vec = top_eigenpairs(hessian_vector(run.model, point), d, k)
    out: dict[str, Any] = {"k": k, "at": at, "eigenvalues": lam.tolist()}
    if samples is None and run.partial:
        return {**out, "reason": "θ is recorded partly: no temperatures along the eigenvectors"}
    if samples is None:  # a user's module: its gradient at every draw is not taken
        return {**out, **variance_temperatures(run, lam, vec, point if at == "mean" else None),
                "reason": "the virial along the eigenvectors needs the full-batch gradient at "
                "every draw, which is not taken for a user's module; the variance "
                "temperature λ·Var is given"}
    out.update(_temperatures(samples, lam, vec))
    if theory is not None and (theory.cov.ndim == 2 or theory.directions is None):
        out.update(_exact(theory, lam, vec, out))  # dense, or truly diagonal (not low-rank)
    return out


def mean_point(run: RunData, samples: VirialSamples | None = None) -> np.ndarray | None:
    """The chains' mean θ̄ of every coordinate, or None where it is not known.

    From the draws (``samples``, or streamed a block of coordinates at a time) when θ is
    recorded in full, else from the engine's per-coordinate sums of θ.
    """
    keep, d = ~run.diverged_chains(), run.model.dim
    if samples is not None:
        return samples.center
    if not run.partial:
        theta = run.posterior()["theta"]
        return np.concatenate([np.asarray(col, dtype=float).mean(axis=(0, 1))
                               for _, col in columns(theta, 4096, keep)])
    _, steps = run.fluctuation(slice(0, 1))
    if run.virial_sums(slice(0, 1)) is None or steps.sum() == 0:
        return None
    parts = []
    for part in run.coordinate_slices(slice(0, d), fields=3):
        sums = run.virial_sums(part)
        assert sums is not None
        parts.append(sums[keep][:, :, 0].sum(axis=(0, 1)))
    return np.concatenate(parts) / (int(keep.sum()) * steps.sum())


def variance_temperatures(run: RunData, lam: np.ndarray, vec: np.ndarray,
                          center: np.ndarray | None) -> dict[str, Any]:
    """``λ_j Var(v_j·θ)`` with its batch-means SE, the draws projected a block at a time.

    The projections ``p_j = v_j·(θ − θ̄)`` are summed over blocks of coordinates (each read
    once); the SE is that of the mean of ``λ_j (p_j − p̄_j)²``.
    """
    keep = ~run.diverged_chains()
    theta = run.posterior()["theta"]
    center = mean_point(run) if center is None else center
    assert center is not None
    proj = np.zeros((int(keep.sum()), run.draws, vec.shape[1]))
    for lo, column in columns(theta, 4096, keep):
        hi = lo + column.shape[-1]
        proj += (np.asarray(column, dtype=float) - center[lo:hi]) @ vec[lo:hi]
    return _variance_form(lam, proj)


def _variance_form(lam: np.ndarray, proj: np.ndarray, tau: float | None = None
                   ) -> dict[str, Any]:
    """``λ_j Var(p_j)`` and its SE from the projections ``p [C, n, K]``.

    The SE is that of the mean of ``λ_j (p_j − p̄_j)²``, batch means sized to ``tau`` (or to
    the series' own τ).
    """
    centred = proj - proj.mean(axis=(0, 1))
    t, se = mean_and_se(lam * centred**2, tau=tau)
    return {"temperature_variance": np.atleast_1d(t).tolist(),
            "temperature_variance_se": np.atleast_1d(se).tolist()}


def _temperatures(s: VirialSamples, lam: np.ndarray, vec: np.ndarray) -> dict[str, Any]:
    p = s.centred @ vec  # [C, n, K]
    q = s.grads @ vec
    t, se = mean_and_se(p * q, tau=s.tau)
    total = np.sum(s.centred * s.grads, axis=-1) - np.sum(p * q, axis=-1)  # [C, n]
    rest = max(s.centred.shape[-1] - vec.shape[1], 1)
    t_perp, se_perp = mean_and_se(total / rest, tau=s.tau)
    return {"temperature": np.atleast_1d(t).tolist(), "temperature_se": np.atleast_1d(se).tolist(),
            **_variance_form(lam, p, s.tau),
            "complement_temperature": float(t_perp), "complement_temperature_se": float(se_perp),
            "complement_dim": rest}


def _exact(theory: StationaryTheory, lam: np.ndarray, vec: np.ndarray,
           measured: dict[str, Any]) -> dict[str, Any]:
    """The exact temperatures along the eigenvectors of a quadratic, and z-scores."""
    if theory.cov.ndim == 2:
        along = lam * np.einsum("dk,de,ek->k", vec, theory.cov, vec)
        total = float(np.trace(theory.virial))
    else:  # a diagonal S, never formed as a matrix
        along = lam * np.einsum("dk,d,dk->k", vec, theory.cov, vec)
        total = float(np.sum(theory.virial))
    rest = measured["complement_dim"]
    perp = (total - along.sum()) / rest
    t, se = np.asarray(measured["temperature"]), np.asarray(measured["temperature_se"])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (t - along) / se
        z_perp = (measured["complement_temperature"] - perp) / measured[
            "complement_temperature_se"]
    return {"temperature_exact": along.tolist(), "temperature_z": z.tolist(),
            "complement_temperature_exact": float(perp), "complement_temperature_z": float(z_perp)}
