"""Creating an archive: the driver pre-allocates every array once (``create_archive``).

The names, dims and chunking follow ``schema``; shards later write only their own whole chunks.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import zarr
import zarr.storage
from zarr.codecs import BloscCodec

from ..config import JobConfig, RunSpec
from ..recording import Recording
from .integrity import BLOCK_CHECKSUM, STATE_CHECKSUM
from .schema import (
    CHUNK_BYTES,
    CONSTANT_DATA,
    INTERNAL,
    LAYOUT_FLAT,
    LAYOUT_LAYERS,
    RNG_BYTES,
    ROOT_KEY,
    RUN_KEY,
    SCHEMA_VERSION,
    STAT_NAMES,
    WARMUP_PREFIX,
    block_draws,
    coord_chunk,
    package_version,
    run_group_name,
    shard_bounds,
)
from .storage import consolidate, write_new
from .until_state import create_until, until_schedule

# Draws of θ barely compress (random mantissas: 7–11 % with any codec); blosc lz4 with byte
# shuffle keeps about zstd's size and reads twice as fast (benchmarks/bench_compression.py).
DRAW_COMPRESSOR = BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")


def _array(group: zarr.Group, name: str, shape: tuple[int, ...], chunks: tuple[int, ...],
           dtype: Any, dims: tuple[str, ...], fill: Any, compressor: Any = "auto") -> None:
    group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, fill_value=fill,
                       dimension_names=dims, compressors=compressor)


def _layer_arrays(post: Any, n_chains: int, n_draws: int, shard: int, chunk: int, dtype: str,
                  variables: list[Any]) -> None:
    """One array per named variable ``name (chain, draw, *dims)``, chunked along its first dim."""
    itemsize = np.dtype(dtype).itemsize
    for name, shape, dims in variables:
        row = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        lead = int(min(shape[0], max(1, CHUNK_BYTES // max(shard * chunk * row * itemsize, 1))))
        _array(post, str(name), (n_chains, n_draws, *shape), (shard, chunk, lead, *shape[1:]),
               dtype, ("chain", "draw", *dims), np.nan, DRAW_COMPRESSOR)


def _draw_arrays(group: zarr.Group, n_chains: int, n_draws: int, dim: int, shard: int,
                 chunk: int, dtype: str, full_loss: bool, prefix: str,
                 recording: Recording, layers: list[Any] | None,
                 storage: str | None = None) -> None:
    """The posterior and sample_stats arrays.

    The draws of θ (and projections, norms) are stored in ``storage`` (``run.record.dtype``;
    default ``dtype``), the statistics in ``dtype``.
    """
    attrs = {"created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
             "inference_library": "sgdthermo", "inference_library_version": package_version()}
    post: Any = group.create_group(f"{prefix}posterior", attributes=attrs)
    stats: Any = group.create_group(f"{prefix}sample_stats", attributes=attrs)
    for g in (post, stats):  # ArviZ's chain and draw coordinate values
        _array(g, "chain", (n_chains,), (n_chains,), "int64", ("chain",), 0)
        g["chain"][...] = np.arange(n_chains)
        _array(g, "draw", (n_draws,), (max(n_draws, 1),), "int64", ("draw",), 0)
        g["draw"][...] = np.arange(n_draws)
    c = (shard, chunk)
    n_coords = recording.n_coords(dim)
    draw_dtype = storage or dtype
    coords = coord_chunk(n_coords, shard, chunk, np.dtype(draw_dtype).itemsize)
    if layers:  # a network recorded in full: its layers as ArviZ variables (``LAYOUT_LAYERS``)
        _layer_arrays(post, n_chains, n_draws, shard, chunk, draw_dtype, layers)
    else:
        _array(post, "theta", (n_chains, n_draws, n_coords), (*c, coords), draw_dtype,
               ("chain", "draw", "coord"), np.nan, DRAW_COMPRESSOR)
    if not layers:  # θ's coordinate labels: the recorded ones (run.record), else 0 … D−1
        _array(post, "coord", (n_coords,), (max(n_coords, 1),), "int64", ("coord",), 0)
        post["coord"][...] = (recording.coords if recording.coords is not None
                              else np.arange(n_coords))
    for name, _, _ in recording.layers or ():
        _array(post, f"{name}_norm", (n_chains, n_draws), c, draw_dtype, ("chain", "draw"),
               np.nan)
    if recording.directions is not None:
        k = recording.directions.shape[1]
        _array(post, "projection", (n_chains, n_draws, k), (*c, k), draw_dtype,
               ("chain", "draw", "direction"), np.nan, DRAW_COMPRESSOR)
    for name in ("loss", "grad_norm") + (("full_loss", "lp") if full_loss else ()):
        _array(stats, name, (n_chains, n_draws), c, dtype, ("chain", "draw"), np.nan)
    _array(stats, STAT_NAMES["diverged"], (n_chains, n_draws), c, "bool", ("chain", "draw"),
           False)


def _state_arrays(ckpt: zarr.Group, spec: RunSpec, shard: int, n_shards: int, n_blocks: int,
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
    # digests (``integrity``): each shard owns its rows, written before its commit record
    nb = max(n_blocks, 1)
    _array(ckpt, BLOCK_CHECKSUM, (n_shards, nb), (1, min(nb, 4096)), "uint64",
           ("shard", "block"), 0)
    _array(ckpt, STATE_CHECKSUM, (n_shards, 2), (1, 2), "uint64", ("shard", "slot"), 0)


def _model_arrays(group: zarr.Group, arrays: dict[str, np.ndarray], name: str) -> None:
    """The model's defining arrays under ``name/``, in rows of at most 4 MiB."""
    if not arrays:
        return
    model: Any = group.create_group(name)
    for name, values in arrays.items():
        rows = max(1, CHUNK_BYTES // max(values[0:1].nbytes, 1)) if values.ndim > 1 else None
        chunks = (min(rows, values.shape[0]), *values.shape[1:]) if rows else values.shape
        dims = tuple(f"{name}_{i}" for i in range(values.ndim))
        _array(model, name, values.shape, chunks, values.dtype, dims, 0.0)
        model[name][...] = values


def create_archive(path: str, job: JobConfig, runs: list[RunSpec], device: str,
                   run_facts: list[dict[str, Any]]) -> None:
    """Pre-allocate every array of a job's archive (the driver calls this once).

    Args:
        path: Directory or URL of the new archive (must not exist).
        job: The validated job config, stored resolved in the root attributes.
        runs: Expanded sweep points.
        device: ``"cpu"`` or ``"cuda"``, fixed for the job so that resume is bitwise identical.
        run_facts: Per run: ``dim``, ``full_loss`` (bool), ``kernel`` (the engine path),
            ``arrays`` (the model's defining arrays, written under ``constant_data/``),
            ``variables`` (θ's named blocks ``[name, shape, dims]``; ``[]``: one ``theta``),
            ``recording`` (``sampler.recording.Recording``: recorded coordinates, projection
            directions; absent: all of θ), ``layout`` (``"layers"``: a network's variables as
            arrays of their own; absent or ``"flat"``: one ``theta``),
            ``model`` (description) and
            ``state`` (name → (shape without chain, dtype)) of the engine's checkpoint state.
    """
    memory = zarr.storage.MemoryStore()  # built in memory, then written at once (write_new)
    root = zarr.open_group(store=memory, mode="w-", zarr_format=3)
    root.attrs[ROOT_KEY] = {
        "schema_version": SCHEMA_VERSION, "package_version": package_version(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": json.loads(job.model_dump_json()), "device": device,
        "runs": [{"index": r.index, "label": r.label, "group": run_group_name(r.index)}
                 for r in runs]}
    k = job.cluster.shard_chains
    for spec, facts in zip(runs, run_facts, strict=True):
        g = root.create_group(run_group_name(spec.index))
        recording = facts.get("recording") or Recording(None, None)
        layout = facts.get("layout", LAYOUT_FLAT)
        chunk = block_draws(job.cluster.chunk_draws, min(k, spec.run.chains),
                            recording.n_recorded(facts["dim"]),
                            np.dtype(spec.run.storage_dtype).itemsize)
        blocks = until_schedule(spec, chunk, None)  # every block up to the caps
        n_shards = len(shard_bounds(spec.run.chains, k))
        posterior_blocks = [b for b in blocks if b.group == "posterior"]
        g.attrs[RUN_KEY] = {
            "index": spec.index, "label": spec.label, "spec": json.loads(spec.model_dump_json()),
            "model": facts["model"], "shard_chains": k, "chunk_draws": chunk,
            "kernel": facts.get("kernel", "step"), "variables": facts.get("variables", []),
            "layout": layout, "partial": recording.partial,
            **({"sums_virial": True} if recording.sums_virial else {}),
            **({} if recording.layers is None else {
                "layer_norms": [list(layer) for layer in recording.layers]}),
            "n_blocks": len(blocks), "n_warmup_blocks": len(blocks) - len(posterior_blocks)}
        sh = min(k, spec.run.chains)
        args = (spec.run.chains, facts["dim"], sh, chunk, spec.run.dtype, facts["full_loss"])
        layers = facts.get("variables") if layout == LAYOUT_LAYERS else None
        _draw_arrays(g, spec.run.chains, spec.run.max_draws, args[1], *args[2:], prefix="",
                     recording=recording, layers=layers, storage=spec.run.storage_dtype)
        if spec.run.records_warmup and spec.run.max_burn_in:
            _draw_arrays(g, spec.run.chains, spec.run.max_burn_in // spec.run.thin, args[1],
                         *args[2:], prefix=WARMUP_PREFIX, recording=recording, layers=layers,
                         storage=spec.run.storage_dtype)
        internal: Any = root.require_group(INTERNAL).create_group(run_group_name(spec.index))
        fl: Any = internal.create_group("fluctuation")
        nb = max(len(posterior_blocks), 1)
        d = facts["dim"]
        fc = coord_chunk(d, sh, 4, 8)  # 4 MiB chunks: a block of coordinates reads only its own
        _array(fl, "sum", (spec.run.chains, nb, d), (sh, 1, fc), "float64",
               ("chain", "block", "coord"), 0.0)
        _array(fl, "identity", (spec.run.chains, nb, 3, d), (sh, 1, 3, fc), "float64",
               ("chain", "block", "term", "coord"), 0.0)
        if spec.run.until is not None and spec.run.until.equilibrate:  # the FDR test's sums
            nw = max(len(blocks) - len(posterior_blocks), 1)
            _array(fl, "warmup_identity", (spec.run.chains, nw, 3, d), (sh, 1, 3, fc), "float64",
                   ("chain", "warmup_block", "term", "coord"), 0.0)
        if recording.keeps_virial:  # θ recorded partly, or a user's module: the engine's sums
            _array(fl, "virial", (spec.run.chains, nb, 3, d), (sh, 1, 3, fc), "float64",
                   ("chain", "block", "term", "coord"), 0.0)
        _array(fl, "steps", (nb,), (nb,), "int64", ("block",), 0)
        fl["steps"][: len(posterior_blocks)] = np.array([b.steps for b in posterior_blocks])
        _state_arrays(internal.create_group("checkpoint"), spec, sh, n_shards, len(blocks),
                      facts["state"])
        if spec.run.until is not None:
            create_until(internal, spec, chunk, n_shards)
        directions = {} if recording.directions is None else {"directions": recording.directions}
        _model_arrays(g, {**facts.get("arrays", {}), **directions}, CONSTANT_DATA)
    consolidate(memory)
    write_new(path, memory)
