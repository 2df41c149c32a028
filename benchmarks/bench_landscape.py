"""The landscape analyses on a 10⁶-parameter archive: time and peak memory on one machine.

Workload: the built-in ``mlp`` kind with hidden layers [1024, 1024] on scikit-learn's digits
(1 126 410 parameters), SGD (η = 0.01, B = 32, float32), 16 chains in 4 superchains, 1000
draws (every step), θ recorded every ``--every``-th coordinate in float16 (the engine keeps
every coordinate's per-block sums). The shard runs in this process (no Ray); then each
analysis runs as its own process under GNU time, reading the archive lazily:

* ``displacement``: MSD against lag, per layer and overall (``landscape.displacement``);
* ``fdr``: the fluctuation–dissipation relation per layer, from the engine's sums;
* ``nested R-hat``: over the 4 superchains (``diagnostics.nested_rhat``);
* ``curvature``: the 8 largest Hessian eigenvalues at the chains' mean (Lanczos on
  Hessian-vector products of full-batch gradients; no temperatures along them: θ is
  recorded partly);
* ``flatness``: randomised PCA of the recorded draws (8 components) and the curvature along
  each;
* ``analyze --json --top-k 8 --pca 8``: everything, with the default analysis.

Prints one row per piece: wall seconds and peak RSS (GB).
Usage: ``python benchmarks/bench_landscape.py [--every 10] [--draws 1000] [--hidden 1024]``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_scale import timed
from sgdthermo.sampler.allocator import reuse_large_blocks
from sgdthermo.sampler.archive import create_archive
from sgdthermo.sampler.jobspec import expand, validate
from sgdthermo.sampler.shard import ShardRunner, state_facts

PIECES = {
    "displacement": "from sgdthermo.analysis.landscape.displacement import displacement; "
                    "displacement(run)",
    "fdr (per layer)": "from sgdthermo.analysis.landscape.fdr import layer_fdr; "
                       "layer_fdr(run, None, 1.0)",
    "nested R-hat": "from sgdthermo.analysis.diagnostics.nested_rhat import nested_record; "
                    "nested_record(run)",
    "curvature (top 8)": "from sgdthermo.analysis.landscape.curvature import curvature; "
                         "print(curvature(run, None, 8)['eigenvalues'])",
    "flatness (8 PCs)": "from sgdthermo.analysis.landscape.flatness import flatness; "
                        "print(flatness(run, 8).get('exponent'))",
}


def job(hidden: int, draws: int, every: int) -> dict:
    """The benchmark's config."""
    return {"seed": 1, "model": {"kind": "mlp", "hidden": [hidden, hidden]},
            "rule": {"kind": "sgd", "lr": 0.01},
            "run": {"chains": 16, "superchains": 4, "draws": draws, "burn_in": 0,
                    "batch_size": 32, "dtype": "float32",
                    "record": {"every": every, "dtype": "float16"}},
            "cluster": {"shard_chains": 16, "chunk_draws": 250}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--out", default=None, help="archive folder (default: a temp dir)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    reuse_large_blocks()
    folder = Path(args.out or tempfile.mkdtemp())
    path = str(folder / "landscape.zarr")
    cfg = validate(job(args.hidden, args.draws, args.every))
    runs = expand(cfg)
    create_archive(path, cfg, runs, "cpu", [state_facts(r) for r in runs])
    t0 = time.perf_counter()
    runner = ShardRunner(path, 0, 0)
    runner.run_until(10**9)
    sample_s = time.perf_counter() - t0
    d = runner.engine.model.dim
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}; {d:,} "
          f"parameters, 16 chains, {args.draws} draws, every {args.every}th coordinate "
          f"recorded (float16); sampling {sample_s:.0f} s")
    print("| piece | wall s | peak GB |\n|---|---:|---:|")
    head = (f"import torch; torch.set_num_threads(1); from sgdthermo.analysis.reader import "
            f"open_run; run = open_run({path!r}, 0); ")
    for name, code in PIECES.items():
        wall, gb = timed([sys.executable, "-c", head + code])
        print(f"| {name} | {wall:.1f} | {gb:.2f} |", flush=True)
    wall, gb = timed([sys.executable, "-m", "sgdthermo.cluster.cli", "analyze", path, "--json",
                      "--top-k", "8", "--pca", "8"])
    print(f"| sgdthermo analyze --json --top-k 8 --pca 8 | {wall:.1f} | {gb:.2f} |")


if __name__ == "__main__":
    main()
