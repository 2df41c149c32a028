"""Which compressor for the draws: size, write and read time of ``posterior/theta`` chunks.

Workload: real draws of a D = 10⁴ diagonal quadratic (SGD, as ``bench_scale.py``), 4 chains ×
2000 draws of float32 in the archive's chunking (a shard's chains × 500 draws × 524 coordinates,
4 MiB), written with each candidate and read back by blocks of coordinates (the analysis'
pattern). Prints bytes on disk, ratio, write and read seconds. Run after ``bench_scale.py`` has
left no archive: it makes its own draws in process.

Usage: ``python benchmarks/bench_compression.py``.
"""

from __future__ import annotations

import shutil
import tempfile
import time

import numpy as np
import torch
import zarr
from sgdthermo.sampler.jobspec import expand, validate
from sgdthermo.sampler.shard import build_engine
from zarr.codecs import BloscCodec, BytesCodec, ZstdCodec

CANDIDATES = {
    "none": None,
    "zstd level 0 (zarr default)": [ZstdCodec(level=0)],
    "zstd level 3": [ZstdCodec(level=3)],
    "blosc lz4 + shuffle": [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")],
    "blosc zstd + shuffle": [BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")],
    "blosc zstd + bitshuffle": [BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")],
}


def draws(dim: int = 10_000, chains: int = 4, n: int = 2000) -> np.ndarray:
    """``[C, n, D]`` float32 draws of SGD on a diagonal quadratic, after a burn-in."""
    cfg = {"model": {"kind": "quadratic",
                     "hessian": {"spectrum": "geometric", "d": dim, "first": 1.0, "last": 0.05},
                     "noise_cov": {"spectrum": "linear", "d": dim, "first": 1.0, "last": 4.0}},
           "rule": {"kind": "sgd", "lr": 0.5}, "run": {"chains": chains, "dtype": "float32"}}
    engine = build_engine(expand(validate(cfg))[0], chains)
    gen = torch.Generator().manual_seed(0)
    state, _ = engine.run_block(gen, engine.init(gen, 1.0), 1000, 1000)
    return engine.run_block(gen, state, n, 1)[1].theta.numpy()


def main() -> None:
    x = draws()
    chunks = (x.shape[0], 500, 524)
    print(f"draws {x.shape} float32, {x.nbytes / 2**20:.0f} MiB, chunks {chunks}")
    print("| compressor | MiB on disk | ratio | write s | read s (blocks of 524 coords) |")
    print("|---|---:|---:|---:|---:|")
    for name, codecs in CANDIDATES.items():
        tmp = tempfile.mkdtemp()
        try:
            kw = {"compressors": codecs} if codecs is not None else {"compressors": None}
            arr = zarr.create_array(f"{tmp}/a.zarr", shape=x.shape, chunks=chunks,
                                    dtype="float32", serializer=BytesCodec(), **kw)
            t0 = time.perf_counter()
            arr[...] = x
            write = time.perf_counter() - t0
            size = sum(f.stat().st_size for f in __import__("pathlib").Path(tmp).rglob("*")
                       if f.is_file())
            t0 = time.perf_counter()
            for lo in range(0, x.shape[-1], 524):
                np.asarray(arr[..., lo:lo + 524])
            read = time.perf_counter() - t0
            print(f"| {name} | {size / 2**20:.1f} | {x.nbytes / size:.2f} | {write:.2f} | "
                  f"{read:.2f} |")
        finally:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
