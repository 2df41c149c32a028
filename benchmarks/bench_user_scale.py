"""A user's module of 10⁶ parameters, 16 chains, on one 2-core machine: time, memory, archive.

Workload: ``Linear(64, 1024) → tanh → Linear(1024, 1024) → tanh → Linear(1024, 10)`` (1 125 386
parameters) on scikit-learn's digits as the ``torch`` kind, SGD (η = 0.01, B = 32, float32),
16 chains in one shard, ``--draws`` draws every ``--thin`` steps. θ is recorded partly
(``run.record``: every 1000th coordinate, 16 projections and the layer norms); every coordinate
still gets its fluctuation, identity and virial sums per block, so every per-coordinate and
per-layer temperature comes out. The shard runs in this process (no Ray: the measured peak RSS
is the engine's and the writer's), then ``sgdthermo analyze --json`` runs as its own process.

Prints the step time, the peak RSS of sampling and of the analysis, and the archive's size.
Usage: ``python benchmarks/bench_user_scale.py [--draws 20] [--thin 10]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_scale import timed
from bench_user_networks import _digits_file
from sgdthermo.sampler.allocator import reuse_large_blocks
from sgdthermo.sampler.archive import create_archive
from sgdthermo.sampler.jobspec import expand, validate
from sgdthermo.sampler.shard import ShardRunner, state_facts
from torch import nn


def wide() -> nn.Module:
    """The 1 125 386-parameter MLP."""
    return nn.Sequential(nn.Linear(64, 1024), nn.Tanh(), nn.Linear(1024, 1024), nn.Tanh(),
                         nn.Linear(1024, 10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--thin", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    reuse_large_blocks()  # as the actors do (sampler.allocator)
    cfg = {"model": {"kind": "torch", "module": f"{Path(__file__).resolve()}:wide",
                     "data": {"file": _digits_file()}},
           "rule": {"kind": "sgd", "lr": 0.01},
           "run": {"chains": 16, "draws": args.draws, "burn_in": 0, "thin": args.thin,
                   "batch_size": 32, "dtype": "float32",
                   "record": {"every": 1000, "projections": 16, "layer_norms": True}},
           "cluster": {"shard_chains": 16, "chunk_draws": args.draws}}
    job = validate(cfg)
    runs = expand(job)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "wide.zarr")
        facts = [state_facts(r) for r in runs]
        create_archive(path, job, runs, "cpu", facts)
        runner = ShardRunner(path, 0, 0)
        t0 = time.perf_counter()
        runner.run_until(10**9)
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20
        report = Path(tmp) / "analysis.json"
        an_s, an_gb = timed([sys.executable, "-m", "sgdthermo.cluster.cli", "analyze", path,
                             "--json"], report)
        record = json.loads(report.read_text())["runs"][0]
    steps = args.draws * args.thin
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}; "
          f"{facts[0]['dim']:,} parameters, 16 chains, kernel {runner.engine.kernel_name}")
    print("| step | wall s | peak GB |\n|---|---:|---:|")
    print(f"| sample {steps} steps ({wall / steps * 1e3:.0f} ms per step of 16 chains) | "
          f"{wall:.1f} | {peak:.2f} |")
    print(f"| sgdthermo analyze --json | {an_s:.1f} | {an_gb:.2f} |")
    print(f"archive {size:,.0f} MiB; status {record['status']}; "
          f"{len(record['temperature']['fluctuation']):,} per-coordinate temperatures; "
          f"{len(record.get('layers') or [])} layer rows")


if __name__ == "__main__":
    main()
