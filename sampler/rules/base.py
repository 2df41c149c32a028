"""Update rules as pure ``(init, update)`` pairs over batched state (after optax).

A rule is built by a factory that validates its hyperparameters and returns an ``UpdateRule``:

* ``init(params) -> state``: a NamedTuple of tensors, each with a leading chain dimension;
* ``update(grad, state, params, step) -> (delta, state)``: the parameter increment, ``θ ← θ + δ``;
* ``fluctuation(grad, state) -> [C, D]``: the per-step term whose stationary mean is the
  fluctuation-side temperature of docs/theory.md identity O3, evaluated on the state *after*
  the update. For a rule with diagonal rates ``η_i`` and search direction ``u`` (``δ = −η ⊙ u``) it is
  ``(η_i/2)·κ·u_i²`` with ``κ = 1`` for plain directions and ``κ = (1+μ)/(1−d)`` for a PyTorch
  momentum buffer (Yaida 2019, App. A).

``rates`` says when that fluctuation term is an exact identity: ``"constant"`` (fixed rates: SGD,
both momentum forms), ``"noise"`` (rates fixed exactly when the per-example gradient variance is:
preconditioning by a known σ²) or ``"adaptive"`` (rates that depend on the state or on the step's
own minibatch: then ``(η_i/2)E[u_i²]`` is only an approximation, and the exact stationarity check
is the rate-weighted identity recorded by the engine).

A rule also owns the math that exact theory and the stability check need. ``linear_form`` maps
stationary per-coordinate moments (``E[g_i²]`` of the minibatch gradient and the per-example
variance ``σ_i²``) to the rule's heavy-ball form ``HeavyBall(rates, μ, d, exact)``: every
constant-rate rule is ``b' = μb + (1−d)g, θ' = θ − Λb'`` with ``Λ = diag(rates)`` (SGD:
μ = d = 0), and adaptive rules get the same form with their rates frozen at the stationary
moments (``exact = False``). ``stationary`` is false for a rule whose rates decay (a schedule):
it has a stability bound (its first step is its largest) but no stationary law. ``lr`` is the
base rate the config set, for error messages (``None`` for TZ, which has none).

Rules never touch a random generator: all randomness belongs to the engine (a rule that injects
noise, SGLD, says ``needs_noise`` and gets standard normal draws in ``GradSample.noise``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import numpy as np
from torch import Tensor


class GradSample(NamedTuple):
    """What the engine hands a rule at each step."""

    minibatch: Tensor  # [C, D] the minibatch gradient g_B
    example_var: Tensor | None = None  # [C, D] per-example gradient variance (if rule needs it)
    example_sq: Tensor | None = None  # [C, D] batch mean of squared per-example gradients
    loss: Tensor | None = None  # [C] minibatch loss (only on recorded steps or if needs_loss)
    params: Tensor | None = None  # [C, D] θ_t, where the gradient was taken
    step: int = 0  # t, counted from 0 (the same for every chain)
    noise: Tensor | None = None  # [C, D] standard normal draws (rules with needs_noise: SGLD)


class InitFn(Protocol):
    """``init(params [C, D]) -> state``."""

    def __call__(self, params: Tensor) -> Any:
        """Initial rule state for parameters ``[C, D]``."""


class UpdateFn(Protocol):
    """``update(grad, state, params, step) -> (delta [C, D], state)``; step counts from 0."""

    def __call__(self, grad: GradSample, state: Any, params: Tensor,
                 step: int) -> tuple[Tensor, Any]:
        """Parameter increment and new state."""


class HeavyBall(NamedTuple):
    """``b' = μb + (1−d)g``, ``θ' = θ − diag(rates)·b'``: the linear form of a rule."""

    rates: np.ndarray  # [D] per-coordinate rates Λ, or a full rate matrix [D, D] (rule "matrix")
    mu: float
    dampening: float
    exact: bool  # False: adaptive rates frozen at stationary moments (an approximation)
    injected: float = 0.0  # variance per coordinate of noise the rule adds to θ each step
    nesterov: bool = False  # θ' = θ − Λ(g + μb') instead of θ − Λb' (d = 0)


LinearForm = Callable[[np.ndarray, np.ndarray, bool], HeavyBall]
"""``(E[g²] [D], σ² [D], σ² exact) -> HeavyBall``: a rule's heavy-ball form at given moments."""


def constant_form(lr: float, mu: float = 0.0, dampening: float = 0.0) -> LinearForm:
    """The linear form of a constant-rate rule (rates ``lr`` everywhere, exact)."""

    def form(second_moment: np.ndarray, example_var: np.ndarray, var_exact: bool) -> HeavyBall:
        return HeavyBall(np.full(len(second_moment), lr), mu, dampening, True)

    return form


class BufferMap(NamedTuple):
    """How a momentum rule's state holds the heavy-ball buffer ``b`` of its linear form.

    ``buffer(state) → b``, ``state(b) → state`` (elementwise, any leading shape), and whether the
    first step (global step 0) sets ``b = g`` undamped (PyTorch) instead of ``μ·0 + (1−d)g``.
    """

    buffer: Callable[[Any], Tensor]
    state: Callable[[Tensor], Any]
    first_undamped: bool


class UpdateRule(NamedTuple):
    """A named update rule and the math it owns (module docstring)."""

    name: str
    init: InitFn
    update: UpdateFn
    fluctuation: Callable[[GradSample, Any], Tensor]
    needs_example_var: bool = False
    needs_example_sq: bool = False
    needs_loss: bool = False  # the update uses the minibatch loss (else it is skipped when unrecorded)
    rates: str = "adaptive"  # "constant", "noise" or "adaptive" (module docstring)
    lr: float | None = None  # the base rate of the config (None: the rule has none)
    linear_form: LinearForm | None = None  # None: no heavy-ball form
    stationary: bool = True  # False: decaying rates, no stationary law
    buffer_map: BufferMap | None = None  # heavy-ball rules: their state as the buffer b
    needs_noise: bool = False  # the engine draws N(0, I) per step into GradSample.noise
    weight_decay: float = 0.0  # coupled (torch.optim's): the model's gradient gets λθ added


class EmptyState(NamedTuple):
    """State of a stateless rule."""


def check_range(name: str, value: float, low: float, high: float | None = None,
                low_open: bool = False, high_open: bool = True) -> None:
    """Raise ``ValueError`` naming the hyperparameter, its allowed interval and the value given."""
    lo_ok = value > low if low_open else value >= low
    hi_ok = high is None or (value < high if high_open else value <= high)
    if not (lo_ok and hi_ok):
        left = "(" if low_open else "["
        right = "" if high is None else (")" if high_open else "]")
        hi = "inf)" if high is None else f"{high}{right}"
        raise ValueError(f"{name} must be in {left}{low}, {hi}, got {value}")
