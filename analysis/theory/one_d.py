"""The exact finite-η stationary law of 1-D SGD with B = 1 on a finite dataset (any loss).

With one example per step, SGD is an iterated function system: ``θ' = T_i(θ) = θ − η∇ℓ_i(θ)``
with i uniform over the N examples. Where every ``T_i`` is increasing (``η·ℓ_i'' < 1``), the
stationary CDF is the fixed point of the transfer operator on CDFs,

    F(x) = (1/N) Σ_i F(T_i⁻¹(x)),

a contraction in the sup norm's Wasserstein sense that is iterated here on a grid (``T_i⁻¹`` by
interpolating the tabulated, increasing ``T_i``) from the Gaussian with the linearised variance
until it changes by less than 1e-13. The law may be singular (a Bernoulli-convolution-like
measure for the ``mean`` model at large η); its CDF is still continuous and the grid method
converges. ``grid_error`` is the sup distance to the same fixed point on a grid twice as fine;
``tail_mass`` the mass the grid's range leaves out (both are reported with every comparison).

The per-example gradients come from the model itself (``Model.example_grads``), so ``mean``,
``linear_regression`` and ``logistic_regression`` with one feature are all covered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.special
import torch
from scipy import sparse

from ...sampler.models import Model

GRID = 8193
SPAN = 14.0  # half-width of the grid in linearised standard deviations (clipped to the data)


@dataclass
class ExactLaw1D:
    """A stationary CDF on a grid, with its numerical error bounds."""

    grid: np.ndarray  # [G]
    cdf: np.ndarray  # [G], nondecreasing
    grid_error: float  # sup |F_G − F_{2G−1}|
    tail_mass: float  # mass outside the grid's range (from the linearised Gaussian)
    theta_star: float

    def cdf_at(self, x: np.ndarray) -> np.ndarray:
        """``F(x)``."""
        return np.interp(x, self.grid, self.cdf, left=0.0, right=1.0)

    def quantile(self, q: np.ndarray) -> np.ndarray:
        """``F⁻¹(q)`` (the left end of any flat part)."""
        return np.interp(q, self.cdf, self.grid)

    def moments(self) -> tuple[float, float, float]:
        """Mean, variance and skewness, from ``∫x^k dF`` over the grid's cells."""
        mass = np.diff(self.cdf)
        mid = 0.5 * (self.grid[1:] + self.grid[:-1])
        total = mass.sum()
        mean = float((mid * mass).sum() / total)
        var = float(((mid - mean) ** 2 * mass).sum() / total)
        skew = float(((mid - mean) ** 3 * mass).sum() / total / var**1.5)
        return mean, var, skew


def example_maps(model: Model, lr: float, grid: np.ndarray) -> np.ndarray:
    """``T_i(θ) = θ − η∇ℓ_i(θ)`` on the grid, ``[N, G]`` (the model's own per-example gradients)."""
    theta = torch.as_tensor(grid, dtype=torch.float64)[:, None]
    _, grads = model.example_grads(theta.to(model.dtype), model.all_examples(len(grid)))
    g = grads[..., 0].double().cpu().numpy()  # [G, N]
    return (grid[:, None] - lr * g).T


def transfer_operator(maps: np.ndarray, grid: np.ndarray) -> tuple[sparse.csr_matrix, np.ndarray]:
    """The transfer operator on CDFs on a uniform grid, as ``F ↦ A·F + b``.

    ``(PF)(x) = (1/N) Σ_i F(T_i⁻¹(x))`` with F linear between nodes, 0 left of the grid and 1
    right of it: row x of ``A`` holds, for each map, the two interpolation weights of
    ``T_i⁻¹(x)`` (``1/N`` each in all), and ``b(x)`` the share of maps with ``T_i⁻¹(x)`` right
    of the grid. ``T_i⁻¹`` by interpolating the tabulated, increasing ``T_i``.
    """
    n, size = maps.shape
    lo, step = grid[0], grid[1] - grid[0]
    rows, cols, weights = [], [], []
    b = np.zeros(size)
    for t in maps:
        inverse = np.interp(grid, t, grid, left=-np.inf, right=np.inf)
        right = inverse > grid[-1]
        b += right
        inside = np.flatnonzero((inverse >= lo) & ~right)
        u = (inverse[inside] - lo) / step
        j = np.clip(np.floor(u).astype(int), 0, size - 2)
        w = np.clip(u - j, 0.0, 1.0)
        rows += [inside, inside]
        cols += [j, j + 1]
        weights += [1 - w, w]
    a = sparse.csr_matrix((np.concatenate(weights) / n,
                           (np.concatenate(rows), np.concatenate(cols))), shape=(size, size))
    return a, b / n


