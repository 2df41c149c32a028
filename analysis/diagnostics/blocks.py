"""Streaming a ``(chain, draw, coord)`` array in blocks of coordinates, with bounded memory.

Every per-coordinate estimate of a large run (diagnostics, integrated times) goes through
``map_blocks``: each column of stored ``coord`` chunks is read from the archive once, split into
blocks sized to a memory budget, and the blocks are processed on a few threads (NumPy's sorts,
reductions and SciPy's FFTs release the GIL). Memory is one column plus one block per thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import xarray as xr

WORKERS = 2


def read_width(values: xr.DataArray, width: int) -> int:
    """Coordinates per read: a whole number of stored ``coord`` chunks, at least ``width``."""
    chunks = values.encoding.get("chunks")
    if not chunks:
        return width
    stored = int(chunks[-1])
    return stored * max(1, -(-width // stored))


def columns(values: xr.DataArray, width: int, rows: np.ndarray | None = None,
            stride: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """``(first coordinate, column [C', n, W])`` over the last dimension, in the stored dtype.

    Args:
        values: ``(chain, draw, coord)`` array (lazy).
        width: Smallest read (rounded up to whole stored chunks).
        rows: Boolean mask of chains to keep (all if ``None``).
        stride: Keep every ``stride``-th draw.
    """
    dim, d = values.dims[-1], values.shape[-1]
    read = read_width(values, width)
    for lo in range(0, d, read):
        column = np.asarray(values.isel({dim: slice(lo, lo + read)}).values)[:, ::stride]
        yield lo, (column if rows is None else column[rows])


def map_blocks(values: xr.DataArray, fn: Callable[[np.ndarray], Any], width: int,
               rows: np.ndarray | None = None, workers: int = WORKERS) -> list[Any]:
    """``fn`` of every float64 block ``[C', n, ≤width]`` of coordinates, in coordinate order.

    Columns stay in the stored dtype (float32 halves their memory); each block is converted to
    float64 only when its turn comes.
    """
    out: list[Any] = []
    with ThreadPoolExecutor(max(workers, 1)) as pool:
        for _, column in columns(values, width, rows):
            blocks = [column[..., j:j + width] for j in range(0, column.shape[-1], width)]
            out += list(pool.map(lambda b: fn(np.asarray(b, dtype=float)), blocks))
    return out


def concat(parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Concatenate per-block tuples of per-coordinate arrays."""
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))
