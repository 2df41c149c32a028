"""A user's network as C chains: sgdthermo against what a user would write instead, side by side.

Workloads (one torch thread, float32, B = 32, plain SGD η = 0.01 on scikit-learn's digits, or
with ``--rule momentum`` heavy-ball momentum μ = 0.9, torch.optim.SGD's form):

* ``mlp``: ``Linear(64, 512) → tanh → Linear(512, 512) → tanh → Linear(512, 10)`` (301 066
  parameters);
* ``conv``: ``Conv2d(1, 8, 3) → ReLU → Conv2d(8, 16, 3) → ReLU → Flatten → Linear(1024, 32) →
  ReLU → Linear(32, 10)`` (34 762 parameters).

Contenders, each advancing C chains by the same number of steps:

* ``sgdthermo torch``: the ``torch`` model kind (what a user's module runs as: ``vmap`` of
  ``grad(functional_call)``; the lean path for SGD, the general step for momentum), recording θ
  every 50 steps;
* ``sgdthermo built-in``: the shipped ``mlp``/``cnn`` kind of the same network (same data; for
  momentum its general step's gradient is one reverse pass through a hand-batched forward:
  batched matmuls, grouped convolutions);
* ``torch.func``: ``stack_module_state`` + ``vmap(grad(functional_call))`` + the update on
  the stacked parameters (``torch._foreach_*``; torch.func's model-ensembling recipe);
* ``torch.optim loop``: C separate modules and ``torch.optim.SGD`` in a Python loop.

Prints chain-steps per second (best of ``--repeats``) and the ratio to the best peer. Every
contender runs with glibc's large blocks reused (``sampler.allocator``, as sgdthermo's actors
do) unless ``--default-allocator``.
Usage: ``python benchmarks/bench_user_networks.py [--chains 16 64] [--steps 50]
[--rule sgd|momentum]``.
"""

from __future__ import annotations

import argparse
import copy
import platform
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from sgdthermo.sampler.models.data import digits
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap

LR, B, MU = 0.01, 32, 0.9
RULES = {"sgd": {"kind": "sgd", "lr": LR}, "momentum": {"kind": "momentum", "lr": LR, "mu": MU}}


def mlp() -> nn.Module:
    """The MLP workload (301 066 parameters)."""
    return nn.Sequential(nn.Linear(64, 512), nn.Tanh(), nn.Linear(512, 512), nn.Tanh(),
                         nn.Linear(512, 10))


def conv() -> nn.Module:
    """The conv-net workload (34 762 parameters), images [1, 8, 8]."""
    return nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(1024, 32), nn.ReLU(), nn.Linear(32, 10))


NETS = {"mlp": (mlp, {"kind": "mlp", "hidden": [512, 512], "activation": "tanh", "l2": 0.0}),
        "conv": (conv, {"kind": "cnn", "channels": [8, 16], "hidden": [32],
                        "activation": "relu", "l2": 0.0})}


def data() -> tuple[torch.Tensor, torch.Tensor]:
    """The digits as float32 inputs [1797, 64] and int64 labels."""
    x, y = digits(None)
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)


def batches(c: int, steps: int, n: int) -> torch.Tensor:
    """Minibatch indices ``[steps, C, B]`` for the peers (drawn outside the timing)."""
    return torch.randint(0, n, (steps, c, B), generator=torch.Generator().manual_seed(0))


def sgdthermo(model: dict, rule: str, c: int, steps: int) -> Callable:
    """The engine on a config (the torch kind names this file's callable)."""
    from sgdthermo.sampler.jobspec import expand, validate
    from sgdthermo.sampler.shard import build_engine

    cfg = {"model": model, "rule": RULES[rule],
           "run": {"chains": c, "batch_size": B, "dtype": "float32", "draws": 1, "burn_in": 0}}
    engine = build_engine(expand(validate(cfg))[0], c)
    gen = torch.Generator().manual_seed(0)
    state = engine.init(gen, 1.0)

    def run() -> None:
        engine.run_block(gen, state, steps, 50 if steps % 50 == 0 else steps)

    return run


