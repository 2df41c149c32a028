"""Size and power of the per-layer fluctuation–dissipation z (``landscape.fdr``), by simulation.

Each replicate is a whole run through the engine and ``analyze_run``: SGD (η = 0.2) on a
diagonal quadratic ``h = [1, 0.5, 0.25]`` with unit noise, 8 chains × 1000 draws.

* Null: after a burn-in of 1000 steps (40 relaxation times of the slowest coordinate), the law
  is stationary and ``O_L = O_R`` exactly. The rejection rate of ``|z| > 3.29`` should be about
  0.1 %, and z should have SD about 1.
* Alternative: chains started at ``init_scale = 10`` with no burn-in, still relaxing during the
  first tens of draws.

Both forms are simulated: θ recorded in full (independent estimates) and partly (paired
sums). Prints a table with binomial 95 % intervals.
Usage: ``python benchmarks/fdr_calibration.py [--replicates 200]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import scipy.stats
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sgdthermo.analysis.reader import open_run  # noqa: E402
from sgdthermo.analysis.record import analyze_run  # noqa: E402
from sgdthermo.sampler.in_process import run_here  # noqa: E402


def z_of(seed: int, record: dict | None, relaxing: bool, folder: Path) -> float:
    """The whole model's FDR z of one simulated run."""
    run = {"chains": 8, "draws": 1000, "burn_in": 0 if relaxing else 1000,
           "init_scale": 10.0 if relaxing else 1.0}
    if record:
        run["record"] = record
    cfg = {"seed": seed, "model": {"kind": "quadratic", "hessian": [1.0, 0.5, 0.25],
                                   "noise_cov": [1.0, 1.0, 1.0]},
           "rule": {"kind": "sgd", "lr": 0.2}, "run": run}
    name = f"r{seed}-{'partial' if record else 'full'}-{'relax' if relaxing else 'null'}.zarr"
    path = run_here(cfg, folder / name)
    z = analyze_run(open_run(path, 0)).as_dict()["fdr"]["overall"]["z"]
    shutil.rmtree(path)
    return float("nan") if z is None else float(z)


def interval(k: int, n: int) -> str:
    """``k/n (rate) [95 % Clopper–Pearson]``."""
    lo = scipy.stats.beta.ppf(0.025, k, n - k + 1) if k else 0.0
    hi = scipy.stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    return f"{k}/{n} ({k / n:.3f}) [{lo:.3f}, {hi:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp())
    print("| form | law | replicates | SD of z | |z| > 3.29 | |z| > 4 |")
    print("|---|---|---:|---:|---|---|")
    for form, record in (("independent (θ in full)", None), ("paired (θ partly)",
                                                             {"coords": [0]})):
        for law, relaxing, n in (("stationary (size)", False, args.replicates),
                                 ("relaxing from init_scale 10 (power)", True,
                                  max(20, args.replicates // 4))):
            z = np.array([z_of(1000 + i, record, relaxing, folder) for i in range(n)])
            z = z[np.isfinite(z)]
            print(f"| {form} | {law} | {len(z)} | {np.std(z):.3f} | "
                  f"{interval(int((np.abs(z) > 3.29).sum()), len(z))} | "
                  f"{interval(int((np.abs(z) > 4).sum()), len(z))} |", flush=True)


if __name__ == "__main__":
    main()
