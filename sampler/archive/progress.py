"""How far each run of an archive has got, read in one pass: what ``sgdthermo status`` shows.

The root attributes are read once and, per run, its own attributes, its commit records and, for
a ``run.until`` run, its decisions. Zarr and NumPy only: no run is rebuilt from its config, so
neither pydantic's models nor torch load (a 3-run archive answers in well under a second).

The schedule is ``schema.block_schedule``'s, from the plain values the run stores: warm-up
draws ``W = burn_in // thin`` and posterior draws ``P = draws`` (a ``run.until`` run: its last
decision), each cut into blocks of at most ``chunk_draws`` draws of ``thin`` steps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .schema import RUN_KEY, internal_group_name, open_root, run_group_name, shard_bounds
from .until_state import STOP_BITS


@dataclass
class RunProgress:
    """One run: shards committed, chain-steps done of those scheduled, and its ``until`` phase."""

    run: int
    label: str
    shards: int
    shards_done: int
    chain_steps: int
    total_chain_steps: int
    complete: bool
    until: str | None = None  # a run.until run's phase in words

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``sgdthermo status --json``; ``until`` only for a run.until run)."""
        out = asdict(self)
        if out["until"] is None:
            del out["until"]
        return out


def block_steps(warmup: int, posterior: int, chunk: int, thin: int) -> list[int]:
    """Steps of each block: ``W`` warm-up then ``P`` posterior draws, ``chunk`` at a time."""
    return [min(chunk, total - start) * thin for total in (warmup, posterior)
            for start in range(0, total, chunk)]


def _until_words(state: np.ndarray) -> str:
    warmup, posterior, stop = (int(v) for v in state[:3])
    if stop:
        reasons = [name for name, bit in STOP_BITS.items() if stop & bit]
        return f"stopped by {', '.join(reasons)} at {posterior:,} draws"
    if posterior == 0:
        return f"warming up: {warmup:,} warm-up draws scheduled"
    return f"sampling: {posterior:,} draws scheduled"


def _run(root: Any, version: int, index: int, label: str) -> RunProgress:
    attrs = root[run_group_name(index)].attrs.get(RUN_KEY, {})
    internal = root[internal_group_name(index, version)]
    run = attrs["spec"]["run"]
    chunk, k = int(attrs["chunk_draws"]), int(attrs["shard_chains"])
    thin = int(run["thin"])
    until = None
    warmup, posterior = int(run["burn_in"]) // thin, int(run["draws"])
    if run.get("until") is not None:
        state = np.asarray(internal["until"]["state"][:])
        warmup, posterior, until = int(state[0]), int(state[1]), _until_words(state)
    cumulative = np.cumsum([0, *block_steps(warmup, posterior, chunk, thin)])
    done = np.minimum(np.asarray(internal["checkpoint"]["commit"][:, 0], dtype=np.int64),
                      len(cumulative) - 1)
    sizes = np.array([hi - lo for lo, hi in shard_bounds(int(run["chains"]), k)])
    finished = done >= len(cumulative) - 1
    stopped = until is None or until.startswith("stopped")
    return RunProgress(index, label, len(sizes), int(finished.sum()) if stopped else 0,
                       int((sizes * cumulative[done]).sum()), int(sizes.sum() * cumulative[-1]),
                       bool(finished.all() and stopped), until)


def archive_progress(path: str) -> tuple[dict[str, Any], list[RunProgress]]:
    """The root attributes and every run's progress.

    Raises:
        ArchiveError: Not a readable sgdthermo archive (``schema.read_root``'s checks).
        KeyError: A run written before its attributes held its spec (the caller falls back).
    """
    root, meta = open_root(path)
    version = int(meta["schema_version"])
    return meta, [_run(root, version, int(r["index"]), str(r["label"])) for r in meta["runs"]]
