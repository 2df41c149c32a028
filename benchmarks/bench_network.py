"""A network with ≥ 10⁵ parameters end to end: 64 chains on ONE CPU actor, then ``analyze``.

Workload (issue 8): SGD (η = 0.05, B = 32, float32) on an ``mlp`` (hidden 384, 256: 126 090
parameters) or a ``cnn`` (channels 16, 32, hidden 64: 136 586 parameters) on scikit-learn's
digits, 64 chains in one shard (one actor, one core, one torch thread), ``--draws`` draws every
``--thin`` steps after ``--burn-in`` steps. Prints the engine's step time alone (in process), the
whole-process wall time and peak memory of ``sgdthermo run`` (driver; the actor is a separate
process) and ``sgdthermo analyze --json``, and what the analysis reports per layer.

Usage: ``python benchmarks/bench_network.py [--model mlp|cnn] [--draws 64] [--thin 10]
[--every K --projections k]`` (the last two record θ partly: ``run.record``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_scale import timed
from sgdthermo.sampler.jobspec import expand, validate
from sgdthermo.sampler.shard import build_engine

MODELS = {"mlp": {"kind": "mlp", "hidden": [384, 256]},
          "cnn": {"kind": "cnn", "channels": [16, 32], "hidden": [64]}}


def job(model: str, draws: int, thin: int, burn_in: int, every: int = 0,
        projections: int = 0) -> dict:
    """The benchmark's config (``every``/``projections``: ``run.record``)."""
    run = {"chains": 64, "draws": draws, "thin": thin, "burn_in": burn_in, "batch_size": 32,
           "dtype": "float32"}
    if every:
        run["record"] = {"every": every, "projections": projections}
    return {"name": f"bench-network-{model}", "seed": 0, "model": MODELS[model],
            "rule": {"kind": "sgd", "lr": 0.05}, "run": run, "cluster": {"shard_chains": 64}}


def _value(v: object) -> str:
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(v)


def toml(cfg: dict) -> str:
    """A flat TOML rendering of the config (tables of scalars and lists)."""
    lines = [f'name = "{cfg["name"]}"', f"seed = {cfg['seed']}"]
    for table in ("model", "rule", "run", "cluster"):
        lines.append(f"[{table}]")
        lines += [f"{k} = {_value(v)}" for k, v in cfg[table].items()]
    return "\n".join(lines) + "\n"


def step_time(cfg: dict, steps: int = 20) -> tuple[int, float]:
    """Parameters and seconds per step of the engine alone, one thread."""
    torch.set_num_threads(1)
    engine = build_engine(expand(validate(cfg))[0], 64)
    gen = torch.Generator().manual_seed(0)
    state, _ = engine.run_block(gen, engine.init(gen, 1.0), 2, 1)
    t0 = time.perf_counter()
    engine.run_block(gen, state, steps, steps)
    return engine.model.dim, (time.perf_counter() - t0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=list(MODELS), default="mlp")
    parser.add_argument("--draws", type=int, default=64)
    parser.add_argument("--thin", type=int, default=10)
    parser.add_argument("--burn-in", type=int, default=200)
    parser.add_argument("--every", type=int, default=0,
                        help="record every k-th coordinate only (run.record.every)")
    parser.add_argument("--projections", type=int, default=0,
                        help="with --every: also record this many random projections")
    args = parser.parse_args()
    cfg = job(args.model, args.draws, args.thin, args.burn_in, args.every, args.projections)
    dim, step = step_time(cfg)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}; "
          f"{args.model}: {dim:,} parameters, 64 chains on one actor")
    print(f"engine alone: {step * 1e3:.1f} ms per step of 64 chains "
          f"({64 / step:,.0f} chain-steps/s)")
    with tempfile.TemporaryDirectory() as tmp:
        conf, out = Path(tmp) / "net.toml", Path(tmp) / "net.zarr"
        conf.write_text(toml(cfg))
        exe = [sys.executable, "-m", "sgdthermo.cluster.cli"]
        run_s, run_gb = timed([*exe, "run", str(conf), "--out", str(out), "--no-progress"])
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20
        report = Path(tmp) / "analysis.json"
        an_s, an_gb = timed([*exe, "analyze", str(out), "--json"], report)
        r = json.loads(report.read_text())["runs"][0]
    steps = args.burn_in + args.draws * args.thin
    print("| step | wall s | peak GB |\n|---|---:|---:|")
    print(f"| sgdthermo run ({steps} steps) | {run_s:.1f} | {run_gb:.2f} |")
    print(f"| sgdthermo analyze --json | {an_s:.1f} | {an_gb:.2f} |")
    print(f"archive {size:,.0f} MiB; record {cfg['run'].get('record', 'all of θ')}")
    print(f"status {r['status']}; worst {r['worst']}")
    for name, stats in r["diagnostics"].items():
        rh = np.asarray(stats["r_hat"], dtype=float)
        print(f"  {name:>10} {str(list(rh.shape)):>12}  max R-hat {np.nanmax(rh):8.3f}  "
              f"min ESS bulk {np.nanmin(np.asarray(stats['ess_bulk'], dtype=float)):8.1f}")
    gibbs = r.get("gibbs") or {}
    print(f"Gibbs verdict: {gibbs.get('verdict')}")


if __name__ == "__main__":
    main()
