"""Time to compute the exact finite-η laws that `analyze` puts beside a run.

Workloads: the 1-D transfer operator for the `mean` model on N = 100 examples at a small rate
(η = 0.04: the plain iteration needs ~750 sweeps) and a large one (η = 0.5); the 2-D
Perron-Frobenius operator for logistic regression (d = 2, N = 6, η = 0.3) on grids of 81² and
161². Prints the best of ``--repeats`` wall times per law, one process, one thread.

Usage: ``python benchmarks/bench_exact_laws.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from sgdthermo.analysis.calibration.exact_law import LOGISTIC_2D
from sgdthermo.analysis.theory import one_d as exact_law
from sgdthermo.analysis.theory import two_d as exact_law_2d
from sgdthermo.sampler.config import LogisticRegressionConfig, MeanConfig


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, best of "
          f"{args.repeats}")
    print("| law | s |")
    print("|---|---:|")
    model = MeanConfig(kind="mean", n=100).build(1)
    centre = float(model.dataset()[1].mean())
    for lr in (0.04, 0.5):
        var = exact_law.linearise_1d(model, centre).variance(lr)
        t = best(lambda lr=lr, var=var: exact_law.exact_law_1d(model, lr, centre, var),
                 args.repeats)
        print(f"| 1-D mean model, N = 100, η = {lr} | {t:.2f} |")
    parts = LogisticRegressionConfig.model_validate(LOGISTIC_2D).build(1).glm_parts()
    assert parts is not None
    theta = exact_law_2d.newton_optimum(parts, np.zeros(2))
    _, h, _, c = exact_law_2d.glm_curvature(parts, theta)
    cov = exact_law_2d.linear_covariance(h, c, 0.3)
    for size in (81, 161):
        t = best(lambda size=size: exact_law_2d.exact_law_2d(parts, 0.3, theta, cov, size=size),
                 args.repeats)
        print(f"| 2-D logistic, N = 6, η = 0.3, G = {size} | {t:.2f} |")


if __name__ == "__main__":
    main()
