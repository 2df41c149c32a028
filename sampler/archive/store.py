"""Reading and writing one run of an archive: the commit protocol in one place (``RunStore``).

A shard writes a block's data (``write_block``), then commits (``commit``): its state goes into the
checkpoint slot the current commit record does not reference, and only then is the commit record
``[blocks_done, slot]`` replaced. ``committed`` and ``restore`` trust nothing but that record, so a
crash at any moment leaves the last commit intact. The shard runner writes through this class and
the reader opens it read-only: resume and read cannot disagree on what is committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr

from ..config import JobConfig, RunSpec
from ..recording import Recording
from .schema import (
    DRAW_STATS,
    LAYOUT_FLAT,
    LAYOUT_LAYERS,
    RNG_BYTES,
    RUN_KEY,
    WARMUP_PREFIX,
    Block,
    archived_job,
    block_schedule,
    committed_draws,
    n_posterior_blocks,
    read_root,
    run_group_name,
    shard_bounds,
)
from .storage import open_store


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
        attrs: Any = self.group.attrs.get(RUN_KEY, {})
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
        return np.asarray(self.group["checkpoint"]["commit"][:, 0])

    def committed_draws(self) -> dict[str, int]:
        """Warm-up and posterior draws every shard has committed (the minimum over shards)."""
        return committed_draws(self.blocks, int(self.committed().min()))

    def posterior_blocks_done(self) -> int:
        """Posterior blocks every shard has committed."""
        return max(int(self.committed().min()) - self.n_warmup, 0)

    def restore(self, shard: int) -> Checkpoint | None:
        """The shard's last committed state, or ``None`` if it has committed nothing."""
        done, slot = (int(v) for v in self.group["checkpoint"]["commit"][shard])
        if done == 0:
            return None
        g = self.group["checkpoint"][f"slot{slot}"]
        lo, hi = self.shards[shard]
        arrays = {name: np.asarray(g[name][lo:hi]) for name in g.array_keys()
                  if name not in ("rng", "rng_len")}
        n = int(g["rng_len"][shard])
        return Checkpoint(done, arrays, np.asarray(g["rng"][shard, :n], dtype=np.uint8))

    def state_array(self, name: str) -> np.ndarray:
        """A checkpointed state array of every chain at its shard's last commit, ``[C, ...]``.

        Shards that have committed nothing give NaN.
        """
        ckpt = self.group["checkpoint"]
        parts = []
        for shard, (done, slot) in enumerate(np.asarray(ckpt["commit"][:])):
            lo, hi = self.shards[shard]
            values = np.asarray(ckpt[f"slot{slot}"][name][lo:hi], dtype=float)
            parts.append(values if done > 0 else np.full_like(values, np.nan))
        return np.concatenate(parts)

    def recording(self) -> Recording:
        """What each draw records: the coordinates of θ and the projection directions."""
        post = self.group["posterior"]
        coords = np.asarray(post["coord"][:]) if "coord" in post else None
        rec = self.group["recording"] if "recording" in self.group else None
        directions = np.asarray(rec["directions"][:]) if rec is not None else None
        return Recording(coords, directions, self._layers())

    def _layers(self) -> tuple[tuple[str, int, int], ...] | None:
        layers = self.group.attrs.get(RUN_KEY, {}).get("layer_norms")
        return None if layers is None else tuple((str(n), int(a), int(b)) for n, a, b in layers)

    # ------------------------------------------------------------------ writing
    def write_block(self, shard: int, block: Block, data: BlockData) -> None:
        """Write one block's data (not yet committed: readers ignore it until ``commit``)."""
        chains = slice(*self.shards[shard])
        if block.group == "posterior":
            fl, b = self.group["fluctuation"], block.index - self.n_warmup
            fl["sum"][chains, b] = data.fluct_sum
            if "identity" in fl:  # archives written before the identity was recorded lack it
                fl["identity"][chains, b] = data.ident_sum
            if data.virial_sum is not None:
                fl["virial"][chains, b] = data.virial_sum
        elif not self.spec.run.keep_warmup:
            return
        prefix = WARMUP_PREFIX if block.group == "warmup" else ""
        draws = slice(block.draw_start, block.draw_start + data.theta.shape[1])
        post = self.group[f"{prefix}posterior"]
        if self.layout == LAYOUT_LAYERS:  # a network recorded in full: one array per layer
            c, n, lo = data.theta.shape[0], data.theta.shape[1], 0
            for name, shape, _ in self.variables:
                size = int(np.prod(shape))
                post[name][chains, draws] = data.theta[..., lo:lo + size].reshape(c, n, *shape)
                lo += size
        else:
            post["theta"][chains, draws] = data.theta
        if data.projection is not None:
            post["projection"][chains, draws] = data.projection
        if data.layer_norms is not None:
            for j, (name, _, _) in enumerate(self._layers() or ()):
                post[f"{name}_norm"][chains, draws] = data.layer_norms[..., j]
        stats = self.group[f"{prefix}sample_stats"]
        for name in DRAW_STATS:
            if name in data.stats:
                stats[name][chains, draws] = data.stats[name]

    def commit(self, shard: int, blocks_done: int, state: dict[str, np.ndarray],
               rng: np.ndarray) -> None:
        """Checkpoint ``state`` and ``rng`` into the free slot, then replace the commit record."""
        slot = blocks_done % 2
        g = self.group["checkpoint"][f"slot{slot}"]
        lo, hi = self.shards[shard]
        for name, values in state.items():
            g[name][lo:hi] = values
        if rng.size > RNG_BYTES:  # pragma: no cover - no torch generator is this large
            raise RuntimeError(f"generator state of {rng.size} bytes exceeds {RNG_BYTES}")
        padded = np.zeros(RNG_BYTES, np.uint8)
        padded[: rng.size] = rng
        g["rng"][shard] = padded
        g["rng_len"][shard] = rng.size
        self.group["checkpoint"]["commit"][shard] = np.array([blocks_done, slot])
