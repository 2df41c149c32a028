"""Running a job from Python (a notebook) as ``sgdthermo run`` / ``resume`` do from the shell.

``run_job(config, out)`` takes a TOML path or a mapping, makes every check the CLI makes before
Ray starts, runs the job on the embedded Ray instance (or ``address``) in this process and
returns the archive path; ``resume_job(archive)`` continues one. Errors are the CLI's,
raised as exceptions with the same one-line messages (``ConfigError``, ``ArchiveError``,
``DataError``, ``JobInterrupted`` …). Ray stays up after a job, so the next one starts at once.

Reading the result needs no Ray: ``sgdthermo.analysis.open_archive(path)`` gives each run's
committed draws (``RunData.inference_data()``, ``.posterior()``), ``analyze_run`` its typed
record, ``analyze_archive`` all of them with the claim verdict.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from ..sampler.archive import (
    CorruptArchiveError,
    RunStore,
    archived_job,
    read_root,
    set_storage_options,
    verify_archive,
)
from ..sampler.config import JobConfig
from ..sampler.jobspec import ConfigError, job_from_mapping, load_job
from ..sampler.shard import repair_shard
from .driver import (
    ShardProgress,
    check_kernels,
    check_output,
    init_ray,
    local_device,
    nodes_on_this_machine,
    prepare_archive,
    ray_running,
    resolve_device,
    run_archive,
    validate_runs,
)
from .executors import choose_executor
from .lease import Lease, acquire, refuse_if_held, takeover_line
from .progress import RunBars
from .resources import check_resources
from .signals import handle_sigterm
from .user_code import check_sources, shipped


def load_config(config: str | Path | Mapping[str, Any],
                overrides: Sequence[str] = ()) -> JobConfig:
    """A job from a TOML file or a mapping (relative data files against the working folder)."""
    if isinstance(config, Mapping):
        return job_from_mapping(dict(config), list(overrides), Path.cwd())
    return load_job(config, list(overrides))


def check_job(job: JobConfig, out: str, overwrite: bool = False, force: bool = False,
              resource_check: bool = True,
              console: Console | None = None) -> list[dict[str, Any]]:
    """Every check before Ray starts; returns each run's facts (``shard.state_facts``)."""
    if job.claim is not None:  # the claims (and the analysis they import) load only if named
        from ..analysis.claims import check_claim_name

        try:
            check_claim_name(job.claim)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    facts = validate_runs(job)
    check_resources(job, facts, out, machine=resource_check)
    previous = refuse_if_held(out, force, name=f"--out {out!r}")
    check_output(out, overwrite)
    _say_takeover(out, previous, console)
    return facts


def _say_takeover(archive: str, previous: dict[str, Any] | None,
                  console: Console | None) -> None:
    """The one line when this driver takes the archive over from another (``lease``)."""
    line = takeover_line(archive, previous)
    if line is not None:
        (console or Console(stderr=True)).print(line, markup=False)


def execute(path: str, mode: str, held: Lease, progress: bool = False,
            console: Console | None = None, executor: str = "ray") -> list[ShardProgress]:
    """Run every unfinished shard of the archive while holding its lease; release it after.

    ``mode``: how Ray was reached (``init_ray``); ``executor``: ``"ray"`` or ``"process"``
    (the shards in this process, ``executors.ProcessExecutor``).
    """
    console = console or Console(stderr=True)
    meta = read_root(path)
    labels = {r["index"]: r["label"] for r in meta["runs"]}
    where = "this process (no Ray)" if executor == "process" else f"ray: {mode}"
    console.print(f"[dim]{where}; device: {meta['device']}; archive: {path}[/dim]")
    held.set_writers_local(executor == "process" or nodes_on_this_machine())
    restore = handle_sigterm()
    try:
        with RunBars(labels, enabled=progress, console=console) as bars:
            def update(shards: list[ShardProgress]) -> None:
                held.check()  # stop if another driver took the archive over
                bars.update(shards)

            table = run_archive(path, on_progress=update,
                                notify=lambda line: console.print(line, markup=False),
                                executor=executor)
    finally:
        restore()  # the previous SIGTERM handler (a notebook's, or the default)
        held.release()
    diverged = sum(sp.diverged for sp in table)
    console.print(f"done: {len(labels)} run(s), {diverged} diverged chain(s) -> {path}")
    return table


