"""Where a job's shards run: Ray actors, or this process one block at a time.

``driver.run_archive`` keeps every shard busy through one of these, with the same schedule
(``run.until`` barriers included) and the same archive: a shard's chains, seeds and blocks do
not depend on where it runs, so an archive written by either is resumed bitwise by either.

* ``RayExecutor``: one actor per shard (one CPU, or a GPU share), in parallel on the embedded
  or a joined Ray cluster, restarted after a crash (``cluster.max_restarts``).
* ``ProcessExecutor``: the shards in the driver's own process, a block of one after a block of
  the next. No Ray starts, so a small job is done before Ray would have been up
  (``cluster.executor``; ``choose_executor`` picks it for small CPU jobs by default).
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from typing import Any

from ..sampler.config import JobConfig
from ..sampler.jobspec import expand
from .errors import ShardFailed

SMALL_WORK = 10**7  # coordinate-steps (chains × steps × D, summed over runs) of a "small" job


def job_work(job: JobConfig, dims: list[int]) -> int:
    """Coordinate-steps of a whole job: ``Σ_runs chains·(burn_in + draws·thin)·D``.

    Args:
        job: The job.
        dims: Each run's dimension D, in the order of ``expand(job)``.
    """
    total = 0
    for spec, d in zip(expand(job), dims, strict=True):
        steps = spec.run.burn_in + spec.run.draws * spec.run.thin
        total += spec.run.chains * steps * d
    return total


def choose_executor(job: JobConfig, dims: list[int], address: str | None,
                    ray_running: bool) -> str:
    """``"ray"`` or ``"process"`` for ``cluster.executor`` (``auto``: module docstring).

    ``auto`` runs in this process when no cluster is named (``--address``, ``RAY_ADDRESS``) or
    already running here, the job is on the CPU, has no ``run.until`` run (whose decisions
    wait for every shard), and does at most ``SMALL_WORK`` coordinate-steps.
    """
    choice = job.cluster.executor
    if choice != "auto":
        return choice
    if address or os.environ.get("RAY_ADDRESS") or ray_running:
        return "ray"
    if job.cluster.device == "cuda" or any(s.run.until is not None for s in expand(job)):
        return "ray"
    if job.cluster.device == "auto" and _cuda_here():
        return "ray"
    return "process" if job_work(job, dims) <= SMALL_WORK else "ray"


def _cuda_here() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@dataclass(eq=False)  # hashed by identity: the driver keys its pending calls by them
class Done:
    """A call that ran in this process: its progress dict, or the error's traceback."""

    result: dict[str, Any] | None = None
    error: str | None = None


class ProcessExecutor:
    """Shards as ``ShardRunner``s in this process, one torch thread (as an actor has)."""

    name = "process"
    lost: tuple[type[BaseException], ...] = ()

    def __init__(self, where: str, device: str) -> None:
        import torch

        from .machine import WritersLock

        self.where, self.device = where, device
        self.writers = WritersLock(where)  # this process writes: held until ``close``
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the same arithmetic as an actor's, so the same bits

    def start(self, sp: Any) -> None:
        """Build the shard's runner (restored from its last commit)."""
        from ..sampler.shard import ShardRunner

        try:
            sp.actor = ShardRunner(self.where, sp.run, sp.shard, self.device)
        except Exception:  # noqa: BLE001 - reported by the first call, as an actor's would be
            sp.actor = _Broken(traceback.format_exc())

    def submit(self, sp: Any, target: int) -> Done:
        """Run the shard up to ``target`` blocks now."""
        try:
            return Done(result=sp.actor.run_until(target))
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception:  # noqa: BLE001 - the driver reports it as ShardFailed
            return Done(error=traceback.format_exc())

    def wait(self, refs: list[Done]) -> list[Done]:
        """Every call has already run."""
        return refs[:1]

    def result(self, ref: Done, sp: Any) -> dict[str, Any]:
        """The call's progress, or ``ShardFailed`` with its traceback."""
        if ref.error is not None or ref.result is None:
            raise ShardFailed(f"run {sp.run} shard {sp.shard} failed:\n{ref.error}")
        return ref.result

    def stop(self, sp: Any) -> None:
        """Drop the runner (its commits are in the archive)."""
        sp.actor = None

    def cancel(self, ref: Done) -> None:
        """Nothing runs in the background."""

    def close(self) -> None:
        """Restore torch's threads and drop the writers' lock."""
        import torch

        torch.set_num_threads(self._threads)
        self.writers.release()


class _Broken:
    """A shard whose runner could not be built: every call raises with the reason."""

    def __init__(self, error: str) -> None:
        self.error = error

    def run_until(self, target: int) -> dict[str, Any]:
        raise ShardFailed(self.error)


class RayExecutor:
    """Shards as Ray actors (``actor.make_actor``), waited on with ``ray.wait``."""

    name = "ray"

    def __init__(self, where: str, device: str, job: JobConfig, storage: dict[str, Any],
                 user: Any) -> None:
        import ray

        self.where, self.device, self.job = where, device, job
        self.storage, self.user = storage, user
        self.lost = (ray.exceptions.RayActorError, ray.exceptions.NodeDiedError,
                     ray.exceptions.ObjectLostError, ray.exceptions.WorkerCrashedError)

    def start(self, sp: Any) -> None:
        """Start the shard's actor (it restores from the shard's last commit)."""
        from .actor import make_actor

        sp.actor = make_actor(self.where, sp.run, sp.shard, self.device,
                              self.job.cluster.num_gpus, self.job.cluster.max_restarts,
                              self.storage, self.user)

    def submit(self, sp: Any, target: int) -> Any:
        """Ask the actor to run up to ``target`` blocks; an object ref."""
        return sp.actor.run_until.remote(target)

    def wait(self, refs: list[Any]) -> list[Any]:
        """The refs that finished within a second (at most one)."""
        import ray

        return list(ray.wait(refs, num_returns=1, timeout=1.0)[0])

    def result(self, ref: Any, sp: Any) -> dict[str, Any]:
        """The call's progress; ``ShardFailed`` if the shard raised, ``lost`` if its actor died."""
        import ray

        try:
            return dict(ray.get(ref))
        except ray.exceptions.RayTaskError as err:
            raise ShardFailed(f"run {sp.run} shard {sp.shard} failed:\n"
                              f"{err.cause if err.cause else err}") from None

    def stop(self, sp: Any) -> None:
        """Kill the shard's actor for good (no restart)."""
        import ray

        if sp.actor is not None:
            ray.kill(sp.actor, no_restart=True)
        sp.actor = None

    def cancel(self, ref: Any) -> None:
        """Abandon a call (not to be retried)."""
        import ray

        ray.cancel(ref)

    def close(self) -> None:
        """Nothing held beyond the actors."""
