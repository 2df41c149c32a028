"""Operating characteristics of run.until's equilibration test, by simulation (numpy, no Ray).

1-D SGD (η = 0.1, σ² = 1) per shard of C chains, blocks of 100 steps, at most 40 blocks
(``analysis.calibration.until``; the judgement is ``analysis.until``'s own). Three scenarios:

* transient: h = 0.1, θ₀ ~ N(0, 30²) (s∞ = 0.503): the exact relative excess of E θ² left at
  the judged step (what a too-early judgement costs), and the judged step;
* stationary: θ₀ from the exact stationary law (the null): how many blocks it takes to accept;
* random walk: h = 0 (never stationary, the named alternative): how often it is accepted.

Rates come with exact (Clopper-Pearson) 95 % intervals.

Usage: ``python benchmarks/until_calibration.py [--reps 400]``.
"""

from __future__ import annotations

import argparse
import platform

import numpy as np
from sgdthermo.analysis.calibration.gibbs import binomial_rate
from sgdthermo.analysis.calibration.until import (
    exact_excess,
    judged_blocks,
    simulate,
    stationary_variance,
)

H, INIT, BLOCKS, STEPS = 0.1, 30.0, 40, 100


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=400)
    args = parser.parse_args()
    n = args.reps
    print(f"# {platform.node()} {platform.machine()}, {n} replicates per row, blocks of {STEPS} "
          f"steps, cap {BLOCKS} blocks")
    print("| tolerance | chains | transient: median judged step | transient: excess > 0.05 | "
          "stationary: median blocks to accept | stationary: accepted by block 10 | "
          "random walk: accepted before the cap |")
    print("|---:|---:|---:|---|---:|---|---|")
    for i, (tol, chains) in enumerate([(0.01, 32), (0.02, 8), (0.02, 32), (0.02, 128),
                                       (0.05, 32)]):
        seed = 100 * i
        k = judged_blocks(*simulate(H, INIT, n, chains, BLOCKS, STEPS, seed), tol)
        excess = exact_excess(H, INIT, np.where(k > 0, k, BLOCKS) * STEPS)
        ks = judged_blocks(*simulate(H, np.sqrt(stationary_variance(H)), n, chains, BLOCKS,
                                     STEPS, seed + 1), tol)
        kw = judged_blocks(*simulate(0.0, 0.0, n, chains, BLOCKS, STEPS, seed + 2), tol)
        med = np.median(np.where(ks > 0, ks, BLOCKS + 1))
        print(f"| {tol:g} | {chains} | {np.median(np.where(k > 0, k, BLOCKS)) * STEPS:,.0f} | "
              f"{binomial_rate(int((excess > 0.05).sum()), n)} | {med:g} | "
              f"{binomial_rate(int(((ks > 0) & (ks <= 10)).sum()), n)} | "
              f"{binomial_rate(int((kw > 0).sum()), n)} |")


if __name__ == "__main__":
    main()
