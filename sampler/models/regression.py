"""Regression models with closed-form gradients: ``mean``, ``linear_regression``, ``logistic``.

The per-example losses are the reference (``DatasetModel`` derives gradients from them with
``torch.func``); the closed forms below are only faster, and the tests check they agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..linear_forms import LinearGradient, regression_form
from .base import Batch, DatasetModel, indices_of
from .batching import gather_rows, over_chain_chunks


def _rows_dot(xb: Tensor, theta: Tensor) -> Tensor:
    """``z_cb = x_cbᵀθ_c`` for ``xb [C, B, D]``, ``theta [C, D]``.

    As ``θᵀ X_Bᵀ`` (a row times a transposed view): on one CPU thread 2–6× faster than
    ``bmm(X_B, θ)`` or ``(X_B⊙θ).sum(−1)`` at B = D = 32 (``benchmarks/bench_peers.py``).
    """
    return torch.bmm(theta.unsqueeze(1), xb.transpose(1, 2)).squeeze(1)


class GLM(DatasetModel):
    """A generalised linear model: ``ℓ_i(θ) = φ(x_iᵀθ, y_i) + (l2/2)‖θ‖²``.

    Per-example gradient ``∇ℓ_i = x_i r_i + l2·θ`` with the residual ``r_i = ∂φ/∂z`` at
    ``z = x_iᵀθ``; subclasses give ``φ`` and ``r`` in ``link`` and everything else is shared.
    """

    def __init__(self, x: Tensor, y: Tensor, l2: float = 0.0) -> None:
        super().__init__(x, y, dim=int(x.shape[1]), l2=l2)

    def link(self, z: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Per-example ``(φ(z, y), ∂φ/∂z)``, elementwise."""
        raise NotImplementedError

    def residual(self, z: Tensor, y: Tensor) -> Tensor:
        """``∂φ/∂z`` alone (the same tensor ``link`` returns second)."""
        raise NotImplementedError

    def glm_parts(self) -> tuple[np.ndarray, np.ndarray, float, Any]:
        """``(X, y, l2, r)`` with ``r`` the residual on float64 numpy arrays."""
        x, y = self.dataset()

        def residual(z: np.ndarray, targets: np.ndarray) -> np.ndarray:
            out = self.residual(torch.as_tensor(z), torch.as_tensor(targets))
            return out.numpy()
        return x, y, float(self.l2), residual

    def example_loss(self, theta: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """``φ(xᵀθ, y)``."""
        return self.link(x @ theta, y)[0]

    def _width(self, batch: Batch) -> int:
        return indices_of(batch).shape[1] * self.dim

    def _batch_parts(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        idx = indices_of(batch)
        xb = gather_rows(self.x, idx)  # [C, B, D]
        yb = gather_rows(self.y, idx)  # [C, B]
        losses, r = self.link(_rows_dot(xb, theta), yb)
        return xb, losses, r

    def minibatch_grad(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """``g_B = (1/B) X_Bᵀ r_B + l2·θ`` in one batched matmul (per chunk of chains)."""
        return over_chain_chunks(self._minibatch_grad, theta, batch, self._width(batch))

    def _minibatch_grad(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        xb, losses, r = self._batch_parts(theta, batch)
        loss = losses.mean(-1)
        if self.l2:
            loss = loss + 0.5 * self.l2 * (theta * theta).sum(-1)
        return loss, self._mean_rows(r, xb, theta)

    def _mean_rows(self, r: Tensor, xb: Tensor, theta: Tensor) -> Tensor:
        """``(1/B) X_Bᵀ r + l2·θ`` (the ridge term only when ``l2 ≠ 0``)."""
        g = torch.bmm(r.unsqueeze(1), xb).squeeze(1).mul_(1.0 / r.shape[1])
        return g.add_(theta, alpha=self.l2) if self.l2 else g

    def minibatch_gradient(self, theta: Tensor, batch: Batch) -> Tensor:
        """``g_B`` without the loss: the residual alone, then the same batched matmul."""
        return over_chain_chunks(self._minibatch_gradient, theta, batch, self._width(batch))

    def _minibatch_gradient(self, theta: Tensor, batch: Batch) -> Tensor:
        idx = indices_of(batch)
        xb, yb = gather_rows(self.x, idx), gather_rows(self.y, idx)
        return self._mean_rows(self.residual(_rows_dot(xb, theta), yb), xb, theta)

    def example_moments(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Batch mean and mean square of ``∇ℓ_b = x_b r_b + l2·θ``, per chunk of chains."""
        return over_chain_chunks(self._example_moments, theta, batch, self._width(batch))

    def _example_moments(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        xb, _, r = self._batch_parts(theta, batch)
        per_example = xb * r.unsqueeze(-1) + (self.l2 * theta).unsqueeze(1)
        return per_example.mean(dim=1), per_example.square().mean(dim=1)

    def full_loss_grad(self, theta: Tensor, chunk: int = 4096) -> tuple[Tensor, Tensor]:
        """``L`` and ``∇L = Xᵀr/N + l2·θ`` for every chain at once."""
        losses, r = self.link(theta @ self.x.T, self.y)  # [C, N]
        g = r @ self.x / self.n_examples + self.l2 * theta
        return losses.mean(-1) + 0.5 * self.l2 * (theta * theta).sum(-1), g


class LinearRegression(GLM):
    """Least squares, ``ℓ_i(θ) = ½ (x_iᵀθ − y_i)² + (l2/2)‖θ‖²``.

    Residual ``r_i = x_iᵀθ − y_i``; the loss is exactly quadratic with Hessian
    ``H = XᵀX/N + l2·I``.
    """

    name = "linear_regression"

    def link(self, z: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """``(½(z − y)², z − y)``."""
        r = self.residual(z, y)
        return 0.5 * (r * r), r

    def residual(self, z: Tensor, y: Tensor) -> Tensor:
        """``z − y``."""
        return z - y

    def exact_hessian(self) -> np.ndarray:
        """``XᵀX/N + l2·I``."""
        x = self.x.double().cpu().numpy()
        return x.T @ x / self.n_examples + self.l2 * np.eye(self.dim)

    def example_affine(self) -> tuple[np.ndarray, np.ndarray]:
        """``P_i = x_ix_iᵀ + l2·I``, ``r_i = x_iy_i`` (``∇ℓ_i = P_iθ − r_i``)."""
        x, y = self.dataset()
        return (np.einsum("ni,nj->nij", x, x) + self.l2 * np.eye(self.dim), x * y[:, None])

    def linear_gradient(self, batch_size: int, sampling: str) -> LinearGradient | None:
        """Least squares' exact form (``sampler.linear_forms.regression_form``).

        For i.i.d., without-replacement or Gaussian-surrogate batches; none for epoch
        reshuffling (dependent batches) or full batches (no noise).
        """
        if sampling in ("epoch", "full"):
            return None
        x, y = self.dataset()
        return regression_form(x, y, self.l2, batch_size, sampling)


class MeanModel(LinearRegression):
    """The seeds' one-dimensional example ``ℓ_i(β) = ½ (β − y_i)²`` (linear regression on ``x = 1``).

    ``L`` is minimised at ``β* = mean(y)`` with curvature ``h = 1``; per-example gradient noise has
    variance ``σ² = (1/N) Σ_i (y_i − ȳ)²``.
    """

    name = "mean"

    def __init__(self, y: Tensor) -> None:
        super().__init__(torch.ones(y.shape[0], 1, dtype=y.dtype, device=y.device), y)


class LogisticRegression(GLM):
    """Binary cross-entropy, ``ℓ_i(θ) = softplus(x_iᵀθ) − y_i x_iᵀθ + (l2/2)‖θ‖²``, ``y_i ∈ {0, 1}``.

    Residual ``r_i = sigmoid(x_iᵀθ) − y_i``.
    """

    name = "logistic_regression"

    def link(self, z: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """``(softplus(z) − y·z, sigmoid(z) − y)``."""
        return F.softplus(z) - y * z, self.residual(z, y)

    def residual(self, z: Tensor, y: Tensor) -> Tensor:
        """``sigmoid(z) − y``."""
        return torch.sigmoid(z) - y

    def curvature_floor(self) -> float | None:
        """``l2``: ``g_B = l2·θ + X_Bᵀr_B/B`` with ``|r_i| ≤ 1`` (``None`` without a ridge)."""
        return self.l2 or None