def run_job(config: str | Path | Mapping[str, Any], out: str, *, overrides: Sequence[str] = (),
            address: str | None = None, overwrite: bool = False, force: bool = False,
            resource_check: bool = True, progress: bool = False,
            storage_options: Mapping[str, Any] | None = None,
            console: Console | None = None, model: Any = None, loss: Any = None,
            data: Any = None) -> str:
    """Validate, run and return the archive path (``sgdthermo run`` without the analysis).

    Args:
        config: A TOML path, or the same tables as a mapping.
        out: The archive's path or fsspec URL.
        overrides: ``"key=value"`` settings (``--set``).
        address: A Ray cluster to join (default: ``RAY_ADDRESS``, else the embedded instance).
        overwrite: Replace an existing archive at ``out``.
        force: Take ``out`` over from a driver that holds it.
        resource_check: Check disk and memory against this machine.
        progress: Show progress (bars on a terminal, lines elsewhere).
        storage_options: fsspec options for an archive URL (``--storage-option``), over the
            config's ``cluster.storage_options``; set for this process and every actor.
        console: Where messages and progress go (default: stderr).
        model: A ``torch.nn.Module`` for a ``kind = "torch"`` model that names no module
            (each chain starts from a copy whose layers' ``reset_parameters()`` ran under the
            chain's seed, or, with ``model.init = "shared"``, from this module's parameters
            plus noise).
        loss: Its per-example loss ``fn(output, y) → [B]`` (default: the config's).
        data: ``(x, y)`` arrays or tensors, when the config names no data file.
    """
    from ..sampler.config.torch_model import Supplied, supplying

    job = load_config(config, overrides)
    set_storage_options({**job.cluster.storage_options, **(storage_options or {})})
    user = Supplied(model, loss, data) if (model, loss, data) != (None, None, None) else None
    with supplying(user):
        facts = check_job(job, out, overwrite, force, resource_check, console)
        ship = shipped(job)  # read before Ray starts: what every actor builds the module from
    with supplying(ship):
        executor = choose_executor(job, [int(f["dim"]) for f in facts], address,
                                   ray_running())
        mode = "none" if executor == "process" else init_ray(address)
        device = (local_device(job.cluster.device) if executor == "process"
                  else resolve_device(job.cluster.device))
        prepare_archive(job, out, overwrite, device, facts)
        execute(out, mode, acquire(out, force=True), progress, console, executor)
    return out


def resume_job(archive: str, *, address: str | None = None, force: bool = False,
               progress: bool = False, storage_options: Mapping[str, Any] | None = None,
               repair: bool = False, console: Console | None = None, model: Any = None,
               loss: Any = None, data: Any = None) -> str:
    """Continue an interrupted job bitwise identically (``sgdthermo resume``).

    Every committed block is checked against its checksum first; a corrupt one is refused
    (``CorruptArchiveError``) unless ``repair``, which re-runs it from its shard's start in
    this process (bitwise, checked against the stored checksum) before the job continues.
    ``storage_options`` as for ``run_job``, over those stored in the archive's config.
    ``model``, ``loss``, ``data``: the same objects the job was run with (``run_job``). A run
    whose module or loss file has changed since it began is refused before Ray starts.
    """
    from ..sampler.config.torch_model import Supplied, supplying

    user = Supplied(model, loss, data) if (model, loss, data) != (None, None, None) else None
    with supplying(user):
        return _resume(archive, address, force, progress, storage_options, repair, console)


def _resume(archive: str, address: str | None, force: bool, progress: bool,
            storage_options: Mapping[str, Any] | None, repair: bool,
            console: Console | None) -> str:
    given = dict(storage_options or {})
    set_storage_options(given)
    meta = read_root(archive)  # refuse a non-archive before starting Ray
    stored = meta["config"].get("cluster", {}).get("storage_options", {})
    set_storage_options({**stored, **given})
    check_kernels(archive)  # and runs this machine cannot continue
    job, runs = archived_job(meta)
    check_sources(archive, runs, [RunStore(archive, r.index).model_facts for r in runs])
    from ..sampler.config.torch_model import supplying

    with supplying(shipped(job)):
        return _continue(archive, address, force, progress, repair, console)


def _continue(archive: str, address: str | None, force: bool, progress: bool, repair: bool,
              console: Console | None) -> str:
    """``resume_job`` after its checks: the lease, integrity, Ray, the shards."""
    held = acquire(archive, force=force)  # and a job another driver is running
    _say_takeover(archive, held.taken_from, console)
    try:
        check_integrity(archive, repair, console or Console(stderr=True))
        meta = read_root(archive)
        job, runs = archived_job(meta)
        dims = [int(RunStore(archive, r.index).model_facts.get("dim", 1)) for r in runs]
        executor = ("ray" if meta["device"] == "cuda" and job.cluster.executor == "auto"
                    else choose_executor(job, dims, address, ray_running()))
        mode = "none" if executor == "process" else init_ray(address)
    except BaseException:
        held.release()
        raise
    execute(archive, mode, held, progress, console, executor)
    return archive


def check_integrity(archive: str, repair: bool, console: Console) -> None:
    """Verify every committed block; repair corrupt ones if asked, else refuse in one line."""
    report = verify_archive(archive)
    if report.ok:
        return
    if not repair:
        report.raise_if_corrupt()
    shards: dict[tuple[int, int], tuple[set[int], bool]] = {}
    for c in report.corruptions:
        if c.shard < 0:
            raise CorruptArchiveError(f"{archive!r}: {c.describe()}; cannot repair")
        blocks, ckpt = shards.get((c.run, c.shard), (set(), False))
        shards[(c.run, c.shard)] = (blocks | ({c.block} if c.block is not None else set()),
                                    ckpt or c.block is None)
    for (run, shard), (blocks, ckpt) in sorted(shards.items()):
        console.print(f"repairing run {run} shard {shard}: "
                      f"{len(blocks)} block(s){' and its checkpoint' if ckpt else ''}")
        repair_shard(archive, run, shard, blocks, ckpt)
    again = verify_archive(archive)
    if not again.ok:  # pragma: no cover - repair checks every block it writes
        raise CorruptArchiveError(f"{archive!r}: still corrupt after repair: {again.summary()}")
    console.print(f"repaired: {len(report.corruptions)} corrupt item(s), all checksums match")


def warm_analysis() -> None:
    """Import the analysis in a thread while Ray starts (its processes, not our GIL)."""
    import importlib

    threading.Thread(target=importlib.import_module, daemon=True,
                     args=("sgdthermo.analysis.analyze",)).start()
