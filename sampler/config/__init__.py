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

from typing import Any

# Names load on first use (PEP 562): ``config.until`` and ``config.base`` (pydantic only) are
# read by the archive's light readers without the models, which need torch.
_HOMES = {
    "job": ("ClusterConfig", "JobConfig", "RunConfig", "RunSpec", "SweepConfig"),
    "models": ("MODEL_KINDS", "CNNConfig", "DataConfig", "LinearRegressionConfig",
               "LogisticRegressionConfig", "MeanConfig", "MLPConfig", "ModelConfig",
               "QuadraticConfig"),
    "torch_model": ("TorchConfig", "TorchDataConfig", "Supplied", "supplying"),
    "rules": ("RULE_KINDS", "AdamConfig", "AdamMinTConfig", "LossProportionalConfig",
              "MatrixConfig", "MomentumConfig", "MomentumNgConfig", "MultiplicativeConfig",
              "NormalizedConfig", "PreconditionedConfig", "RMSPropConfig",
              "RMSPropPerExampleConfig", "RuleConfig", "ScheduleConfig", "SGDConfig",
              "SGLDConfig", "TZConfig"),
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    """The public name ``name`` from the module that defines it (imported now)."""
    import importlib

    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = ["MODEL_KINDS", "RULE_KINDS", "AdamConfig", "AdamMinTConfig", "ClusterConfig",
           "DataConfig", "JobConfig", "LinearRegressionConfig", "LogisticRegressionConfig",
           "LossProportionalConfig", "MatrixConfig", "CNNConfig", "MLPConfig", "MeanConfig",
           "ModelConfig",
           "MomentumConfig",
           "MomentumNgConfig", "MultiplicativeConfig", "NormalizedConfig",
           "PreconditionedConfig", "QuadraticConfig", "RMSPropConfig", "RMSPropPerExampleConfig",
           "RuleConfig", "RunConfig", "RunSpec", "SGDConfig", "SGLDConfig", "ScheduleConfig",
           "SweepConfig", "Supplied", "TZConfig", "TorchConfig", "TorchDataConfig", "supplying"]
