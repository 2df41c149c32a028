"""SGD with a full (dense, symmetric positive definite) preconditioner: ``θ' = θ − ηΛg_B``.

The rate matrix of Mandt, Hoffman & Blei (2017)'s optimal preconditioned SGD. For a quadratic
with noise covariance C̄ and the target law ``N(θ*, T·H⁻¹)`` (a Bayesian posterior with
``T = 1/N`` in units of the mean loss), the discrete Lyapunov equation
``Σ = (I − ΛH)Σ(I − ΛH)ᵀ + ΛC̄Λ`` holds at ``Σ = T·H⁻¹`` exactly when

    Λ* = 2(H + C̄/T)⁻¹ = 2T(T·H + C̄)⁻¹

(``2TΛ = Λ(TH + C̄)Λ``): its stationary law *is* the posterior, at any finite step
(``analysis.claims.posterior.optimal_rate_matrix`` computes it, with C̄ evaluated at the
posterior's second moment for least squares).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .base import EmptyState, GradSample, HeavyBall, UpdateRule, check_range


def matrix(matrix: list[list[float]] | np.ndarray, lr: float = 1.0) -> UpdateRule:
    """Full preconditioning, ``θ_{t+1} = θ_t − η Λ g_B`` with a fixed SPD matrix Λ.

    Fluctuation term: ``½ g ⊙ (ηΛg)``, the diagonal of O3m's ``½ΛE[ggᵀ]Λ``-side only when Λ is
    diagonal: approximate otherwise (``rates = "adaptive"``: the exact stationarity check is the
    rate-weighted identity). Exact linear form: ``HeavyBall(ηΛ, 0, 0)``.

    Args:
        matrix: Λ, D × D, symmetric positive definite.
        lr: η > 0, a scalar multiplier of Λ.
    """
    check_range("lr", lr, 0.0, low_open=True)
    lam = np.asarray(matrix, dtype=float)
    if lam.ndim != 2 or lam.shape[0] != lam.shape[1] or lam.shape[0] == 0:
        raise ValueError(f"rule.matrix must be a square D × D list of rows, got shape "
                         f"{lam.shape}")
    if not np.allclose(lam, lam.T, rtol=1e-10, atol=1e-14 * np.abs(lam).max()):
        raise ValueError("rule.matrix must be symmetric, got an asymmetric matrix")
    if np.linalg.eigvalsh(lam).min() <= 0:
        raise ValueError(f"rule.matrix must be positive definite, got smallest eigenvalue "
                         f"{np.linalg.eigvalsh(lam).min():.3g}")
    d = lam.shape[0]
    rates = lr * lam
    cache: dict[tuple[torch.dtype, torch.device], Tensor] = {}

    def as_tensor(like: Tensor) -> Tensor:
        key = (like.dtype, like.device)
        if key not in cache:
            cache[key] = torch.as_tensor(rates, dtype=like.dtype, device=like.device)
        return cache[key]

    def init(params: Tensor) -> EmptyState:
        if params.shape[-1] != d:
            raise ValueError(f"rule.matrix is {d} × {d} but the model has D = "
                             f"{params.shape[-1]} coordinates")
        return EmptyState()

    def update(grad: GradSample, state: EmptyState, params: Tensor,
               step: int) -> tuple[Tensor, EmptyState]:
        return -(grad.minibatch @ as_tensor(grad.minibatch)), state  # Λ symmetric: gΛ = (Λg)ᵀ

    def fluctuation(grad: GradSample, state: EmptyState) -> Tensor:
        g = grad.minibatch
        return 0.5 * g * (g @ as_tensor(g))

    def linear_form(second_moment: np.ndarray, example_var: np.ndarray,
                    var_exact: bool) -> HeavyBall:
        return HeavyBall(rates, 0.0, 0.0, True)

    return UpdateRule("matrix", init, update, fluctuation, rates="adaptive", lr=lr,
                      linear_form=linear_form)
