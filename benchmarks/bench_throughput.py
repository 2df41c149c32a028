"""Chain-steps per second: sgdthermo's batched engine versus a plain PyTorch loop over chains.

Workload (issue 2): SGD on linear_regression with N = 8192, d = 32, B = 32, recording every 10th
step, at C = 1, 256 and 4096 chains, all on ONE single-threaded CPU Ray actor. Columns:

* engine: ``Engine.run_block`` alone (draws kept in memory, nothing written);
* archive: ``ShardRunner.run_until`` (the production path: blocks written to Zarr and committed);
* torch loop: one ``torch.optim.SGD`` per chain, stepped chain by chain (draws kept in memory).

Usage: ``python benchmarks/bench_throughput.py [--dtype float32|float64] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import tempfile
import time

import ray
import torch
from sgdthermo.sampler.archive import create_archive
from sgdthermo.sampler.jobspec import expand, validate
from sgdthermo.sampler.shard import ShardRunner, build_engine, state_facts

N, D, B, THIN = 8192, 32, 32, 10


def job(chains: int, draws: int, dtype: str) -> dict:
    return {"seed": 0,
            "model": {"kind": "linear_regression", "data": {"n": N, "d": D, "condition": 10.0}},
            "rule": {"kind": "sgd", "lr": 0.01},
            "run": {"chains": chains, "draws": draws, "burn_in": 0, "thin": THIN,
                    "batch_size": B, "dtype": dtype},
            "cluster": {"shard_chains": chains}}  # production default chunk_draws (256)


@ray.remote(num_cpus=1)
class Bench:
    """Runs every measurement in the same single-threaded worker process."""

    def __init__(self) -> None:
        torch.set_num_threads(1)

    def engine(self, chains: int, steps: int, dtype: str) -> float:
        spec = expand(validate(job(chains, steps // THIN, dtype)))[0]
        eng = build_engine(spec, chains)
        gen = torch.Generator().manual_seed(0)
        state = eng.init(gen, 1.0)
        state, _ = eng.run_block(gen, state, THIN * 2, THIN)  # warm-up
        t0 = time.perf_counter()
        eng.run_block(gen, state, steps, THIN)
        return chains * steps / (time.perf_counter() - t0)

    def archive(self, chains: int, steps: int, dtype: str) -> float:
        cfg = validate(job(chains, steps // THIN, dtype))
        runs = expand(cfg)
        tmp = tempfile.mkdtemp()
        try:
            path = f"{tmp}/bench.zarr"
            create_archive(path, cfg, runs, "cpu", [state_facts(r) for r in runs])
            runner = ShardRunner(path, 0, 0)
            t0 = time.perf_counter()
            runner.run_until(10**9)
            return chains * steps / (time.perf_counter() - t0)
        finally:
            shutil.rmtree(tmp)

    def torch_loop(self, chains: int, steps: int, dtype: str) -> float:
        spec = expand(validate(job(1, 1, dtype)))[0]
        model = build_engine(spec, 1).model
        x, y = model.x, model.y
        gen = torch.Generator().manual_seed(0)
        params = [torch.nn.Parameter(torch.zeros(D, dtype=x.dtype)) for _ in range(chains)]
        opts = [torch.optim.SGD([p], lr=0.01) for p in params]
        draws: list[torch.Tensor] = []
        t0 = time.perf_counter()
        for step in range(steps):
            for p, opt in zip(params, opts, strict=True):
                idx = torch.randint(N, (B,), generator=gen)
                opt.zero_grad()
                loss = 0.5 * ((x[idx] @ p - y[idx]) ** 2).mean()
                loss.backward()
                opt.step()
                if (step + 1) % THIN == 0:
                    draws.append(p.detach().clone())
        return chains * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--quick", action="store_true", help="fewer steps (smoke test)")
    ap.add_argument("--repeats", type=int, default=3, help="median over this many repeats")
    args = ap.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    bench = Bench.remote()
    scale = 0.1 if args.quick else 1.0
    # engine/archive steps (whole 2560-step blocks: 256 draws x thin 10), loop steps
    plan = {1: (7680, 2000), 256: (7680, 100), 4096: (5120, 10)}
    rows = []
    for chains, (steps, loop_steps) in plan.items():
        steps = max(int(steps * scale) // THIN * THIN, 4 * THIN)
        loop_steps = max(int(loop_steps * scale), THIN)
        eng, arc = [], []
        for _ in range(args.repeats):  # interleaved, so load changes hit both alike
            eng.append(ray.get(bench.engine.remote(chains, steps, args.dtype)))
            arc.append(ray.get(bench.archive.remote(chains, steps, args.dtype)))
        eng, arc = statistics.median(eng), statistics.median(arc)
        loop = ray.get(bench.torch_loop.remote(chains, loop_steps, args.dtype))
        rows.append({"chains": chains, "engine": eng, "archive": arc, "torch_loop": loop,
                     "speedup": arc / loop, "recording_overhead": 1 - arc / eng})
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {args.dtype}, 1 actor x 1 thread, "
          f"N={N} d={D} B={B} thin={THIN}")
    print(f"| {'C':>5} | {'engine':>14} | {'archive':>14} | {'torch loop':>12} | "
          f"{'speedup':>8} | {'rec. overhead':>13} |")
    print(f"|{'-' * 7}|{'-' * 16}|{'-' * 16}|{'-' * 14}|{'-' * 10}|{'-' * 15}|")
    for r in rows:
        print(f"| {r['chains']:>5} | {r['engine']:>14,.0f} | {r['archive']:>14,.0f} | "
              f"{r['torch_loop']:>12,.0f} | {r['speedup']:>7.0f}x | "
              f"{100 * r['recording_overhead']:>12.1f}% |")
    print("(chain-steps per second; speedup = archive / torch loop)")
    print(json.dumps(rows))
    ray.shutdown()


if __name__ == "__main__":
    main()
