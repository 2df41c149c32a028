"""The Zarr v3 archive: layout, pre-allocation by the driver, and the commit protocol.

Layout of one archive (one job)::

    /                       attrs["sgdthermo"]: schema_version, config, runs, device, version, created
    /run_000/               attrs["sgdthermo_run"]: index, label, resolved run spec, model facts
        posterior/theta             (chain, draw, coord)   NaN until committed
        sample_stats/loss           (chain, draw)          minibatch loss of the recorded step
        sample_stats/grad_norm      (chain, draw)          ‖g_B‖ of the recorded step
        sample_stats/full_loss      (chain, draw)          L(θ) at the draw (cheap models only)
        sample_stats/diverged       (chain, draw)          bool
        warmup_posterior/theta, warmup_sample_stats/*      burn-in draws, if run.keep_warmup
        fluctuation/sum             (chain, block, coord)  Σ of the rule's O3 term per block
        fluctuation/steps           (block,)               steps summed in each block
        fluctuation/identity        (chain, block, term, coord)  Σ of θ⊙pg, pg, ½(pg)² per block
                                    (the rate-weighted stationarity identity; absent in
                                    archives written before it, which read as "not recorded")
        checkpoint/commit           (shard, field)         [blocks_done, slot]
        checkpoint/slot{0,1}/...    state to resume from after blocks_done blocks

Every array is chunked by shard along ``chain`` and by ``chunk_draws`` along ``draw``, so each Ray
actor writes only whole chunks of its own chains. A block is committed by writing its data, then
the checkpoint into the slot not referenced by the current commit, then the commit record: a reader
or a resumed shard that trusts only ``blocks_done`` never sees a half-written block. Chunk writes of
Zarr's local store are atomic (temporary file and rename).
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import torch
import zarr
import zarr.storage

from .config import JobConfig, RunSpec

SCHEMA_VERSION = 1
DTYPES = {"float32": torch.float32, "float64": torch.float64}  # run.dtype → torch dtype of θ
RNG_BYTES = 8192  # room for any torch generator state (CPU mt19937: 5056 bytes, CUDA: 16)
ROOT_KEY, RUN_KEY = "sgdthermo", "sgdthermo_run"


class ArchiveError(ValueError):
    """A path that is not a usable sgdthermo archive; the message says why."""


def package_version() -> str:
    """Installed version of sgdthermo."""
    try:
        return version("sgdthermo")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


def open_store(path: str, read_only: bool = False) -> zarr.storage.StoreLike:
    """A Zarr store for a local path or an fsspec URL (``s3://…``, ``memory://…``)."""
    if "://" in path and not path.startswith("file://"):
        return zarr.storage.FsspecStore.from_url(path, read_only=read_only)
    return zarr.storage.LocalStore(path.removeprefix("file://"), read_only=read_only)


@dataclass(frozen=True)
class Block:
    """One unit of work and commit: ``n_draws`` draws of ``group`` from ``draw_start``."""

    index: int
    group: str  # "warmup" or "posterior"
    draw_start: int
    n_draws: int
    steps: int


def block_schedule(spec: RunSpec, chunk_draws: int) -> list[Block]:
    """Blocks of a run: burn-in blocks first, then posterior blocks, each at most one chunk."""
    blocks: list[Block] = []
    for group, total in (("warmup", spec.run.burn_in // spec.run.thin),
                         ("posterior", spec.run.draws)):
        for start in range(0, total, chunk_draws):
            n = min(chunk_draws, total - start)
            blocks.append(Block(len(blocks), group, start, n, n * spec.run.thin))
    return blocks


def shard_bounds(n_chains: int, shard_chains: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` chain ranges of the shards of a run."""
    return [(lo, min(lo + shard_chains, n_chains)) for lo in range(0, n_chains, shard_chains)]


def run_group_name(index: int) -> str:
    """Name of a run's group."""
    return f"run_{index:03d}"


def _array(group: zarr.Group, name: str, shape: tuple[int, ...], chunks: tuple[int, ...],
           dtype: Any, dims: tuple[str, ...], fill: Any) -> None:
    group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, fill_value=fill,
                       dimension_names=dims)


def _draw_arrays(group: zarr.Group, n_chains: int, n_draws: int, dim: int, shard: int,
                 chunk: int, dtype: str, full_loss: bool, prefix: str) -> None:
    post = group.create_group(f"{prefix}posterior")
    stats = group.create_group(f"{prefix}sample_stats")
    c = (shard, chunk)
    _array(post, "theta", (n_chains, n_draws, dim), (*c, dim), dtype,
           ("chain", "draw", "coord"), np.nan)
    for name in ("loss", "grad_norm") + (("full_loss",) if full_loss else ()):
        _array(stats, name, (n_chains, n_draws), c, dtype, ("chain", "draw"), np.nan)
    _array(stats, "diverged", (n_chains, n_draws), c, "bool", ("chain", "draw"), False)


def _state_arrays(ckpt: zarr.Group, spec: RunSpec, shard: int, n_shards: int,
                  state_shapes: dict[str, tuple[tuple[int, ...], str]]) -> None:
    for slot in (0, 1):
        g = ckpt.create_group(f"slot{slot}")
        for name, (shape, dtype) in state_shapes.items():
            dims = ("chain",) + tuple(f"{name}_dim_{i}" for i in range(len(shape)))
            fill = False if dtype == "bool" else 0
            _array(g, name, (spec.run.chains, *shape), (shard, *shape), dtype, dims, fill)
        _array(g, "rng", (n_shards, RNG_BYTES), (1, RNG_BYTES), "uint8", ("shard", "byte"), 0)
        _array(g, "rng_len", (n_shards,), (1,), "int64", ("shard",), 0)
    _array(ckpt, "commit", (n_shards, 2), (1, 2), "int64", ("shard", "field"), 0)


def create_archive(path: str, job: JobConfig, runs: list[RunSpec], device: str,
                   run_facts: list[dict[str, Any]]) -> None:
    """Pre-allocate every array of a job's archive (the driver calls this once).

    Args:
        path: Directory or URL of the new archive (must not exist).
        job: The validated job config, stored resolved in the root attributes.
        runs: Expanded sweep points.
        device: ``"cpu"`` or ``"cuda"``, fixed for the job so that resume is bitwise identical.
        run_facts: Per run: ``dim``, ``full_loss`` (bool), ``model`` (description) and
            ``state`` (name → (shape without chain, dtype)) of the engine's checkpoint state.
    """
    root = zarr.open_group(store=open_store(path), mode="w-", zarr_format=3)
    root.attrs[ROOT_KEY] = {
        "schema_version": SCHEMA_VERSION, "package_version": package_version(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": json.loads(job.model_dump_json()), "device": device,
        "runs": [{"index": r.index, "label": r.label, "group": run_group_name(r.index)}
                 for r in runs]}
    k, chunk = job.cluster.shard_chains, job.cluster.chunk_draws
    for spec, facts in zip(runs, run_facts, strict=True):
        g = root.create_group(run_group_name(spec.index))
        blocks = block_schedule(spec, chunk)
        n_shards = len(shard_bounds(spec.run.chains, k))
        posterior_blocks = [b for b in blocks if b.group == "posterior"]
        g.attrs[RUN_KEY] = {
            "index": spec.index, "label": spec.label, "spec": json.loads(spec.model_dump_json()),
            "model": facts["model"], "shard_chains": k, "chunk_draws": chunk,
            "n_blocks": len(blocks), "n_warmup_blocks": len(blocks) - len(posterior_blocks)}
        sh = min(k, spec.run.chains)
        args = (spec.run.chains, facts["dim"], sh, chunk, spec.run.dtype, facts["full_loss"])
        _draw_arrays(g, spec.run.chains, spec.run.draws, args[1], *args[2:], prefix="")
        if spec.run.keep_warmup and spec.run.burn_in:
            _draw_arrays(g, spec.run.chains, spec.run.burn_in // spec.run.thin, args[1],
                         *args[2:], prefix="warmup_")
        fl: Any = g.create_group("fluctuation")
        nb = max(len(posterior_blocks), 1)
        _array(fl, "sum", (spec.run.chains, nb, facts["dim"]), (sh, 1, facts["dim"]),
               "float64", ("chain", "block", "coord"), 0.0)
        _array(fl, "identity", (spec.run.chains, nb, 3, facts["dim"]), (sh, 1, 3, facts["dim"]),
               "float64", ("chain", "block", "term", "coord"), 0.0)
        _array(fl, "steps", (nb,), (nb,), "int64", ("block",), 0)
        fl["steps"][: len(posterior_blocks)] = np.array([b.steps for b in posterior_blocks])
        _state_arrays(g.create_group("checkpoint"), spec, sh, n_shards, facts["state"])
    with warnings.catch_warnings():  # consolidated metadata is not yet in the v3 spec
        warnings.simplefilter("ignore", category=UserWarning)
        zarr.consolidate_metadata(open_store(path))


def read_root(path: str) -> dict[str, Any]:
    """Root attributes of an archive, or ``ArchiveError`` if it is not a readable sgdthermo archive."""
    try:
        root = zarr.open_group(store=open_store(path, read_only=True), mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, ValueError) as err:
        raise ArchiveError(f"{path!r} is not a sgdthermo archive ({type(err).__name__})") from None
    meta = root.attrs.get(ROOT_KEY)
    if not isinstance(meta, dict) or "schema_version" not in meta:
        raise ArchiveError(f"{path!r} is a Zarr group but not a sgdthermo archive "
                           f"(no '{ROOT_KEY}' attributes)")
    if meta["schema_version"] > SCHEMA_VERSION:
        raise ArchiveError(f"{path!r} has archive schema {meta['schema_version']}, newer than "
                           f"this sgdthermo ({package_version()}) reads (up to "
                           f"{SCHEMA_VERSION}); upgrade sgdthermo")
    return meta


def committed_blocks(path: str, run_index: int) -> np.ndarray:
    """``blocks_done`` of every shard of a run, ``[n_shards]``."""
    root = zarr.open_group(store=open_store(path, read_only=True), mode="r")
    commit: Any = root[f"{run_group_name(run_index)}/checkpoint/commit"]
    return np.asarray(commit[:, 0])


def committed_draws(blocks: list[Block], blocks_done: int) -> dict[str, int]:
    """Draws of each group that are committed after ``blocks_done`` blocks."""
    out = {"warmup": 0, "posterior": 0}
    for b in blocks[:blocks_done]:
        out[b.group] = b.draw_start + b.n_draws
    return out


def n_posterior_blocks(blocks: list[Block]) -> int:
    """Number of posterior blocks (fluctuation sums are indexed by them)."""
    return sum(b.group == "posterior" for b in blocks)
