"""Exact stationary laws of diagonal quadratics in O(D): one 2×2 heavy ball per coordinate.

With H, C̄ and the rates Λ diagonal, the joint recursion ``z' = Az + Bξ`` of ``z = (δ, b)``
(``theory``) splits into D independent two-dimensional ones,

    A_i = [[1 − (1−d)r_ih_i, −μr_i], [(1−d)h_i, μ]],   B_i = [−(1−d)r_i, (1−d)]ᵀ,

whose stationary covariance solves the 3×3 linear system of ``S = A_iSA_iᵀ + c_iB_iB_iᵀ`` for
``(S₁₁, S₁₂, S₂₂)``; all D systems are solved in one batched call. Adaptive rates (RMSProp, Adam)
iterate on ``E[g_i²] = h_i²S₁₁ + c_i`` as the dense solver does. The result equals the dense
Lyapunov solution (tested to 1e-10) without a D×D matrix: variances, virial and temperatures come
back as vectors.
"""

from __future__ import annotations

import numpy as np

from ...sampler.linear_forms import LinearGradient
from ...sampler.rules import UpdateRule


def heavy_ball_2x2(h: np.ndarray, rates: np.ndarray, mu: float, damp: float,
                   nesterov: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-coordinate ``A [D, 2, 2]`` and ``B [D, 2]`` (``linear_forms.heavy_ball_matrices``)."""
    a = np.empty((len(h), 2, 2))
    if nesterov:
        a[:, 0, 0] = 1 - (1 + mu) * rates * h
        a[:, 0, 1] = -mu * mu * rates
        a[:, 1, 0] = h
        a[:, 1, 1] = mu
        return a, np.stack([-(1 + mu) * rates, np.ones_like(rates)], axis=1)
    a[:, 0, 0] = 1 - (1 - damp) * rates * h
    a[:, 0, 1] = -mu * rates
    a[:, 1, 0] = (1 - damp) * h
    a[:, 1, 1] = mu
    b = np.stack([-(1 - damp) * rates, np.full_like(rates, 1 - damp)], axis=1)
    return a, b


def lyapunov_2x2(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Stationary ``S [D, 2, 2]`` of ``S = ASAᵀ + c·BBᵀ`` for every coordinate."""
    a11, a12, a21, a22 = a[:, 0, 0], a[:, 0, 1], a[:, 1, 0], a[:, 1, 1]
    m = np.stack([np.stack([a11**2, 2 * a11 * a12, a12**2], -1),
                  np.stack([a11 * a21, a11 * a22 + a12 * a21, a12 * a22], -1),
                  np.stack([a21**2, 2 * a21 * a22, a22**2], -1)], axis=1)  # [D, 3, 3]
    q = c[:, None] * np.stack([b[:, 0] ** 2, b[:, 0] * b[:, 1], b[:, 1] ** 2], -1)
    x = np.linalg.solve(np.eye(3) - m, q[..., None])[..., 0]
    return np.stack([np.stack([x[:, 0], x[:, 1]], -1), np.stack([x[:, 1], x[:, 2]], -1)], 1)


def diagonal_law(form: LinearGradient, rule: UpdateRule, thin: int, max_iter: int = 500,
                 tol: float = 1e-13) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """``(Var θ_i [D], τ_i [D], exact)`` of a diagonal form, or ``None`` if unstable/unsettled."""
    assert rule.linear_form is not None and form.diagonal and form.noise is None
    h, c = form.hessian, form.const
    var = np.zeros_like(h)
    for _ in range(max_iter):
        hb = rule.linear_form(h**2 * var + c, form.example_var, form.example_var_exact)
        a, b = heavy_ball_2x2(h, hb.rates, hb.mu, hb.dampening, hb.nesterov)
        if np.abs(np.linalg.eigvals(a)).max() >= 1:
            return None
        s = lyapunov_2x2(a, b, c)
        new = s[:, 0, 0]
        if not np.isfinite(new).all():
            return None
        done = np.abs(new - var).max() <= tol * max(np.abs(new).max(), 1e-300)
        var = new
        if done:
            a_t = np.linalg.matrix_power(a, thin)
            lag = a_t @ np.linalg.solve(np.eye(2) - a_t, s)
            return var, 1 + 2 * lag[:, 0, 0] / var, hb.exact
    return None
