"""Size and power of the convergence gate (``analysis/calibration/mixing.py``), as a table.

Size: stationary AR(1) chains with ``C·n/τ`` well above the ESS minimum, judged at the default
R-hat bound (1.05) and at Vehtari et al.'s 1.01. Power: chains started 10 SD out with τ as long
as the run; one chain of C shifted by 1 SD. Usage: ``python benchmarks/mixing_calibration.py
[--reps 100]``.
"""

from __future__ import annotations

import argparse
import platform
import time

from sgdthermo.analysis.calibration.mixing import flag_rate
from sgdthermo.analysis.diagnostics.mixing import Thresholds

CASES = [  # (scenario, chains, draws, coords, phi)
    ("stationary", 8, 2000, 1, 0.9), ("stationary", 8, 2000, 100, 0.9),
    ("stationary", 64, 500, 1, 0.9), ("stationary", 64, 500, 100, 0.9),
    ("far start", 8, 2000, 1, 0.999), ("far start", 8, 2000, 100, 0.999),
    ("stuck chain", 8, 2000, 1, 0.9), ("stuck chain", 64, 500, 100, 0.9),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=100)
    args = ap.parse_args()
    print(f"{platform.processor() or platform.machine()}; {args.reps} replicates per cell; "
          f"AR(1) chains, tau = (1 + phi)/(1 - phi) draws")
    print(f"{'scenario':12} {'C':>3} {'n':>5} {'K':>4} {'tau':>5}  {'flagged (1.05)':>14}  "
          f"{'flagged (1.01)':>14}  {'s':>5}")
    for name, c, n, k, phi in CASES:
        start = time.perf_counter()
        f05, reps = flag_rate(name, args.reps, 11, c, n, k, phi)
        f01, _ = flag_rate(name, args.reps, 11, c, n, k, phi, Thresholds(1.01, 400))
        tau = (1 + phi) / (1 - phi)
        print(f"{name:12} {c:3d} {n:5d} {k:4d} {tau:5.0f}  {f05:5d}/{reps:<8d}  "
              f"{f01:5d}/{reps:<8d}  {time.perf_counter() - start:5.0f}")


if __name__ == "__main__":
    main()