def torch_func(make: Callable, rule: str, c: int, steps: int) -> Callable:
    """torch.func ensembling: stacked parameters, vmap of grad of functional_call, the update."""
    x, y = data()
    idx = batches(c, steps, len(x))
    models = [make() for _ in range(c)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def loss(p: dict, b: dict, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(base, (p, b), (xb,)), yb)

    step_grad = vmap(grad(loss), in_dims=(0, 0, 0, 0))
    p = list(params.values())
    velocity = [torch.zeros_like(t) for t in p]

    def run() -> None:
        with torch.no_grad():
            for t in range(steps):
                g = list(step_grad(params, buffers, x[idx[t]], y[idx[t]]).values())
                if rule == "momentum":  # torch.optim.SGD: v ← μv + g, θ ← θ − ηv
                    torch._foreach_mul_(velocity, MU)
                    torch._foreach_add_(velocity, g)
                    g = velocity
                torch._foreach_add_(p, g, alpha=-LR)

    return run


def optim_loop(make: Callable, rule: str, c: int, steps: int) -> Callable:
    """C separate modules, each with torch.optim.SGD, in a Python loop."""
    x, y = data()
    idx = batches(c, steps, len(x))
    models = [make() for _ in range(c)]
    mu = MU if rule == "momentum" else 0.0
    opts = [torch.optim.SGD(m.parameters(), lr=LR, momentum=mu) for m in models]

    def run() -> None:
        for t in range(steps):
            for k, (m, opt) in enumerate(zip(models, opts, strict=True)):
                opt.zero_grad()
                F.cross_entropy(m(x[idx[t, k]]), y[idx[t, k]]).backward()
                opt.step()

    return run


def best_rate(run: Callable, c: int, steps: int, repeats: int) -> float:
    """Chain-steps per second, best of ``repeats`` (after one warm-up call)."""
    run()
    best = min(_timed(run) for _ in range(repeats))
    return c * steps / best


def _timed(run: Callable) -> float:
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    parser.add_argument("--rule", default="sgd", choices=list(RULES))
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc's mmap threshold alone (the actors raise it)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.default_allocator:  # for every contender alike, as in sgdthermo's actors
        from sgdthermo.sampler.allocator import reuse_large_blocks

        reuse_large_blocks()
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, one "
          f"thread, float32, B = {B}, {args.rule}; chain-steps per second (best of {args.repeats}); "
          f"{'default' if args.default_allocator else 'large-block-reusing'} allocator")
    print("| network | C | sgdthermo torch | sgdthermo built-in | torch.func | torch.optim loop "
          "| torch kind / best peer |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    here = __file__
    for name in args.nets:
        make, builtin = NETS[name]
        for c in args.chains:
            user = {"kind": "torch", "module": f"{here}:{make.__name__}",
                    "data": {"file": _digits_file()}}
            runs = {"torch": sgdthermo(user, args.rule, c, args.steps),
                    "builtin": sgdthermo(builtin, args.rule, c, args.steps),
                    "func": torch_func(make, args.rule, c, args.steps),
                    "loop": optim_loop(make, args.rule, c, args.steps)}
            rates = {k: best_rate(r, c, args.steps, args.repeats) for k, r in runs.items()}
            peer = max(rates["func"], rates["loop"])
            print(f"| {name} ({sum(p.numel() for p in make().parameters()):,}) | {c} | "
                  f"{rates['torch']:,.0f} | {rates['builtin']:,.0f} | {rates['func']:,.0f} | "
                  f"{rates['loop']:,.0f} | {rates['torch'] / peer:.2f} |", flush=True)


def _digits_file() -> str:
    """The digits as an .npz the torch kind reads (written once per run of the benchmark)."""
    import tempfile

    import numpy as np

    path = f"{tempfile.gettempdir()}/sgdthermo-bench-digits.npz"
    x, y = digits(None)
    np.savez(path, X=x, y=y.astype(np.int64))
    return path


if __name__ == "__main__":
    main()
