"""Exact finite-η stationary laws of linear-gradient models (docs/theory.md law L).

Every constant-rate rule here is a heavy-ball recursion ``z' = Az + Bξ`` of ``z = (θ − θ*, b)``
(``sampler.linear_forms``; Adam's EMA form: μ = d = β₁), so the stationary covariance solves the
discrete Lyapunov equation ``Σ_z = AΣ_zAᵀ + B C̄ Bᵀ`` (``scipy.linalg.solve_discrete_lyapunov``);
for μ = 0 it reduces to ``Σ = (I−ΛH)Σ(I−ΛH)ᵀ + ΛC̄Λ``. ``C̄ = E[C(θ)]`` is the minibatch noise
covariance, from the model's ``LinearGradient``: ``Σ_noise/B`` for ``quadratic``; for
``linear_regression`` and ``mean`` it is state-dependent but closed in Σ
(``sampler.linear_forms.RegressionNoise``) and is solved by fixed-point iteration, which converges
iff the stationary second moment exists. Epoch reshuffling is cyclostationary: its exact law per
epoch phase comes from ``theory.epoch`` and the theory here is its average over the phases the
draws visit. RMSProp and Adam get the *approximate* law with their rates frozen at
the self-consistent stationary ``E[g_i²]`` (their ``linear_form`` says so).

Derived predictions: virial matrix ``V = ΣH`` (``V_ij = E[(θ_i − θ*_i)∂_jL]``), temperatures
``T_i = V_ii``, excess loss ``E[L] − L* = ½ tr(HΣ)``, and the integrated autocorrelation time of
each θ_i at the recorded thinning, ``τ_i = 1 + 2[A_t(I − A_t)⁻¹Σ_z]_ii / Σ_ii`` with
``A_t = A^thin``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.linalg

from ...sampler.linear_forms import LinearGradient, heavy_ball_matrices
from ...sampler.models import Model
from ...sampler.rules import UpdateRule
from .diagonal import diagonal_law
from .epoch import EpochLaw, epoch_law, visited_phases
from .low_rank import low_rank_law, why_not


class RunSettings(Protocol):
    """The run settings theory needs (``sampler.config.RunConfig`` has them)."""

    batch_size: int
    sampling: str
    thin: int
    burn_in: int


DENSE_MAX_DIM = 512  # dense Lyapunov solves above this take minutes: theory is skipped


@dataclass
class StationaryTheory:
    """Predicted stationary law of one run.

    ``cov`` and ``virial`` are matrices from the dense solver, or their diagonals ``[D]`` above
    ``DENSE_MAX_DIM`` for a diagonal model (``theory.diagonal``) or a diagonal-plus-low-rank one
    (``theory.low_rank``, which also gives the virial's off-diagonal norm): use ``variance``.
    """

    mean: np.ndarray  # [D] θ*
    cov: np.ndarray  # [D, D], or [D] when diagonal
    virial: np.ndarray  # [D, D] ΣH, or [D] when diagonal
    temperature: np.ndarray  # [D]
    iat: np.ndarray | None  # [D] at the run's thinning (None: not computed, low-rank models)
    excess_loss: float
    exact: bool
    note: str
    transition: np.ndarray | None = None  # [2D, 2D] A of the joint (δ, buffer) recursion
    state_cov: np.ndarray | None = None  # [2D, 2D] stationary Σ_z
    virial_offdiagonal: float = 0.0  # Frobenius norm off the diagonal when virial is [D]
    directions: np.ndarray | None = None  # [D, m] unit directions with a predicted variance
    directions_variance: np.ndarray | None = None  # [m] Var ûᵀθ along them
    epoch: EpochLaw | None = None  # epoch reshuffling: the law at every epoch phase

    @property
    def variance(self) -> np.ndarray:
        """``Var θ_i`` ``[D]``."""
        return self.cov if self.cov.ndim == 1 else np.diag(self.cov).copy()

    def lag_covariance(self, steps: int) -> np.ndarray | None:
        """``E[δ_{t+s} δ_tᵀ] = [A^s Σ_z]_δδ`` ``[D, D]`` at ``s`` steps; None without ``A``."""
        if self.transition is None or self.state_cov is None:
            return None
        d = len(self.mean)
        return (np.linalg.matrix_power(self.transition, steps) @ self.state_cov)[:d, :d]

    @property
    def gibbs(self) -> bool:
        """Whether the predicted law satisfies O12 (``ΣH = T·I``)."""
        t = self.temperature.mean()
        target = np.full_like(self.virial, t) if self.virial.ndim == 1 else (
            t * np.eye(len(self.temperature)))
        off = self.virial_offdiagonal <= 1e-6 * abs(t) * np.sqrt(len(self.temperature))
        return off and bool(np.allclose(self.virial, target, rtol=1e-6, atol=1e-9 * abs(t)))


def _fixed_point(form: LinearGradient, rule: UpdateRule, max_iter: int,
                 tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool] | None:
    """``(Σ, Σ_z, A, exact)`` at the fixed point of ``Σ ↦ [Lyap(A(Σ), B C̄(Σ) Bᵀ)]_δδ``."""
    assert rule.linear_form is not None
    h, d = form.hessian, form.hessian.shape[0]
    cov = np.zeros((d, d))
    for _ in range(max_iter):
        c_bar = form.noise_cov(cov)
        hb = rule.linear_form(np.diag(h @ cov @ h) + np.diag(c_bar), form.example_var,
                              form.example_var_exact)
        a, b = heavy_ball_matrices(h, hb.rates, hb.mu, hb.dampening, hb.nesterov)
        if np.abs(np.linalg.eigvals(a)).max() >= 1:
            return None
        q = b @ c_bar @ b.T
        q[:d, :d] += hb.injected * np.eye(d)  # noise the rule adds to θ (SGLD: 2ηT)
        sz = scipy.linalg.solve_discrete_lyapunov(a, q)
        new = sz[:d, :d]
        if not np.isfinite(new).all():
            return None
        done = np.abs(new - cov).max() <= tol * max(np.abs(new).max(), 1e-300)
        cov = new
        if done:
            return cov, sz, a, hb.exact
    return None


def stationary_theory(model: Model, rule: UpdateRule, run: RunSettings, max_iter: int = 500,
                      tol: float = 1e-13) -> StationaryTheory | None:
    """The exact (or, for adaptive rules, approximate) stationary law, or ``None`` if unknown.

    The model supplies its linear gradient (``Model.linear_gradient``), the rule its heavy-ball
    form (``UpdateRule.linear_form``); either may have none. ``None`` too when the fixed-point
    iteration for state-dependent noise does not converge to 1e-13 within ``max_iter`` steps
    (the stationary second moment may not exist: see ``sampler.linear_forms``): a number that
    did not converge is never returned.
    """
    if run.sampling == "epoch":
        return _epoch_theory(model, rule, run)
    form = model.linear_gradient(run.batch_size, run.sampling)
    if form is None or rule.linear_form is None or not rule.stationary:
        return None
    injected = rule.linear_form(np.ones(model.dim), np.ones(model.dim), True).injected
    if injected and model.dim > DENSE_MAX_DIM:
        return None  # injected noise (SGLD): the dense solver only
    if form.diagonal and form.noise is None and model.dim > DENSE_MAX_DIM:
        return _diagonal_theory(form, rule, run.thin, max_iter, tol)
    if form.low_rank and model.dim > DENSE_MAX_DIM:
        return _low_rank_theory(form, rule)
    if model.dim > DENSE_MAX_DIM:
        return None  # dense and too large: ``skipped_reason`` says so
    found = _fixed_point(form.dense(), rule, max_iter, tol)
    if found is None:
        return None
    cov, sz, a, exact = found
    d = cov.shape[0]
    a_t = np.linalg.matrix_power(a, run.thin)
    lag_sum = a_t @ np.linalg.solve(np.eye(2 * d) - a_t, sz)
    iat = 1 + 2 * np.diag(lag_sum)[:d] / np.diag(cov)
    h = form.dense().hessian
    virial = cov @ h
    return StationaryTheory(form.theta_star, cov, virial, np.diag(virial).copy(), iat,
                            0.5 * float(np.trace(h @ cov)), exact, _note(exact), a, sz)


def _epoch_theory(model: Model, rule: UpdateRule, run: RunSettings) -> StationaryTheory | None:
    """Epoch reshuffling: the exact law averaged over the phases the draws visit.

    The draws sit at phases ``(burn_in + j·thin) mod K``; their pooled mean and covariance are
    the average over those phases (all of them when thin is coprime to K). The virial about the
    pooled mean is ``Cov·H``.
    """
    law = epoch_law(model, rule, run.batch_size)
    if law is None:
        return None
    phases = visited_phases(law.steps, run.burn_in, run.thin)
    mean, cov = law.pooled(phases)
    h = law.hessian
    virial = cov @ h
    offset = mean - law.theta_star
    excess = 0.5 * float(np.trace(h @ cov) + offset @ h @ offset)
    return StationaryTheory(mean, cov, virial, np.diag(virial).copy(), None, excess, True,
                            f"exact, epoch reshuffling: average over the {len(phases)} of "
                            f"{law.steps} epoch phases the draws visit ({law.method})",
                            epoch=law)


def _note(exact: bool) -> str:
    return "exact" if exact else "approximate: adaptive rates frozen at stationary E[g²]"


def _diagonal_theory(form: LinearGradient, rule: UpdateRule, thin: int, max_iter: int,
                     tol: float) -> StationaryTheory | None:
    found = diagonal_law(form, rule, thin, max_iter, tol)
    if found is None:
        return None
    var, iat, exact = found
    t = var * form.hessian
    return StationaryTheory(form.theta_star, var, t, t.copy(), iat,
                            0.5 * float(t.sum()), exact, _note(exact))


def _low_rank_theory(form: LinearGradient, rule: UpdateRule) -> StationaryTheory | None:
    if why_not(form, rule) is not None:
        return None  # ``skipped_reason`` says why
    law = low_rank_law(form, rule)
    if law is None:
        return None
    return StationaryTheory(form.theta_star, law.variance, law.temperature, law.temperature,
                            None, 0.5 * float(law.temperature.sum()), True,
                            "exact (diagonal plus low rank, O(Dk²); τ not computed)",
                            virial_offdiagonal=law.virial_offdiagonal,
                            directions=law.directions,
                            directions_variance=np.diag(law.directions_cov).copy())


def skipped_reason(model: Model, rule: UpdateRule, run: RunSettings) -> str | None:
    """Why a model with a linear gradient gets no theory because of its size, else ``None``."""
    form = model.linear_gradient(run.batch_size, run.sampling)
    if form is None or model.dim <= DENSE_MAX_DIM or (form.diagonal and form.noise is None):
        return None
    if form.low_rank and rule.linear_form is not None:
        reason = why_not(form, rule)
        if reason is None:
            return None
        return (f"theory skipped (diagonal plus low rank, D = {model.dim} > {DENSE_MAX_DIM}: "
                f"{reason}; O(Dk²) theory needs equal rates and noise αI + βH)")
    return f"theory skipped (dense D = {model.dim} > {DENSE_MAX_DIM})"


def sgd_1d(lr: float, h: float, sigma2: float) -> dict[str, float]:
    """1-D closed forms for SGD (docs/theory.md law S1): variance, temperature and τ.

    A check on the solver.
    """
    var = lr * sigma2 / (h * (2 - lr * h))
    return {"var": var, "temperature": h * var, "iat": (2 - lr * h) / (lr * h)}


def momentum_1d(lr: float, mu: float, h: float, sigma2: float) -> dict[str, float]:
    """1-D closed forms for PyTorch momentum (docs/theory.md law S2) (d = 0)."""
    var = lr * sigma2 * (1 + mu) / (h * (1 - mu) * (2 * (1 + mu) - lr * h))
    iat = (1 - mu) * (2 * (1 + mu) - lr * h) / (lr * h * (1 + mu))
    return {"var": var, "temperature": h * var, "iat": iat}
