"""Variance against flatness along the trajectory's principal components (Feng & Tu 2021).

The recorded draws, centred at their grand mean over chains and draws, are ``X [C·n, d]``. A
randomised range finder (Halko, Martinsson & Tropp 2011) streamed over blocks of coordinates
finds the subspace of their top ``w = K + 10`` directions: ``Y = XΩ`` (Ω Gaussian ``[d, w]``)
is summed block by block, ``Q = orth(Y)``, then ``B = QᵀX`` block by block, and the SVD
``B = U s Vᵀ`` gives the basis ``V [d, w]`` and the projected draws ``Z = XV = QUs``; two
passes over the draws, memory
``[C·n, w]`` and ``[w, d]``. Each chain's scatter ``R_c = Z_cᵀZ_c`` and sum ``s_c = Z_cᵀ1`` are
kept. The top K eigenpairs of the covariance ``(ΣR_c − ss ᵀ/(Cn))/(Cn − 1)`` (``s = Σs_c``)
are the components ``u_j`` and their variances ``σ_j²``. (Centring each chain at its own mean
would shrink the variance of slow directions by about ``2τ/n`` and bias ψ.)
The loss curvature along each is ``c_j = u_jᵀHu_j`` at the chains' mean, read off the projected
Hessian ``VᵀHV`` (w Hessian-vector products, ``curvature.hessian_vector``; unrecorded
coordinates are 0). The fitted relation is ``log σ_j² = a − ψ log c_j`` over the components
with ``c_j > 0``; ``ψ`` is the flatness exponent (1 for SGD near a quadratic minimum with
isotropic noise: ``σ² = ησ_g²/(c(2 − ηc))``; 0 when the noise is shaped like the curvature).

Its SE is the delete-one-chain jackknife in which everything is re-estimated: with chain c
left out, the components are those of the other chains' covariance, so the spread includes
how the directions themselves move between samples. Where neighbouring variances are nearly
equal the sample components mix the true ones, and their curvatures with them, which biases
ψ; such pairs are flagged (``_resolution``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..diagnostics.blocks import columns
from ..reader import RunData
from .curvature import hessian_vector, mean_point
from .displacement import jackknife_se, slope

OVERSAMPLE = 10
BLOCK = 1024  # coordinates per read (whole stored chunks)
STEP = 256  # coordinates in float64 at once


def subspace(run: RunData, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A basis ``V [d, w]`` of the draws' top ``w = k + 10`` directions, and each chain's sums.

    Returns the basis, each chain's raw scatter ``R_c = Z_cᵀZ_c [C, w, w]`` and sum
    ``s_c = Z_cᵀ1 [C, w]`` of the draws projected, ``Z = XV`` with X centred at the grand mean
    (module docstring: two passes over the draws), for the recorded coordinates of the
    non-diverged chains.
    """
    keep = ~run.diverged_chains()
    theta = run.posterior()["theta"]
    c, n, d = int(keep.sum()), run.draws, theta.shape[-1]
    width = min(k + OVERSAMPLE, d)
    rng = np.random.default_rng(seed)
    y = np.zeros((c * n, width))
    for _, x in _pieces(theta, keep):
        y += x.reshape(c * n, -1) @ rng.standard_normal((x.shape[-1], width))
    q, _ = np.linalg.qr(y)
    b = np.zeros((width, d))
    for lo, x in _pieces(theta, keep):
        b[:, lo:lo + x.shape[-1]] = q.T @ x.reshape(c * n, -1)
    u, sv, vt = np.linalg.svd(b, full_matrices=False)
    z = (q @ (u * sv)).reshape(c, n, -1)  # X V, since X = QB = Q U s Vᵀ on the range
    return vt.T, np.einsum("cnv,cnw->cvw", z, z), z.sum(axis=1)


