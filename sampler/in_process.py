"""A whole job run in this process, shard after shard, without Ray.

For simulations that run many small jobs (calibration benchmarks, tests) and for a notebook
that wants no Ray at all: the archive is the same one ``sgdthermo run`` writes on one CPU
(same shard seeds, same blocks), so it resumes, verifies and analyses alike. The CLI's
embedded default starts Ray instead, to run shards in parallel and survive a killed actor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .archive import create_archive, shard_bounds
from .jobspec import expand, validate
from .shard import ShardRunner, state_facts


def create_here(config: dict[str, Any], path: str | Path) -> str:
    """Validate a config dict and pre-allocate its archive at ``path`` (CPU); the path.

    Raises:
        ValueError: The config fails validation (one line naming the field).
    """
    job = validate(config)
    runs = expand(job)
    create_archive(str(path), job, runs, "cpu", [state_facts(r) for r in runs])
    return str(path)


def run_here(config: dict[str, Any], path: str | Path) -> str:
    """Create the archive of ``config`` at ``path`` and run every shard of every run to the end.

    Returns:
        The archive's path.
    """
    created = create_here(config, path)
    job = validate(config)
    for spec in expand(job):
        for shard in range(len(shard_bounds(spec.run.chains, job.cluster.shard_chains))):
            ShardRunner(created, spec.index, shard).run_until(10**9)
    return created
