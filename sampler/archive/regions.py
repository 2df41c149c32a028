"""What one block of one shard writes: the arrays, their regions and where the values come from.

``block_items`` is the one list both the writer (``RunStore.write_block``) and the checksum
verification (``RunStore.block_digest``) walk, so they cannot disagree on what a block is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .schema import DRAW_STATS, LAYOUT_LAYERS, STAT_NAMES, WARMUP_PREFIX, Block


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


class RunShape(Protocol):
    """What ``block_items`` needs to know of a run (``RunStore`` has it)."""

    shards: list[tuple[int, int]]
    n_warmup: int
    keep_warmup: bool
    version: int
    layout: str
    variables: list[Any]
    layer_norm_names: list[str]

    def has(self, path: str) -> bool:
        """Whether the run has an array at ``path``."""
        ...


def block_items(run: RunShape, shard: int,
                block: Block) -> list[tuple[str, tuple[Any, ...], Item]]:
    """What one block of one shard writes: (array path, selection, its values from data).

    The one list both ``write_block`` and the checksum verification walk.
    """
    chains = slice(*run.shards[shard])
    items: list[tuple[str, tuple[Any, ...], Item]] = []
    if block.group == "posterior":
        b = block.index - run.n_warmup
        items.append(("fluctuation/sum", (chains, b), lambda d: d.fluct_sum))
        if run.has("fluctuation/identity"):  # archives from before the identity lack it
            items.append(("fluctuation/identity", (chains, b), lambda d: d.ident_sum))
        if run.has("fluctuation/virial"):  # θ recorded partly
            items.append(("fluctuation/virial", (chains, b), lambda d: d.virial_sum))
    else:
        if run.has("fluctuation/warmup_identity"):  # run.until's equilibration test
            items.append(("fluctuation/warmup_identity", (chains, block.index),
                          lambda d: d.ident_sum))
        if not run.keep_warmup:
            return items
    post = f"{WARMUP_PREFIX if block.group == 'warmup' else ''}posterior"
    stats = f"{WARMUP_PREFIX if block.group == 'warmup' else ''}sample_stats"
    sel = (chains, slice(block.draw_start, block.draw_start + block.n_draws))
    if run.layout == LAYOUT_LAYERS:  # a network recorded in full: one array per layer
        lo = 0
        for name, shape, _ in run.variables:
            size = int(np.prod(shape))
            items.append((f"{post}/{name}", sel, _layer(lo, size, tuple(shape))))
            lo += size
    else:
        items.append((f"{post}/theta", sel, lambda d: d.theta))
    if run.has(f"{post}/projection"):
        items.append((f"{post}/projection", sel, lambda d: d.projection))
    for j, name in enumerate(run.layer_norm_names):
        items.append((f"{post}/{name}_norm", sel, _column(j)))
    for name in DRAW_STATS:
        stored = STAT_NAMES.get(name, name) if run.version >= 2 else name
        if run.has(f"{stats}/{stored}"):
            items.append((f"{stats}/{stored}", sel, _stat(name)))
    if run.has(f"{stats}/lp"):  # −L(θ), ArviZ's log density (schema 2, beside full_loss)
        items.append((f"{stats}/lp", sel, lambda d: -d.stats["full_loss"]))
    return items
