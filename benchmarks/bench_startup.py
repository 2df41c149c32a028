"""The fixed start-up cost of a job: ``sgdthermo run`` and ``analyze`` on almost nothing.

Workload: a 2-D quadratic, 8 chains × 100 draws in two shards (milliseconds of sampling). For
each way of running it, side by side in one invocation, the median over ``--repeats`` runs of:
the time from starting ``sgdthermo run --no-analyze`` to the archive's first committed block
(polled every 10 ms) and to the process's exit; then ``sgdthermo analyze`` of the archive to
exit. The ways: the default (a job this small runs in the driver's process, no Ray:
``cluster.executor = "auto"``) and ``cluster.executor = "ray"`` (the embedded Ray instance,
as every job ran before). Then one in-process breakdown of the default run into its phases.

Usage: ``python benchmarks/bench_startup.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import shutil
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
    """Seconds of each phase of one default (in-process) ``run`` in this process."""
    t0 = time.perf_counter()
    from sgdthermo.cluster import driver
    from sgdthermo.sampler.jobspec import load_job
    stamps = [("imports", time.perf_counter() - t0)]

    def lap(name: str, fn, *args, **kw):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        result = fn(*args, **kw)
        stamps.append((name, time.perf_counter() - t))
        return result

    job = lap("load and validate", lambda: load_job(str(conf), []))
    facts = lap("model facts (each run's model and engine built once)", driver.validate_runs, job)
    lap("archive", driver.prepare_archive, job, str(out), True, "cpu", facts)
    lap("shards and sampling (in this process)", driver.run_archive, str(out),
        executor="process")
    return stamps


def first_commit(cmd: list[str], out: Path) -> tuple[float, float]:
    """Seconds from start to the archive's first committed block, and to the process's exit."""
    from sgdthermo.cluster.driver import shard_table

    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = float("nan")
    while proc.poll() is None:
        try:
            if any(sp.blocks_done for sp in shard_table(str(out))):
                first = time.perf_counter() - t
                break
        except Exception:  # noqa: BLE001 - not created yet
            pass
        time.sleep(0.01)
    proc.wait()
    done = time.perf_counter() - t
    assert proc.returncode == 0, cmd
    return (done if first != first else first), done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--phases", nargs=2, metavar=("CONFIG", "OUT"),
                        help="(internal) print the phases of one run in this process")
    args = parser.parse_args()
    if args.phases:
        for name, seconds in phases(Path(args.phases[0]), Path(args.phases[1])):
            print(f"| {name} | {seconds:.2f} |")
        return
    with tempfile.TemporaryDirectory() as tmp:
        conf, out = Path(tmp) / "job.toml", Path(tmp) / "out.zarr"
        conf.write_text(JOB)
        cli = [sys.executable, "-m", "sgdthermo.cluster.cli"]
        print("| executor | run → first commit s | run → exit s | analyze → exit s |")
        print("|---|---:|---:|---:|")
        for name, extra in (("auto (this process, no Ray)", []),
                            ("ray (embedded instance)", ["--set", "cluster.executor=ray"])):
            firsts, exits, analyses = [], [], []
            for _ in range(args.repeats):
                if out.exists():
                    shutil.rmtree(out)
                f, e = first_commit([*cli, "run", str(conf), "--out", str(out), "--no-progress",
                                     "--no-analyze", *extra], out)
                firsts.append(f)
                exits.append(e)
                t = time.perf_counter()
                subprocess.run([*cli, "analyze", str(out)], check=True, capture_output=True)
                analyses.append(time.perf_counter() - t)
            print(f"| {name} | {statistics.median(firsts):.2f} | {statistics.median(exits):.2f} "
                  f"| {statistics.median(analyses):.2f} |", flush=True)
        print("\n| phase of the default run (in a fresh process) | s |\n|---|---:|")
        shutil.rmtree(out)
        print(subprocess.run([sys.executable, __file__, "--phases", str(conf), str(out)],
                             check=True, capture_output=True, text=True).stdout, end="")


if __name__ == "__main__":
    main()
