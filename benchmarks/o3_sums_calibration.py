"""Size and power of the O3 check from the engine's sums (runs that record θ only partly).

SGD on a 4-coordinate diagonal quadratic started at stationarity, 8 chains × 8 blocks of 250
steps (``analysis.calibration.o3_sums_pvalues``): the exact null, and the named alternative of a
fluctuation term mis-scaled by 0.1 %, 0.3 % and 1 % (a rule whose stated rate is wrong). The table
gives the rejection rate at α = 0.05, 0.01 and 0.001 (the level ``Temperatures.agree`` uses)
with exact (Clopper-Pearson) 95 % intervals.

Usage: ``python benchmarks/o3_sums_calibration.py [--reps N]``.
"""

from __future__ import annotations

import argparse
import platform
import time

import scipy.stats
from sgdthermo.analysis.calibration.gibbs import o3_sums_pvalues


def interval(k: int, n: int) -> str:
    lo = scipy.stats.beta.ppf(0.025, k, n - k + 1) if k else 0.0
    hi = scipy.stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    return f"{k / n:.3f} [{lo:.3f}, {hi:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}, "
          f"{args.reps} replicates per row\n")
    print("| case | α = 0.05 | α = 0.01 | α = 0.001 |")
    print("|---|---|---|---|")
    for name, scale, seed in (("exact null", 1.0, 0), ("fluctuation × 1.001", 1.001, 1),
                              ("fluctuation × 1.003", 1.003, 2), ("fluctuation × 1.01", 1.01, 3)):
        p = o3_sums_pvalues(args.reps, seed, scale)
        cells = [interval(int((p < a).sum()), len(p)) for a in (0.05, 0.01, 0.001)]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
