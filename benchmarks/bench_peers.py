"""Chain-steps per second against the tools a user would pick instead, side by side in one run.

Workloads (issue 8), every step recorded (thin = 1), float32, one CPU thread, C chains:

* ``linreg``: SGD, η = 0.01, on ``linear_regression`` with N = 8192, d = 32, B = 32;
* ``quad2d``: SGD, η = 0.1, on the quickstart's 2-D quadratic (H = I, noise σ = (1, 3), B = 1).

Columns: a hand-written vectorised eager-torch loop (what a torch user writes: gather, bmm,
update, store θ), storing its trajectory in one array, and the same loop storing it in arrays
of 256 steps (fresh memory for a whole trajectory page-faults: the blocked form is the fairer
peer of an engine that records in blocks); JAX ``jit(vmap(scan))`` of the same step;
BlackJAX's ``sgld`` at temperature 0 (plain SGD through its gradient estimator); and
sgdthermo's ``Engine.run_block`` in blocks of the size ``sgdthermo run`` gives the job
(``block_draws``: 256 steps here), on the path it would take (the native kernel where a C
compiler builds it; ``SGDTHERMO_NATIVE=0`` for the torch paths), which also records the loss,
‖g‖, the divergence flag and the per-coordinate fluctuation and stationarity sums. Each cell
is the median of three timed runs after one compile/warm-up run, each cell in its own fresh
process (a JAX runtime left in the process slowed the torch cells measured after it by 2×); the
last column is the engine's ratio to the best peer. JAX and BlackJAX come from the ``bench`` extra
(``pip install -e '.[bench]'``); without them their columns read "n/a".

Usage: ``taskset -c 0 python benchmarks/bench_peers.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                      "intra_op_parallelism_threads=1")

import torch  # noqa: E402
from sgdthermo.sampler.archive.schema import block_draws  # noqa: E402
from sgdthermo.sampler.jobspec import expand, validate  # noqa: E402
from sgdthermo.sampler.shard import build_engine  # noqa: E402

N, D, B_LINREG, LR_LINREG, LR_QUAD = 8192, 32, 32, 0.01, 0.1
SIGMA = (1.0, 3.0)


def job(workload: str, chains: int) -> dict:
    """The sgdthermo config of a workload (thin = 1, float32)."""
    if workload == "linreg":
        model = {"kind": "linear_regression", "data": {"n": N, "d": D, "condition": 10.0}}
        rule, batch = {"kind": "sgd", "lr": LR_LINREG}, B_LINREG
    else:
        model = {"kind": "quadratic", "hessian": [1.0, 1.0],
                 "noise_cov": [s * s for s in SIGMA]}
        rule, batch = {"kind": "sgd", "lr": LR_QUAD}, 1
    return {"seed": 0, "model": model, "rule": rule,
            "run": {"chains": chains, "draws": 10, "burn_in": 0, "thin": 1,
                    "batch_size": batch, "dtype": "float32"},
            "cluster": {"shard_chains": chains}}


def timed(fn: Callable[[], object], repeats: int = 3) -> float:
    """Median seconds of ``fn`` after one warm-up (compile) call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def engine(workload: str, chains: int, steps: int) -> float:
    """Steps in blocks of the size ``sgdthermo run`` gives this job (``block_draws``).

    With the allocator set as every shard actor sets it (``allocator.reuse_large_blocks``):
    without it each block's noise and record buffers are fresh ``mmap``s, page-faulted in again.
    """
    from sgdthermo.sampler.allocator import reuse_large_blocks

    reuse_large_blocks()
    config = validate(job(workload, chains))
    spec = expand(config)[0]
    eng = build_engine(spec, chains)
    gen = torch.Generator().manual_seed(0)
    state = [eng.init(gen, 1.0)]
    size = block_draws(config.cluster.chunk_draws, chains, eng.model.dim, 4)

    def go() -> None:
        for first in range(0, steps, size):
            state[0], _ = eng.run_block(gen, state[0], min(size, steps - first), 1)
    return chains * steps / timed(go)


def eager_torch(workload: str, chains: int, steps: int, block: int | None = None) -> float:
    """The loop a torch user writes; ``block``: its trajectory in arrays of that many steps
    (as the engine records), else one array of all steps."""
    gen = torch.Generator().manual_seed(0)
    size = block or steps
    if workload == "linreg":
        spec = expand(validate(job(workload, 1)))[0]
        model = build_engine(spec, 1).model
        x, y = model.x, model.y  # type: ignore[attr-defined]

        def go() -> None:
            theta = torch.zeros(chains, D)
            for first in range(0, steps, size):
                out = torch.empty(min(size, steps - first), chains, D)
                for t in range(out.shape[0]):
                    idx = torch.randint(N, (chains, B_LINREG), generator=gen)
                    xb, yb = x[idx], y[idx]
                    r = torch.bmm(xb, theta.unsqueeze(-1)).squeeze(-1) - yb
                    g = torch.bmm(r.unsqueeze(1), xb).squeeze(1) / B_LINREG
                    theta = theta - LR_LINREG * g
                    out[t] = theta
    else:
        sigma = torch.tensor(SIGMA)

        def go() -> None:
            theta = torch.zeros(chains, 2)
            for first in range(0, steps, size):
                out = torch.empty(min(size, steps - first), chains, 2)
                for t in range(out.shape[0]):
                    noise = torch.randn(chains, 2, generator=gen) * sigma
                    theta = theta - LR_QUAD * (theta + noise)
                    out[t] = theta
    return chains * steps / timed(go)


