"""The archive schema: names, schema version, dtypes, block schedule and shard bounds.

Everything a writer and a reader must agree on lives here; ``layout`` creates the arrays and
``store`` reads and writes them. The layout of one archive (one job)::

    /                       attrs["sgdthermo"]: schema_version, config, runs, device, version, created
    /run_000/               attrs["sgdthermo_run"]: index, label, resolved run spec, model facts,
                            kernel (the engine path that writes it: "native", "fused", "step").
                            Only ArviZ InferenceData groups (``az.from_datatree`` reads them),
                            each with attrs created_at, inference_library(_version):
        posterior/theta             (chain, draw, coord)   NaN until committed (run.record:
                                    a subset of coordinates, labelled by posterior/coord)
        posterior/<layer>           (chain, draw, *dims)   instead of theta for a network recorded
                                    in full (layout "layers": w1 (chain, draw, w1_out, w1_in), …;
                                    archives from before have theta, layout "flat")
        posterior/projection        (chain, draw, direction)  θU for run.record.projections
        posterior/<layer>_norm      (chain, draw)          ‖θ_layer‖ for run.record.layer_norms
        posterior/chain, draw, coord                       coordinate values (0, 1, …; coord: the
                                    recorded coordinates of θ)
        sample_stats/loss           (chain, draw)          minibatch loss of the recorded step
        sample_stats/grad_norm      (chain, draw)          ‖g_B‖ of the recorded step
        sample_stats/full_loss      (chain, draw)          L(θ) at the draw (cheap models only)
        sample_stats/lp             (chain, draw)          −L(θ), beside full_loss
        sample_stats/diverging      (chain, draw)          bool (schema 1: ``diverged``)
        warmup_posterior/theta, warmup_sample_stats/*      burn-in draws, if run.keep_warmup
        constant_data/<name>        the model's defining arrays (a quadratic's H and Σ) and the
                                    projection directions U (D, k) (schema 1: model/, recording/)
    /_sgdthermo/run_000/    the run's own state (schema 1: inside /run_000/):
        fluctuation/sum             (chain, block, coord)  Σ of the rule's O3 term per block
        fluctuation/steps           (block,)               steps summed in each block
        fluctuation/identity        (chain, block, term, coord)  Σ of θ⊙pg, pg, ½(pg)² per block
                                    (the rate-weighted stationarity identity; absent in
                                    archives written before it, which read as "not recorded")
        fluctuation/virial          (chain, block, term, coord)  Σ of θ, θ⊙g_B, g_B per block
                                    (only when θ is recorded partly: the virial temperature)
        checkpoint/commit           (shard, field)         [blocks_done, slot]
        checkpoint/block_checksum   (shard, block)         digest of each committed block
        checkpoint/state_checksum   (shard, slot)          digest of each checkpoint slot
                                    (``integrity``; absent in archives written before them)
        checkpoint/slot{0,1}/...    state to resume from after blocks_done blocks

Every array is chunked by shard along ``chain`` and by ``chunk_draws`` along ``draw`` (``theta``
also along ``coord`` once a chunk would pass 4 MiB: ``coord_chunk``), so each Ray actor writes
only whole chunks of its own chains. A block is committed by writing its data, then
the checkpoint into the slot not referenced by the current commit, then the commit record: a reader
or a resumed shard that trusts only ``blocks_done`` never sees a half-written block. Chunk writes of
Zarr's local store are atomic (temporary file and rename).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import zarr

from .storage import ArchiveError, open_store, storage_errors

if TYPE_CHECKING:  # the config (and torch) load only where a run is rebuilt: `status` reads none
    from ..config import JobConfig, RunSpec

SCHEMA_VERSION = 2  # 2: InferenceData groups only under run_NNN (internal state elsewhere)
RNG_BYTES = 8192  # room for any torch generator state (CPU mt19937: 5056 bytes, CUDA: 16)
ROOT_KEY, RUN_KEY = "sgdthermo", "sgdthermo_run"
DRAW_STATS = ("loss", "grad_norm", "full_loss", "diverged")  # what an engine block records
STAT_NAMES = {"diverged": "diverging"}  # ArviZ's names of those, from schema 2 on
INTERNAL = "_sgdthermo"  # schema 2: runs' checkpoints and fluctuation sums, beside the runs
CONSTANT_DATA = "constant_data"  # schema 2: the model's arrays and projection directions
WARMUP_PREFIX = "warmup_"  # warmup_posterior, warmup_sample_stats
LAYOUT_FLAT, LAYOUT_LAYERS = "flat", "layers"  # θ as one array, or a network's layers as arrays


def package_version() -> str:
    """Installed version of sgdthermo."""
    try:
        return version("sgdthermo")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


@dataclass(frozen=True)
class Block:
    """One unit of work and commit: ``n_draws`` draws of ``group`` from ``draw_start``."""

    index: int
    group: str  # "warmup" or "posterior"
    draw_start: int
    n_draws: int
    steps: int


def block_schedule(spec: RunSpec, chunk_draws: int, warmup: int | None = None,
                   posterior: int | None = None) -> list[Block]:
    """Blocks of a run: burn-in blocks first, then posterior blocks, each at most one chunk.

    ``warmup`` and ``posterior`` draws default to ``run.burn_in // run.thin`` and ``run.draws``
    (a ``run.until`` run passes what its decisions allow: ``until_state``).
    """
    blocks: list[Block] = []
    for group, total in (("warmup", spec.run.burn_in // spec.run.thin if warmup is None
                          else warmup),
                         ("posterior", spec.run.draws if posterior is None else posterior)):
        for start in range(0, total, chunk_draws):
            n = min(chunk_draws, total - start)
            blocks.append(Block(len(blocks), group, start, n, n * spec.run.thin))
    return blocks


def shard_bounds(n_chains: int, shard_chains: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` chain ranges of the shards of a run."""
    return [(lo, min(lo + shard_chains, n_chains)) for lo in range(0, n_chains, shard_chains)]


