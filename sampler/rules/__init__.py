"""Update rules as pure ``(init, update)`` pairs (``base.UpdateRule``), one family per module.

Each module owns its rules' math: the update, the fluctuation term, and where it has one the
heavy-ball form (``UpdateRule.linear_form``) that exact theory and the stability check use.
Rules know nothing of configs: ``sampler.config`` builds them (``RuleConfig.build``).
"""

from __future__ import annotations

from .adaptive import adam, adamw, rmsprop
from .base import GradSample, HeavyBall, LinearForm, UpdateRule
from .matrix import matrix
from .preconditioned import preconditioned
from .schedule import scheduled
from .seeds import adam_min_t, loss_proportional, multiplicative, normalized, rmsprop_per_example
from .sgd import momentum, momentum_ng, sgd, sgld
from .tz import tz

__all__ = ["GradSample", "HeavyBall", "LinearForm", "UpdateRule", "adam", "adam_min_t", "adamw",
           "loss_proportional", "matrix", "momentum", "momentum_ng", "multiplicative", "normalized",
           "preconditioned", "rmsprop", "rmsprop_per_example", "scheduled", "sgd", "sgld", "tz"]