def _fixed_point(model: Model, lr: float, grid: np.ndarray, start: np.ndarray,
                 tol: float, max_iter: int) -> np.ndarray | None:
    """The fixed point ``F = A·F + b`` (``transfer_operator``), or ``None``.

    BiCGSTAB on ``(I − A)F = b`` from ``start``, then plain iterations until one changes F by
    less than ``tol`` (the check, and the fallback if BiCGSTAB breaks down): tens of operator
    applications where the plain iteration alone takes ``log(1/tol)/(ηh)``.
    """
    maps = example_maps(model, lr, grid)
    if not np.all(np.diff(maps, axis=1) > 0):
        return None  # a map folds: the CDF transfer needs increasing maps
    a, b = transfer_operator(maps, grid)
    from scipy.sparse import linalg as splinalg  # only for a 1-D exact law (0.1 s of imports)

    eye_minus_a = splinalg.LinearOperator(a.shape, matvec=lambda v: v - a @ v, dtype=float)
    f, _ = splinalg.bicgstab(eye_minus_a, b, x0=start, rtol=0.0, atol=tol / 2, maxiter=1000)
    f = f if np.all(np.isfinite(f)) else start
    for _ in range(max_iter):
        new = a @ f + b
        if np.abs(new - f).max() < tol:
            return new
        f = new
    return None


def exact_law_1d(model: Model, lr: float, theta_star: float, linear_var: float,
                 size: int = GRID, tol: float = 1e-13,
                 max_iter: int = 200_000) -> ExactLaw1D | None:
    """The exact stationary CDF of 1-D SGD, B = 1, or ``None`` (not 1-D data, a map folds).

    Args:
        model: A dataset model with D = 1.
        lr: η.
        theta_star: The full-batch optimum (the grid's centre).
        linear_var: The linearised stationary variance (the grid's scale and starting law).
        size: Grid points (the error check uses twice as many).
        tol: Sup-norm change that ends the iteration.
        max_iter: Iterations before giving up.
    """
    xy = model.dataset()
    if model.dim != 1 or xy is None or linear_var <= 0:
        return None
    sd = np.sqrt(linear_var)
    lo, hi = theta_star - SPAN * sd, theta_star + SPAN * sd
    laws = []
    for n in (size, 2 * size - 1):
        grid = np.linspace(lo, hi, n)
        start = scipy.special.ndtr((grid - theta_star) / sd)
        f = _fixed_point(model, lr, grid, start, tol, max_iter)
        if f is None:
            return None
        laws.append((grid, f))
    (grid, f), (fine_grid, fine) = laws
    error = float(np.abs(fine[::2] - f).max())
    tail = float(2 * scipy.special.ndtr(-SPAN))
    return ExactLaw1D(fine_grid, fine, error, tail, theta_star)


@dataclass
class Linearised1D:
    """The loss near θ*: curvature, third derivative, gradient noise, and what they predict."""

    theta_star: float
    h: float  # L''(θ*)
    third: float  # L'''(θ*)
    noise: float  # C = Var_i ∇ℓ_i(θ*), per example (B = 1)

    def variance(self, lr: float) -> float:
        """Linearised stationary variance ``ηC/(h(2 − ηh))`` (exact for quadratics)."""
        return lr * self.noise / (self.h * (2 - lr * self.h))

    def mean_bias(self, lr: float) -> float:
        """Leading-order stationary-mean bias ``E[θ] − θ* ≈ −L'''·Var/(2L'')``.

        The 1-D form of ``−½H⁻¹∇³L(θ*)[Σ]``: averaging ``∇L(θ) ≈ h δ + ½L'''δ²`` over the
        stationary law and using ``E[∇L(θ)] = 0`` (docs/theory.md identity O1).
        """
        return -self.third * self.variance(lr) / (2 * self.h)


def linearise_1d(model: Model, theta_star: float, step: float = 1e-3) -> Linearised1D:
    """``L''``, ``L'''`` by central differences of the full-batch gradient, and C at θ*."""
    pts = theta_star + step * np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    theta = torch.as_tensor(pts, dtype=torch.float64)[:, None].to(model.dtype)
    _, grads = model.example_grads(theta, model.all_examples(len(pts)))
    g = grads[..., 0].double().cpu().numpy()  # [5, N]
    full = g.mean(axis=1)
    h = (full[3] - full[1]) / (2 * step)
    third = (full[4] - 2 * full[2] + full[0]) / (4 * step**2)
    return Linearised1D(theta_star, float(h), float(third), float(g[2].var()))


