"""The Ray actor that owns one shard. Private: the driver is the public facade.

The constructor restores from the archive's last commit and never raises (an exception in a Ray
actor's ``__init__`` kills it for good): a construction error is kept and raised by every method
call instead, where the driver can report it. ``run_until`` is idempotent, so Ray's retry of a call
interrupted by a crash (``max_task_retries``) simply continues from the last commit.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

import ray
import torch

from ..sampler.allocator import reuse_large_blocks
from ..sampler.archive import set_storage_options
from ..sampler.shard import ShardRunner
from .errors import ShardFailed
from .machine import WritersLock


class _ShardActor:
    def __init__(self, path: str, run_index: int, shard_index: int, device: str,
                 storage_options: dict[str, Any], user: Any = None) -> None:
        torch.set_num_threads(1)  # two threads collapse when another process holds a core
        reuse_large_blocks()  # a network's step buffers are reused, not page-faulted in again
        set_storage_options(storage_options)  # the driver's, for an archive URL
        if user is not None:  # a user's module given in Python, or its source files
            from ..sampler.config.torch_model import set_supplied

            set_supplied(user)
        self.writers = WritersLock(path)  # held while this process lives (``machine``)
        self.runner: ShardRunner | None = None
        self.error: str | None = None
        try:
            self.runner = ShardRunner(path, run_index, shard_index, device)
        except Exception:  # noqa: BLE001 - reported through run_until
            self.error = traceback.format_exc()

    def _require(self) -> ShardRunner:
        if self.runner is None:
            raise ShardFailed(self.error or "shard not built")
        return self.runner

    def run_until(self, target_blocks: int) -> dict[str, Any]:
        """Run and commit blocks up to ``target_blocks``; returns progress."""
        return self._require().run_until(target_blocks)

    def progress(self) -> dict[str, Any]:
        """Blocks committed, without running anything."""
        runner = self._require()
        return {"blocks_done": runner.blocks_done, "n_blocks": runner.n_blocks}

    def pid(self) -> int:
        """Process id (tests kill it to check restart and resume)."""
        return os.getpid()


def make_actor(path: str, run_index: int, shard_index: int, device: str, num_gpus: float,
               max_restarts: int, storage_options: dict[str, Any], user: Any = None) -> Any:
    """Start a shard actor: one CPU, and ``num_gpus`` of a GPU when the job runs on CUDA.

    ``storage_options``: the driver's fsspec options for an archive URL (``storage``).
    ``user``: the user's objects and source files (``sampler.config.torch_model.Supplied``),
    so that actors on any node build the same module.
    """
    cls = ray.remote(_ShardActor)
    return cls.options(
        num_cpus=1, num_gpus=num_gpus if device == "cuda" else 0,
        max_restarts=max_restarts, max_task_retries=max_restarts,
    ).remote(path, run_index, shard_index, device, storage_options, user)
