"""A network's per-layer arrays seen as one lazy ``theta (chain, draw, coord)``.

Archives store a network recorded in full as ArviZ variables, ``w1 (chain, draw, w1_out, w1_in)``,
``b1 (chain, draw, w1_out)``, … (``sampler.archive.schema``, layout ``"layers"``); every
per-coordinate estimate streams over a flat θ in blocks of coordinates. This backend array gives
that flat view without copying: indexing a block of coordinates reads, from each layer it
overlaps, only the rows (leading-dimension slices) that hold them.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing


class FlatLayers(BackendArray):
    """``[C, n, D]`` over per-layer arrays ``(chain, draw, *shape)`` in coordinate order.

    Args:
        layers: The lazy per-layer variables, already restricted to the committed draws.
    """

    def __init__(self, layers: list[xr.Variable]) -> None:
        self.layers = layers
        self._cache: dict[int, tuple[str, int, int, np.ndarray]] = {}  # per layer: last block
        self._lock = threading.Lock()
        self.sizes = [int(np.prod(a.shape[2:])) for a in layers]
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        c, n = layers[0].shape[:2]
        self.shape = (int(c), int(n), int(self.starts[-1]))
        self.dtype = np.dtype(layers[0].dtype)

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC,
                                                  self._read)

    def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        chain, draw, coord = key
        idx = np.arange(self.shape[2])[coord]
        flat = np.atleast_1d(idx)
        lead = [k for k in (chain, draw) if isinstance(k, slice)]
        pieces = []
        for n, (layer, lo, size) in enumerate(zip(self.layers, self.starts[:-1], self.sizes,
                                                  strict=True)):
            mine = flat[(flat >= lo) & (flat < lo + size)] - lo
            if mine.size == 0:
                continue
            row = size // layer.shape[2]
            r0, r1 = int(mine.min()) // row, int(mine.max()) // row + 1
            block = self._rows(n, layer, chain, draw, r0, r1)
            block = block.reshape(*block.shape[:len(lead)], -1)
            first, last = int(mine[0]) - r0 * row, int(mine[-1]) - r0 * row
            contiguous = last - first + 1 == mine.size  # a plain block of coordinates: a view
            pieces.append(block[..., first:last + 1] if contiguous else block[..., mine - r0 * row])
        if not pieces:  # an empty block of coordinates
            return np.zeros((*self.shape[:2], 0), self.dtype)[chain, draw]
        out = np.concatenate(pieces, axis=-1)
        return out if np.ndim(idx) else out[..., 0]


    def _rows(self, n: int, layer: xr.Variable, chain: Any, draw: Any, r0: int,
              r1: int) -> np.ndarray:
        """Rows ``r0:r1`` of a layer, read as whole stored chunks and kept for the next read.

        Consecutive blocks of coordinates rarely end on a chunk boundary of every layer; reading
        the aligned rows once and serving the neighbouring block from them avoids decompressing
        the boundary chunk twice.
        """
        chunks = layer.encoding.get("chunks")
        step = int(chunks[2]) if chunks else max(r1 - r0, 1)
        a0, a1 = r0 // step * step, min(-(-r1 // step) * step, int(layer.shape[2]))
        key = f"{chain}|{draw}"
        with self._lock:
            hit = self._cache.get(n)
            if hit is None or hit[0] != key or hit[1] > r0 or hit[2] < r1:
                hit = (key, a0, a1, np.asarray(layer[chain, draw, a0:a1].values))
                self._cache[n] = hit
            rows = hit[3]
            trailing = layer.ndim - 3  # dims after the rows (a weight's fan-in, …)
            return np.moveaxis(np.moveaxis(rows, -1 - trailing, -1)[..., r0 - hit[1]:r1 - hit[1]],
                               -1, -1 - trailing)


def flat_theta(layers: list[xr.Variable]) -> xr.DataArray:
    """The lazy ``theta (chain, draw, coord)`` of a network's per-layer arrays.

    Its ``encoding["chunks"]`` says how many coordinates one stored chunk of the largest layer
    holds (``blocks.read_width`` reads at least that many at a time: reading one coordinate at
    a time would decompress each chunk once per coordinate in it).
    """
    data = indexing.LazilyIndexedArray(FlatLayers(layers))
    flat = xr.DataArray(xr.Variable(("chain", "draw", "coord"), data))
    per_chunk = [int(np.prod(v.encoding["chunks"][2:])) for v in layers
                 if v.encoding.get("chunks")]
    if per_chunk:
        c, n = layers[0].shape[:2]
        flat.encoding["chunks"] = (int(c), int(n), max(per_chunk))
    return flat
