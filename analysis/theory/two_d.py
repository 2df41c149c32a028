"""The exact finite-η stationary density of 2-D SGD with B = 1 on a small GLM dataset.

For a GLM (``linear_regression`` or ``logistic_regression`` with d = 2, ``Model.glm_parts``)
the per-example map ``T_i(θ) = (1 − ηl2)θ − ηx_i r(x_iᵀθ, y_i)`` is a rank-one perturbation of a
scaling, so it is inverted exactly through the scalar ``s = x_iᵀθ``: with ``u = T_i(θ)``,
``x_iᵀu = (1 − ηl2)s − η‖x_i‖² r(s, y_i)``, increasing in s where ``η‖x_i‖² r' < 1 − ηl2``
(solved by bisection), then ``θ = (u + ηx_i r(s, y_i))/(1 − ηl2)``, and
``det DT_i = (1 − ηl2)(1 − ηl2 − η‖x_i‖² r'(s))``. The density is the fixed point of the
transfer (Perron–Frobenius) operator

    p(u) = (1/N) Σ_i p(T_i⁻¹(u)) / |det DT_i(T_i⁻¹(u))|,

iterated on a G × G grid with cubic-spline interpolation (error O(Δ⁴) per step, so no numerical
diffusion builds up) until the L¹ change is below 1e-11, started from the operator's Perron
eigenvector found by Arnoldi's method (ARPACK) from the linearised Gaussian. The box is
θ* ± 12 linearised standard deviations per axis; ``grid_error`` is the largest difference of
the bin probabilities a test uses between grids of G and 2G − 1 points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
from scipy import ndimage

SPAN = 12.0
GRID = 161


@dataclass
class ExactLaw2D:
    """A stationary density on a grid (its nodes), normalised to mass 1 by the trapezoid rule."""

    axes: tuple[np.ndarray, np.ndarray]  # [G] each
    density: np.ndarray  # [G, G], rows along the first coordinate
    grid_error: float = float("nan")

    def mass(self, lo: tuple[int, int], hi: tuple[int, int]) -> float:
        """Trapezoid mass of the box between grid nodes ``lo`` and ``hi`` (inclusive)."""
        (a, b), (c, d) = lo, hi
        p = self.density[a:c + 1, b:d + 1]
        w0 = np.full(p.shape[0], 1.0)
        w0[[0, -1]] = 0.5
        w1 = np.full(p.shape[1], 1.0)
        w1[[0, -1]] = 0.5
        dx = self.axes[0][1] - self.axes[0][0]
        dy = self.axes[1][1] - self.axes[1][0]
        return float(w0 @ p @ w1 * dx * dy)

    def marginal_cdf(self, axis: int) -> np.ndarray:
        """The CDF of one coordinate at the grid nodes ``[G]``."""
        other = self.axes[1 - axis]
        step = other[1] - other[0]
        line = np.trapezoid(self.density, dx=step, axis=1 - axis)
        own = self.axes[axis]
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (line[1:] + line[:-1]))]) * (own[1] - own[0])
        return cdf / cdf[-1]


def _preimages(parts: tuple[np.ndarray, np.ndarray, float, Any], lr: float,
               u: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``T_i⁻¹(u)`` ``[N, M, 2]`` and ``1/|det DT_i|`` there ``[N, M]`` for points ``u [M, 2]``."""
    x, y, l2, residual = parts
    shrink = 1.0 - lr * l2
    out, jac = [], []
    for xi, yi in zip(x, y, strict=True):
        norm2 = float(xi @ xi)
        target = u @ xi
        lo = np.full(len(u), -1e3)
        hi = np.full(len(u), 1e3)
        for _ in range(80):  # bisection on the increasing f(s) = shrink·s − η‖x‖² r(s) − xᵀu
            mid = 0.5 * (lo + hi)
            f = shrink * mid - lr * norm2 * residual(mid, np.full_like(mid, yi)) - target
            lo, hi = np.where(f < 0, mid, lo), np.where(f < 0, hi, mid)
        s = 0.5 * (lo + hi)
        r = residual(s, np.full_like(s, yi))
        h = 1e-6 * np.maximum(1.0, np.abs(s))
        slope = (residual(s + h, np.full_like(s, yi)) - residual(s - h, np.full_like(s, yi))) / (2 * h)
        det = shrink * (shrink - lr * norm2 * slope)
        if np.any(det <= 0):
            return None  # the map folds: no increasing inverse
        out.append((u + lr * np.outer(r, xi)) / shrink)
        jac.append(1.0 / det)
    return np.stack(out), np.stack(jac)


def _fixed_point(parts: tuple[np.ndarray, np.ndarray, float, Any], lr: float,
                 axes: tuple[np.ndarray, np.ndarray], start: np.ndarray,
                 tol: float, max_iter: int) -> np.ndarray | None:
    g0, g1 = axes
    uu = np.stack(np.meshgrid(g0, g1, indexing="ij"), axis=-1).reshape(-1, 2)
    pre = _preimages(parts, lr, uu)
    if pre is None:
        return None
    points, jac = pre
    idx = np.stack([(points[..., 0] - g0[0]) / (g0[1] - g0[0]),
                    (points[..., 1] - g1[0]) / (g1[1] - g1[0])], axis=1)  # [N, 2, M]
    cell = (g0[1] - g0[0]) * (g1[1] - g1[0])

    def transfer(flat: np.ndarray) -> np.ndarray:
        coeffs = ndimage.spline_filter(flat.reshape(start.shape), order=3)
        return np.mean([ndimage.map_coordinates(coeffs, idx[i], order=3, mode="constant",
                                                cval=0.0, prefilter=False) * jac[i]
                        for i in range(len(jac))], axis=0)

    p = _dominant(transfer, start, tol).reshape(start.shape)
    p = np.maximum(p, 0.0) / (np.maximum(p, 0.0).sum() * cell)
    for _ in range(max_iter):  # the clipped iteration to its fixed point (and the check)
        new = np.maximum(transfer(p.ravel()).reshape(p.shape), 0.0)
        new /= new.sum() * cell
        change = float(np.abs(new - p).sum() * cell)
        p = new
        if change < tol:
            return p
    return None


