"""Update rules. ``build_rule`` turns a rule config into an ``UpdateRule``."""

from __future__ import annotations

from ..config import RuleConfig
from .adaptive import adam, rmsprop
from .base import GradSample, UpdateRule
from .preconditioned import preconditioned
from .sgd import momentum, momentum_ng, sgd

__all__ = ["GradSample", "UpdateRule", "adam", "build_rule", "momentum", "momentum_ng",
           "preconditioned", "rmsprop", "sgd"]

_FACTORIES = {"sgd": sgd, "momentum": momentum, "momentum_ng": momentum_ng,
              "rmsprop": rmsprop, "adam": adam, "preconditioned": preconditioned}


def build_rule(cfg: RuleConfig) -> UpdateRule:
    """Build the rule named by ``cfg.kind`` with the config's hyperparameters."""
    params = cfg.model_dump(exclude={"kind"})
    return _FACTORIES[cfg.kind](**params)
