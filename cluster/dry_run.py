"""``sgdthermo run --dry-run``: what a job would do and cost, measured here, without running it.

Every check ``run`` makes before Ray starts is made (the config, each run's stability, the
resources), then for each run: its chain-steps ``chains × (burn_in + draws·thin)`` (a
``run.until`` run: its caps), the archive bytes it would write (uncompressed, an upper bound:
``resources.estimate``), and a time measured on this machine. The time comes from stepping the
run's own engine on one shard's chains for about ``PROBE_S`` seconds in this process (one torch
thread, as an actor has): ``t = chain_steps / rate``; the job's total divides the sum by the
number of actors that run at once (this machine's cores, at most the number of shards; one for
a job small enough to run in the driver's process, ``executors.choose_executor``). It leaves
out Ray's start (about 5 s; none in the process) and the analysis.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

PROBE_S = 0.25  # seconds of stepping per run to measure its speed


@dataclass
class RunCost:
    """One run's planned work: chain-steps, archive bytes and the measured speed."""

    index: int
    label: str
    chains: int
    steps: int  # per chain, burn-in included
    archive_bytes: float
    rate: float  # chain-steps per second of one actor, measured here
    shards: int

    @property
    def chain_steps(self) -> int:
        """``chains × steps``."""
        return self.chains * self.steps

    @property
    def seconds(self) -> float:
        """Time on one actor per shard (shards of a run run side by side when cores allow)."""
        return self.chain_steps / self.rate


def measure_rate(spec: Any, shard_chains: int, budget_s: float = PROBE_S) -> float:
    """Chain-steps per second of the run's engine on one shard's chains, in this process."""
    import torch

    from ..sampler.shard import build_engine

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        k = min(shard_chains, spec.run.chains)
        engine = build_engine(spec, k, "cpu")
        gen = torch.Generator().manual_seed(0)
        state = engine.init(gen, spec.run.init_scale)
        thin = spec.run.thin
        state, _ = engine.run_block(gen, state, thin, thin)  # warm-up: kernels, caches
        steps, spent = thin, 0.0
        while spent < budget_s:
            start = time.perf_counter()
            state, _ = engine.run_block(gen, state, steps, thin)
            spent = time.perf_counter() - start
            if spent < budget_s:
                steps *= 4
        return k * steps / max(spent, 1e-9)
    finally:
        torch.set_num_threads(threads)


def plan(job: Any, facts: list[dict[str, Any]]) -> list[RunCost]:
    """Each run's cost (``facts``: per run, ``shard.state_facts``)."""
    from ..sampler.jobspec import expand
    from .resources import run_archive_bytes

    out = []
    for spec, f in zip(expand(job), facts, strict=True):
        run = spec.run
        steps = run.max_burn_in + run.max_draws * run.thin  # run.until: its caps
        k = job.cluster.shard_chains
        size = run_archive_bytes(spec, f, k, job.cluster.chunk_draws)
        out.append(RunCost(spec.index, spec.label, run.chains, steps, size,
                           measure_rate(spec, k), -(-run.chains // k)))
    return out


def total_seconds(costs: list[RunCost], cores: int | None = None) -> float:
    """Wall time with ``cores`` actors at once (default: this machine's), at least the longest."""
    cores = cores or os.cpu_count() or 1
    shards = sum(c.shards for c in costs)
    parallel = max(1, min(cores, shards))
    per_shard = [c.seconds / c.shards for c in costs for _ in range(c.shards)]
    return max(sum(per_shard) / parallel, max(per_shard, default=0.0))


def human_time(seconds: float) -> str:
    """``"45 s"``, ``"3.2 min"``, ``"1.5 h"``."""
    if seconds < 1:
        return "< 1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def human_bytes(n: float) -> str:
    """``"12.3 MiB"``, ``"1.2 GiB"``."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def dry_run(config: Any, overrides: Any = (), cores: int | None = None,
            address: str | None = None) -> dict[str, Any]:
    """Validate ``config`` as ``run`` does, then plan it: the record ``run --dry-run`` prints.

    Nothing is written and Ray does not start.
    """
    from .driver import validate_runs
    from .executors import choose_executor
    from .jobs import load_config
    from .resources import check_resources

    job = load_config(config, overrides)
    facts = validate_runs(job)
    check_resources(job, facts, ".", machine=False)  # the job's own limits, not this disk's
    costs = plan(job, facts)
    executor = choose_executor(job, [int(f["dim"]) for f in facts], address, False)
    cores = 1 if executor == "process" else (cores or os.cpu_count() or 1)
    return {"name": job.name, "cores": cores, "executor": executor,
            "runs": [{"run": c.index, "label": c.label, "chains": c.chains,
                      "steps_per_chain": c.steps, "chain_steps": c.chain_steps,
                      "chain_steps_per_s": c.rate, "seconds_one_actor": c.seconds,
                      "shards": c.shards, "archive_bytes": c.archive_bytes} for c in costs],
            "chain_steps": sum(c.chain_steps for c in costs),
            "archive_bytes": sum(c.archive_bytes for c in costs),
            "seconds": total_seconds(costs, cores)}


def print_plan(record: dict[str, Any], console: Any) -> None:
    """The plan as a table (one row per run) and a one-line total."""
    from ..analysis.render.tables import fit_tables

    rows = [[str(r["run"]), r["label"], str(r["chains"]), f"{r['steps_per_chain']:,}",
             f"{r['chain_steps']:,}", f"{r['chain_steps_per_s']:,.0f}",
             human_time(r["seconds_one_actor"]), human_bytes(r["archive_bytes"])]
            for r in record["runs"]]
    head = ["run", "label", "chains", "steps/chain", "chain-steps", "chain-steps/s",
            "time (1 core)", "archive"]
    for table in fit_tables(f"{record['name']}: dry run (nothing written, Ray not started)",
                            head, rows, console.width):
        console.print(table)
    console.print(f"{len(record['runs'])} run(s), {record['chain_steps']:,} chain-steps, "
                  f"archive about {human_bytes(record['archive_bytes'])} (uncompressed, at "
                  f"most); sampling about {human_time(record['seconds'])} on "
                  f"{record['cores']} core(s) of this machine, measured here, "
                  + ("in the driver's process (a job this small does not start Ray), "
                     if record.get("executor") == "process" else "plus Ray's start (about 5 s) ")
                  + "and the analysis.", highlight=False)