def _dominant(transfer: Any, start: np.ndarray, tol: float) -> np.ndarray:
    """The transfer operator's Perron eigenvector by Arnoldi (ARPACK) from ``start``.

    About 100 operator applications where the power iteration needs ``log(1/tol)/(ηh_min)``;
    ``start`` itself if ARPACK does not converge (the iteration after it then does the work).
    """
    from scipy.sparse import linalg as splinalg  # only for a 2-D exact law (0.1 s of imports)

    n = start.size
    op = splinalg.LinearOperator((n, n), matvec=transfer, dtype=float)
    try:
        _, vec = splinalg.eigs(op, k=1, which="LM", v0=start.ravel(), tol=tol,
                               ncv=min(40, n - 1), maxiter=50 * n)
    except splinalg.ArpackNoConvergence:
        return start
    v = np.real(vec[:, 0])
    return v * np.sign(v.sum())


def linear_covariance(h: np.ndarray, c: np.ndarray, lr: float) -> np.ndarray:
    """``Σ = (I − ηH)Σ(I − ηH)ᵀ + η²C``: SGD's linearised stationary covariance."""
    a = np.eye(len(h)) - lr * h
    return scipy.linalg.solve_discrete_lyapunov(a, lr * lr * c)


def exact_law_2d(parts: tuple[np.ndarray, np.ndarray, float, Any], lr: float,
                 theta_star: np.ndarray, cov: np.ndarray, size: int = GRID, tol: float = 1e-11,
                 max_iter: int = 20_000) -> ExactLaw2D | None:
    """The density on a ``size × size`` grid around θ* (``None``: a map folds, no convergence)."""
    sd = np.sqrt(np.diag(cov))
    axes = tuple(np.linspace(theta_star[k] - SPAN * sd[k], theta_star[k] + SPAN * sd[k], size)
                 for k in range(2))
    uu = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1) - theta_star
    inv = np.linalg.inv(cov)
    start = np.exp(-0.5 * np.einsum("...i,ij,...j->...", uu, inv, uu))
    p = _fixed_point(parts, lr, (axes[0], axes[1]), start, tol, max_iter)
    return None if p is None else ExactLaw2D((axes[0], axes[1]), p)


def quantile_bins(law: ExactLaw2D, per_axis: int = 3) -> tuple[list[np.ndarray], np.ndarray]:
    """Bins at the marginal quantiles ``j/per_axis``, snapped to grid nodes, and their masses.

    Returns the interior edges per axis (as coordinates) and the bin probabilities
    ``[per_axis²]`` in row-major order (first axis slowest).
    """
    nodes = []
    for axis in (0, 1):
        cdf = law.marginal_cdf(axis)
        inner = [int(np.argmin(np.abs(cdf - q))) for q in np.arange(1, per_axis) / per_axis]
        nodes.append([0, *inner, len(cdf) - 1])
    masses = np.array([law.mass((nodes[0][a], nodes[1][b]), (nodes[0][a + 1], nodes[1][b + 1]))
                       for a in range(per_axis) for b in range(per_axis)])
    edges = [law.axes[k][np.array(nodes[k][1:-1])] for k in (0, 1)]
    return edges, masses / masses.sum()


def glm_curvature(parts: tuple[np.ndarray, np.ndarray, float, Any],
                  theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``∇L``, ``H``, ``∇³L`` and the per-example gradient covariance C at θ.

    r' and r'' by central differences of the residual.
    """
    x, y, l2, residual = parts
    z = x @ theta
    step = 1e-4 * np.maximum(1.0, np.abs(z))
    r0, rp_, rm_ = residual(z, y), residual(z + step, y), residual(z - step, y)
    r1 = (rp_ - rm_) / (2 * step)
    r2 = (rp_ - 2 * r0 + rm_) / step**2
    n, d = x.shape
    grads = x * r0[:, None] + l2 * theta
    h = (x.T * r1) @ x / n + l2 * np.eye(d)
    third = np.einsum("n,ni,nj,nk->ijk", r2, x, x, x) / n
    return grads.mean(axis=0), h, third, np.cov(grads.T, bias=True)


def newton_optimum(parts: tuple[np.ndarray, np.ndarray, float, Any],
                   start: np.ndarray) -> np.ndarray:
    """θ* by Newton's method from ``start``."""
    theta = np.asarray(start, dtype=float).copy()
    for _ in range(50):
        g, h, _, _ = glm_curvature(parts, theta)
        step = np.linalg.solve(h, g)
        theta -= step
        if np.abs(step).max() <= 1e-15 * max(np.abs(theta).max(), 1.0):
            break
    return theta
