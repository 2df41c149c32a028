"""Typed job configuration: models, rules, run settings, cluster settings and sweeps.

A job config (TOML) is validated here with pydantic. Every field is documented, ``kind`` fields are
discriminated unions (an unknown kind lists the allowed ones), and the resolved config is stored in
the archive so that analysis can rebuild each run's model without the original file.

The unions are the only list of kinds: each model config (``models``) ``build``s its model, and
each rule config (``rules``) its ``UpdateRule`` through the factory of the same name as its kind
(``sampler.rules.<kind>``), so adding a rule is its module in ``sampler/rules/`` plus its config
class in ``rules`` here and one line in ``RuleConfig``. ``job`` holds the job, run, cluster and
sweep tables. The math modules never import this package.
"""

from __future__ import annotations

from .job import ClusterConfig, JobConfig, RunConfig, RunSpec, SweepConfig
from .models import (
    MODEL_KINDS,
    CNNConfig,
    DataConfig,
    LinearRegressionConfig,
    LogisticRegressionConfig,
    MeanConfig,
    MLPConfig,
    ModelConfig,
    QuadraticConfig,
)
from .rules import (
    RULE_KINDS,
    AdamConfig,
    AdamMinTConfig,
    LossProportionalConfig,
    MatrixConfig,
    MomentumConfig,
    MomentumNgConfig,
    MultiplicativeConfig,
    NormalizedConfig,
    PreconditionedConfig,
    RMSPropConfig,
    RMSPropPerExampleConfig,
    RuleConfig,
    ScheduleConfig,
    SGDConfig,
    SGLDConfig,
    TZConfig,
)

__all__ = ["MODEL_KINDS", "RULE_KINDS", "AdamConfig", "AdamMinTConfig", "ClusterConfig",
           "DataConfig", "JobConfig", "LinearRegressionConfig", "LogisticRegressionConfig",
           "LossProportionalConfig", "MatrixConfig", "CNNConfig", "MLPConfig", "MeanConfig",
           "ModelConfig",
           "MomentumConfig",
           "MomentumNgConfig", "MultiplicativeConfig", "NormalizedConfig",
           "PreconditionedConfig", "QuadraticConfig", "RMSPropConfig", "RMSPropPerExampleConfig",
           "RuleConfig", "RunConfig", "RunSpec", "SGDConfig", "SGLDConfig", "ScheduleConfig",
           "SweepConfig", "TZConfig"]
