"""Rule tables: each ``build``s its ``UpdateRule`` through ``sampler.rules.<kind>``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from .. import rules
from ..rules import UpdateRule
from .base import LearningRate, PositiveFloat, _Strict, kinds


class ScheduleConfig(_Strict):
    """Step multiplier s(t): constant, 1/(1 + t/t0), or (1 + t/t0)^(−power)."""

    kind: Literal["constant", "inverse", "power"] = "constant"
    t0: PositiveFloat = Field(100.0, description="Time scale t0 of the decay (steps).")
    power: float = Field(1.0, gt=0, le=1, description="Exponent of the power schedule "
                         "(1 + t/t0)^(−power), in (0, 1] so that Σ η_t = ∞.")


class _Rule(_Strict):
    kind: str  # each rule narrows it to its Literal; the factory is ``sampler.rules.<kind>``
    schedule: ScheduleConfig = Field(ScheduleConfig(), description="Learning-rate schedule.")
    coupled_decay: ClassVar[bool] = True  # a weight_decay field adds λθ to the gradient

    def hyperparameters(self, batch_size: int) -> dict[str, Any]:
        """Keyword arguments of the rule's factory.

        Every field but ``kind``, ``schedule`` and a coupled ``weight_decay`` (which belongs
        to the loss: ``models.weight_decay``).
        """
        skip = {"kind", "schedule"} | ({"weight_decay"} if self.coupled_decay else set())
        return self.model_dump(exclude=skip)

    def param(self, name: str) -> float:
        """A numeric hyperparameter by name; a clear error if this rule has none of that name."""
        value = getattr(self, name, None)
        if not isinstance(value, int | float) or isinstance(value, bool):
            kind = getattr(self, "kind", type(self).__name__)
            raise ValueError(f"rule.{name}: rule {kind!r} has no numeric {name!r}")
        return float(value)

    def with_lr_factor(self, factor: float) -> _Rule:
        """A copy with ``lr`` multiplied by ``factor`` (rules without an ``lr`` refuse)."""
        lr = getattr(self, "lr", None)
        if lr is None:
            raise ValueError(f"rule.kind: {type(self).__name__} has no lr to scale")
        return self.model_copy(update={"lr": lr * factor})

    def build(self, batch_size: int = 1) -> UpdateRule:
        """The rule (wrapped in its schedule unless constant)."""
        factory: Callable[..., UpdateRule] = getattr(rules, self.kind)
        rule = factory(**self.hyperparameters(batch_size))
        decay = getattr(self, "weight_decay", 0.0) if self.coupled_decay else 0.0
        if decay:
            rule = rule._replace(weight_decay=float(decay))
        if self.schedule.kind != "constant":
            rule = rules.scheduled(rule, self.schedule.kind, self.schedule.t0,
                                   self.schedule.power)
        return rule


class SGDConfig(_Rule):
    """Plain SGD ``θ ← θ − η g``."""

    kind: Literal["sgd"] = "sgd"
    lr: LearningRate
    weight_decay: float = Field(0.0, ge=0, description="Coupled weight decay λ, as "
                                "torch.optim's: the gradient is g + λθ (SGD on L + (λ/2)‖θ‖²).")


class SGLDConfig(_Rule):
    """Stochastic gradient Langevin dynamics ``θ ← θ − ηg + √(2ηT)ξ`` (Welling & Teh 2011)."""

    kind: Literal["sgld"] = "sgld"
    lr: LearningRate
    temperature: float = Field(..., ge=0, description="T of the target exp(−L/T) (1/N: the "
                               "Bayesian posterior of the mean loss).")


class MomentumConfig(_Rule):
    """PyTorch heavy ball ``b ← μb + (1−d)g; θ ← θ − ηb``."""

    kind: Literal["momentum"] = "momentum"
    lr: LearningRate
    mu: float = Field(0.9, ge=0, lt=1, description="Momentum μ (torch.optim.SGD's form: "
                      "v ← μv + (1 − dampening)g, θ ← θ − ηv).")
    dampening: float = Field(0.0, ge=0, lt=1, description="Dampening of the gradient "
                             "added to the velocity, as torch.optim.SGD's.")
    nesterov: bool = Field(False, description="Nesterov momentum, as torch.optim.SGD's "
                           "(needs mu > 0 and dampening = 0).")
    weight_decay: float = Field(0.0, ge=0, description="Coupled weight decay λ, as "
                                "torch.optim's: the gradient is g + λθ (SGD on L + (λ/2)‖θ‖²).")


class MomentumNgConfig(_Rule):
    """The seeds' ``v ← (1 − 1/N_g)v + ηg; θ ← θ − v``."""

    kind: Literal["momentum_ng"] = "momentum_ng"
    lr: LearningRate
    n_g: float = Field(10.0, ge=1, description="The seeds' gradient-averaging horizon N_g "
                       "(momentum μ = 1 − 1/N_g).")


class RMSPropConfig(_Rule):
    """PyTorch RMSprop ``s ← αs + (1−α)g²; θ ← θ − ηg/(√s + ε)``."""

    kind: Literal["rmsprop"] = "rmsprop"
    lr: LearningRate
    alpha: float = Field(0.99, ge=0, lt=1, description="Decay α of the running mean of "
                         "g² (torch.optim.RMSprop's alpha).")
    eps: float = Field(1e-8, ge=0, description="ε in η g/(√s + ε).")
    eps_inside_sqrt: bool = Field(False, description="Seeds' form η g/√(s + ε).")
    weight_decay: float = Field(0.0, ge=0, description="Coupled weight decay λ, as "
                                "torch.optim's: the gradient is g + λθ (SGD on L + (λ/2)‖θ‖²).")


