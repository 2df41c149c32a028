"""What a job will need, estimated before anything starts, against what the target has.

``sgdthermo run`` refuses (exit 2, before Ray starts) a job whose archive would not fit on the
disk it is written to, whose shards are more than one job should hold, or one of whose actors
would need more memory than this machine has; ``--no-resource-check`` skips the machine-bound
checks for a cluster bigger than the machine the job is submitted from (the shard limit stays).

Estimates (bytes, all runs; blocks per run): the archive holds every recorded draw once,
``chains × (draws + kept warm-up draws) × (recorded numbers + 5 per-draw statistics) ×
itemsize``, plus per-coordinate sums of every posterior block and checkpoints
(``run_archive_bytes``); an
actor holds its shard's state and sums (``shard_chains × D × 24`` numbers) and one block of
draws (at most ``BLOCK_BYTES``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ..sampler.archive import ArchiveError
from ..sampler.archive.schema import BLOCK_BYTES, block_draws
from ..sampler.config import JobConfig, RunSpec
from ..sampler.jobspec import ConfigError, expand

MAX_SHARDS = 10_000  # actors' worth of work per job; more is a typo, or several jobs
MAX_BLOCKS = 1_000_000  # commits per run (the archive keeps one record per block and shard)
_STATS = 5  # loss, grad_norm, full_loss, diverged, a margin for the rest
ITEMSIZE = {"float16": 2, "float32": 4, "float64": 8}  # bytes per stored number, by dtype


def _gb(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def estimate(job: JobConfig, facts: list[dict[str, Any]]) -> dict[str, float]:
    """What a job needs: ``archive_bytes``, ``actor_bytes``, ``shards`` and ``blocks``.

    ``actor_bytes`` and ``blocks`` are the most of any one actor and run.
    """
    archive = actor = shards = blocks = 0.0
    for spec, f in zip(expand(job), facts, strict=True):
        run, dim = spec.run, int(f["dim"])
        itemsize = 4 if run.dtype == "float32" else 8
        stored = ITEMSIZE[run.storage_dtype]
        recorded = f["recording"].n_recorded(dim) if f.get("recording") else dim
        warmup = run.max_burn_in // run.thin  # run.until: the caps
        archive += run_archive_bytes(spec, f, job.cluster.shard_chains, job.cluster.chunk_draws)
        k = min(job.cluster.shard_chains, run.chains)
        actor = max(actor, k * dim * 24 * itemsize + BLOCK_BYTES)
        shards += -(-run.chains // job.cluster.shard_chains)
        chunk = block_draws(job.cluster.chunk_draws, k, recorded, stored)
        blocks = max(blocks, -(-warmup // chunk) + -(-run.max_draws // chunk))
    return {"archive_bytes": archive, "actor_bytes": actor, "shards": shards,
            "blocks": blocks}


def run_archive_bytes(spec: RunSpec, facts: dict[str, Any], shard_chains: int,
                      chunk_draws: int) -> float:
    """One run's share of the archive, uncompressed (an upper bound; ``run.until``: its caps).

    ``C × [draws × (recorded × stored + 5 × itemsize) + blocks × terms × D × 8
    + 6 × D × itemsize]``: the recorded draws (in ``run.record.dtype``) and statistics; the
    per-coordinate sums of every posterior block in float64 (the fluctuation term and the
    three of the rate-weighted identity, three more for the virial when θ is recorded partly
    or the model is a user's module); two checkpoint slots of up to three state arrays.
    """
    run, dim = spec.run, int(facts["dim"])
    itemsize = 4 if run.dtype == "float32" else 8
    stored = ITEMSIZE[run.storage_dtype]
    recording = facts.get("recording")
    recorded = recording.n_recorded(dim) if recording else dim
    warmup = run.max_burn_in // run.thin
    draws = run.max_draws + (warmup if run.records_warmup else 0)
    k = min(shard_chains, run.chains)
    blocks = -(-run.max_draws // block_draws(chunk_draws, k, recorded, stored))
    terms = 7 if recording is not None and recording.keeps_virial else 4
    return float(run.chains * (draws * (recorded * stored + _STATS * itemsize)
                               + blocks * terms * dim * 8 + 6 * dim * itemsize))


def check_resources(job: JobConfig, facts: list[dict[str, Any]], out: str,
                    machine: bool = True) -> dict[str, float]:
    """Refuse what cannot run (``ConfigError`` naming the estimate and the limit).

    Args:
        job: The validated job.
        facts: Per run, ``shard.state_facts``.
        out: Where the archive goes (its disk is checked when it is a local path).
        machine: Also check disk space and memory of this machine.
    """
    need = estimate(job, facts)
    if need["shards"] > MAX_SHARDS:
        raise ConfigError(f"run.chains: the job needs {need['shards']:,.0f} shards "
                          f"(cluster.shard_chains = {job.cluster.shard_chains}), at most "
                          f"{MAX_SHARDS:,} per job; fewer chains or larger shards")
    parent = None
    if "://" not in out:
        parent = Path(out).expanduser().resolve().parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise ArchiveError(f"--out {out!r}: {str(parent)!r} is a file, not a directory")
    if need["blocks"] > MAX_BLOCKS:
        raise ConfigError(f"run.burn_in, run.draws: a run needs {need['blocks']:,.0f} blocks of "
                          f"at most {job.cluster.chunk_draws} draws, at most {MAX_BLOCKS:,}; "
                          f"fewer steps, a larger thin or cluster.chunk_draws")
    if not machine:
        return need
    if parent is not None:
        free = shutil.disk_usage(parent).free
        if need["archive_bytes"] > free:
            raise ConfigError(f"run: the archive needs about {_gb(need['archive_bytes'])}, "
                              f"the disk at {str(parent)!r} has {_gb(free)} free; fewer "
                              f"draws/chains, a larger thin, run.record, or "
                              f"--no-resource-check")
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need["actor_bytes"] > ram:
        raise ConfigError(f"cluster.shard_chains: an actor needs about "
                          f"{_gb(need['actor_bytes'])}, this machine has {_gb(ram)}; smaller "
                          f"shards, or --no-resource-check on a bigger cluster")
    return need
