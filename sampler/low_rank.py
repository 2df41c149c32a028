"""Diagonal-plus-low-rank symmetric matrices ``M = diag(d) + U·diag(s)·Uᵀ`` in O(Dk) memory.

A network's Hessian is a bulk plus a few outliers; this is that shape at any D without a D×D
matrix. Everything here is O(Dk²) time and O(Dk) memory (``U`` is ``[D, k]``):

* products ``Mx = d⊙x + U(s⊙(Uᵀx))``;
* the diagonal ``M_ii = d_i + Σ_j s_j U_ij²``;
* resolvents by Woodbury: with ``E = diag(1/(d − p))`` and ``P = EU``,

      (M − pI)⁻¹ = E − P·K·Pᵀ,   K = (I + diag(s)·UᵀEU)⁻¹·diag(s)   (k×k; any s ≥ 0),

  so ``[(M − pI)⁻¹]_ii = E_ii − Σ_ab P_ia K_ab P_ib`` and the Frobenius norm of its off-diagonal
  part is ``‖PKPᵀ‖_F² − Σ_i (PKPᵀ)_ii²`` with ``‖PKPᵀ‖_F² = tr(PᵀP·K·PᵀP·Kᵀ)``, and quadratic
  forms ``wᵀ(M − pI)⁻¹w = wᵀEw − (wᵀP)K(Pᵀw)`` along m directions in O(Dkm);
* the largest eigenvalue of ``R^½MR^½`` for a diagonal ``R`` by Lanczos (``eigsh``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DiagPlusLowRank:
    """``diag(diag) + factors·diag(weights)·factorsᵀ`` (float64; weights ≥ 0).

    Attributes:
        diag: ``d [D]``.
        factors: ``U [D, k]`` (columns need not be orthonormal).
        weights: ``s [k]``.
    """

    diag: np.ndarray
    factors: np.ndarray
    weights: np.ndarray

    @property
    def dim(self) -> int:
        """The dimension D."""
        return int(self.diag.shape[0])

    @property
    def rank(self) -> int:
        """The rank k (number of spikes)."""
        return int(self.weights.shape[0])

    def dense(self) -> np.ndarray:
        """``M`` as a ``[D, D]`` matrix (small D only)."""
        return np.diag(self.diag) + (self.factors * self.weights) @ self.factors.T

    def diagonal(self) -> np.ndarray:
        """``M_ii = d_i + Σ_j s_j U_ij²`` ``[D]``."""
        return self.diag + np.square(self.factors) @ self.weights

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """``Mx`` for ``x [D]`` or ``[D, n]``."""
        low = self.factors @ (self.weights.reshape(-1, *([1] * (x.ndim - 1)))
                              * (self.factors.T @ x))
        return (self.diag if x.ndim == 1 else self.diag[:, None]) * x + low

    def scaled(self, c: float) -> DiagPlusLowRank:
        """``c·M``."""
        return DiagPlusLowRank(c * self.diag, self.factors, c * self.weights)

    def affine_in(self, other: DiagPlusLowRank) -> tuple[float, float] | None:
        """``(α, β)`` with ``self = αI + β·other`` (same factors), else ``None``."""
        if self.factors.shape != other.factors.shape or not np.array_equal(
                self.factors, other.factors):
            return None
        lhs = np.concatenate([np.stack([np.ones(self.dim), other.diag], 1),
                              np.stack([np.zeros(self.rank), other.weights], 1)])
        rhs = np.concatenate([self.diag, self.weights])
        (alpha, beta), *_ = np.linalg.lstsq(lhs, rhs, rcond=None)
        scale = float(np.abs(rhs).max()) if rhs.size else 0.0
        ok = np.allclose(lhs @ np.array([alpha, beta]), rhs, rtol=1e-12, atol=1e-13 * scale)
        return (float(alpha), float(beta)) if ok else None

    def _resolvent_parts(self, shift: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        e = 1.0 / (self.diag - shift)
        p = e[:, None] * self.factors
        g = self.factors.T @ p  # UᵀEU [k, k]
        k = np.linalg.solve(np.eye(self.rank) + self.weights[:, None] * g, np.diag(self.weights))
        return e, p, k

    def resolvent_diagonal(self, shift: float) -> np.ndarray:
        """``diag((M − shift·I)⁻¹)`` ``[D]``; ``shift`` must lie outside M's spectrum."""
        e, p, k = self._resolvent_parts(shift)
        return e - np.einsum("ia,ab,ib->i", p, k, p)

    def resolvent_form(self, shift: float, w: np.ndarray) -> np.ndarray:
        """``wᵀ(M − shift·I)⁻¹w`` ``[m, m]`` for ``w [D, m]``: ``wᵀEw − (wᵀP)K(wᵀP)ᵀ``."""
        e, p, k = self._resolvent_parts(shift)
        wp = w.T @ p
        return (w * e[:, None]).T @ w - wp @ k @ wp.T

    def spike_directions(self) -> np.ndarray:
        """The unit directions ``u_j/‖u_j‖`` of the spikes with ``s_j > 0`` ``[D, m]``."""
        u = self.factors[:, self.weights > 0]
        return u / np.linalg.norm(u, axis=0)

    def resolvent_offdiagonal_norm(self, shift: float) -> float:
        """Frobenius norm of the off-diagonal part of ``(M − shift·I)⁻¹``."""
        _, p, k = self._resolvent_parts(shift)
        gram = p.T @ p
        full = float(np.trace(gram @ k @ gram @ k.T))
        diag = float(np.square(np.einsum("ia,ab,ib->i", p, k, p)).sum())
        return float(np.sqrt(max(full - diag, 0.0)))

    def max_eigenvalue(self, scale: np.ndarray | None = None) -> float:
        """``λ_max(R^½MR^½)`` for ``R = diag(scale)`` (default I): Lanczos, O(Dk) per product."""
        root = np.ones(self.dim) if scale is None else np.sqrt(scale)
        if self.dim <= 512:
            return float(np.linalg.eigvalsh(root[:, None] * self.dense() * root[None, :]).max())
        import scipy.sparse.linalg  # ARPACK: only for a large model (0.1 s of imports)

        op = scipy.sparse.linalg.LinearOperator(
            (self.dim, self.dim), matvec=lambda x: root * self.matvec(root * x.ravel()),
            dtype=float)
        vals = scipy.sparse.linalg.eigsh(op, k=1, which="LA", v0=np.ones(self.dim), tol=1e-12,
                                         return_eigenvectors=False)
        return float(vals[0])


def random_factors(dim: int, rank: int, seed: int) -> np.ndarray:
    """``U [D, k]`` with i.i.d. ``N(0, 1/D)`` entries: directions of expected unit norm.

    Not orthonormalised (a QR would round differently on different CPUs, and a resumed run must
    rebuild the same model bit for bit); nothing here needs orthonormal columns.
    """
    return np.random.default_rng(seed).standard_normal((dim, rank)) / np.sqrt(dim)
