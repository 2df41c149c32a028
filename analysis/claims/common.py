"""Shared pieces of the seed-claim experiments: measurements, theory, verdicts, tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...sampler.linear_forms import LinearGradient
from ..diagnostics.estimators import mean_and_se
from ..law.gibbs import GibbsResult
from ..record import RunAnalysis
from ..theory.linear import StationaryTheory, stationary_theory

Z_MAX = 4.0  # |z| above this is a significant difference
HOLDS, FIRST_ORDER, FAILS = "holds", "holds to first order in η", "fails"
UNDECIDED = "undecided"  # the job lacks the runs or the precision the claim needs


@dataclass
class ClaimResult:
    """A claim's prediction, measurement and verdict, ready to print or render."""

    name: str
    title: str
    seed: str
    prediction: str
    verdict: str
    explanation: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)  # machine-readable measurements

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


def fmt(value: float, se: float | None = None) -> str:
    """``v ± se`` with 4 significant digits."""
    if se is None or not np.isfinite(se):
        return f"{value:.4g}"
    return f"{value:.4g} ± {se:.2g}"


@dataclass
class Measured:
    """Per-coordinate measurements of one run."""

    temperature: np.ndarray
    temperature_se: np.ndarray
    variance: np.ndarray
    variance_se: np.ndarray
    fluctuation: np.ndarray
    fluctuation_se: np.ndarray


def measure(run: RunAnalysis) -> Measured:
    """Virial/fluctuation temperatures and variances with batch-means standard errors."""
    s, t = run.samples, run.temperatures
    var, var_se = mean_and_se(s.centred**2, s.batches)
    return Measured(t.virial, t.virial_se, var, var_se, t.fluctuation, t.fluctuation_se)


def shape_verdict(res: GibbsResult) -> tuple[str, float]:
    """The Gibbs test's shape component alone: is the law's shape that of ``exp(−L/T̂)``?

    Returns:
        ``("Gibbs shape" | "not Gibbs shape" | "undecided", p)`` at the test's α.
    """
    shape = next(c for c in res.components if c.name == "shape")
    if shape.status != "ok":
        return "undecided", float("nan")
    return ("not Gibbs shape" if shape.p_value < res.alpha else "Gibbs shape"), shape.p_value


def linear_form(run: RunAnalysis) -> LinearGradient:
    """The model's linear gradient at the run's batch size (i.i.d. noise covariance ``C̄``).

    Raises:
        ValueError: The model has none (its gradient is not linear in θ).
    """
    form = run.model.linear_gradient(run.spec.run.batch_size, "iid")
    if form is None:
        raise ValueError(f"model.kind: this claim needs a linear-gradient model (quadratic, "
                         f"mean or linear_regression), got {run.spec.model.kind!r}")
    return form


def data(run: RunAnalysis) -> tuple[np.ndarray, np.ndarray]:
    """The run's dataset ``(X, y)`` (float64).

    Raises:
        ValueError: The model has no dataset (synthetic noise).
    """
    xy = run.model.dataset()
    if xy is None:
        raise ValueError(f"model.kind: this claim needs a dataset model, got "
                         f"{run.spec.model.kind!r}")
    return xy


def theory(run: RunAnalysis, lr_factor: float = 1.0) -> StationaryTheory | None:
    """Exact theory of the run, optionally at a scaled learning rate."""
    if lr_factor == 1.0:
        return run.theory
    rule = run.spec.rule.with_lr_factor(lr_factor).build(run.spec.run.batch_size)
    return stationary_theory(run.model, rule, run.spec.run)


def first_order_temperature(run: RunAnalysis, eps: float = 1e-4) -> np.ndarray | None:
    """The O(η) term of the exact temperature, by Richardson extrapolation of ``T(εη)/ε``.

    ``2T(ε)/ε − T(2ε)/(2ε)`` cancels the O(ε) remainder, leaving O(ε²).
    """
    one, two = theory(run, eps), theory(run, 2 * eps)
    if one is None or two is None:
        return None
    return 2 * one.temperature / eps - two.temperature / (2 * eps)


def z_scores(value: np.ndarray, se: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``(value − reference)/se`` elementwise."""
    return (np.asarray(value) - np.asarray(reference)) / np.asarray(se)


def first_order_verdict(z_first: np.ndarray, z_exact: np.ndarray | None) -> str:
    """Verdict from z-scores against the first-order and the exact predictions.

    Holds when every measurement matches the first-order prediction; holds to first order when
    some do not but all match the exact finite-η law; fails otherwise.
    """
    if np.all(np.abs(z_first) < Z_MAX):
        return HOLDS
    if z_exact is not None and np.all(np.abs(z_exact) < Z_MAX):
        return FIRST_ORDER
    return FAILS
