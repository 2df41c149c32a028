"""Linear forms: a model's linear gradient, a rule's heavy-ball matrices, the second-moment bound.

A model whose gradient is exactly linear in θ describes itself by a ``LinearGradient`` (H, θ*,
the minibatch noise covariance ``C̄(Σ)`` and the per-example σ² at θ*); a rule describes itself by
a ``rules.HeavyBall`` (rates, μ, d). This module joins the two.

Every constant-rate rule is a heavy-ball recursion with a diagonal rate matrix Λ, momentum μ and
dampening d (SGD: μ = d = 0; the seeds' N_g form: μ = 1 − 1/N_g). For ``δ = θ − θ*``,
``g = Hδ + ξ`` and ``z = (δ, b)``::

    b' = μb + (1−d)(Hδ + ξ),   δ' = δ − Λb'
    z' = A z + Bξ,  A = [[I − (1−d)ΛH, −μΛ], [(1−d)H, μI]],  B = [[−(1−d)Λ], [(1−d)I]]

For ``linear_regression`` the minibatch noise covariance depends on the state but closes in the
second moment ``Σ = E[δδᵀ]``:

    C̄(Σ) = κ [ (1/N) Σ_i u_i u_iᵀ + (1/N) Σ_i x_i (x_iᵀΣx_i) x_iᵀ − H_x Σ H_x ],

(``u_i`` per-example gradients at θ*, ``κ = 1/B`` i.i.d. or ``(N−B)/(B(N−1))`` without
replacement). The stationary Σ is then the fixed point of ``Σ ↦ [Lyap(A, B C̄(Σ) Bᵀ)]_δδ``, an
affine map whose linear part ``𝓛`` is positive. A finite stationary second moment exists iff the
spectral radius ``ρ(𝓛) < 1``; this is stricter than the mean's bound (1-D Gaussian x at B = 1:
``ηh < 2/3`` against ``ηh < 2``), and beyond it the variance grows without limit although the
mean converges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .low_rank import DiagPlusLowRank


def heavy_ball_matrices(h: np.ndarray, rates: np.ndarray, mu: float, damp: float,
                        nesterov: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``A`` and ``B`` of the joint (δ, b) recursion for ``Λ = diag(rates)`` (or ``rates`` [D, D]).

    Heavy ball: ``b' = μb + (1−d)g``, ``δ' = δ − Λb'``. Nesterov (d = 0): ``δ' = δ − Λ(g + μb')
    = (I − (1+μ)ΛH)δ − μ²Λb − (1+μ)Λξ``.
    """
    d = h.shape[0]
    lam, eye = (rates if rates.ndim == 2 else np.diag(rates)), np.eye(d)
    if nesterov:
        a = np.block([[eye - (1 + mu) * lam @ h, -mu * mu * lam], [h, mu * eye]])
        return a, np.vstack([-(1 + mu) * lam, eye])
    a = np.block([[eye - (1 - damp) * lam @ h, -mu * lam], [(1 - damp) * h, mu * eye]])
    b = np.vstack([-(1 - damp) * lam, (1 - damp) * eye])
    return a, b


def noise_factor(n: int, batch_size: int, sampling: str) -> float:
    """κ of ``C = κ·Σ_1``.

    ``1/B`` for i.i.d. indices and the Gaussian surrogate, ``(N−B)/(B(N−1))`` without
    replacement.
    """
    if sampling in ("iid", "gaussian"):
        return 1 / batch_size
    return (n - batch_size) / (batch_size * (n - 1))


class RegressionNoise:
    """``C̄(Σ)`` of least squares with design ``x [N, D]`` and per-example optimum gradients ``u``.

    Args:
        x: Design matrix.
        u: Per-example gradients at θ* ``[N, D]``.
        kappa: ``1/B`` (i.i.d.) or ``(N−B)/(B(N−1))`` (without replacement).
        theta_star: The optimum θ* (kept for the caller).
    """

    def __init__(self, x: np.ndarray, u: np.ndarray, kappa: float,
                 theta_star: np.ndarray | None = None) -> None:
        self.x, self.kappa, self.theta_star = x, kappa, theta_star
        self.hx = x.T @ x / x.shape[0]
        self.const = kappa * (u.T @ u / x.shape[0])

    def linear(self, cov: np.ndarray) -> np.ndarray:
        """The part of ``C̄`` linear in Σ: ``κ[(1/N)Σ_i x_i(x_iᵀΣx_i)x_iᵀ − H_xΣH_x]``."""
        q = np.einsum("ij,jk,ik->i", self.x, cov, self.x)
        fourth = (self.x * q[:, None]).T @ self.x / self.x.shape[0]
        return self.kappa * (fourth - self.hx @ cov @ self.hx)

    def __call__(self, cov: np.ndarray) -> np.ndarray:
        """``C̄(Σ)``."""
        return self.const + self.linear(cov)

    def scaled(self, factor: float) -> RegressionNoise:
        """The noise of the loss multiplied by s: ``C̄ → s²C̄`` (``factor = s²``)."""
        out = RegressionNoise.__new__(RegressionNoise)
        out.x, out.kappa, out.theta_star = self.x, self.kappa * factor, self.theta_star
        out.hx, out.const = self.hx, self.const * factor
        return out


