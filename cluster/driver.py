"""The driver: starts or joins Ray, creates the archive, and keeps every shard actor busy.

Public facade over private actors (Ray's own pattern). Each remote call runs a whole block (a chunk
of draws, thousands of steps); the driver waits with ``ray.wait`` and only ever receives small
progress dicts, never data: actors write the archive themselves.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

from ..sampler.archive import (
    ArchiveError,
    RunStore,
    archived_job,
    check_reachable,
    create_archive,
    is_url,
    read_root,
    remove_tree,
    storage_errors,
    storage_options,
)
from ..sampler.config import JobConfig
from ..sampler.config.torch_model import supplied
from ..sampler.jobspec import expand
from ..sampler.native import unavailable_reason
from ..sampler.shard import state_facts
from . import signals
from .errors import JobInterrupted, ShardFailed
from .executors import ProcessExecutor, RayExecutor
from .shards import ShardProgress, shard_table
from .signals import Terminated, was_terminated
from .until import advance, finish_until


def init_ray(address: str | None = None) -> str:
    """Join ``address`` (or ``RAY_ADDRESS``), else start the embedded local instance.

    Returns:
        ``"joined"`` or ``"local"`` (or ``"existing"`` when Ray was already initialised).
    """
    if ray.is_initialized():
        return "existing"
    had_ours = signals.ours()
    try:
        return _start_ray(address)
    except SystemExit as err:  # Ray's handler during its start: sys.exit(SIGTERM)
        if err.code != signal.SIGTERM:
            raise
        signals.note_sigterm()
        raise Terminated() from None
    finally:
        if had_ours:  # ray.init replaced our handler with its own
            signals.reinstall()


class _Unactionable(logging.Filter):
    """Drops Ray's start-up notes that ask nothing of the user.

    Ray 2.5x announces "Token authentication is enabled for this Ray cluster" on every local
    start: it is Ray's secure default, so there is nothing to do about it. Warnings that ask
    for action (e.g. that authentication is *disabled*) pass.
    """

    QUIET = ("Token authentication is enabled for this Ray cluster",)

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.QUIET)


_RAY_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


def _start_ray(address: str | None) -> str:
    quiet = _Unactionable()
    logging.getLogger(_RAY_AUTH_LOGGER).addFilter(quiet)
    try:
        return _init(address)
    finally:
        logging.getLogger(_RAY_AUTH_LOGGER).removeFilter(quiet)


def _init(address: str | None) -> str:
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        try:
            ray.init(address=address, logging_level=logging.WARNING)
        except ConnectionError as err:
            raise ConnectionError(f"--address: cannot join the Ray cluster at {address!r} "
                                  f"({err}); start one with `ray start --head` or omit "
                                  f"--address and RAY_ADDRESS to use the embedded instance") \
                from None
        return "joined"
    # address="local": always a new instance of our own, even beside a `ray start` head
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
             logging_level=logging.WARNING)
    return "local"


def nodes_on_this_machine() -> bool:
    """Whether every live node of the Ray cluster runs on this machine (host name)."""
    host = socket.gethostname()
    return all(n.get("NodeManagerHostname") == host for n in ray.nodes() if n.get("Alive"))


def resolve_device(requested: str) -> str:
    """``auto`` → ``cuda`` when the Ray cluster has GPUs, else ``cpu``."""
    gpus = ray.cluster_resources().get("GPU", 0) if ray.is_initialized() else 0
    if requested == "auto":
        return "cuda" if gpus > 0 else "cpu"
    if requested == "cuda" and gpus <= 0:
        raise ValueError("cluster.device: 'cuda' requested but the Ray cluster has no GPU; "
                         "allowed: auto, cpu, cuda")
    return requested


def local_device(requested: str) -> str:
    """``auto`` → ``cuda`` when this process sees a GPU, else ``cpu`` (shards run here)."""
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def ray_running() -> bool:
    """Whether this process is already connected to Ray (a notebook's, a test session's)."""
    return bool(ray.is_initialized())


def check_output(out: str, overwrite: bool) -> None:
    """Refuse to replace anything but an existing archive, and that only with ``overwrite``.

    For a URL the storage is reached here, before Ray starts: an unreachable endpoint or a
    missing bucket is one ``StorageError`` line.
    """
    if not (check_reachable(out) if is_url(out) else Path(out).exists()):
        return
    try:
        read_root(out)
    except ArchiveError:
        raise ArchiveError(f"--out {out!r} exists and is not a sgdthermo archive; "
                           f"refusing to touch it") from None
    if not overwrite:
        raise ArchiveError(f"--out {out!r} already holds an archive; pass --overwrite "
                           f"to replace it, or `sgdthermo resume {out}` to continue it")


def validate_runs(job: JobConfig) -> list[dict[str, Any]]:
    """Build every run's model and rule once (raises on bad data files or unstable rates)."""
    return [state_facts(r) for r in expand(job)]


def prepare_archive(job: JobConfig, out: str, overwrite: bool, device: str,
                    facts: list[dict[str, Any]] | None = None) -> None:
    """Validate every run and pre-allocate the archive at ``out``."""
    facts = facts if facts is not None else validate_runs(job)
    if device == "cuda":  # the native kernels are the CPU forms of the fused and lean paths
        on_gpu = {"native": "fused", "lean_native": "lean"}
        facts = [{**f, "kernel": on_gpu.get(f["kernel"], f["kernel"])} for f in facts]
    check_output(out, overwrite)
    if is_url(out):
        remove_tree(out)
    elif Path(out).exists():
        shutil.rmtree(out)
    with storage_errors(out):
        create_archive(out, job, expand(job), device, facts)


