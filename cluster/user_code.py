"""A user's module on a cluster: what travels to the actors, and what ``resume`` checks.

Actors build the user's module themselves. A module given in Python travels as the object
(pickled by value, so a class defined in a notebook or script needs no import on the node); a
module named by a file travels as that file's text, written on a node that lacks the path.
Only the files the config names travel: a module that imports a sibling file needs that file
on every node (or an installed package, ``"package.module:build"``).
"""

from __future__ import annotations

import sys
from typing import Any

from ..sampler.archive import ArchiveError
from ..sampler.config import JobConfig
from ..sampler.jobspec import expand


def _by_value(obj: Any) -> None:
    """Pickle the module defining ``obj``'s class (or function) by value, if it is user code."""
    from ray import cloudpickle  # Ray's own copy pickles actor arguments

    name = getattr(obj, "__module__", None) or type(obj).__module__
    if name in (None, "__main__", "builtins") or name.split(".")[0] in ("torch", "sgdthermo"):
        return
    module = sys.modules.get(name)
    if module is not None:
        cloudpickle.register_pickle_by_value(module)


def shipped(job: JobConfig) -> Any:
    """The ``Supplied`` objects and source files every actor of this job needs, or ``None``."""
    from ..sampler.config.torch_model import Supplied, TorchConfig, supplied
    from ..sampler.models.user_code import read_sources

    torch_runs = [r.model for r in expand(job) if isinstance(r.model, TorchConfig)]
    if not torch_runs:
        return None
    given = supplied()
    for obj in (given.model, given.loss):  # a module instance names its class's module
        if obj is not None:
            _by_value(obj)
    refs = [ref for m in torch_runs for ref in m.references().values()]
    return Supplied(given.model, given.loss, given.data, read_sources(refs))


def check_sources(archive: str, runs: list[Any], facts: list[dict[str, Any]]) -> None:
    """Refuse (``ArchiveError``) to resume a run whose module or loss source has changed.

    Args:
        archive: The archive (for the message).
        runs: The archived run specs.
        facts: Each run's stored model description (``source_sha256`` by field).
    """
    from ..sampler.config.torch_model import TorchConfig

    for spec, fact in zip(runs, facts, strict=True):
        if not isinstance(spec.model, TorchConfig):
            continue
        change = spec.model.source_change(fact.get("source_sha256") or {})
        if change is not None:
            raise ArchiveError(f"{archive!r} run {spec.index}: {change}; resuming would mix two "
                               f"models. Restore that file, or start a new archive with "
                               f"`sgdthermo run`")
