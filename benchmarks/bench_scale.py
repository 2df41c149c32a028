"""Run and analyse a diagonal quadratic at network scale; ArviZ side by side on the diagnostics.

Workload (issue 8): ``quadratic`` with a geometric Hessian spectrum (1 → 0.05) and linear noise
spectrum (1 → 4) over D coordinates, SGD at η = 0.5, 8 chains × ``--draws`` draws (float32), two
shards on the embedded Ray. Prints whole-process wall time and peak memory of ``sgdthermo run``
and ``sgdthermo analyze --json`` (per-coordinate R-hat, bulk/tail ESS and MCSE for every
coordinate, both temperatures, exact theory and the Gibbs verdict), then the time of sgdthermo's
vectorised diagnostics against ``arviz.rhat``/``ess``/``mcse`` on the first ``--arviz-coords``
coordinates of the same draws, as a ratio.

Usage: ``python benchmarks/bench_scale.py [--dim 10000] [--draws 5000] [--arviz-coords 500]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

CONFIG = """name = "bench-scale"
seed = 1
[model]
kind = "quadratic"
hessian = {{ spectrum = "geometric", d = {dim}, first = 1.0, last = 0.05 }}
noise_cov = {{ spectrum = "linear", d = {dim}, first = 1.0, last = 4.0 }}
[rule]
kind = "sgd"
lr = 0.5
[run]
chains = 8
draws = {draws}
burn_in = 1000
dtype = "float32"
[cluster]
shard_chains = 4
chunk_draws = 500
"""


def timed(cmd: list[str], out: Path | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of a whole command, measured by GNU time."""
    log = Path(tempfile.mktemp())
    with open(out or os.devnull, "w") as sink:
        subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", str(log), *cmd], check=True,
                       stdout=sink, stderr=subprocess.DEVNULL)
    wall, kb = log.read_text().split()[-2:]
    return float(wall), float(kb) / 2**20


def diagnostics_side_by_side(path: str, k: int) -> tuple[float, float, float]:
    """Seconds for ours and ArviZ's on the first k coordinates, and the largest relative gap."""
    import arviz as az
    import xarray as xr
    from sgdthermo.analysis.diagnostics.run_diagnostics import diagnose_array
    from sgdthermo.analysis.reader import open_run

    x = np.asarray(open_run(path, 0).posterior()["theta"][:, :, :k].values, dtype=float)
    t = time.perf_counter()
    ours = {q: np.asarray(v) for q, v in diagnose_array(
        xr.DataArray(x, dims=("chain", "draw", "coord"))).items()}
    t_ours = time.perf_counter() - t
    ds = az.convert_to_dataset({"theta": x})
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = {"r_hat": az.rhat(ds, method="rank"), "ess_bulk": az.ess(ds, method="bulk"),
               "ess_tail": az.ess(ds, method="tail"), "mcse_mean": az.mcse(ds, method="mean")}
    t_arviz = time.perf_counter() - t
    gap = max(float(np.max(np.abs(ours[q] / ref[q]["theta"].values - 1))) for q in ref)
    return t_ours, t_arviz, gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=10_000)
    parser.add_argument("--draws", type=int, default=5000)
    parser.add_argument("--arviz-coords", type=int, default=500)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        cfg, path = Path(tmp) / "job.toml", str(Path(tmp) / "a.zarr")
        cfg.write_text(CONFIG.format(dim=args.dim, draws=args.draws))
        run = timed([str(bin_dir / "sgdthermo"), "run", str(cfg), "--out", path,
                     "--no-progress", "--no-analyze"])
        analyze = timed([str(bin_dir / "sgdthermo"), "analyze", "--json", path],
                        Path(tmp) / "out.json")
        record = json.loads((Path(tmp) / "out.json").read_text())["runs"][0]
        ours, theirs, gap = diagnostics_side_by_side(path, args.arviz_coords)
    z = np.asarray(record["theory"]["virial_z"], dtype=float)
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, D = {args.dim}, 8 chains x {args.draws} draws, float32")
    print("| step | wall s | peak GB |")
    print("|---|---:|---:|")
    print(f"| sgdthermo run (2 shards) | {run[0]:.1f} | {run[1]:.2f} |")
    print(f"| sgdthermo analyze --json | {analyze[0]:.1f} | {analyze[1]:.2f} |")
    print(f"\ncoordinates diagnosed: {len(record['diagnostics']['theta']['r_hat'])}; "
          f"Gibbs verdict: {record['gibbs']['verdict']}; rms z (virial vs exact theory): "
          f"{np.sqrt(np.mean(z**2)):.3f}")
    k = args.arviz_coords
    print(f"\n| diagnostics on {k} coordinates | seconds | per coordinate ms |")
    print("|---|---:|---:|")
    print(f"| sgdthermo (vectorised, 2 threads) | {ours:.2f} | {1e3 * ours / k:.2f} |")
    print(f"| ArviZ {__import__('arviz').__version__} | {theirs:.2f} | {1e3 * theirs / k:.2f} |")
    print(f"ratio ArviZ / sgdthermo: {theirs / ours:.1f}x; largest relative difference "
          f"{gap:.1e}")


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
