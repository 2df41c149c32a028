"""Ray and the command line: the only package that knows Ray.

``driver`` starts or joins Ray, creates the archive and keeps one ``actor`` per shard busy (each
holds a ``sampler.shard.ShardRunner``); ``cli`` is ``sgdthermo run | resume | status | analyze |
report``, which validates input before Ray starts; ``progress`` prints the shard table.

From Python (a notebook): ``run_job(config, out)`` and ``resume_job(archive)`` (``jobs``), with
the CLI's errors as exceptions.
"""

from typing import Any

_API = {"run_job": "jobs", "resume_job": "jobs", "JobInterrupted": "driver",
        "ConfigError": "..sampler.jobspec", "ArchiveError": "..sampler.archive",
        "DataError": "..sampler.models"}


def __getattr__(name: str) -> Any:  # imported on first use: the actors import this package
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module = _API[name]
    return getattr(importlib.import_module(module if module.startswith("..") else f".{module}",
                                           __name__), name)


__all__ = list(_API)
