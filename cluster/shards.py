"""The driver's view of a job's shards, read from the archive's commit records alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..sampler.archive import RunStore, archived_job, read_root


@dataclass
class ShardProgress:
    """Driver-side view of one shard."""

    run: int
    shard: int
    chains: int
    steps: list[int]  # cumulative steps after each block
    blocks_done: int
    diverged: int = 0
    actor: Any = field(default=None, repr=False)
    open: bool = False  # a run.until run that has not stopped: its schedule may grow

    @property
    def waiting(self) -> bool:
        """All blocks its schedule allows so far are committed."""
        return self.blocks_done >= len(self.steps)

    @property
    def done(self) -> bool:
        """All blocks committed (and, for ``run.until``, the run has stopped)."""
        return self.waiting and not self.open

    @property
    def chain_steps(self) -> int:
        """Chain-steps committed."""
        return self.chains * (self.steps[self.blocks_done - 1] if self.blocks_done else 0)


def shard_table(path: str) -> list[ShardProgress]:
    """Progress of every shard of every run, from the archive's commit records alone."""
    _, runs = archived_job(read_root(path))
    out = []
    for spec in runs:
        store = RunStore(path, spec.index)
        cumulative = [sum(b.steps for b in store.blocks[: i + 1])
                      for i in range(len(store.blocks))]
        done = store.committed()
        is_open = store.until is not None and not store.until.stopped
        for s, (lo, hi) in enumerate(store.shards):
            out.append(ShardProgress(spec.index, s, hi - lo, cumulative, int(done[s]),
                                     open=is_open))
    return out
