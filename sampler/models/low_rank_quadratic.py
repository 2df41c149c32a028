"""Quadratic with a diagonal-plus-low-rank Hessian and noise: a bulk and a few outliers.

``H = diag(d) + U·diag(s)·Uᵀ`` and ``Σ = diag(a) + V·diag(c)·Vᵀ`` (``sampler.low_rank``) are kept
as their factors, so a step costs O(Dk) per chain and nothing of size D×D exists, at any D.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..linear_forms import LinearGradient
from ..low_rank import DiagPlusLowRank
from .base import Model, NoiseBatch
from .data import DataError
from .quadratic import Quadratic


def _validate(m: DiagPlusLowRank, field: str, strict: bool) -> None:
    if m.factors.ndim != 2 or m.factors.shape[1] != m.rank:
        raise DataError(f"{field}.directions: expected {m.rank} rows (one per spike) of "
                        f"length {m.dim}, got shape {list(m.factors.T.shape)}")
    low = float(m.diag.min())
    if low < 0 or (strict and low == 0):
        raise DataError(f"{field}.diagonal: must be {'positive' if strict else 'non-negative'}"
                        f", smallest value {low:.6g}")
    if m.rank and float(m.weights.min()) < 0:
        raise DataError(f"{field}.spikes: must be non-negative, got {m.weights.tolist()}")


class LowRankQuadratic(Quadratic):
    """``L(θ) = ½θᵀHθ``, ``∇ℓ_b = Hθ + ξ_b``, ``ξ_b ~ N(0, Σ)``, H and Σ diagonal plus low rank.

    The noise is drawn as ``ξ = (√a ⊙ z + V(√c ⊙ z'))/√B`` with ``z ~ N(0, I_D)``,
    ``z' ~ N(0, I_m)`` (one ``randn`` of ``D + m`` columns per chain), whose covariance is exactly
    ``Σ/B``. With ``d > 0`` and ``s ≥ 0`` H is positive definite.

    Args:
        hessian: H's factors (float64).
        noise_cov: Σ's factors (float64).
        batch_size: B.
        dtype: Dtype of the chains.
        device: Device of the chains.
    """

    def __init__(self, hessian: DiagPlusLowRank, noise_cov: DiagPlusLowRank, batch_size: int,
                 dtype: torch.dtype, device: str | torch.device) -> None:
        _validate(hessian, "model.hessian", strict=True)
        _validate(noise_cov, "model.noise_cov", strict=False)
        if noise_cov.dim != hessian.dim:
            raise DataError(f"model.noise_cov: expected {hessian.dim} coordinates to match "
                            f"model.hessian, got {noise_cov.dim}")
        self.factored = (hessian, noise_cov)
        self.diagonal = False
        self.dim, self.dtype, self.device = hessian.dim, dtype, torch.device(device)
        self.batch_size = batch_size

        def put(a: np.ndarray) -> Tensor:
            return torch.as_tensor(a, dtype=dtype, device=device)

        self._h = (put(hessian.diag), put(hessian.factors), put(hessian.weights))
        self._root = (put(np.sqrt(noise_cov.diag)), put(noise_cov.factors),
                      put(np.sqrt(noise_cov.weights)))
        self._noise_var = put(noise_cov.diagonal())

    def _h_theta(self, theta: Tensor) -> Tensor:
        """``Hθ = d⊙θ + ((θU)⊙s)Uᵀ`` for ``θ [C, D]``."""
        d, u, s = self._h
        return torch.addmm(theta * d, (theta @ u) * s, u.T)

    def draw(self, generator: torch.Generator, n_chains: int) -> NoiseBatch:
        """Minibatch noise ``[C, D]`` of covariance ``Σ/B``."""
        root_a, v, root_c = self._root
        z = torch.randn(n_chains, self.dim + v.shape[1], generator=generator, dtype=self.dtype,
                        device=self.device)
        noise = torch.addmm(z[:, :self.dim] * root_a, z[:, self.dim:] * root_c, v.T)
        return NoiseBatch(noise / math.sqrt(self.batch_size))

    def draw_steps(self, generator: torch.Generator, n_steps: int, n_chains: int) -> Tensor:
        """Not available: only diagonal models have the fused kernel."""
        raise NotImplementedError("draw_steps: diagonal quadratics only")

    def diagonal_hessian(self) -> Tensor | None:
        """``None``: H is not diagonal (the general step is used)."""
        return None

    def exact_hessian(self) -> np.ndarray | None:
        """``None``: H is kept factored (``linear_gradient`` gives it)."""
        return None

    def linear_gradient(self, batch_size: int, sampling: str) -> LinearGradient | None:
        """``θ* = 0``, ``C̄ = Σ/B``, both factored; none for full batches."""
        if sampling == "full":
            return None
        hessian, noise = self.factored
        return LinearGradient(hessian, np.zeros(self.dim), noise.scaled(1.0 / batch_size), None,
                              noise.diagonal(), True)

    def arrays(self) -> dict[str, np.ndarray]:
        """The factors of H and Σ, float64 (``hessian_diag``, ``hessian_factors``, …)."""
        out: dict[str, np.ndarray] = {}
        for name, m in zip(("hessian", "noise_cov"), self.factored, strict=True):
            out |= {f"{name}_diag": m.diag, f"{name}_factors": m.factors,
                    f"{name}_weights": m.weights}
        return out

    def describe(self) -> dict[str, Any]:
        """Dimension, structure and ranks (the factors are ``arrays``)."""
        hessian, noise = self.factored
        return {**Model.describe(self), "structure": "diagonal_plus_low_rank",
                "hessian_rank": hessian.rank, "noise_rank": noise.rank,
                "arrays": list(self.arrays())}
