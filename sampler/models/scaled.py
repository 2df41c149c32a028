"""A model whose loss is multiplied by a constant (loss units: nats, bits, a doubled loss)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..linear_forms import LinearGradient
from .base import Batch, IndexBatch, Model, NoiseBatch


class ScaledModel(Model):
    """``L_s(θ) = s · L(θ)`` for a wrapped model.

    Losses and gradients scale by s; per-example variances and second moments by s².

    Args:
        inner: The model to scale.
        scale: s > 0 (``1/ln 2`` turns nats into bits).
    """

    def __init__(self, inner: Model, scale: float) -> None:
        self.inner, self.scale = inner, scale
        self.name, self.dim, self.n_examples = inner.name, inner.dim, inner.n_examples
        self.dtype, self.device = inner.dtype, inner.device
        self.constant_noise = inner.constant_noise

    def init_params(self, generator: torch.Generator, n_chains: int, scale: float) -> Tensor:
        """The inner model's initialisation."""
        return self.inner.init_params(generator, n_chains, scale)

    def draw(self, generator: torch.Generator, n_chains: int) -> NoiseBatch:
        """The inner model's noise draw; scaling happens in the gradient."""
        return self.inner.draw(generator, n_chains)

    def all_examples(self, n_chains: int) -> IndexBatch:
        """The inner model's full batch."""
        return self.inner.all_examples(n_chains)

    def dataset(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The inner model's data."""
        return self.inner.dataset()

    def minibatch_grad(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """``s·ℓ_B`` and ``s·g_B``."""
        loss, g = self.inner.minibatch_grad(theta, batch)
        return self.scale * loss, self.scale * g

    def minibatch_gradient(self, theta: Tensor, batch: Batch) -> Tensor:
        """``s·g_B``."""
        return self.scale * self.inner.minibatch_gradient(theta, batch)

    def example_var(self, theta: Tensor, batch: Batch) -> Tensor:
        """``s²`` times the inner estimate."""
        return self.scale**2 * self.inner.example_var(theta, batch)

    def example_sq(self, theta: Tensor, batch: Batch) -> Tensor:
        """``s²`` times the inner batch mean of squared per-example gradients."""
        return self.scale**2 * self.inner.example_sq(theta, batch)

    def example_grads(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Scaled per-example losses and gradients."""
        losses, grads = self.inner.example_grads(theta, batch)
        return self.scale * losses, self.scale * grads

    def surrogate_noise(self, theta: Tensor, weights: Tensor, batch_size: int) -> Tensor:
        """Scaled Gaussian surrogate noise."""
        return self.scale * self.inner.surrogate_noise(theta, weights, batch_size)

    def full_loss_grad(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """``s·L`` and ``s·∇L``."""
        loss, g = self.inner.full_loss_grad(theta)
        return self.scale * loss, self.scale * g

    def full_grad_cheap(self) -> bool:
        """As the inner model."""
        return self.inner.full_grad_cheap()

    def exact_hessian(self) -> np.ndarray | None:
        """``s·H`` of the inner model."""
        inner = self.inner.exact_hessian()
        return None if inner is None else self.scale * inner

    def linear_gradient(self, batch_size: int, sampling: str) -> LinearGradient | None:
        """The inner form with ``H → sH`` and noise ``→ s²``."""
        inner = self.inner.linear_gradient(batch_size, sampling)
        return None if inner is None else inner.scaled(self.scale)

    def glm_parts(self) -> tuple[np.ndarray, np.ndarray, float, Any] | None:
        """The inner GLM with ``r → s·r`` and ``l2 → s·l2``."""
        inner = self.inner.glm_parts()
        if inner is None:
            return None
        x, y, l2, residual = inner
        return x, y, self.scale * l2, lambda z, t: self.scale * residual(z, t)

    def example_affine(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The inner ``(P_i, r_i)``, both times s."""
        inner = self.inner.example_affine()
        return None if inner is None else (self.scale * inner[0], self.scale * inner[1])

    def curvature_floor(self) -> float | None:
        """``s`` times the inner floor."""
        floor = self.inner.curvature_floor()
        return None if floor is None else self.scale * floor

    def variables(self) -> list[Any]:
        """The inner model's named variables (scaling changes no coordinate)."""
        return self.inner.variables()

    def arrays(self) -> dict[str, np.ndarray]:
        """The inner model's arrays (the scale is in ``describe``)."""
        return self.inner.arrays()

    def describe(self) -> dict[str, Any]:
        """The inner description plus the scale."""
        return {**self.inner.describe(), "loss_scale": self.scale}
