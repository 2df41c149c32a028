"""The fixed start-up cost of a job: ``sgdthermo run`` on a job that has almost nothing to do.

Workload: the quickstart's 2-D quadratic, 8 chains × 100 draws in two shards (a few milliseconds
of sampling). Prints the median whole-process wall time of ``sgdthermo run --no-analyze`` over
``--repeats`` runs, and one in-process breakdown into its phases (imports, validation, Ray start,
archive preparation, actors and sampling, Ray shutdown).

Usage: ``python benchmarks/bench_startup.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOB = """name = "startup"
seed = 0
[model]
kind = "quadratic"
hessian = [1.0, 1.0]
noise_cov = [1.0, 9.0]
[rule]
kind = "sgd"
lr = 0.1
[run]
chains = 8
draws = 100
burn_in = 0
[cluster]
shard_chains = 4
"""


def phases(conf: Path, out: Path) -> list[tuple[str, float]]:
    """Seconds of each phase of one ``run`` in this process."""
    t0 = time.perf_counter()
    from sgdthermo.cluster import driver
    from sgdthermo.sampler.jobspec import load_job
    stamps = [("imports", time.perf_counter() - t0)]

    def lap(name: str, fn, *args):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        result = fn(*args)
        stamps.append((name, time.perf_counter() - t))
        return result

    job = lap("load and validate", lambda: load_job(str(conf), []))
    facts = lap("model facts", driver.validate_runs, job)
    lap("Ray start", driver.init_ray, None)
    lap("archive", driver.prepare_archive, job, str(out), True, "cpu", facts)
    lap("actors and sampling", driver.run_archive, str(out))
    import ray
    lap("Ray shutdown", ray.shutdown)
    return stamps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        conf, out = Path(tmp) / "job.toml", Path(tmp) / "out.zarr"
        conf.write_text(JOB)
        walls = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "sgdthermo.cluster.cli", "run", str(conf),
                            "--out", str(out), "--overwrite", "--no-progress", "--no-analyze"],
                           check=True, capture_output=True)
            walls.append(time.perf_counter() - t)
        print(f"sgdthermo run --no-analyze, whole process: median {statistics.median(walls):.2f} s "
              f"over {args.repeats} ({', '.join(f'{w:.2f}' for w in walls)})")
        print("| phase (in process) | s |\n|---|---:|")
        for name, seconds in phases(conf, out):
            print(f"| {name} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
