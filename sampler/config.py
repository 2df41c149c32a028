"""Typed job configuration: models, rules, run settings, cluster settings and sweeps.

A job config (TOML) is validated here with pydantic. Every field is documented, ``kind`` fields are
discriminated unions (an unknown kind lists the allowed ones), and the resolved config is stored in
the archive so that analysis can rebuild each run's model without the original file.

The unions are the only list of kinds: each model config ``build``s its model, and each rule config
its ``UpdateRule`` through the factory of the same name as its kind (``sampler.rules.<kind>``), so
adding a rule is its module in ``sampler/rules/`` plus its config class here and one line in
``RuleConfig``. The math modules never import this one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from . import rules
from .models import MLP, LinearRegression, LogisticRegression, MeanModel, Model, Quadratic, ScaledModel
from .models.data import Synthetic, digits, regression_data
from .rules import UpdateRule

PositiveFloat = Annotated[float, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------------------- models
class _Model(_Strict):
    loss_scale: PositiveFloat = Field(
        1.0, description="Multiply the loss by this (1/ln 2: nats to bits).")

    def build(self, batch_size: int, dtype: torch.dtype = torch.float64,
              device: str | torch.device = "cpu") -> Model:
        """The model on a dtype and device, scaled by ``loss_scale``."""
        model = self.build_loss(batch_size, dtype, device)
        return model if self.loss_scale == 1.0 else ScaledModel(model, self.loss_scale)

    def build_loss(self, batch_size: int, dtype: torch.dtype,
                   device: str | torch.device) -> Model:
        """The unscaled model."""
        raise NotImplementedError


def _tensor(a: np.ndarray, dtype: torch.dtype, device: str | torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


class QuadraticConfig(_Model):
    """``L = ½θᵀHθ`` with per-example gradient noise ``N(0, Σ)`` (minibatch: ``Σ/B``)."""

    kind: Literal["quadratic"] = "quadratic"
    hessian: list[float] | list[list[float]] = Field(
        description="H: a list (the diagonal) or a list of rows (full symmetric matrix).")
    noise_cov: list[float] | list[list[float]] = Field(
        description="Σ, per-example gradient noise covariance: diagonal list or rows.")

    def build_loss(self, batch_size: int, dtype: torch.dtype,
                   device: str | torch.device) -> Model:
        """``Quadratic`` (validates H and Σ)."""
        return Quadratic.from_lists(self.hessian, self.noise_cov, batch_size, dtype, device)


class DataConfig(_Strict):
    """Where a regression model's data comes from: synthetic (default) or a file."""

    file: str | None = Field(None, description="Path to a .npz (arrays X, y) or .csv file.")
    dataset: Literal["synthetic", "diabetes"] = Field(
        "synthetic", description="diabetes: scikit-learn's bundled data (442 × 10), features "
        "and target standardised.")
    target: str | None = Field(None, description="CSV column of the target (default: last).")
    n: int = Field(1024, gt=0, description="Synthetic: number of examples N.")
    d: int = Field(8, gt=0, description="Synthetic: number of features.")
    condition: float = Field(10.0, ge=1, description="Synthetic: ratio of largest to smallest "
                             "feature scale (anisotropy).")
    noise_std: float = Field(1.0, ge=0, description="Synthetic linear: label noise std.")
    seed: int = Field(0, description="Seed of the synthetic data (independent of the job seed).")
    standardize: bool = Field(False, description="File data: standardise the feature columns.")
    intercept: bool = Field(False, description="Append a constant-1 feature.")

    def load(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """``(X, y)`` for a model of this kind (``models.data.regression_data``)."""
        synthetic = Synthetic(self.n, self.d, self.condition, self.noise_std, self.seed)
        return regression_data(kind, self.dataset, self.file, self.target, self.standardize,
                               self.intercept, synthetic)


class MeanConfig(_Model):
    """The seeds' ``ℓ_i(β) = ½(β − y_i)²``: explicit values, or N draws of ``N(loc, scale²)``."""

    kind: Literal["mean"] = "mean"
    values: list[float] | None = Field(None, description="The dataset y; overrides n/loc/scale.")
    n: int = Field(100, gt=1, description="Synthetic dataset size.")
    loc: float = 0.0
    scale: PositiveFloat = 1.0
    seed: int = 0

    def build_loss(self, batch_size: int, dtype: torch.dtype,
                   device: str | torch.device) -> Model:
        """``MeanModel`` on the values or on N seeded draws."""
        y = (np.asarray(self.values, float) if self.values is not None else
             np.random.default_rng(self.seed).normal(self.loc, self.scale, self.n))
        return MeanModel(_tensor(y, dtype, device))


class LinearRegressionConfig(_Model):
    """Least squares ``½(xᵀθ − y)²`` on synthetic anisotropic data or a user's file."""

    kind: Literal["linear_regression"] = "linear_regression"
    data: DataConfig = DataConfig()
    l2: float = Field(0.0, ge=0, description="Ridge term (l2/2)‖θ‖² on every example.")

    def build_loss(self, batch_size: int, dtype: torch.dtype,
                   device: str | torch.device) -> Model:
        """``LinearRegression`` on the configured data."""
        x, y = self.data.load(self.kind)
        return LinearRegression(_tensor(x, dtype, device), _tensor(y, dtype, device), l2=self.l2)


class LogisticRegressionConfig(_Model):
    """Binary logistic regression on synthetic anisotropic data or a user's file (y in {0,1})."""

    kind: Literal["logistic_regression"] = "logistic_regression"
    data: DataConfig = DataConfig()
    l2: float = Field(1e-3, ge=0, description="Ridge term; keeps the minimum finite.")

    def build_loss(self, batch_size: int, dtype: torch.dtype,
                   device: str | torch.device) -> Model:
        """``LogisticRegression`` on the configured data (targets 0/1)."""
        x, y = self.data.load(self.kind)
        return LogisticRegression(_tensor(x, dtype, device), _tensor(y, dtype, device),
                                  l2=self.l2)


class MLPConfig(_Model):
    """MLP classifier on scikit-learn's digits (ships with scikit-learn, nothing downloaded)."""

    kind: Literal["mlp"] = "mlp"
    hidden: list[Annotated[int, Field(gt=0)]] = [16]
    activation: Literal["tanh", "relu"] = "tanh"
    l2: float = Field(1e-4, ge=0)
    n: int | None = Field(None, gt=0, description="Use only the first n examples.")

    def build_loss(self, batch_size: int, dtype: torch.dtype,
                   device: str | torch.device) -> Model:
        """``MLP`` on the digits (10 classes)."""
        x, y = digits(self.n)
        return MLP(_tensor(x, dtype, device), _tensor(y, dtype, device), n_classes=10,
                   hidden=list(self.hidden), activation=self.activation, l2=self.l2)


ModelConfig = Annotated[
    QuadraticConfig | MeanConfig | LinearRegressionConfig | LogisticRegressionConfig | MLPConfig,
    Field(discriminator="kind"),
]


# ----------------------------------------------------------------------------- rules
class ScheduleConfig(_Strict):
    """Step multiplier s(t): constant, 1/(1 + t/t0), or (1 + t/t0)^(−power)."""

    kind: Literal["constant", "inverse", "power"] = "constant"
    t0: PositiveFloat = 100.0
    power: float = Field(1.0, gt=0, le=1)


class _Rule(_Strict):
    kind: str  # each rule narrows it to its Literal; the factory is ``sampler.rules.<kind>``
    schedule: ScheduleConfig = Field(ScheduleConfig(), description="Learning-rate schedule.")

    def hyperparameters(self, batch_size: int) -> dict[str, Any]:
        """Keyword arguments of the rule's factory: every field but ``kind`` and ``schedule``."""
        return self.model_dump(exclude={"kind", "schedule"})

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
        if self.schedule.kind != "constant":
            rule = rules.scheduled(rule, self.schedule.kind, self.schedule.t0,
                                   self.schedule.power)
        return rule


class SGDConfig(_Rule):
    """Plain SGD ``θ ← θ − η g``."""

    kind: Literal["sgd"] = "sgd"
    lr: PositiveFloat


class MomentumConfig(_Rule):
    """PyTorch heavy ball ``b ← μb + (1−d)g; θ ← θ − ηb``."""

    kind: Literal["momentum"] = "momentum"
    lr: PositiveFloat
    mu: float = Field(0.9, ge=0, lt=1)
    dampening: float = Field(0.0, ge=0, lt=1)


class MomentumNgConfig(_Rule):
    """The seeds' ``v ← (1 − 1/N_g)v + ηg; θ ← θ − v``."""

    kind: Literal["momentum_ng"] = "momentum_ng"
    lr: PositiveFloat
    n_g: float = Field(10.0, ge=1)


class RMSPropConfig(_Rule):
    """PyTorch RMSprop ``s ← αs + (1−α)g²; θ ← θ − ηg/(√s + ε)``."""

    kind: Literal["rmsprop"] = "rmsprop"
    lr: PositiveFloat
    alpha: float = Field(0.99, ge=0, lt=1)
    eps: float = Field(1e-8, ge=0)
    eps_inside_sqrt: bool = Field(False, description="Seeds' form η g/√(s + ε).")


class AdamConfig(_Rule):
    """PyTorch Adam with bias correction."""

    kind: Literal["adam"] = "adam"
    lr: PositiveFloat
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    eps: float = Field(1e-8, ge=0)


class PreconditionedConfig(_Rule):
    """Diagonal preconditioning ``η_i = η'/σ_i^p`` from a running per-example variance estimate."""

    kind: Literal["preconditioned"] = "preconditioned"
    lr: PositiveFloat
    power: Literal[1, 2] = 2
    decay: float = Field(0.99, ge=0, lt=1)
    eps: float = Field(1e-12, ge=0)


class AdamMinTConfig(_Rule):
    """The seeds' simplified Adam with min(t, N) bias correction."""

    kind: Literal["adam_min_t"] = "adam_min_t"
    lr: PositiveFloat
    n_g: float = Field(10.0, ge=1)
    n_s: float = Field(100.0, ge=1)
    eps: float = Field(1e-8, ge=0)


class RMSPropPerExampleConfig(_Rule):
    """RMSProp averaging per-example squared gradients (keeps its rates when B changes)."""

    kind: Literal["rmsprop_per_example"] = "rmsprop_per_example"
    lr: PositiveFloat
    alpha: float = Field(0.99, ge=0, lt=1)
    eps: float = Field(1e-8, ge=0)
    eps_inside_sqrt: bool = True


class NormalizedConfig(_Rule):
    """θ ← θ − η ĝ/√(‖ĝ‖²/d + ε)."""

    kind: Literal["normalized"] = "normalized"
    lr: PositiveFloat
    eps: PositiveFloat = 1e-8


class MultiplicativeConfig(_Rule):
    """θ_i ← θ_i − η max(ε, |θ_i|) ĝ_i."""

    kind: Literal["multiplicative"] = "multiplicative"
    lr: PositiveFloat
    eps: PositiveFloat = 1e-2


class LossProportionalConfig(_Rule):
    """θ ← θ − η L(θ, batch) ĝ."""

    kind: Literal["loss_proportional"] = "loss_proportional"
    lr: PositiveFloat


class TZConfig(_Rule):
    """The seeds' TZ algorithm: per-coordinate B* and η from running g̃, s̃ (no lr)."""

    kind: Literal["tz"] = "tz"
    k: int = Field(100, ge=1, description="Warm-up steps K.")
    lambda_b: PositiveFloat = 16.0
    lambda_eta: PositiveFloat = 0.01
    eps: PositiveFloat = 1e-12

    def hyperparameters(self, batch_size: int) -> dict[str, Any]:
        """TZ's weights depend on the run's batch size too."""
        return {**super().hyperparameters(batch_size), "batch_size": batch_size}


RuleConfig = Annotated[
    SGDConfig | MomentumConfig | MomentumNgConfig | RMSPropConfig | AdamConfig
    | PreconditionedConfig | AdamMinTConfig | RMSPropPerExampleConfig | NormalizedConfig
    | MultiplicativeConfig | LossProportionalConfig | TZConfig,
    Field(discriminator="kind"),
]


def kinds(union: Any) -> list[str]:
    """The ``kind`` values of a discriminated union of configs, in declaration order."""
    members = get_args(get_args(union)[0])
    return [get_args(m.model_fields["kind"].annotation)[0] for m in members]


MODEL_KINDS: list[str] = kinds(ModelConfig)
RULE_KINDS: list[str] = kinds(RuleConfig)


# ----------------------------------------------------------------------------- run + cluster
class RunConfig(_Strict):
    """Chain settings shared by every run of a job (sweeps may override any of them)."""

    chains: int = Field(8, gt=0, description="Chains per run.")
    draws: int = Field(1000, gt=0, description="Recorded draws per chain after burn-in.")
    burn_in: int = Field(1000, ge=0, description="Steps before recording; a multiple of thin.")
    thin: int = Field(1, gt=0, description="Record every thin-th step.")
    batch_size: int = Field(1, gt=0, description="Minibatch size B.")
    sampling: Literal["iid", "without_replacement", "epoch", "full", "gaussian"] = Field(
        "iid", description="iid indices, without replacement within a batch, epoch reshuffle, "
        "full (deterministic full-batch gradient: gradient flow as lr → 0) or gaussian (the "
        "SDE surrogate: full gradient + N(0, Σ_1(θ)/B) noise, Euler–Maruyama with dt = lr).")
    dtype: Literal["float32", "float64"] = "float64"
    init_scale: float = Field(1.0, ge=0, description="θ₀ = init_scale·N(0, I) (MLP: Glorot).")
    init: Literal["random", "optimum"] = Field(
        "random", description="optimum: start every chain at θ* from full-batch L-BFGS.")
    keep_warmup: bool = Field(False, description="Record burn-in draws in warmup_posterior.")
    stream: int | None = Field(
        None, ge=0, description="Random stream (default: the run index). Runs with the same "
        "stream share their random numbers: common random numbers for paired comparisons.")

    @model_validator(mode="after")
    def _burn_in_multiple(self) -> RunConfig:
        if self.burn_in % self.thin:
            raise ValueError(f"run.burn_in must be a multiple of run.thin ({self.thin}), "
                             f"got {self.burn_in}")
        return self


class ClusterConfig(_Strict):
    """How runs are split over Ray actors and how the archive is chunked."""

    shard_chains: int = Field(64, gt=0, description="Chains per actor (one shard).")
    chunk_draws: int = Field(256, gt=0, description="Draws per archive chunk (one commit).")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_gpus: float = Field(1.0, gt=0, le=1, description="GPU fraction per actor on GPU clusters.")
    max_restarts: int = Field(3, ge=0, description="Actor restarts after a crash.")


class SweepConfig(_Strict):
    """Sweep points: the product of ``grid`` lists times the lock-step ``zip`` lists.

    Keys are dotted paths into the config (``"rule.lr"``, ``"run.batch_size"``) or ``"rule"`` /
    ``"model"`` with whole tables as values.
    """

    grid: dict[str, list] = {}
    zip: dict[str, list] = {}

    @field_validator("zip")
    @classmethod
    def _same_length(cls, v: dict[str, list]) -> dict[str, list]:
        lengths = {k: len(x) for k, x in v.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"all sweep.zip lists must have the same length, got {lengths}")
        return v


class JobConfig(_Strict):
    """A whole job: one model, one rule, run settings, and optionally a sweep over any of them."""

    name: str = "job"
    claim: str | None = Field(
        None, description="Seed claim this job tests; the report adds its verdict section. "
        "Claims are an analysis concept: the CLI checks the name against "
        "sgdthermo.analysis.claims.CLAIMS before Ray starts.")
    seed: int = Field(0, ge=0, description="Root seed; every shard's generator derives from it.")
    model: ModelConfig
    rule: RuleConfig
    run: RunConfig = RunConfig()
    cluster: ClusterConfig = ClusterConfig()
    sweep: SweepConfig = SweepConfig()


class RunSpec(_Strict):
    """One expanded sweep point: the settings a shard needs to run its chains."""

    index: int
    label: str
    model: ModelConfig
    rule: RuleConfig
    run: RunConfig
