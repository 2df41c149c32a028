"""Learning-rate schedules, applied to any rule as a step multiplier ``s(t)``.

``δ_t = s(t) · δ_t^{rule}`` (PyTorch LR-scheduler semantics: the rule's lr is scaled). Schedules
other than ``constant`` satisfy the classical convergence conditions ``η_t → 0`` and
``Σ_t η_t = ∞`` (Robbins & Monro 1951; claim 11 of docs/claims.md):

* ``inverse``: ``s(t) = 1/(1 + t/t₀)``;
* ``power``:   ``s(t) = (1 + t/t₀)^(−p)``, ``0 < p ≤ 1`` (``Σ η_t² < ∞`` too when ``p > ½``).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from .base import GradSample, UpdateRule, check_range


def schedule_factor(kind: str, t: int, t0: float, power: float) -> float:
    """``s(t)`` for step t (from 0)."""
    if kind == "constant":
        return 1.0
    if kind == "inverse":
        return 1.0 / (1.0 + t / t0)
    if kind == "power":
        return (1.0 + t / t0) ** (-power)
    raise ValueError(f"schedule.kind must be one of ['constant', 'inverse', 'power'], got {kind!r}")


def scheduled(rule: UpdateRule, kind: str, t0: float = 100.0, power: float = 1.0) -> UpdateRule:
    """Wrap ``rule`` so that its step at time t is multiplied by ``s(t)``.

    Args:
        rule: Any update rule.
        kind: ``constant``, ``inverse`` or ``power``.
        t0: Time scale t₀ > 0.
        power: p in (0, 1] for ``power``.
    """
    check_range("t0", t0, 0.0, low_open=True)
    check_range("power", power, 0.0, 1.0, low_open=True, high_open=False)
    schedule_factor(kind, 0, t0, power)  # validates kind

    def update(grad: GradSample, state: Any, params: Tensor, step: int) -> tuple[Tensor, Any]:
        delta, state = rule.update(grad, state, params, step)
        return schedule_factor(kind, step, t0, power) * delta, state

    def fluctuation(grad: GradSample, state: Any) -> Tensor:
        # The step is in the sample the engine hands over: no state hidden in the closure.
        return schedule_factor(kind, grad.step, t0, power) * rule.fluctuation(grad, state)

    # The first step is the largest (s(0) = 1), so the stability bound is the rule's own; a
    # decaying rate has no stationary law.
    return rule._replace(name=f"{rule.name}+{kind}", update=update, fluctuation=fluctuation,
                         rates="adaptive", stationary=kind == "constant")