def newton_optimum_1d(model: Model, start: float, steps: int = 20) -> float:
    """θ* to rounding by Newton's method on the full-batch gradient (from an L-BFGS start)."""
    theta = start
    for _ in range(steps):
        lin = linearise_1d(model, theta)
        grid = torch.as_tensor([[theta]], dtype=torch.float64).to(model.dtype)
        _, grads = model.example_grads(grid, model.all_examples(1))
        g = float(grads[0, :, 0].double().mean())
        if lin.h <= 0:
            break
        step = g / lin.h
        theta -= step
        if abs(step) <= 1e-15 * max(abs(theta), 1.0):
            break
    return theta


@dataclass
class DiscreteLaw1D:
    """Atoms and masses of a discrete stationary law, near-ties merged.

    Values ``T_i(θ)`` closer than ``tol`` (absolute) to their neighbour are one atom: they
    differ only by rounding (or by less than any run can resolve), and splitting a cluster of
    them would assign rounded draws to one or the other by chance. An atom sits at its cluster's
    mass-weighted centre and covers ``[low − tol, high + tol]``.
    """

    atoms: np.ndarray  # [A] increasing
    masses: np.ndarray  # [A], sum 1
    low: np.ndarray  # [A] the smallest value merged into each atom
    high: np.ndarray  # [A] the largest
    tol: float

    def atom_of(self, x: np.ndarray) -> np.ndarray:
        """The index of the atom each value lies on, ``-1`` where it lies on none (NaN too).

        The tolerance widens to ``1000·ε·scale`` for draws stored at a coarser precision ε.
        """
        tol = max(self.tol, tie_tolerance(x.dtype, self.atoms))
        j = np.clip(np.searchsorted(self.low, x, side="right") - 1, 0, len(self.atoms) - 1)
        on = (x >= self.low[j] - tol) & (x <= self.high[j] + tol)
        k = np.minimum(j + 1, len(self.atoms) - 1)  # x may sit just below the next cluster
        on_next = (x >= self.low[k] - tol) & (x <= self.high[k] + tol)
        return np.where(on, j, np.where(on_next, k, -1))


def tie_tolerance(dtype: np.dtype | torch.dtype, values: np.ndarray) -> float:
    """``max(1e-9, 1000·ε)·max(1, max|v|)``: values closer than this are one (ε of ``dtype``).

    One SGD step ``θ − η(θ − y)`` rounds to a few ε times the largest magnitude involved.
    """
    eps = torch.finfo(dtype).eps if isinstance(dtype, torch.dtype) else np.finfo(dtype).eps
    return max(1e-9, 1e3 * float(eps)) * max(1.0, float(np.abs(values).max(initial=0.0)))


def merge_ties(values: np.ndarray, tol: float) -> DiscreteLaw1D:
    """Equal-mass values ``[N]`` as a discrete law, neighbours closer than ``tol`` merged."""
    v = np.sort(np.asarray(values, dtype=float))
    start = np.concatenate([[True], np.diff(v) > tol])  # single linkage along the sorted values
    label = np.cumsum(start) - 1
    count = np.bincount(label).astype(float)
    atoms = np.bincount(label, weights=v) / count
    first = np.flatnonzero(start)
    last = np.concatenate([first[1:], [len(v)]]) - 1
    return DiscreteLaw1D(atoms, count / len(v), v[first], v[last], tol)


def discrete_law_1d(model: Model, lr: float) -> DiscreteLaw1D | None:
    """The law when every map is constant (``mean`` at η = 1: θ' = y_i), else None.

    Then the stationary law is exactly discrete after one step: mass 1/N at each ``T_i``, with
    values equal to within rounding (``tie_tolerance`` of the model's dtype) merged.
    """
    if model.dim != 1 or model.dataset() is None:
        return None
    maps = example_maps(model, lr, np.array([-1.0, 1.0]))  # [N, 2]
    tol = tie_tolerance(model.dtype, maps)
    if np.abs(maps[:, 0] - maps[:, 1]).max() > tol:
        return None
    return merge_ties(maps[:, 0], tol)


WORK_1D = 400_000  # examples × iterations the 1-D transfer operator may take (~5 s)


def iterations(lr: float, h_min: float, tol: float) -> float:
    """Iterations a transfer operator contracting by ``1 − ηh_min`` needs to reach ``tol``."""
    rate = lr * h_min
    return float("inf") if rate <= 0 else float(np.log(1 / tol) / min(rate, 1.0))
