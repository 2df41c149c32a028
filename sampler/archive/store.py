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
from .integrity import BLOCK_CHECKSUM, STATE_CHECKSUM, digest
from .regions import BlockData, Item, block_items
from .schema import (
    CONSTANT_DATA,
    LAYOUT_FLAT,
    RNG_BYTES,
    RUN_KEY,
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
from .until_state import UntilState, read_until, until_schedule


def _slot_digest(state: dict[str, np.ndarray], rng: np.ndarray, rng_len: np.ndarray) -> int:
    """A checkpoint slot's digest: state arrays by name, padded generator state, its length."""
    return digest([*sorted(state.items()), ("rng", rng), ("rng_len", rng_len)])


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
        self.sums_virial = bool(attrs.get("sums_virial", False))
        self._nodes: dict[str, Any] = {}
        self.keep_warmup = self.spec.run.records_warmup
        self.layer_norm_names = [name for name, _, _ in self._layers() or ()]
        self.chunk_draws = int(attrs.get("chunk_draws", self.job.cluster.chunk_draws))
        self.shard_chains = int(attrs.get("shard_chains", self.job.cluster.shard_chains))
        self.kernel = str(attrs.get("kernel", "step"))  # the engine path that writes this run
        # θ's named blocks [name, shape, dims] in coordinate order; [] for one ``theta``
        self.variables: list[Any] = list(attrs.get("variables", []))
        self.model_facts: dict[str, Any] = dict(attrs.get("model", {}))
        self.layout = str(attrs.get("layout", LAYOUT_FLAT))  # LAYOUT_LAYERS: θ per variable
        self.shards = shard_bounds(self.spec.run.chains, self.shard_chains)
        self.until: UntilState | None = None
        self.refresh()

    def refresh(self) -> None:
        """Read the run's schedule again (a ``run.until`` run's grows with its decisions)."""
        if self.spec.run.until is not None:
            self.until = read_until(self.internal)
            self.blocks = until_schedule(self.spec, self.chunk_draws, self.until)
        else:
            self.blocks = block_schedule(self.spec, self.chunk_draws)
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
        return Recording(coords, directions, self._layers(), self.sums_virial)

    def node(self, path: str) -> Any:
        """An array or group of the run by path (``fluctuation/…``, ``checkpoint/…`` too).

        Looked up once: each lookup reads metadata from the store.
        """
        found = self._nodes.get(path)
        if found is None:
            top = path.split("/", 1)[0]
            found = (self.internal if top in ("fluctuation", "checkpoint") else self.group)[path]
            self._nodes[path] = found
        return found

    def has(self, path: str) -> bool:
        """Whether the run has an array at ``path`` (archives from before lack some)."""
        try:
            self.node(path)
        except KeyError:
            return False
        return True

    def _layers(self) -> tuple[tuple[str, int, int], ...] | None:
        layers = self.group.attrs.get(RUN_KEY, {}).get("layer_norms")
        return None if layers is None else tuple((str(n), int(a), int(b)) for n, a, b in layers)

    # ------------------------------------------------------------------ writing
    def block_items(self, shard: int, block: Block) -> list[tuple[str, tuple[Any, ...], Item]]:
        """What one block of one shard writes (``regions.block_items``)."""
        return block_items(self, shard, block)

    def write_block(self, shard: int, block: Block, data: BlockData) -> int:
        """Write one block's data and its digest (not yet committed); returns the digest."""
        parts = []
        for path, sel, value in self.block_items(shard, block):
            arr = self.node(path)
            stored = np.asarray(value(data), dtype=arr.dtype)
            arr[sel] = stored
            parts.append((path, stored))
        value_digest = digest(parts)
        if self.has(f"checkpoint/{BLOCK_CHECKSUM}"):  # archives from before lack it
            self.node(f"checkpoint/{BLOCK_CHECKSUM}")[shard, block.index] = value_digest
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
        g = f"checkpoint/slot{slot}"
        lo, hi = self.shards[shard]
        for name, values in state.items():
            self.node(f"{g}/{name}")[lo:hi] = values
        if rng.size > RNG_BYTES:  # pragma: no cover - no torch generator is this large
            raise RuntimeError(f"generator state of {rng.size} bytes exceeds {RNG_BYTES}")
        padded = np.zeros(RNG_BYTES, np.uint8)
        padded[: rng.size] = rng
        self.node(f"{g}/rng")[shard] = padded
        self.node(f"{g}/rng_len")[shard] = rng.size
        if self.has(f"checkpoint/{STATE_CHECKSUM}"):  # from the values as stored, not re-read
            stored = {name: np.asarray(state[name], dtype=self.node(f"{g}/{name}").dtype)
                      for name in self._state_names(slot)}
            self.node(f"checkpoint/{STATE_CHECKSUM}")[shard, slot] = _slot_digest(
                stored, padded, np.asarray(rng.size, dtype=self.node(f"{g}/rng_len").dtype))
        self.node("checkpoint/commit")[shard] = np.array([blocks_done, slot])

    def _state_names(self, slot: int) -> list[str]:
        """The state arrays of a checkpoint slot (not the generator's), sorted."""
        key = f"checkpoint/slot{slot}/names"
        names = self._nodes.get(key)
        if names is None:
            g = self.node(f"checkpoint/slot{slot}")
            names = self._nodes[key] = sorted(n for n in g.array_keys()
                                              if n not in ("rng", "rng_len"))
        return list(names)

    def _stored_slot_digest(self, shard: int, slot: int) -> int:
        """The digest of a shard's checkpoint slot as stored now."""
        g = self.internal["checkpoint"][f"slot{slot}"]
        lo, hi = self.shards[shard]
        return _slot_digest({name: np.asarray(g[name][lo:hi]) for name in self._state_names(slot)},
                            np.asarray(g["rng"][shard]), np.asarray(g["rng_len"][shard]))

    def slot_intact(self, shard: int) -> bool:
        """Whether the shard's committed checkpoint slot matches its digest (True if none)."""
        done, slot = (int(v) for v in self.internal["checkpoint"]["commit"][shard])
        sums = self.stored_checksums(shard)
        if done == 0 or sums is None or int(sums[1][slot]) == 0:
            return True
        return self._stored_slot_digest(shard, slot) == int(sums[1][slot])
