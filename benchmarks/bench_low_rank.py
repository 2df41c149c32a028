"""Diagonal-plus-low-rank quadratics: O(Dk²) theory and O(Dk) steps against dense ones.

Workload (issue 8): H = geometric bulk (1 → 0.05) + k spikes (random directions), Σ = 0.5·I + H,
SGD at η = 0.05 (momentum μ = 0.8, η = 0.01 for the theory column), one pinned thread.

* theory: ``analysis.theory.stationary_theory`` — the dense Lyapunov solver where D ≤ 512 (its
  limit) and the O(Dk²) law above; and, for comparison, the O(Dk²) law at every D, plus its
  largest difference from the dense solution where both exist;
* step: ``Engine.run_block`` chain-steps/s at C = 64 recording every 10th step, the factored
  model beside the same H as a dense matrix (D ≤ 2048; O(D²) per chain-step).

Usage: ``taskset -c 0 python benchmarks/bench_low_rank.py [--quick]``.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from sgdthermo.analysis.theory.linear import stationary_theory
from sgdthermo.analysis.theory.low_rank import low_rank_law
from sgdthermo.sampler.config import QuadraticConfig, RunConfig, SGDConfig
from sgdthermo.sampler.config.rules import MomentumConfig
from sgdthermo.sampler.engine import Engine

C, THIN = 64, 10


def config(dim: int, k: int, dense: bool = False) -> QuadraticConfig:
    spikes = list(np.geomspace(20.0, 2.0, k))
    low = QuadraticConfig(hessian={"diagonal": {"d": dim, "first": 1.0, "last": 0.05},
                                   "spikes": spikes, "seed": 0},
                          noise_cov={"isotropic": 0.5, "hessian": 1.0})
    if not dense:
        return low
    h = low.build(1).linear_gradient(1, "iid").hessian.dense()
    return QuadraticConfig(hessian=h.tolist(), noise_cov=(0.5 * np.eye(dim) + h).tolist())


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def theory_row(dim: int, k: int, rule) -> str:
    model, run = config(dim, k).build(1), RunConfig(batch_size=1)
    form = model.linear_gradient(1, "iid")
    t_low, law = timed(lambda: low_rank_law(form, rule))
    if dim <= 512:
        t_dense, th = timed(lambda: stationary_theory(model, rule, run), repeat=1)
        diff = float(np.abs(law.variance / th.variance - 1).max())
        dense = f"{t_dense:9.3f} s | {diff:.1e}"
    else:
        dense = "  skipped | –"
    return f"| {dim:>9,} | {k:>3} | {t_low * 1e3:9.1f} ms | {dense} |"


def steps_per_second(cfg: QuadraticConfig, steps: int) -> float:
    model = cfg.build(1, torch.float32)
    eng = Engine(model, SGDConfig(lr=0.05).build(1), 1, "iid", C)
    gen = torch.Generator().manual_seed(0)
    state, _ = eng.run_block(gen, eng.init(gen, 1.0), 2 * THIN, THIN)
    t0 = time.perf_counter()
    eng.run_block(gen, state, steps, THIN)
    return C * steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer steps")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d')}")
    dims = [512, 10_000] if args.quick else [256, 512, 10_000, 100_000, 1_000_000]
    for name, rule in (("SGD η = 0.05", SGDConfig(lr=0.05).build(1)),
                       ("momentum η = 0.01, μ = 0.8", MomentumConfig(lr=0.01, mu=0.8).build(1))):
        print(f"\ntheory, {name}: the O(Dk²) law beside the dense solver\n")
        print("| D | k | O(Dk²) law | dense solver | max rel. diff |")
        print("|---|---|---|---|---|")
        for dim in dims:
            print(theory_row(dim, 16, rule))
    steps = 100 if args.quick else 400
    print(f"\nSGD steps, C = {C}, float32, thin {THIN}: chain-steps/s\n")
    print("| D | k | factored | dense H | ratio |")
    print("|---|---|---|---|---|")
    for dim in ([512] if args.quick else [512, 2048, 10_000, 100_000]):
        low = steps_per_second(config(dim, 16), steps)
        dense = steps_per_second(config(dim, 16, True), steps) if dim <= 2048 else float("nan")
        ratio = f"{low / dense:.1f}×" if dim <= 2048 else "–"
        dense_s = f"{dense:,.0f}" if dim <= 2048 else "(D×D too large)"
        print(f"| {dim:>7,} | 16 | {low:,.0f} | {dense_s} | {ratio} |")


if __name__ == "__main__":
    main()