def check_kernels(path: str) -> None:
    """Refuse (``ArchiveError``) to resume runs whose engine path cannot run on this machine.

    A run is always continued by the path that wrote it; ``native`` needs a C compiler here.
    """
    _, runs = archived_job(read_root(path))
    native = [spec.index for spec in runs
              if RunStore(path, spec.index).kernel in ("native", "lean_native")]
    reason = unavailable_reason() if native else None
    if reason is not None:
        raise ArchiveError(f"{path!r}: run(s) {native} were written by the native kernel, which "
                           f"cannot run here ({reason}); resume on a machine with a C compiler")


LOSSES = 3  # a shard's losses in a row (no block between them) before the job stops


def run_archive(path: str, on_progress: Callable[[list[ShardProgress]], None] | None = None,
                blocks_per_call: int = 1,
                notify: Callable[[str], None] | None = None,
                executor: str = "ray") -> list[ShardProgress]:
    """Run every unfinished shard of the archive to completion.

    With ``executor="ray"`` on the current Ray instance: a shard whose actor is lost (its node
    died, or it died beyond Ray's own restarts) gets a new actor, which restores from the
    shard's last commit wherever Ray places it; its calls are idempotent, so nothing is run
    twice into the archive. After ``max(3, max_restarts + 1)`` such losses of one shard in a
    row, with no block committed between them, the job stops (``ShardFailed``). Each
    replacement waits a second per loss in a row, so that a dying node is marked dead before
    the new actor is placed. With ``executor="process"`` the shards run here, a block at a
    time (``executors``).

    Args:
        path: Archive created by ``prepare_archive``.
        on_progress: Called with the shard table after every completed call.
        blocks_per_call: Blocks per call (each block is ``chunk_draws·thin`` steps).
        notify: Called with a one-line message when an actor is replaced.
        executor: ``"ray"`` or ``"process"``.

    Raises:
        ShardFailed: A shard raised (bad device, data error), or lost its actor too often;
            others are stopped.
        JobInterrupted: On KeyboardInterrupt; committed blocks stay valid.
    """
    meta = read_root(path)
    job, _ = archived_job(meta)
    device = meta["device"]
    # actors run in their worker's folder, not the driver's: a relative path is the driver's
    where = path if is_url(path) else os.path.abspath(path.removeprefix("file://"))
    if executor == "process":
        shards: Any = ProcessExecutor(where, device)
    else:
        if device == "cuda" and ray.cluster_resources().get("GPU", 0) <= 0:
            raise ArchiveError(f"{path!r} was created for CUDA but this Ray cluster has no GPU; "
                               f"resume it on a cluster with GPUs (device is fixed per archive "
                               f"so that resumed chains stay bitwise identical)")
        given = supplied()  # a user's module: its objects or source files travel to every actor
        user = given if any(v is not None for v in given) else None
        shards = RayExecutor(where, device, job, storage_options(), user)
    table = shard_table(path)
    pending: dict[Any, ShardProgress] = {}
    losses: dict[tuple[int, int], int] = {}

    def call(sp: ShardProgress) -> None:
        target = min(sp.blocks_done + blocks_per_call, len(sp.steps))
        pending[shards.submit(sp, target)] = sp

    def start(sp: ShardProgress) -> None:
        shards.start(sp)
        call(sp)

    def settle(run: int) -> None:
        """A run.until run at its barrier: its next decision, then its shards go on or stop."""
        runs_shards = [sp for sp in table if sp.run == run]
        if not all(sp.waiting for sp in runs_shards):
            return
        steps = advance(path, run)
        for sp in runs_shards:
            if steps is None:
                sp.open = False
                shards.stop(sp)
            else:
                sp.steps = steps
                start(sp) if sp.actor is None else call(sp)

    try:
        finished = {sp.run for sp in table if sp.done}
        for run in sorted({sp.run for sp in table if sp.open} | finished):
            settle(run) if run not in finished else finish_until(path, run)
        for sp in table:
            if not sp.done and not sp.waiting and sp.actor is None:
                start(sp)
        if on_progress:
            on_progress(table)
        while pending:
            for ref in shards.wait(list(pending)):
                sp = pending.pop(ref)
                try:
                    result = shards.result(ref, sp)
                except shards.lost as err:
                    key = (sp.run, sp.shard)
                    losses[key] = losses.get(key, 0) + 1
                    if losses[key] > max(LOSSES, job.cluster.max_restarts + 1):
                        raise ShardFailed(f"run {sp.run} shard {sp.shard}: its actor was lost "
                                          f"{losses[key]} times in a row without progress "
                                          f"({type(err).__name__})") from None
                    time.sleep(losses[key])  # let Ray mark a dying node dead before placing
                    if notify:
                        notify(f"run {sp.run} shard {sp.shard}: actor lost "
                               f"({type(err).__name__}); a new one continues from its last "
                               f"commit")
                    shards.stop(sp)
                    start(sp)
                    continue
                sp.blocks_done, sp.diverged = result["blocks_done"], result["diverged"]
                losses.pop((sp.run, sp.shard), None)  # progress: its losses start over
                if sp.done:
                    shards.stop(sp)  # frees its CPU/GPU for actors still waiting
                elif sp.waiting:  # a run.until run: decide once all its shards are here
                    settle(sp.run)
                else:
                    call(sp)
            if on_progress:
                on_progress(table)
    except KeyboardInterrupt as err:
        term = was_terminated(err)
        what = "terminated (SIGTERM)" if term else "interrupted"
        raise JobInterrupted(f"{what}; committed blocks are safe. Continue with "
                             f"`sgdthermo resume {path}`", 143 if term else 130) from None
    finally:
        for ref in pending:  # calls abandoned, not to be retried (nor "retries remaining" lines)
            shards.cancel(ref)
        for sp in table:
            if sp.actor is not None:
                shards.stop(sp)
        shards.close()
    return table
