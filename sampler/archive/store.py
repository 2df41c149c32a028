"""Reading and writing one run of an archive: the commit protocol in one place (``RunStore``).

A shard writes a block's data (``write_block``), then commits (``commit``): its state goes into the
checkpoint slot the current commit record does not reference, and only then is the commit record
``[blocks_done, slot]`` replaced. ``committed`` and ``restore`` trust nothing but that record, so a
crash at any moment leaves the last commit intact. The shard runner writes through this class and
the reader opens it read-only: resume and read cannot disagree on what is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr

from ..config import JobConfig, RunSpec
from ..recording import Recording
from .integrity import BLOCK_CHECKSUM, STATE_CHECKSUM, digest
from .schema import (
    CONSTANT_DATA,
    DRAW_STATS,
    LAYOUT_FLAT,
    LAYOUT_LAYERS,
    RNG_BYTES,
    RUN_KEY,
    STAT_NAMES,
    WARMUP_PREFIX,
    Block,
    archived_job,
    block_schedule,
    committed_draws,
    internal_group_name,
    n_posterior_blocks,
    read_root,
    run_group_name,
    shard_bounds,
)
from .storage import open_store

Item = Callable[["BlockData"], Any]  # a block's values for one array, from its BlockData


def _layer(lo: int, size: int, shape: tuple[int, ...]) -> Item:
    """The values of one network layer: θ's columns ``lo:lo+size`` shaped ``[c, n, *shape]``."""
    return lambda d: d.theta[..., lo:lo + size].reshape(*d.theta.shape[:2], *shape)


def _column(j: int) -> Item:
    """Layer ``j``'s norms ``[c, n]``."""
    return lambda d: None if d.layer_norms is None else d.layer_norms[..., j]


def _stat(name: str) -> Item:
    """One sample statistic ``[c, n]``."""
    return lambda d: d.stats[name]


@dataclass
class BlockData:
    """What one block of one shard writes (numpy, chain-leading).

    Attributes:
        theta: ``[c, n, D]`` recorded parameters.
        stats: ``loss``, ``grad_norm``, ``diverged`` and optionally ``full_loss``, ``[c, n]``.
        fluct_sum: ``[c, D]`` sum of the rule's fluctuation term over the block.
        ident_sum: ``[c, 3, D]`` sums of θ⊙pg, pg and ½(pg)² over the block.
        projection: ``[c, n, k]`` recorded projections ``θU`` (``run.record.projections``).
        virial_sum: ``[c, 3, D]`` sums of θ, θ⊙g_B and g_B (kept when θ is recorded partly).
        layer_norms: ``[c, n, L]`` per-layer norms (``run.record.layer_norms``).
    """

    theta: np.ndarray
    stats: dict[str, np.ndarray]
    fluct_sum: np.ndarray
    ident_sum: np.ndarray
    projection: np.ndarray | None = None
    virial_sum: np.ndarray | None = None
    layer_norms: np.ndarray | None = None


@dataclass
class Checkpoint:
    """A shard's committed state: blocks done, named state arrays and generator bytes."""

    blocks_done: int
    arrays: dict[str, np.ndarray]
    rng: np.ndarray  # uint8


