"""Quadratic model with exactly known Gaussian gradient noise (the seeds' 1-D and 2-D examples)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..linear_forms import LinearGradient
from .base import Batch, Model, NoiseBatch
from .data import DataError


def as_matrix(values: list[float] | list[list[float]], field: str) -> np.ndarray:
    """A diagonal list or a list of rows as a square symmetric matrix; errors name the field."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 1:
        arr = np.diag(arr)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise DataError(f"{field}: expected a list or a square list of rows, got shape "
                        f"{list(arr.shape)}")
    if not np.allclose(arr, arr.T):
        raise DataError(f"{field}: must be symmetric, got {arr.tolist()}")
    return arr


def _noise(batch: Batch) -> Tensor:
    if not isinstance(batch, NoiseBatch):
        raise TypeError(f"a quadratic model's minibatch is its noise, got {type(batch).__name__}")
    return batch.noise


class Quadratic(Model):
    """``L(θ) = ½ θᵀHθ`` with per-example gradients ``∇ℓ_b = Hθ + ξ_b``, ``ξ_b ~ N(0, Σ)``.

    A minibatch of size B therefore has gradient ``g_B = Hθ + ξ``, ``ξ ~ N(0, Σ/B)``, and loss
    ``L(θ) + ξᵀθ``. The noise is additive and exactly known, which makes the stationary law of
    every constant-rate linear rule an exact discrete Lyapunov solution (THEORY.md).

    Args:
        hessian: ``H`` as a ``[D, D]`` symmetric positive-definite tensor.
        noise_cov: per-example noise covariance ``Σ``, ``[D, D]`` positive semi-definite.
        batch_size: B; the minibatch noise covariance is ``Σ/B``.
    """

    name = "quadratic"
    constant_noise = True

    def __init__(self, hessian: Tensor, noise_cov: Tensor, batch_size: int) -> None:
        self.hessian, self.noise_cov = hessian, noise_cov
        self.dim = int(hessian.shape[0])
        self.dtype, self.device = hessian.dtype, hessian.device
        self.batch_size = batch_size
        # Cholesky with jitter-free fallback for semi-definite Σ (eigh square root).
        evals, evecs = torch.linalg.eigh(noise_cov)
        self._noise_root = evecs * evals.clamp_min(0).sqrt()  # Σ = R Rᵀ
        self._noise_var = torch.diagonal(noise_cov).clone()

    @classmethod
    def from_lists(cls, hessian: list[float] | list[list[float]],
                   noise_cov: list[float] | list[list[float]], batch_size: int,
                   dtype: torch.dtype, device: str | torch.device) -> Quadratic:
        """Validate H and Σ and build the model.

        ``model.hessian`` must be positive definite and ``model.noise_cov`` positive
        semi-definite of the same shape; each is a diagonal list or a list of rows.
        """
        h = as_matrix(hessian, "model.hessian")
        s = as_matrix(noise_cov, "model.noise_cov")
        if h.shape != s.shape:
            raise DataError(f"model.noise_cov: expected shape {list(h.shape)} to match "
                            f"model.hessian, got {list(s.shape)}")
        if np.linalg.eigvalsh(h).min() <= 0:
            raise DataError(f"model.hessian: must be positive definite, eigenvalues "
                            f"{np.linalg.eigvalsh(h).round(6).tolist()}")
        if np.linalg.eigvalsh(s).min() < -1e-12:
            raise DataError("model.noise_cov: must be positive semi-definite")
        return cls(torch.as_tensor(h, dtype=dtype, device=device),
                   torch.as_tensor(s, dtype=dtype, device=device), batch_size)

    def draw(self, generator: torch.Generator, n_chains: int) -> NoiseBatch:
        """Minibatch noise ``ξ = R z / √B`` with ``z ~ N(0, I)``, shape ``[C, D]``."""
        z = torch.randn(n_chains, self.dim, generator=generator, dtype=self.dtype,
                        device=self.device)
        return NoiseBatch((z @ self._noise_root.T) / math.sqrt(self.batch_size))

    def minibatch_grad(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """``g_B = Hθ + ξ`` and loss ``½θᵀHθ + ξᵀθ``."""
        noise = _noise(batch)
        h_theta = theta @ self.hessian
        loss = 0.5 * (theta * h_theta).sum(-1) + (noise * theta).sum(-1)
        return loss, h_theta + noise

    def example_var(self, theta: Tensor, batch: Batch) -> Tensor:
        """The known per-example noise variance ``Σ_ii``, broadcast to ``[C, D]``."""
        return self._noise_var.expand_as(theta)

    def example_sq(self, theta: Tensor, batch: Batch) -> Tensor:
        """``E[(1/B) Σ_b g_{b,i}² | g_B] = g_{B,i}² + Σ_ii (B−1)/B``.

        Individual examples are synthetic, so the batch mean of their squares is replaced by its
        conditional expectation given the drawn minibatch gradient (a Rao–Blackwellisation).
        """
        g = theta @ self.hessian + _noise(batch)
        return g.square() + self._noise_var * (self.batch_size - 1) / self.batch_size

    def full_loss_grad(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """``L = ½θᵀHθ`` and ``∇L = Hθ``."""
        h_theta = theta @ self.hessian
        return 0.5 * (theta * h_theta).sum(-1), h_theta

    def exact_hessian(self) -> np.ndarray:
        """``H``."""
        return self.hessian.double().cpu().numpy()

    def linear_gradient(self, batch_size: int, sampling: str) -> LinearGradient | None:
        """``θ* = 0``, constant noise ``C̄ = Σ/B``, exact σ² = diag Σ (none for full batches)."""
        if sampling == "full":
            return None
        sigma = self.noise_cov.double().cpu().numpy()
        return LinearGradient(self.exact_hessian(), np.zeros(self.dim), sigma / batch_size, None,
                              np.diag(sigma).copy(), True)

    def describe(self) -> dict[str, Any]:
        """Dimension plus ``H`` and ``Σ`` as nested lists."""
        return {**super().describe(), "hessian": self.hessian.tolist(),
                "noise_cov": self.noise_cov.tolist()}
