"""Detecting settings that are certainly unstable before any chain runs.

Every rule with an exact heavy-ball form (``rules.HeavyBall``: SGD, both momentum forms,
preconditioning by a known σ²) on a model with an exact Hessian obeys one theorem: with
``c = Λb`` the deterministic recursion is ``c' = μc + (1−d)ΛHδ, δ' = δ − c'``, the scalar heavy
ball in the eigenbasis of ``ΛH`` (real eigenvalues: it is similar to ``Λ^½HΛ^½``), which is stable
iff ``(1−d)·λ_max(Λ^½HΛ^½) < 2(1+μ)``. Rates are proportional to ``lr``, so this is a bound on
``lr`` (SGD: ``η·h_max < 2``; N_g momentum: ``η·h_max < 2(2 − 1/N_g)``). The rule supplies its
form; the model its Hessian and σ²: no table of rules here.

For ``linear_regression`` (i.i.d., without-replacement or surrogate batches) a constant-rate rule
also needs a finite stationary second moment, a stricter bound (``sampler.linear_forms``; 1-D
Gaussian x at B = 1: ηh < 2/3).
"""

from __future__ import annotations

import numpy as np

from .linear_forms import heavy_ball_matrices, second_moment_radius
from .low_rank import DiagPlusLowRank
from .models import Model
from .rules import UpdateRule

SECOND_MOMENT_MAX_DIM = 64  # the second-moment check costs O(D⁶) per power step beyond this


class UnstableError(ValueError):
    """A rate for which the chain certainly diverges."""


def check_stability(model: Model, rule: UpdateRule) -> None:
    """Raise ``UnstableError`` naming ``rule.lr`` when the run would diverge deterministically.

    O(D) for a diagonal model (``λ_max = max_i rate_i·h_i``), Lanczos with O(Dk) products for a
    diagonal-plus-low-rank one, an eigenvalue problem otherwise.
    """
    form = model.linear_gradient(1, "iid")
    if form is None or rule.linear_form is None or rule.lr is None:
        return
    hb = rule.linear_form(np.zeros(model.dim), form.example_var, form.example_var_exact)
    if not hb.exact:
        return
    if hb.rates.ndim == 2:  # a full rate matrix (rule "matrix"): eigenvalues of ΛH
        hessian = form.dense().hessian
        assert isinstance(hessian, np.ndarray)
        if hb.rates.shape != hessian.shape:
            return  # the rule's own init names the mismatch
        lam = float(np.linalg.eigvals(hb.rates @ hessian).real.max())
        h_max = float(np.linalg.eigvalsh(hessian).max())
    elif isinstance(form.hessian, DiagPlusLowRank):
        h_max = form.hessian.max_eigenvalue()
        equal = bool(np.all(hb.rates == hb.rates[0]))  # one rate: λ_max(ΛH) = rate·λ_max(H)
        lam = float(hb.rates[0]) * h_max if equal else form.hessian.max_eigenvalue(hb.rates)
    elif form.diagonal:
        lam, h_max = float((hb.rates * form.hessian).max()), float(form.hessian.max())
    else:
        root = np.sqrt(hb.rates)
        lam = float(np.linalg.eigvalsh(root[:, None] * form.hessian * root[None, :]).max())
        h_max = float(np.linalg.eigvalsh(form.hessian).max())
    bound = _lr_bound(hb.mu, hb.dampening, lam / rule.lr, hb.nesterov)
    if rule.lr >= bound:
        raise UnstableError(
            f"rule.lr: {rule.lr} is unstable for this model ({rule.name} needs "
            f"(1−d)·λ_max(Λ^½HΛ^½) < 2(1+μ) with rates Λ ∝ lr, μ = {hb.mu:.6g}, "
            f"d = {hb.dampening:.6g}; h_max = {h_max:.6g}); allowed: 0 < lr < {bound:.6g}, "
            f"got {rule.lr}")


def check_curvature_floor(model: Model, rule: UpdateRule) -> None:
    """Raise ``UnstableError`` naming ``rule.lr`` when the model's curvature floor alone diverges.

    A loss whose gradient is ``m·θ + b(θ)`` with ``‖b‖`` bounded (logistic regression with a
    ridge: ``m = l2``) grows like the heavy ball on ``m·I`` once θ is large, so
    ``(1−d)·m·max_i rate_i ≥ 2(1+μ)`` diverges from every start. A necessary bound only: rates
    below it may still be unstable at the optimum (an edge-of-stability run), which is allowed.
    """
    floor = model.curvature_floor()
    if floor is None or rule.linear_form is None or rule.lr is None or rule.rates != "constant":
        return
    zeros = np.zeros(model.dim)
    hb = rule.linear_form(zeros, zeros, False)
    if not hb.exact:
        return
    bound = _lr_bound(hb.mu, hb.dampening, floor * float((hb.rates / rule.lr).max()),
                      hb.nesterov)
    if rule.lr >= bound:
        raise UnstableError(
            f"rule.lr: {rule.lr} diverges on this {model.name} from every start (its gradient is "
            f"{floor:.6g}·θ plus a bounded term, and {rule.name} needs (1−d)·{floor:.6g}·rate "
            f"< 2(1+μ)); allowed: 0 < lr < {bound:.6g}, got {rule.lr}")


def _lr_bound(mu: float, dampening: float, lam_per_lr: float, nesterov: bool = False) -> float:
    """The largest stable ``lr``, ``2(1+μ)/((1−d)·λ/lr)`` (rates ∝ lr, so ``λ/lr`` is fixed).

    Nesterov (d = 0): each mode's characteristic polynomial is ``z² − (1+μ)(1−a)z + μ(1−a)``
    with ``a = ηλ``, whose root crosses −1 at ``a = 2(1+μ)/(1+2μ)``.
    """
    return 2.0 * (1 + mu) / ((1 + 2 * mu if nesterov else 1 - dampening) * lam_per_lr)


def check_second_moment(model: Model, rule: UpdateRule, batch_size: int, sampling: str) -> None:
    """Raise ``UnstableError`` naming ``rule.lr`` when θ has no finite stationary variance.

    Only for constant-rate rules on models with state-dependent linear noise (least squares),
    D ≤ 64; the bound is found by bisection on ``ρ(𝓛(lr)) = 1``.
    """
    form = model.linear_gradient(batch_size, sampling)
    if (form is None or form.noise is None or rule.rates != "constant" or rule.lr is None
            or rule.linear_form is None or model.dim > SECOND_MOMENT_MAX_DIM):
        return
    lr = rule.lr
    hb = rule.linear_form(np.zeros(model.dim), form.example_var, form.example_var_exact)
    noise = form.noise
    hessian = form.dense().hessian
    assert isinstance(hessian, np.ndarray)

    def radius(rate: float) -> float:
        a, b = heavy_ball_matrices(hessian, hb.rates * (rate / lr), hb.mu, hb.dampening,
                                   hb.nesterov)
        if np.abs(np.linalg.eigvals(a)).max() >= 1:
            return float("inf")
        return second_moment_radius(a, b, noise)

    if radius(lr) < 1:
        return
    lo, hi = 0.0, lr
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if radius(mid) < 1 else (lo, mid)
    raise UnstableError(
        f"rule.lr: {lr} gives θ no finite stationary variance on this linear regression (its "
        f"minibatch noise grows with θ, so the variance diverges although the mean converges); "
        f"allowed: 0 < lr < {lo:.6g}, got {lr}")
