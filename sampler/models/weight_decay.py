"""Coupled weight decay (``torch.optim``'s ``weight_decay``): the gradient ``g + λθ``.

``torch.optim.SGD``, ``Adam`` and ``RMSprop`` add ``λθ`` to the gradient before the update;
that is SGD on ``L(θ) + (λ/2)‖θ‖²``, so it belongs with the loss, not the rule: the engine,
the temperatures (virial and fluctuation, both measured on the decayed loss) and exact theory
all see the same gradient. ``WeightDecayed`` wraps any model and changes only what depends on
the gradient; everything else is the wrapped model's. (Decoupled decay, AdamW, shrinks θ
outside the gradient and is a rule of its own, ``rules.adamw``.)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from torch import Tensor

from ..linear_forms import LinearGradient
from .base import Batch, Model
from .batching import add_ridge


class WeightDecayed:
    """``L_λ(θ) = L(θ) + (λ/2)‖θ‖²`` of a wrapped model (module docstring).

    Args:
        inner: The model.
        decay: λ > 0.
    """

    def __init__(self, inner: Model, decay: float) -> None:
        self.inner, self.decay = inner, decay

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _loss(self, loss: Tensor | None, theta: Tensor) -> Tensor | None:
        return None if loss is None else loss + 0.5 * self.decay * (theta * theta).sum(-1)

    def minibatch_grad(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """``ℓ_B + (λ/2)‖θ‖²`` and ``g_B + λθ``."""
        loss, g = self.inner.minibatch_grad(theta, batch)
        return loss + 0.5 * self.decay * (theta * theta).sum(-1), g.add(theta, alpha=self.decay)

    def minibatch_gradient(self, theta: Tensor, batch: Batch) -> Tensor:
        """``g_B + λθ``."""
        return self.inner.minibatch_gradient(theta, batch).add(theta, alpha=self.decay)

    def step_grad(self, theta: Tensor, buffers: dict[str, Tensor], batch: Batch,
                  with_loss: bool = True) -> tuple[Tensor | None, Tensor, dict[str, Tensor]]:
        """The wrapped step with ``λθ`` added to the gradient."""
        loss, g, buffers = self.inner.step_grad(theta, buffers, batch, with_loss)
        return self._loss(loss, theta), g.add(theta, alpha=self.decay), buffers

    def step_grad_parts(self, theta: Tensor, buffers: dict[str, Tensor], batch: Batch,
                        with_loss: bool = True
                        ) -> tuple[Tensor | None, list[Tensor], dict[str, Tensor]]:
        """The wrapped pieces with ``λθ`` added to each, in place."""
        loss, parts, buffers = self.inner.step_grad_parts(theta, buffers, batch, with_loss)
        add_ridge(parts, theta, self.decay)
        return self._loss(loss, theta), parts, buffers

    def full_loss_grad(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """``L + (λ/2)‖θ‖²`` and ``∇L + λθ``."""
        loss, g = self.inner.full_loss_grad(theta)
        return loss + 0.5 * self.decay * (theta * theta).sum(-1), g.add(theta, alpha=self.decay)

    def example_grads(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Per-example losses and gradients, each with the decay term."""
        losses, grads = self.inner.example_grads(theta, batch)
        return (losses + 0.5 * self.decay * (theta * theta).sum(-1, keepdim=True),
                grads + self.decay * theta.unsqueeze(1))

    def diagonal_hessian(self) -> None:
        """None: the fused and native paths never see a decayed model."""
        return None

    def glm_parts(self) -> None:
        """None: the decay is not part of the GLM's per-example maps."""
        return None

    def example_affine(self) -> None:
        """None (the exact laws of small GLMs are built without the decay)."""
        return None

    def exact_hessian(self) -> np.ndarray | None:
        """``H + λI``."""
        h = self.inner.exact_hessian()
        return None if h is None else h + self.decay * np.eye(h.shape[0])

    def curvature_floor(self) -> float | None:
        """The wrapped floor plus λ."""
        m = self.inner.curvature_floor()
        return None if m is None else m + self.decay

    def linear_gradient(self, batch_size: int, sampling: str) -> LinearGradient | None:
        """``g = (H + λI)(θ − θ*_λ) + ξ`` with ``θ*_λ = (H + λI)⁻¹Hθ*`` and the same noise.

        ``None`` where the noise depends on where θ sits (least squares) or H is low rank.
        """
        form = self.inner.linear_gradient(batch_size, sampling)
        if form is None or form.noise is not None or form.low_rank:
            return None
        h = np.asarray(form.hessian, dtype=float)
        if h.ndim == 1:
            return dataclasses.replace(form, hessian=h + self.decay,
                                       theta_star=h * form.theta_star / (h + self.decay))
        hd = h + self.decay * np.eye(h.shape[0])
        return dataclasses.replace(form, hessian=hd,
                                   theta_star=np.linalg.solve(hd, h @ form.theta_star))

    def describe(self) -> dict[str, Any]:
        """The wrapped description and the decay."""
        return {**self.inner.describe(), "weight_decay": self.decay}


def with_weight_decay(model: Model, decay: float) -> Model:
    """``model`` with coupled weight decay ``decay`` (itself when it is 0)."""
    return model if not decay else WeightDecayed(model, decay)  # type: ignore[return-value]