def eager_torch_blocks(workload: str, chains: int, steps: int) -> float:
    """The same loop with its trajectory in 256-step arrays (the engine's block here)."""
    return eager_torch(workload, chains, steps, block=256)


def _jax_problem(workload: str):  # type: ignore[no-untyped-def]
    import jax
    import jax.numpy as jnp
    if workload == "linreg":
        spec = expand(validate(job(workload, 1)))[0]
        model = build_engine(spec, 1).model
        x = jnp.asarray(model.x.numpy())  # type: ignore[attr-defined]
        y = jnp.asarray(model.y.numpy())  # type: ignore[attr-defined]

        def minibatch(key):  # type: ignore[no-untyped-def]
            idx = jax.random.randint(key, (B_LINREG,), 0, N)
            return x[idx], y[idx]

        def loss(theta, batch):  # type: ignore[no-untyped-def]
            xb, yb = batch
            return 0.5 * jnp.mean((xb @ theta - yb) ** 2)
        return jax, jnp, minibatch, loss, D, LR_LINREG
    sigma = jnp.asarray(SIGMA)

    def minibatch(key):  # type: ignore[no-untyped-def]
        return jax.random.normal(key, (2,)) * sigma

    def loss(theta, noise):  # type: ignore[no-untyped-def]
        return 0.5 * theta @ theta + noise @ theta
    return jax, jnp, minibatch, loss, 2, LR_QUAD


def jax_scan(workload: str, chains: int, steps: int) -> float:
    jax, jnp, minibatch, loss, dim, lr = _jax_problem(workload)
    grad = jax.grad(loss)

    def step(theta, key):  # type: ignore[no-untyped-def]
        theta = theta - lr * grad(theta, minibatch(key))
        return theta, theta
    return _scan_rate(jax, jnp, step, dim, chains, steps)


def _scan_rate(jax, jnp, step, dim: int, chains: int, steps: int) -> float:  # type: ignore[no-untyped-def]
    """Chain-steps/s of ``jit(vmap(scan(step)))`` from θ = 0, every θ kept."""
    def chain(key):  # type: ignore[no-untyped-def]
        return jax.lax.scan(step, jnp.zeros(dim), jax.random.split(key, steps))[1]
    run = jax.jit(jax.vmap(chain))
    keys = jax.random.split(jax.random.key(0), chains)
    return chains * steps / timed(lambda: run(keys).block_until_ready())


def blackjax_sgld(workload: str, chains: int, steps: int) -> float:
    import blackjax
    from blackjax.sgmcmc.gradients import grad_estimator
    jax, jnp, minibatch, loss, dim, lr = _jax_problem(workload)
    data_size = N if workload == "linreg" else 1
    if workload == "linreg":
        def loglik(theta, example):  # type: ignore[no-untyped-def]
            xi, yi = example
            return -0.5 * (xi @ theta - yi) ** 2
        step_size = lr / N  # the estimator's gradient is N/B Σ ∇log p_i = −N·g_B

        def batch_of(key):  # type: ignore[no-untyped-def]
            return minibatch(key)
    else:
        def loglik(theta, noise):  # type: ignore[no-untyped-def]
            return -(0.5 * theta @ theta + noise @ theta)
        step_size = lr

        def batch_of(key):  # type: ignore[no-untyped-def]
            return minibatch(key)[None]
    sgld = blackjax.sgld(grad_estimator(lambda _: 0.0, loglik, data_size))

    def step(theta, key):  # type: ignore[no-untyped-def]
        k_batch, k_step = jax.random.split(key)
        theta = sgld.step(k_step, theta, batch_of(k_batch), step_size, 0.0)
        return theta, theta
    return _scan_rate(jax, jnp, step, dim, chains, steps)


PEERS: dict[str, Callable[[str, int, int], float]] = {
    "eager torch": eager_torch, "eager torch, blocks": eager_torch_blocks,
    "JAX scan": jax_scan, "BlackJAX sgld": blackjax_sgld,
    "sgdthermo": engine}


def cell(name: str, workload: str, chains: int, steps: int) -> float | None:
    """One measurement in a fresh process (``None`` if the peer is not installed)."""
    out = subprocess.run([sys.executable, __file__, "--cell", name, workload, str(chains),
                          str(steps)], capture_output=True, text=True, check=True).stdout
    value = out.strip().splitlines()[-1]
    return None if value == "n/a" else float(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (smoke test)")
    parser.add_argument("--cell", nargs=4, metavar=("PEER", "WORKLOAD", "C", "STEPS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.cell:
        name, workload, chains, steps = args.cell
        try:
            print(PEERS[name](workload, int(chains), int(steps)))
        except ImportError:
            print("n/a")
        return
    scale = 10 if args.quick else 1
    cases = [("linreg", 256, 2000), ("linreg", 4096, 200), ("quad2d", 256, 20000),
             ("quad2d", 4096, 5000)]
    peers = [p for p in PEERS if p != "sgdthermo"]
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"one thread; chain-steps/s, every step recorded")
    print(f"| workload | C | {' | '.join(peers)} | sgdthermo | ratio to best |")
    print("|---|---:|" + "---:|" * (len(peers) + 2))
    for workload, chains, steps in cases:
        steps = max(steps // scale, 10)
        rates = [cell(p, workload, chains, steps) for p in peers]
        ours = cell("sgdthermo", workload, chains, steps)
        assert ours is not None
        best = max(r for r in rates if r is not None)
        shown = " | ".join("n/a" if r is None else f"{r:,.0f}" for r in rates)
        print(f"| {workload} | {chains} | {shown} | {ours:,.0f} | {ours / best:.2f}x |",
              flush=True)


if __name__ == "__main__":
    main()
