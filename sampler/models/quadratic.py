"""Quadratic model with exactly known Gaussian gradient noise, dense or diagonal.

A diagonal ``H`` and ``Σ`` (lists, or generated spectra for 10⁴–10⁵ coordinates) are kept as
vectors: a step costs O(D) per chain and no D×D matrix is ever formed. Up to
``NOISE_MAP_MAX_DIM`` coordinates the diagonal path reproduces the dense one bit for bit (the
dense noise map ``R = V·√Λ`` from ``eigh`` permutes coordinates, and is used as that
permutation), so archives written when every quadratic was dense resume identically.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..linear_forms import LinearGradient
from .base import Batch, Model, NoiseBatch
from .data import DataError

NOISE_MAP_MAX_DIM = 2048  # above: the diagonal noise map is the identity (no eigh)


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


def diagonal_noise_map(var: Tensor) -> tuple[Tensor, Tensor] | None:
    """``(π, s)`` with ``(z @ Rᵀ)_i = z_π(i)·s_i`` for the dense root ``R`` of ``diag(var)``.

    ``R = V·√Λ`` from ``eigh`` has one non-zero per row for a diagonal matrix; sums of exact
    zeros do not change a product, so ``z[:, π]·s`` equals the dense ``z @ Rᵀ`` bit for bit.
    ``None`` if ``eigh`` mixed coordinates (then the dense root must be used).
    """
    d = var.shape[0]
    if d > NOISE_MAP_MAX_DIM:
        return torch.arange(d, device=var.device), var.clamp_min(0).sqrt()
    evals, evecs = torch.linalg.eigh(torch.diag(var))
    root = evecs * evals.clamp_min(0).sqrt()
    if not bool(((root != 0).sum(dim=1) <= 1).all()):
        return None
    perm = root.abs().argmax(dim=1)
    return perm, root[torch.arange(d, device=var.device), perm]


class Quadratic(Model):
    """``L(θ) = ½ θᵀHθ`` with per-example gradients ``∇ℓ_b = Hθ + ξ_b``, ``ξ_b ~ N(0, Σ)``.

    A minibatch of size B therefore has gradient ``g_B = Hθ + ξ``, ``ξ ~ N(0, Σ/B)``, and loss
    ``L(θ) + ξᵀθ``. The noise is additive and exactly known, which makes the stationary law of
    every constant-rate linear rule an exact discrete Lyapunov solution (docs/theory.md, law L).

    Args:
        hessian: ``H``: ``[D, D]`` symmetric positive definite, or its diagonal ``[D]``.
        noise_cov: Per-example noise covariance ``Σ``: ``[D, D]`` PSD, or its diagonal ``[D]``.
        batch_size: B; the minibatch noise covariance is ``Σ/B``.
    """

    name = "quadratic"
    constant_noise = True

    def __init__(self, hessian: Tensor, noise_cov: Tensor, batch_size: int) -> None:
        self.diagonal = hessian.dim() == 1 and noise_cov.dim() == 1
        self.hessian, self.noise_cov = hessian, noise_cov
        self.dim = int(hessian.shape[0])
        self.dtype, self.device = hessian.dtype, hessian.device
        self.batch_size = batch_size
        self._map = diagonal_noise_map(noise_cov) if self.diagonal else None
        if self.diagonal:
            self._noise_var = noise_cov.clone()
        else:
            evals, evecs = torch.linalg.eigh(noise_cov)  # PSD square root, no jitter
            self._noise_root = evecs * evals.clamp_min(0).sqrt()  # Σ = R Rᵀ
            self._noise_var = torch.diagonal(noise_cov).clone()
        if self.diagonal and self._map is None:  # eigh mixed tied coordinates: dense root
            evals, evecs = torch.linalg.eigh(torch.diag(noise_cov))
            self._noise_root = evecs * evals.clamp_min(0).sqrt()

    @classmethod
    def from_values(cls, hessian: np.ndarray, noise_cov: np.ndarray, batch_size: int,
                    dtype: torch.dtype, device: str | torch.device) -> Quadratic:
        """Validate H and Σ and build the model.

        Each is a diagonal ``[D]`` or a matrix ``[D, D]``; both diagonal keeps them as vectors.
        ``model.hessian`` must be positive definite, ``model.noise_cov`` positive semi-definite
        of the same size.
        """
        if hessian.ndim == 1 and noise_cov.ndim == 1:
            if hessian.shape != noise_cov.shape:
                raise DataError(f"model.noise_cov: expected shape {list(hessian.shape)} to "
                                f"match model.hessian, got {list(noise_cov.shape)}")
            if hessian.min() <= 0:
                raise DataError(f"model.hessian: must be positive definite, smallest value "
                                f"{hessian.min():.6g}")
            if noise_cov.min() < 0:
                raise DataError("model.noise_cov: must be positive semi-definite, smallest "
                                f"value {noise_cov.min():.6g}")
            h, s = hessian, noise_cov
        else:
            h, s = _dense(hessian, noise_cov)
        return cls(torch.as_tensor(h, dtype=dtype, device=device),
                   torch.as_tensor(s, dtype=dtype, device=device), batch_size)

    def _h_theta(self, theta: Tensor) -> Tensor:
        return theta * self.hessian if self.diagonal else theta @ self.hessian

    def draw(self, generator: torch.Generator, n_chains: int) -> NoiseBatch:
        """Minibatch noise ``ξ = R z / √B`` with ``z ~ N(0, I)``, shape ``[C, D]``."""
        z = torch.randn(n_chains, self.dim, generator=generator, dtype=self.dtype,
                        device=self.device)
        if self._map is not None:
            perm, scale = self._map
            return NoiseBatch((z[:, perm] * scale) / math.sqrt(self.batch_size))
        return NoiseBatch((z @ self._noise_root.T) / math.sqrt(self.batch_size))

    def draw_steps(self, generator: torch.Generator, n_steps: int, n_chains: int) -> Tensor:
        """Noise of ``n_steps`` steps, ``[C, S, D]``, from one ``randn`` (diagonal models)."""
        z = torch.randn(n_chains, n_steps, self.dim, generator=generator, dtype=self.dtype,
                        device=self.device)
        if self._map is None:
            return (z @ self._noise_root.T) / math.sqrt(self.batch_size)
        perm, scale = self._map
        if not bool((perm == torch.arange(self.dim, device=perm.device)).all()):
            z = z[..., perm]
        return z.mul_(scale / math.sqrt(self.batch_size))

    def diagonal_hessian(self) -> Tensor | None:
        """``h`` when the model is diagonal (noise additive and state-independent)."""
        return self.hessian if self.diagonal else None

    def diagonal_noise_scale(self) -> Tensor | None:
        """``s [D]``, ``ξ_i = s_i z_i`` with independent ``z_i ~ N(0, 1)``: ``s = √(Σ_ii / B)``."""
        if not self.diagonal:
            return None
        return self._noise_var.clamp_min(0).sqrt() / math.sqrt(self.batch_size)

    def minibatch_grad(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """``g_B = Hθ + ξ`` and loss ``½θᵀHθ + ξᵀθ``."""
        noise = _noise(batch)
        h_theta = self._h_theta(theta)
        loss = 0.5 * (theta * h_theta).sum(-1) + (noise * theta).sum(-1)
        return loss, h_theta + noise

    def minibatch_gradient(self, theta: Tensor, batch: Batch) -> Tensor:
        """``g_B = Hθ + ξ`` without the loss."""
        return self._h_theta(theta) + _noise(batch)

    def example_var(self, theta: Tensor, batch: Batch) -> Tensor:
        """The known per-example noise variance ``Σ_ii``, broadcast to ``[C, D]``."""
        return self._noise_var.expand_as(theta)

    def example_sq(self, theta: Tensor, batch: Batch) -> Tensor:
        """``E[(1/B) Σ_b g_{b,i}² | g_B] = g_{B,i}² + Σ_ii (B−1)/B``.

        Individual examples are synthetic, so the batch mean of their squares is replaced by its
        conditional expectation given the drawn minibatch gradient (a Rao–Blackwellisation).
        """
        g = self._h_theta(theta) + _noise(batch)
        return g.square() + self._noise_var * (self.batch_size - 1) / self.batch_size

    def full_loss_grad(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """``L = ½θᵀHθ`` and ``∇L = Hθ``."""
        h_theta = self._h_theta(theta)
        return 0.5 * (theta * h_theta).sum(-1), h_theta

    def exact_hessian(self) -> np.ndarray | None:
        """``H`` as a matrix (dense models only; a diagonal one answers ``linear_gradient``)."""
        return None if self.diagonal else self.hessian.double().cpu().numpy()

    def linear_gradient(self, batch_size: int, sampling: str) -> LinearGradient | None:
        """``θ* = 0``, constant noise ``C̄ = Σ/B``, exact σ² = diag Σ (none for full batches).

        Diagonal models give ``H`` and ``C̄`` as vectors (``LinearGradient.diagonal``).
        """
        if sampling == "full":
            return None
        h = self.hessian.double().cpu().numpy()
        sigma = self.noise_cov.double().cpu().numpy()
        var = sigma.copy() if self.diagonal else np.diag(sigma).copy()
        return LinearGradient(h, np.zeros(self.dim), sigma / batch_size, None, var, True)

    def arrays(self) -> dict[str, np.ndarray]:
        """``H`` and ``Σ`` (``[D]`` when diagonal, else ``[D, D]``), float64."""
        return {"hessian": self.hessian.double().cpu().numpy(),
                "noise_cov": self.noise_cov.double().cpu().numpy()}

    def describe(self) -> dict[str, Any]:
        """Dimension and structure (H and Σ themselves are arrays: ``arrays``)."""
        return {**super().describe(), "structure": "diagonal" if self.diagonal else "dense",
                "arrays": ["hessian", "noise_cov"]}


def _dense(hessian: np.ndarray, noise_cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = as_matrix(hessian.tolist(), "model.hessian")
    s = as_matrix(noise_cov.tolist(), "model.noise_cov")
    if h.shape != s.shape:
        raise DataError(f"model.noise_cov: expected shape {list(h.shape)} to match "
                        f"model.hessian, got {list(s.shape)}")
    if np.linalg.eigvalsh(h).min() <= 0:
        raise DataError(f"model.hessian: must be positive definite, eigenvalues "
                        f"{np.linalg.eigvalsh(h).round(6).tolist()}")
    if np.linalg.eigvalsh(s).min() < -1e-12:
        raise DataError("model.noise_cov: must be positive semi-definite")
    return h, s
