"""Size and power of the exact-law goodness-of-fit test, and the Gibbs shape component, by simulation.

The ``mean`` model on N = 5 examples, SGD with B = 1 (``analysis.calibration.exact_law``). For
each η: the exact law's sup distance from the Gaussian with its mean and variance (a quadratic's
Gibbs law), then over replicates of 8 chains × 2 000 draws at α = 0.01 the rejection rates of:
the GOF test against the exact law (its size: an exact null), the GOF test against that
Gaussian (power against "SGD is Gibbs"), and the Gibbs test's shape component on the same draws.
Rates with exact (Clopper-Pearson) 95 % intervals.

Then the same for a 2-D logistic regression (``rejections_2d``): the 3 × 3 tertile-bin test
against the exact density (size) and against the linearised Gaussian (power). Then chains so
slow that each is one batch (``rejections_few_batches``): the test merges its bins to fit the
batch means; its size and its power against a shifted law.

Usage: ``python benchmarks/exact_law_calibration.py [--reps 400]``.
"""

from __future__ import annotations

import argparse
import platform

from sgdthermo.analysis.calibration.exact_law import (
    gaussian_distance,
    rejections,
    rejections_2d,
    rejections_few_batches,
)
from sgdthermo.analysis.calibration.gibbs import binomial_rate

RATES = (0.05, 0.1, 0.2, 0.3, 0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=400)
    args = parser.parse_args()
    n = args.reps
    print(f"# {platform.node()} {platform.machine()}, {n} replicates per row, 8 chains x 2000 "
          f"draws, alpha = 0.01")
    print("| η | exact law's distance from Gaussian | GOF vs exact law (size) | GOF vs Gaussian "
          "(power) | Gibbs shape component rejects |")
    print("|---:|---:|---|---|---|")
    for i, lr in enumerate(RATES):
        r = rejections(lr, n, seed=1000 + i)
        print(f"| {lr:g} | {gaussian_distance(lr):.3g} | {binomial_rate(r['exact'], n)} | "
              f"{binomial_rate(r['gaussian'], n)} | {binomial_rate(r['shape'], n)} |")


def main_2d(n: int) -> None:
    """The 2-D logistic regression's tertile-bin test: size and power."""
    r = rejections_2d(n, seed=2000)
    print(f"\n2-D logistic regression (η = 0.3, B = 1), 3 x 3 tertile bins, {n} replicates:")
    print("| tested against | rejected |")
    print("|---|---|")
    print(f"| exact density (size) | {binomial_rate(r['exact'], n)} |")
    print(f"| linearised Gaussian (power) | {binomial_rate(r['gaussian'], n)} |")


def main_few_batches(n: int) -> None:
    """Slow chains, one batch each: the test with its bins merged to fit the batch means."""
    r = rejections_few_batches(n, seed=3000)
    print(f"\nAR(1) with phi = 0.999 (tau ~ 2000 draws), 16 chains x 2000 draws, {n} replicates "
          f"(bins merged in {r['merged']}):")
    print("| tested against | rejected |")
    print("|---|---|")
    print(f"| N(0, 1), the exact law (size) | {binomial_rate(r['exact'], n)} |")
    print(f"| N(1, 1) (power) | {binomial_rate(r['shifted'], n)} |")


if __name__ == "__main__":
    main()
    main_2d(400)
    main_few_batches(400)
