"""Exact stationary laws of diagonal-plus-low-rank quadratics in O(Dk²), without a D×D matrix.

When every coordinate has the same rate r (SGD, both momentum forms, preconditioning by a
constant σ²) and the minibatch noise is ``C̄ = αI + βH``, the joint recursion is a function of H
alone, so the stationary covariance is too. In H's eigenbasis each eigenvalue λ is a scalar
heavy ball with rate ``r' = (1−d)r`` and noise ``c(λ) = α + βλ`` (the momentum law S2
with ``r'``), whose variance has simple poles at 0 and ``p = 2(1+μ)/r'``:

    x(λ) = κ c(λ) / (λ (p − λ)),   κ = (1+μ)/(1−μ),
         = κ [ (α/p)·λ⁻¹ + ((α + βp)/p)·(p − λ)⁻¹ ].

Hence ``Σ_θ = κ[(α/p)H⁻¹ + ((α+βp)/p)(pI − H)⁻¹]`` (also along each spike's direction û:
``ûᵀΣ_θû`` from the same two resolvents; a random direction spreads a spike over all D
coordinates, so its effect on each ``Var θ_i`` is O(1/D) but on ``Var ûᵀθ`` of order one), and the
virial matrix
``Σ_θH = κ[(α/p)I + ((α+βp)/p)(p(pI − H)⁻¹ − I)]``: their diagonals need the diagonals of two
resolvents of H, which Woodbury gives in O(Dk²) (``sampler.low_rank``). The virial's off-diagonal
part is ``κ(α+βp)(pI − H)⁻¹`` off the diagonal, non-zero whenever H has spikes and there is
noise: a finite-η SGD on a non-diagonal quadratic is not Gibbs even with ``Σ ∝ H``.

Not covered (the caller says why): per-coordinate rates (adaptive rules), noise outside
``span{I, H}``, and τ (a rational function of H of degree ~thin; not computed).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...sampler.linear_forms import LinearGradient
from ...sampler.low_rank import DiagPlusLowRank
from ...sampler.rules import UpdateRule


class LowRankLaw(NamedTuple):
    """The stationary law's diagonals, off-diagonal virial norm and spike-direction covariance.

    The spikes act along their directions: ``directions_cov`` is where they show.
    """

    variance: np.ndarray  # [D] Var θ_i
    temperature: np.ndarray  # [D] (Σ_θH)_ii
    virial_offdiagonal: float  # Frobenius norm of Σ_θH off its diagonal
    directions: np.ndarray  # [D, m] unit vectors û_j of the spikes with s_j > 0
    directions_cov: np.ndarray  # [m, m] ûᵀΣ_θû


def why_not(form: LinearGradient, rule: UpdateRule) -> str | None:
    """Why the O(Dk²) law does not apply to this form and rule, or ``None`` if it does."""
    assert rule.linear_form is not None
    if not isinstance(form.hessian, DiagPlusLowRank) or not isinstance(form.const,
                                                                       DiagPlusLowRank):
        return "not a diagonal-plus-low-rank model"
    hb = rule.linear_form(np.zeros(form.hessian.dim), form.example_var, form.example_var_exact)
    if not hb.exact or not np.all(hb.rates == hb.rates[0]):
        return "per-coordinate rates"
    if hb.nesterov:
        return "Nesterov momentum"
    if form.const.affine_in(form.hessian) is None:
        return "noise not of the form αI + βH"
    return None


def low_rank_law(form: LinearGradient, rule: UpdateRule) -> LowRankLaw | None:
    """The stationary law (``why_not`` must be ``None``), or ``None`` if the rate is unstable."""
    assert rule.linear_form is not None
    h, c = form.hessian, form.const
    assert isinstance(h, DiagPlusLowRank) and isinstance(c, DiagPlusLowRank)
    coeffs = c.affine_in(h)
    hb = rule.linear_form(np.zeros(h.dim), form.example_var, form.example_var_exact)
    assert coeffs is not None and hb.exact and np.all(hb.rates == hb.rates[0]), "see why_not"
    alpha, beta = coeffs
    rate = (1 - hb.dampening) * float(hb.rates[0])
    pole = 2 * (1 + hb.mu) / rate
    if pole <= h.max_eigenvalue():
        return None
    kappa = (1 + hb.mu) / (1 - hb.mu)
    upper = -h.resolvent_diagonal(pole)  # diag((pI − H)⁻¹) > 0
    weight = (alpha + beta * pole) / pole
    variance = kappa * (alpha / pole * h.resolvent_diagonal(0.0) + weight * upper)
    temperature = kappa * (alpha / pole + weight * (pole * upper - 1))
    off = kappa * weight * pole * h.resolvent_offdiagonal_norm(pole)
    u = h.spike_directions()
    along = kappa * (alpha / pole * h.resolvent_form(0.0, u) - weight * h.resolvent_form(pole, u))
    return LowRankLaw(variance, temperature, off, u, along)