def top_components(raw: np.ndarray, sums: np.ndarray, n: int, k: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` eigenvectors ``[w, k]`` (in the basis) and variances of a set of chains.

    ``raw [C', w, w]`` and ``sums [C', w]`` of the chains in the set; their covariance about
    their common mean is ``(ΣR_c − (Σs_c)(Σs_c)ᵀ/(C'n)) / (C'n − 1)``.
    """
    total, m = sums.sum(axis=0), raw.shape[0] * n
    cov = (raw.sum(axis=0) - np.outer(total, total) / m) / max(m - 1, 1)
    var, vec = np.linalg.eigh(cov)
    order = np.argsort(var)[::-1][:k]
    return vec[:, order], var[order]


def principal_components(run: RunData, k: int, seed: int = 0
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top ``k`` directions ``[d, k]``, their variances ``[k]`` and per-chain variances ``[C, k]``."""
    basis, raw, sums = subspace(run, k, seed)
    n = run.draws
    vec, var = top_components(raw, sums, n, k)
    own = raw - np.einsum("cv,cw->cvw", sums, sums) / n  # each chain about its own mean
    per_chain = np.einsum("vk,cvw,wk->ck", vec, own, vec) / max(n - 1, 1)
    return basis @ vec, var, per_chain


def _pieces(theta: Any, keep: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``(first coordinate, draws [C', n, ≤STEP])`` less their grand mean, in float64.

    Columns are read in the stored dtype and converted a few hundred coordinates at a time,
    in the same order every pass (so Ω's draws line up with the coordinates).
    """
    for lo, column in columns(theta, BLOCK, keep):
        for a in range(0, column.shape[-1], STEP):
            x = np.asarray(column[..., a:a + STEP], dtype=float)
            yield lo + a, x - x.mean(axis=(0, 1))


def _exponent(var: np.ndarray, curv: np.ndarray) -> float:
    """``ψ = −slope(log c, log σ²)`` over the components with ``c > 0`` (NaN with fewer than 2)."""
    use = (curv > 0) & (var > 0)
    return -slope(np.log(curv[use]), np.log(var[use])) if use.sum() >= 2 else float("nan")


def flatness(run: RunData, k: int) -> dict[str, Any]:
    """``runs[i].flatness``: variances, curvatures and the fitted exponent ψ (module docstring)."""
    if run.draws < 4 or (~run.diverged_chains()).sum() < 2:
        return {"k": k, "reason": "fewer than 4 draws or 2 non-diverged chains"}
    basis, raw, sums = subspace(run, k)
    chains, n = raw.shape[0], run.draws
    vec, var = top_components(raw, sums, n, k)
    out: dict[str, Any] = {"k": int(len(var)), "variance": var.tolist()}
    if not run.model.gradient_available:
        return {**out, "reason": "the model is a user's module, whose code is not imported "
                "when an archive is read: no curvature along the components (--import-model "
                "rebuilds it from its source, checked against the archive)"}
    point = mean_point(run)
    if point is None:
        return {**out, "reason": "no chains' mean of every coordinate (θ recorded partly "
                "without the engine's sums)"}
    full = np.zeros((run.model.dim, basis.shape[1]))
    coords = (slice(None) if run.recorded_coords is None
              else np.asarray(run.recorded_coords))
    full[coords] = basis
    hvp = hessian_vector(run.model, point)
    projected = full.T @ np.stack([hvp(u) for u in full.T], axis=1)  # VᵀHV [w, w]
    projected = 0.5 * (projected + projected.T)

    def curvatures(v: np.ndarray) -> np.ndarray:
        return np.einsum("vk,vw,wk->k", v, projected, v)

    curv = curvatures(vec)
    out["curvature"] = curv.tolist()
    use = curv > 0
    if use.sum() < 2:
        return {**out, "reason": "fewer than 2 components with positive curvature"}
    loo, loo_var = [], []
    for c in range(chains):  # each chain left out: its components, variances and curvatures
        rest = np.arange(chains) != c
        v, s2 = top_components(raw[rest], sums[rest], n, k)
        loo.append(_exponent(s2, curvatures(v)))
        loo_var.append(s2)
    finite = np.array([x for x in loo if np.isfinite(x)])
    return {**out, "exponent": _exponent(var, curv), "exponent_se": jackknife_se(finite),
            "components_used": int(use.sum()), **_resolution(var, np.array(loo_var))}


def _resolution(var: np.ndarray, loo_var: np.ndarray) -> dict[str, Any]:
    """Whether neighbouring components' variances are told apart (else their directions mix).

    Components j and j + 1 are resolved when ``log σ_j² − log σ_{j+1}²`` exceeds twice its
    jackknife SE (each ``log σ²`` left-one-chain-out, matched by rank). Where they are not,
    the sample components are mixtures of the true ones, and so are their curvatures: ψ is
    then biased (``benchmarks/RESULTS.md``, landscape calibration).
    """
    logs = np.log(np.maximum(loo_var, np.finfo(float).tiny))
    se = np.array([jackknife_se(logs[:, j]) for j in range(logs.shape[1])])
    gap = -np.diff(np.log(np.maximum(var, np.finfo(float).tiny)))
    resolved = gap > 2 * np.hypot(se[:-1], se[1:])
    return {"variance_log_se": se.tolist(), "unresolved_pairs": int((~resolved).sum()),
            "resolved": bool(resolved.all())}
