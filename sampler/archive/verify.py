"""Checking an archive's committed data against its checksums (``sgdthermo verify``).

Every committed block of every shard is read back region by region (the regions its writer
wrote, ``RunStore.block_items``) and digested (``integrity.digest``); so is each shard's
committed checkpoint slot. Memory is bounded by one block of one shard.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .integrity import CorruptArchiveError, Corruption
from .schema import read_root
from .store import RunStore


@dataclass
class VerifyReport:
    """What ``verify_archive`` found: blocks checked, runs without checksums, corruptions."""

    path: str
    blocks_checked: int = 0
    unrecorded_runs: list[int] = field(default_factory=list)  # written before checksums
    corruptions: list[Corruption] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No corruption found (runs without checksums are not checked)."""
        return not self.corruptions

    def summary(self, limit: int = 3) -> str:
        """One line: the count and the first ``limit`` places."""
        listed = "; ".join(c.describe() for c in self.corruptions[:limit])
        more = len(self.corruptions) - limit
        return (f"{len(self.corruptions)} corrupt committed block(s) or checkpoint(s): {listed}"
                + (f"; and {more} more" if more > 0 else ""))

    def raise_if_corrupt(self) -> None:
        """Raise ``CorruptArchiveError``: the summary and how to repair, in one line."""
        if not self.ok:
            raise CorruptArchiveError(f"{self.path!r}: {self.summary()}; `sgdthermo resume "
                                      f"--repair {self.path}` re-runs them from their shard's "
                                      f"start")


def verify_run(store: RunStore, report: VerifyReport) -> None:
    """Check every committed block and checkpoint slot of one run into ``report``."""
    try:
        committed = store.committed()
    except Exception as err:  # noqa: BLE001 - any decode failure is corruption
        report.corruptions.append(Corruption(store.index, -1, None,
                                             f"commit records unreadable ({type(err).__name__})"))
        return
    for shard, done in enumerate(int(v) for v in committed):
        sums = store.stored_checksums(shard)
        if sums is None:
            report.unrecorded_runs.append(store.index)
            return
        for k in range(done):
            reason = _block_problem(store, shard, k, int(np.asarray(sums[0])[k]))
            report.blocks_checked += 1
            if reason:
                report.corruptions.append(Corruption(store.index, shard, k, reason))
        try:
            intact = store.slot_intact(shard)
        except Exception as err:  # noqa: BLE001
            intact, why = False, f"unreadable ({type(err).__name__})"
        else:
            why = "checksum mismatch"
        if not intact:
            report.corruptions.append(Corruption(store.index, shard, None, why))


def _block_problem(store: RunStore, shard: int, k: int, expected: int) -> str:
    """Why block ``k`` of ``shard`` is corrupt, or ``""``."""
    if expected == 0:
        return "its checksum is missing"
    try:
        actual = store.block_digest(shard, store.blocks[k])
    except Exception as err:  # noqa: BLE001 - a truncated chunk fails to decode
        return f"unreadable ({type(err).__name__})"
    return "" if actual == expected else "checksum mismatch"


def verify_archive(path: str) -> VerifyReport:
    """Check every run of the archive at ``path``."""
    meta = read_root(path)
    report = VerifyReport(path)
    for run in meta["runs"]:
        verify_run(RunStore(path, int(run["index"])), report)
    return report