class RunStore:
    """One run of the archive at ``path``.

    Args:
        path: Archive path or URL.
        run_index: Which run.
        writable: Open for a shard runner (else read-only).
    """

    def __init__(self, path: str, run_index: int, writable: bool = False) -> None:
        self.path, self.index = path, run_index
        self.meta = read_root(path)
        self.job: JobConfig
        self.job, runs = archived_job(self.meta)
        self.spec: RunSpec = runs[run_index]
        root = zarr.open_group(store=open_store(path, read_only=not writable),
                               mode="r+" if writable else "r")
        # zarr types group[...] as a union of every node kind; this group's layout is fixed.
        self.group: Any = root[run_group_name(run_index)]
        self.version = int(self.meta["schema_version"])
        # checkpoint/ and fluctuation/: beside the run from schema 2 on, inside it before
        self.internal: Any = root[internal_group_name(run_index, self.version)]
        attrs: Any = self.group.attrs.get(RUN_KEY, {})
        self.partial_flag: bool | None = attrs.get("partial")  # None: schema 1
        self.chunk_draws = int(attrs.get("chunk_draws", self.job.cluster.chunk_draws))
        self.shard_chains = int(attrs.get("shard_chains", self.job.cluster.shard_chains))
        self.kernel = str(attrs.get("kernel", "step"))  # the engine path that writes this run
        # θ's named blocks [name, shape, dims] in coordinate order; [] for one ``theta``
        self.variables: list[Any] = list(attrs.get("variables", []))
        self.layout = str(attrs.get("layout", LAYOUT_FLAT))  # LAYOUT_LAYERS: θ per variable
        self.blocks = block_schedule(self.spec, self.chunk_draws)
        self.shards = shard_bounds(self.spec.run.chains, self.shard_chains)
        self.n_warmup = len(self.blocks) - n_posterior_blocks(self.blocks)

    # ------------------------------------------------------------------ reading
    def committed(self) -> np.ndarray:
        """``blocks_done`` of every shard ``[n_shards]``."""
        return np.asarray(self.internal["checkpoint"]["commit"][:, 0])

    def committed_draws(self) -> dict[str, int]:
        """Warm-up and posterior draws every shard has committed (the minimum over shards)."""
        return committed_draws(self.blocks, int(self.committed().min()))

    def posterior_blocks_done(self) -> int:
        """Posterior blocks every shard has committed."""
        return max(int(self.committed().min()) - self.n_warmup, 0)

    def restore(self, shard: int) -> Checkpoint | None:
        """The shard's last committed state, or ``None`` if it has committed nothing."""
        done, slot = (int(v) for v in self.internal["checkpoint"]["commit"][shard])
        if done == 0:
            return None
        g = self.internal["checkpoint"][f"slot{slot}"]
        lo, hi = self.shards[shard]
        arrays = {name: np.asarray(g[name][lo:hi]) for name in g.array_keys()
                  if name not in ("rng", "rng_len")}
        n = int(g["rng_len"][shard])
        return Checkpoint(done, arrays, np.asarray(g["rng"][shard, :n], dtype=np.uint8))

    def state_array(self, name: str) -> np.ndarray:
        """A checkpointed state array of every chain at its shard's last commit, ``[C, ...]``.

        Shards that have committed nothing give NaN.
        """
        ckpt = self.internal["checkpoint"]
        parts = []
        for shard, (done, slot) in enumerate(np.asarray(ckpt["commit"][:])):
            lo, hi = self.shards[shard]
            values = np.asarray(ckpt[f"slot{slot}"][name][lo:hi], dtype=float)
            parts.append(values if done > 0 else np.full_like(values, np.nan))
        return np.concatenate(parts)

    def recording(self) -> Recording:
        """What each draw records: the coordinates of θ and the projection directions."""
        post = self.group["posterior"]
        partial = "coord" in post if self.partial_flag is None else self.partial_flag
        coords = np.asarray(post["coord"][:]) if partial else None
        where = CONSTANT_DATA if self.version >= 2 else "recording"
        rec = self.group[where] if where in self.group else None
        directions = (np.asarray(rec["directions"][:]) if rec is not None
                      and "directions" in rec else None)
        return Recording(coords, directions, self._layers())

    def node(self, path: str) -> Any:
        """An array by its path in the run (``fluctuation/…`` and ``checkpoint/…`` included)."""
        top = path.split("/", 1)[0]
        return (self.internal if top in ("fluctuation", "checkpoint") else self.group)[path]

    def _layers(self) -> tuple[tuple[str, int, int], ...] | None:
        layers = self.group.attrs.get(RUN_KEY, {}).get("layer_norms")
        return None if layers is None else tuple((str(n), int(a), int(b)) for n, a, b in layers)

    # ------------------------------------------------------------------ writing
    def block_items(self, shard: int, block: Block) -> list[tuple[str, tuple[Any, ...], Item]]:
        """What one block of one shard writes: (array path, selection, its values from data).

        The one list both ``write_block`` and the checksum verification walk.
        """
        chains = slice(*self.shards[shard])
        items: list[tuple[str, tuple[Any, ...], Item]] = []
        if block.group == "posterior":
            fl, b = self.internal["fluctuation"], block.index - self.n_warmup
            items.append(("fluctuation/sum", (chains, b), lambda d: d.fluct_sum))
            if "identity" in fl:  # archives written before the identity was recorded lack it
                items.append(("fluctuation/identity", (chains, b), lambda d: d.ident_sum))
            if "virial" in fl:  # θ recorded partly
                items.append(("fluctuation/virial", (chains, b), lambda d: d.virial_sum))
        elif not self.spec.run.keep_warmup:
            return items
        prefix = WARMUP_PREFIX if block.group == "warmup" else ""
        sel = (chains, slice(block.draw_start, block.draw_start + block.n_draws))
        post = self.group[f"{prefix}posterior"]
        if self.layout == LAYOUT_LAYERS:  # a network recorded in full: one array per layer
            lo = 0
            for name, shape, _ in self.variables:
                size = int(np.prod(shape))
                items.append((f"{prefix}posterior/{name}", sel, _layer(lo, size, tuple(shape))))
                lo += size
        else:
            items.append((f"{prefix}posterior/theta", sel, lambda d: d.theta))
        if "projection" in post:
            items.append((f"{prefix}posterior/projection", sel, lambda d: d.projection))
        for j, (name, _, _) in enumerate(self._layers() or ()):
            items.append((f"{prefix}posterior/{name}_norm", sel, _column(j)))
        stats = self.group[f"{prefix}sample_stats"]
        for name in DRAW_STATS:
            stored = STAT_NAMES.get(name, name) if self.version >= 2 else name
            if stored in stats:
                items.append((f"{prefix}sample_stats/{stored}", sel, _stat(name)))
        if "lp" in stats:  # −L(θ), ArviZ's log density (schema 2, beside full_loss)
            items.append((f"{prefix}sample_stats/lp", sel, lambda d: -d.stats["full_loss"]))
        return items

    def write_block(self, shard: int, block: Block, data: BlockData) -> int:
        """Write one block's data and its digest (not yet committed); returns the digest."""
        parts = []
        for path, sel, value in self.block_items(shard, block):
            arr = self.node(path)
            stored = np.asarray(value(data), dtype=arr.dtype)
            arr[sel] = stored
            parts.append((path, stored))
        value_digest = digest(parts)
        if BLOCK_CHECKSUM in self.internal["checkpoint"]:  # archives from before lack it
            self.internal["checkpoint"][BLOCK_CHECKSUM][shard, block.index] = value_digest
        return value_digest

    def data_digest(self, shard: int, block: Block, data: BlockData) -> int:
        """The digest ``write_block`` would store for ``data`` (nothing is written)."""
        return digest((path, np.asarray(value(data), dtype=self.node(path).dtype))
                      for path, _, value in self.block_items(shard, block))

    def block_digest(self, shard: int, block: Block) -> int:
        """The digest of a block as stored now (raises if a chunk cannot be decoded)."""
        return digest((path, np.asarray(self.node(path)[sel]))
                      for path, sel, _ in self.block_items(shard, block))

    def stored_checksums(self, shard: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(block digests [n_blocks], slot digests [2])`` of a shard; ``None`` if not recorded."""
        ckpt = self.internal["checkpoint"]
        if BLOCK_CHECKSUM not in ckpt:
            return None
        return (np.asarray(ckpt[BLOCK_CHECKSUM][shard]), np.asarray(ckpt[STATE_CHECKSUM][shard]))

    def commit(self, shard: int, blocks_done: int, state: dict[str, np.ndarray],
               rng: np.ndarray) -> None:
        """Checkpoint ``state`` and ``rng`` into the free slot, then replace the commit record."""
        slot = blocks_done % 2
        g = self.internal["checkpoint"][f"slot{slot}"]
        lo, hi = self.shards[shard]
        for name, values in state.items():
            g[name][lo:hi] = values
        if rng.size > RNG_BYTES:  # pragma: no cover - no torch generator is this large
            raise RuntimeError(f"generator state of {rng.size} bytes exceeds {RNG_BYTES}")
        padded = np.zeros(RNG_BYTES, np.uint8)
        padded[: rng.size] = rng
        g["rng"][shard] = padded
        g["rng_len"][shard] = rng.size
        ckpt = self.internal["checkpoint"]
        if STATE_CHECKSUM in ckpt:
            ckpt[STATE_CHECKSUM][shard, slot] = self._slot_digest(shard, slot)
        ckpt["commit"][shard] = np.array([blocks_done, slot])

    def _slot_digest(self, shard: int, slot: int) -> int:
        """The digest of a shard's checkpoint slot as stored now."""
        g = self.internal["checkpoint"][f"slot{slot}"]
        lo, hi = self.shards[shard]
        parts = [(name, np.asarray(g[name][lo:hi])) for name in sorted(g.array_keys())
                 if name not in ("rng", "rng_len")]
        return digest([*parts, ("rng", np.asarray(g["rng"][shard])),
                       ("rng_len", np.asarray(g["rng_len"][shard]))])

    def slot_intact(self, shard: int) -> bool:
        """Whether the shard's committed checkpoint slot matches its digest (True if none)."""
        done, slot = (int(v) for v in self.internal["checkpoint"]["commit"][shard])
        sums = self.stored_checksums(shard)
        if done == 0 or sums is None or int(sums[1][slot]) == 0:
            return True
        return self._slot_digest(shard, slot) == int(sums[1][slot])
