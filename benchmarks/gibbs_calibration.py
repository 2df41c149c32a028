"""Size and power of the Gibbs test by simulation on exactly known laws (numpy, no Ray).

Every case is SGD on a diagonal quadratic started at stationarity (``analysis.calibration``):
exact-Gibbs nulls at finite η for D ∈ {1, 2, 8, 32, 128, 1024}, and named alternatives (a few
coordinates hotter, coupled noise, a skewed law). Each replicate runs the full three-component
test at family-wise α = 0.01 on 8 chains × 2000 draws with the slowest IAT ≈ 10 draws; the table
gives the rejection rate with its exact (Clopper-Pearson) 95 % interval, the rate of each
component at its own p < α, and the targets of the issue.

Usage: ``python benchmarks/gibbs_calibration.py [--reps N] [--quick]`` (two worker processes).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import scipy.stats

os.environ.setdefault("OMP_NUM_THREADS", "1")

from sgdthermo.analysis.calibration.gibbs import Case, simulate  # noqa: E402
from sgdthermo.analysis.law.gibbs import ALPHA, gibbs_test_arrays  # noqa: E402

NULLS = [Case(d) for d in (1, 2, 8, 32, 128, 1024)]
ALTERNATIVES = [
    (Case(8, "hotter", 4 / 8, 0.05), None),
    (Case(32, "hotter", 4 / 32, 0.10), 0.8),
    (Case(32, "hotter", 4 / 32, 0.15), None),
    (Case(32, "hotter", 8 / 32, 0.15), None),
    (Case(128, "hotter", 4 / 128, 0.30), None),
    (Case(1024, "hotter", 32 / 1024, 0.10), 0.8),
    (Case(2, "coupling", 0.0, 0.2), None),
    (Case(8, "coupling", 0.0, 0.2), None),
    (Case(1, "skewed"), 0.8),
    (Case(32, "skewed"), None),
]


def replicate(args: tuple[Case, int]) -> tuple[float, list[float]]:
    """Family p-value and component p-values of one replicate."""
    case, seed = args
    theta, grads = simulate(case, 8, 2000, np.random.default_rng(seed))
    res = gibbs_test_arrays(theta - theta.mean(axis=(0, 1)), grads)
    return res.p_value, [c.p_value for c in res.components]


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    """Exact 95 % interval of a binomial proportion."""
    lo = scipy.stats.beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
    hi = scipy.stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    return float(lo), float(hi)


def describe(case: Case) -> str:
    """A short label of a case."""
    if case.kind == "hotter":
        k = max(1, round(case.fraction * case.dim))
        return f"{k} of {case.dim} {case.delta:.0%} hotter"
    if case.kind == "coupling":
        return f"D={case.dim}, noise corr {case.delta}"
    return f"D={case.dim}" + (", skewed" if case.kind == "skewed" else "")


def measure(pool: ProcessPoolExecutor, case: Case, reps: int) -> dict:
    """Rejection rates of one case over ``reps`` replicates."""
    start = time.perf_counter()
    out = list(pool.map(replicate, [(case, 1000 * case.dim + r) for r in range(reps)]))
    fam = np.array([o[0] for o in out])
    comp = np.nan_to_num(np.array([o[1] for o in out]), nan=1.0)
    k = int((fam < ALPHA).sum())
    return {"k": k, "n": reps, "ci": clopper_pearson(k, reps),
            "components": (comp < ALPHA).mean(axis=0), "seconds": time.perf_counter() - start}


def row(label: str, m: dict, target: str) -> str:
    """One table row."""
    c = m["components"]
    return (f"| {label:<24} | {m['k'] / m['n']:6.3f} | [{m['ci'][0]:.3f}, {m['ci'][1]:.3f}] | "
            f"{c[0]:5.3f} | {c[1]:5.3f} | {c[2]:5.3f} | {m['n']:4d} | {target:<12} |")


def main() -> None:
    """Print the size and power tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200, help="replicates per case")
    parser.add_argument("--quick", action="store_true", help="D ≤ 128 only")
    args = parser.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    print(f"# Gibbs test calibration, {time.strftime('%Y-%m-%d')}, {cpu}, "
          f"{os.cpu_count()} cores, α = {ALPHA}, 8 chains × 2000 draws, τ ≈ 10\n")
    header = ("| case                     | reject | 95 % CI        | temps | coupl | shape "
              "|    n | target       |\n|---|---|---|---|---|---|---|---|")
    keep = (lambda c: c.dim <= 128) if args.quick else (lambda c: True)
    with ProcessPoolExecutor(2) as pool:
        print("Size (exact-Gibbs nulls at finite η; target rate in [0.005, 0.02]):\n")
        print(header)
        for case in filter(keep, NULLS):
            reps = args.reps if case.dim < 1024 else max(args.reps // 2, 20)
            print(row(describe(case), measure(pool, case, reps), "[0.005, 0.02]"), flush=True)
        print("\nPower (named alternatives):\n")
        print(header)
        for case, target in ALTERNATIVES:
            if keep(case):
                reps = max(args.reps // 2, 20)
                print(row(describe(case), measure(pool, case, reps),
                          f">= {target}" if target else ""), flush=True)


if __name__ == "__main__":
    main()