CHUNK_BYTES = 2**22  # target size of one chunk of draws: 4 MiB uncompressed
MIN_COORD_CHUNK = 64


def coord_chunk(dim: int, shard_chains: int, chunk_draws: int, itemsize: int) -> int:
    """Coordinates per chunk of ``posterior/theta``.

    All of them while a chunk of one shard's ``chunk_draws`` draws stays under 4 MiB, else as
    many as fit (at least 64).

    Chunks along ``coord`` let the analysis read a block of coordinates over all draws without
    decompressing the rest; a shard's block write still covers whole chunks only.
    """
    per_coord = max(shard_chains * chunk_draws * itemsize, 1)
    return int(min(dim, max(MIN_COORD_CHUNK, CHUNK_BYTES // per_coord)))


BLOCK_BYTES = 2**28  # a shard's block of θ draws is held in memory: at most 256 MiB


def block_draws(chunk_draws: int, shard_chains: int, dim: int, itemsize: int) -> int:
    """Draws per block (and chunk) of a run.

    ``cluster.chunk_draws``, or fewer where a shard's block of recorded numbers (``dim`` per
    draw and chain: θ, or what ``run.record`` keeps of it) would pass ``BLOCK_BYTES`` (a network
    with 1.26·10⁵ float32 parameters recorded in full and 64 chains: 8 draws). Stored per run.
    """
    return max(1, min(chunk_draws, BLOCK_BYTES // max(shard_chains * dim * itemsize, 1)))


def run_group_name(index: int) -> str:
    """Name of a run's group."""
    return f"run_{index:03d}"


def internal_group_name(index: int, schema_version: int) -> str:
    """Where a run's ``checkpoint/`` and ``fluctuation/`` live (inside the run in schema 1)."""
    run = run_group_name(index)
    return run if schema_version < 2 else f"{INTERNAL}/{run}"


def committed_draws(blocks: list[Block], blocks_done: int) -> dict[str, int]:
    """Draws of each group that are committed after ``blocks_done`` blocks."""
    out = {"warmup": 0, "posterior": 0}
    for b in blocks[:blocks_done]:
        out[b.group] = b.draw_start + b.n_draws
    return out


def n_posterior_blocks(blocks: list[Block]) -> int:
    """Number of posterior blocks (fluctuation sums are indexed by them)."""
    return sum(b.group == "posterior" for b in blocks)


def read_root(path: str) -> dict[str, Any]:
    """Root attributes of an archive, or ``ArchiveError`` if it is not a readable sgdthermo archive."""
    return open_root(path)[1]


def open_root(path: str) -> tuple[Any, dict[str, Any]]:
    """The archive's root group (read-only) and its attributes, checked as ``read_root`` says."""
    try:
        with storage_errors(path):
            root = zarr.open_group(store=open_store(path, read_only=True), mode="r")
            meta = root.attrs.get(ROOT_KEY)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as err:
        raise ArchiveError(f"{path!r} is not a sgdthermo archive ({type(err).__name__})") from None
    except ValueError as err:
        if isinstance(err, ArchiveError):
            raise
        raise ArchiveError(f"{path!r} is not a sgdthermo archive ({type(err).__name__})") from None
    if not isinstance(meta, dict) or "schema_version" not in meta:
        raise ArchiveError(f"{path!r} is a Zarr group but not a sgdthermo archive "
                           f"(no '{ROOT_KEY}' attributes)")
    if meta["schema_version"] > SCHEMA_VERSION:
        raise ArchiveError(f"{path!r} has archive schema {meta['schema_version']}, newer than "
                           f"this sgdthermo ({package_version()}) reads (up to "
                           f"{SCHEMA_VERSION}); upgrade sgdthermo")
    return root, meta


def archived_job(meta: dict[str, Any]) -> tuple[JobConfig, list[RunSpec]]:
    """The job and its expanded runs, rebuilt from an archive's root attributes."""
    from ..config import JobConfig
    from ..jobspec import expand

    job = JobConfig.model_validate(meta["config"])
    return job, expand(job)


def __getattr__(name: str) -> Any:
    """``DTYPES``: run.dtype → torch dtype of θ, built on first use (torch loads then)."""
    if name == "DTYPES":
        import torch

        globals()["DTYPES"] = {"float32": torch.float32, "float64": torch.float64}
        return globals()["DTYPES"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
