"""Update rules. ``build_rule`` turns a rule config into an ``UpdateRule``."""

from __future__ import annotations

from collections.abc import Callable

from ..config import RuleConfig
from .adaptive import adam, rmsprop
from .base import GradSample, UpdateRule
from .preconditioned import preconditioned
from .schedule import scheduled
from .seeds import adam_min_t, loss_proportional, multiplicative, normalized, rmsprop_per_example
from .sgd import momentum, momentum_ng, sgd
from .tz import tz

__all__ = ["GradSample", "UpdateRule", "adam", "adam_min_t", "build_rule", "loss_proportional",
           "momentum", "momentum_ng", "multiplicative", "normalized", "preconditioned",
           "rmsprop", "rmsprop_per_example", "scheduled", "sgd", "tz"]

_FACTORIES: dict[str, Callable[..., UpdateRule]] = {
    "sgd": sgd, "momentum": momentum, "momentum_ng": momentum_ng, "rmsprop": rmsprop,
    "adam": adam, "preconditioned": preconditioned, "adam_min_t": adam_min_t,
    "rmsprop_per_example": rmsprop_per_example, "normalized": normalized,
    "multiplicative": multiplicative, "loss_proportional": loss_proportional, "tz": tz}


def build_rule(cfg: RuleConfig, batch_size: int = 1) -> UpdateRule:
    """Build the rule named by ``cfg.kind`` (with its schedule) from the config."""
    params = cfg.model_dump(exclude={"kind", "schedule"})
    if cfg.kind == "tz":
        params["batch_size"] = batch_size
    rule = _FACTORIES[cfg.kind](**params)
    if cfg.schedule.kind != "constant":
        rule = scheduled(rule, cfg.schedule.kind, cfg.schedule.t0, cfg.schedule.power)
    return rule