class AdamConfig(_Rule):
    """PyTorch Adam with bias correction."""

    kind: Literal["adam"] = "adam"
    lr: LearningRate
    beta1: float = Field(0.9, ge=0, lt=1, description="Decay β₁ of the first-moment mean.")
    beta2: float = Field(0.999, ge=0, lt=1, description="Decay β₂ of the second-moment mean.")
    eps: float = Field(1e-8, ge=0, description="ε in η m̂/(√v̂ + ε).")
    weight_decay: float = Field(0.0, ge=0, description="Coupled weight decay λ, as "
                                "torch.optim's: the gradient is g + λθ (SGD on L + (λ/2)‖θ‖²).")


class AdamWConfig(AdamConfig):
    """PyTorch AdamW: decoupled weight decay ``θ ← θ(1 − ηλ)``, then the Adam step."""

    kind: Literal["adamw"] = "adamw"  # type: ignore[assignment]
    weight_decay: float = Field(0.01, ge=0, description="Decoupled weight decay λ, as "
                                "torch.optim.AdamW's: θ shrinks by ηλθ each step, outside the "
                                "gradient.")
    coupled_decay: ClassVar[bool] = False


class MatrixConfig(_Rule):
    """Full preconditioning ``θ ← θ − ηΛg`` with a fixed symmetric positive definite Λ."""

    kind: Literal["matrix"] = "matrix"
    matrix: list[list[float]] = Field(..., description="Λ, D rows of D numbers (SPD).")
    lr: PositiveFloat = Field(1.0, description="η, a scalar multiplier of Λ.")


class PreconditionedConfig(_Rule):
    """Diagonal preconditioning ``η_i = η'/σ_i^p`` from a running per-example variance estimate."""

    kind: Literal["preconditioned"] = "preconditioned"
    lr: LearningRate
    power: Literal[1, 2] = Field(2, description="Rate η/σ^power per coordinate: 1 for "
                                 "η/σ, 2 for η/σ², σ² the running mean of g².")
    decay: float = Field(0.99, ge=0, lt=1, description="Decay of the running mean of g².")
    eps: float = Field(1e-12, ge=0, description="ε added to σ^power.")


class AdamMinTConfig(_Rule):
    """The seeds' simplified Adam with min(t, N) bias correction."""

    kind: Literal["adam_min_t"] = "adam_min_t"
    lr: LearningRate
    n_g: float = Field(10.0, ge=1, description="Horizon N_g of the gradient mean "
                       "(β₁ = 1 − 1/N_g).")
    n_s: float = Field(100.0, ge=1, description="Horizon N_s of the squared-gradient mean "
                       "(β₂ = 1 − 1/N_s); bias correction uses min(t, N).")
    eps: float = Field(1e-8, ge=0, description="ε in the denominator.")


class RMSPropPerExampleConfig(_Rule):
    """RMSProp averaging per-example squared gradients (keeps its rates when B changes)."""

    kind: Literal["rmsprop_per_example"] = "rmsprop_per_example"
    lr: LearningRate
    alpha: float = Field(0.99, ge=0, lt=1, description="Decay α of the running mean of the "
                         "per-example g².")
    eps: float = Field(1e-8, ge=0, description="ε in the denominator.")
    eps_inside_sqrt: bool = Field(True, description="Seeds' form η g/√(s + ε) (false: "
                                  "η g/(√s + ε)).")


class NormalizedConfig(_Rule):
    """θ ← θ − η ĝ/√(‖ĝ‖²/d + ε)."""

    kind: Literal["normalized"] = "normalized"
    lr: LearningRate
    eps: PositiveFloat = Field(1e-8, description="ε in η ĝ/√(‖ĝ‖²/d + ε).")


class MultiplicativeConfig(_Rule):
    """θ_i ← θ_i − η max(ε, |θ_i|) ĝ_i."""

    kind: Literal["multiplicative"] = "multiplicative"
    lr: LearningRate
    eps: PositiveFloat = Field(1e-2, description="Floor ε of the rate η·max(ε, |θ_i|).")


class LossProportionalConfig(_Rule):
    """θ ← θ − η L(θ, batch) ĝ."""

    kind: Literal["loss_proportional"] = "loss_proportional"
    lr: LearningRate


class TZConfig(_Rule):
    """The seeds' TZ algorithm: per-coordinate B* and η from running g̃, s̃ (no lr)."""

    kind: Literal["tz"] = "tz"
    k: int = Field(100, ge=1, description="Warm-up steps K.")
    lambda_b: PositiveFloat = Field(16.0, description="The TZ algorithm's batch-size "
                                    "parameter λ_B.")
    lambda_eta: PositiveFloat = Field(0.01, description="The TZ algorithm's rate "
                                      "parameter λ_η.")
    eps: PositiveFloat = Field(1e-12, description="ε in the per-coordinate rates.")

    def hyperparameters(self, batch_size: int) -> dict[str, Any]:
        """TZ's weights depend on the run's batch size too."""
        return {**super().hyperparameters(batch_size), "batch_size": batch_size}


RuleConfig = Annotated[
    SGDConfig | SGLDConfig | MomentumConfig | MomentumNgConfig | RMSPropConfig | AdamConfig
    | AdamWConfig
    | PreconditionedConfig | MatrixConfig | AdamMinTConfig | RMSPropPerExampleConfig | NormalizedConfig
    | MultiplicativeConfig | LossProportionalConfig | TZConfig,
    Field(discriminator="kind"),
]


RULE_KINDS: list[str] = kinds(RuleConfig)