@dataclass(frozen=True)
class LinearGradient:
    """A minibatch gradient exactly linear in θ: ``g = H(θ − θ*) + ξ``, ``E[ξξᵀ] = C̄(Σ)``.

    ``C̄`` is constant (``noise = None``: ``C̄ = const``, known additive noise) or closes in the
    second moment ``Σ = E[(θ − θ*)(θ − θ*)ᵀ]`` (``noise``: least squares).

    A diagonal model gives ``hessian`` and ``const`` as vectors ``[D]`` (``diagonal``), a
    diagonal-plus-low-rank one as ``DiagPlusLowRank`` (``low_rank``): nothing of size D×D is
    formed unless a caller asks for ``dense()``.

    Attributes:
        hessian: ``H [D, D]``, its diagonal ``[D]``, or ``diag + UsUᵀ``.
        theta_star: ``θ* [D]``.
        const: ``C̄`` at ``Σ = 0``: ``[D, D]``, its diagonal ``[D]`` (with a diagonal H), or
            ``diag + UsUᵀ`` (with a low-rank H).
        noise: The Σ-dependent noise model, or ``None``.
        example_var: Per-example gradient variance ``σ_i² = Σ_1,ii`` at θ* ``[D]``.
        example_var_exact: Whether σ² is the same at every θ (known noise), so that rates built
            from it are exact; else it is frozen at θ* (an approximation).
    """

    hessian: np.ndarray | DiagPlusLowRank
    theta_star: np.ndarray
    const: np.ndarray | DiagPlusLowRank
    noise: RegressionNoise | None
    example_var: np.ndarray
    example_var_exact: bool

    def noise_cov(self, cov: np.ndarray) -> np.ndarray:
        """``C̄(Σ)`` (a dense or diagonal form)."""
        assert not isinstance(self.const, DiagPlusLowRank), "low-rank forms: use dense()"
        return self.const if self.noise is None else self.noise(cov)

    @property
    def low_rank(self) -> bool:
        """Whether H (and C̄) are ``DiagPlusLowRank``."""
        return isinstance(self.hessian, DiagPlusLowRank)

    @property
    def diagonal(self) -> bool:
        """Whether H and C̄ are diagonal and stored as vectors."""
        return not isinstance(self.hessian, DiagPlusLowRank) and self.hessian.ndim == 1

    @property
    def h_diag(self) -> np.ndarray:
        """The diagonal of H ``[D]``."""
        return _diagonal_of(self.hessian)

    @property
    def c_diag(self) -> np.ndarray:
        """The diagonal of C̄ at Σ = 0 ``[D]``."""
        return _diagonal_of(self.const)

    def dense(self) -> LinearGradient:
        """The same form with H and C̄ as matrices (for solvers of dense forms)."""
        if not self.diagonal and not self.low_rank:
            return self
        return LinearGradient(_dense_of(self.hessian), self.theta_star, _dense_of(self.const),
                              self.noise, self.example_var, self.example_var_exact)

    def scaled(self, s: float) -> LinearGradient:
        """The form of the loss multiplied by s: ``H → sH``, ``C̄ → s²C̄``, ``σ² → s²σ²``."""
        hessian = (self.hessian.scaled(s) if isinstance(self.hessian, DiagPlusLowRank)
                   else s * self.hessian)
        const = (self.const.scaled(s * s) if isinstance(self.const, DiagPlusLowRank)
                 else s * s * self.const)
        return LinearGradient(hessian, self.theta_star, const,
                              None if self.noise is None else self.noise.scaled(s * s),
                              s * s * self.example_var, self.example_var_exact)


def _diagonal_of(m: np.ndarray | DiagPlusLowRank) -> np.ndarray:
    if isinstance(m, DiagPlusLowRank):
        return m.diagonal()
    return m if m.ndim == 1 else np.diag(m).copy()


def _dense_of(m: np.ndarray | DiagPlusLowRank) -> np.ndarray:
    if isinstance(m, DiagPlusLowRank):
        return m.dense()
    return np.diag(m) if m.ndim == 1 else m


def regression_form(x: np.ndarray, y: np.ndarray, l2: float, batch_size: int,
                    sampling: str) -> LinearGradient:
    """The ``LinearGradient`` of least squares ``ℓ_i = ½(x_iᵀθ − y_i)² + (l2/2)‖θ‖²``.

    ``θ* = H⁻¹Xᵀy/N`` with ``H = XᵀX/N + l2·I``; per-example gradients at θ* are
    ``u_i = x_i(x_iᵀθ* − y_i) + l2·θ*``.
    """
    n, d = x.shape
    h = x.T @ x / n + l2 * np.eye(d)
    theta_star = np.linalg.solve(h, x.T @ y / n)
    u = x * (x @ theta_star - y)[:, None] + l2 * theta_star
    noise = RegressionNoise(x, u, noise_factor(n, batch_size, sampling), theta_star)
    return LinearGradient(h, theta_star, noise.const, noise, u.var(axis=0), False)


def second_moment_radius(a: np.ndarray, b: np.ndarray, noise: RegressionNoise,
                         iterations: int = 200) -> float:
    """Spectral radius of ``𝓛: Σ ↦ [Lyap(A, B·C̄_lin(Σ)·Bᵀ)]_δδ`` by power iteration from I.

    ``𝓛`` maps positive semi-definite matrices to positive semi-definite ones, so its dominant
    eigenvalue is real and non-negative with a PSD eigenvector (Krein–Rutman), which the power
    iteration from the identity finds. Requires ``ρ(A) < 1``.
    """
    d = noise.hx.shape[0]
    cov = np.eye(d)
    rho = 0.0
    for _ in range(iterations):
        big = scipy.linalg.solve_discrete_lyapunov(a, b @ noise.linear(cov) @ b.T)
        new = big[:d, :d]
        norm = float(np.abs(new).max())
        if not np.isfinite(norm) or norm == 0.0:
            return 0.0 if norm == 0.0 else float("inf")
        rho_new = norm / float(np.abs(cov).max())
        cov = new / norm
        if abs(rho_new - rho) <= 1e-10 * max(rho_new, 1e-300):
            return rho_new
        rho = rho_new
    return rho
