"""Variance against flatness along the trajectory's principal components (Feng & Tu 2021).

The recorded draws, centred per chain, are ``X [C·n, d]``. Their top K principal directions
``u_j`` and variances ``σ_j²`` come from a randomised range finder (Halko, Martinsson & Tropp
2011) streamed over blocks of coordinates: ``Y = XΩ`` (Ω Gaussian ``[d, K + 10]``) is summed
block by block, ``Q = orth(Y)``, then ``B = QᵀX`` block by block and the SVD of B gives
``u_j`` and ``σ_j² = s_j²/(C·n − C)``; two passes over the draws, memory ``[C·n, K + 10]`` and
``[K + 10, d]``. The loss curvature along each is ``c_j = u_jᵀH u_j`` at the chains' mean (one
Hessian-vector product each, ``curvature.hessian_vector``; unrecorded coordinates of ``u_j``
are 0). The fitted relation is ``log σ_j² = a − ψ log c_j`` over the components with
``c_j > 0``; ``ψ`` is the flatness exponent (1 for SGD near a quadratic minimum with isotropic
noise: ``σ² = ησ_g²/(c(2 − ηc))``; 0 when the noise is shaped like the curvature), with its
jackknife SE over chains (the components held fixed, each chain's variance along them left
out in turn).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..diagnostics.blocks import columns
from ..reader import RunData
from .curvature import hessian_vector, mean_point
from .displacement import jackknife_se, slope

OVERSAMPLE = 10
BLOCK = 1024


def principal_components(run: RunData, k: int, seed: int = 0
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top ``k`` directions ``[d, k]``, their variances ``[k]`` and per-chain variances ``[C, k]``.

    Over the recorded coordinates of the non-diverged chains (module docstring).
    """
    keep = ~run.diverged_chains()
    theta = run.posterior()["theta"]
    c, n, d = int(keep.sum()), run.draws, theta.shape[-1]
    width = min(k + OVERSAMPLE, d)
    rng = np.random.default_rng(seed)
    y = np.zeros((c * n, width))
    for _, column in columns(theta, BLOCK, keep):
        x = _centred(column)
        y += x.reshape(c * n, -1) @ rng.standard_normal((x.shape[-1], width))
    q, _ = np.linalg.qr(y)
    b = np.zeros((width, d))
    for lo, column in columns(theta, BLOCK, keep):
        x = _centred(column)
        b[:, lo:lo + x.shape[-1]] = q.T @ x.reshape(c * n, -1)
    _, s, vt = np.linalg.svd(b, full_matrices=False)
    top = min(k, len(s))
    dirs = vt[:top].T  # [d, k]
    proj = (q @ (b @ dirs)).reshape(c, n, top)  # the draws along each direction
    per_chain = proj.var(axis=1, ddof=1) if n > 1 else np.zeros((c, top))
    return dirs, s[:top] ** 2 / max(c * n - c, 1), per_chain


def _centred(column: np.ndarray) -> np.ndarray:
    x = np.asarray(column, dtype=float)
    return x - x.mean(axis=1, keepdims=True)


def flatness(run: RunData, k: int) -> dict[str, Any]:
    """``runs[i].flatness``: variances, curvatures and the fitted exponent ψ (module docstring)."""
    if run.draws < 4 or (~run.diverged_chains()).sum() < 2:
        return {"k": k, "reason": "fewer than 4 draws or 2 non-diverged chains"}
    dirs, var, per_chain = principal_components(run, k)
    out: dict[str, Any] = {"k": int(len(var)), "variance": var.tolist()}
    if not run.model.gradient_available:
        return {**out, "reason": "the model is a user's module, whose code is not imported "
                "when an archive is read: no curvature along the components (--import-model "
                "rebuilds it from its source, checked against the archive)"}
    point = mean_point(run)
    if point is None:
        return {**out, "reason": "no chains' mean of every coordinate (θ recorded partly "
                "without the engine's sums)"}
    full = np.zeros((run.model.dim, dirs.shape[1]))
    coords = (slice(None) if run.recorded_coords is None
              else np.asarray(run.recorded_coords))
    full[coords] = dirs
    hvp = hessian_vector(run.model, point)
    curv = np.array([float(u @ hvp(u)) for u in full.T])
    out["curvature"] = curv.tolist()
    use = curv > 0
    if use.sum() < 2:
        return {**out, "reason": "fewer than 2 components with positive curvature"}
    psi = -slope(np.log(curv[use]), np.log(var[use]))
    c = per_chain.shape[0]
    rest = (per_chain.sum(axis=0) - per_chain)[:, use] / (c - 1)
    loo = np.array([-slope(np.log(curv[use]), np.log(r)) for r in rest if np.all(r > 0)])
    se = jackknife_se(loo)
    return {**out, "exponent": psi, "exponent_se": se, "components_used": int(use.sum())}
