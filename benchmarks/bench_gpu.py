"""Chain-steps per second on a CUDA GPU: sgdthermo's engine against a hand-vectorised torch loop.

Workloads: SGD on ``linear_regression`` (N = 8192, d = 32, B = 32, record every 10th step) and on
a diagonal ``quadratic`` with D = 10 000, at C = 256, 4096 and 16384 chains, float32. *engine*:
``Engine.run_block`` (records kept on the device until the block ends); *torch*: the same SGD
written directly as batched tensor code (gather, bmm, update), no recording. Both are timed with
``torch.cuda.synchronize``. Without a GPU the script says so and exits 0, so that the first lent
GPU gives numbers without edits.

A user's network (the ``torch`` model kind: ``bench_user_networks.mlp``, 301 066 parameters,
B = 32, SGD) at C = 16, 64 and 256 chains against torch.func ensembling (``vmap`` of ``grad`` of
``functional_call`` on stacked parameters, no recording) on the same device.

Usage: ``python benchmarks/bench_gpu.py [--steps 200]``.
"""

from __future__ import annotations

import argparse
import time

import torch
from sgdthermo.sampler.jobspec import expand, validate
from sgdthermo.sampler.shard import build_engine

N, D, B, THIN = 8192, 32, 32, 10
WORKLOADS = {
    "linreg": {"model": {"kind": "linear_regression", "data": {"n": N, "d": D}},
               "rule": {"kind": "sgd", "lr": 0.01}, "run": {"batch_size": B}},
    "diag-quad 1e4": {"model": {"kind": "quadratic",
                                "hessian": {"d": 10_000, "first": 1.0, "last": 0.05},
                                "noise_cov": {"d": 10_000, "first": 1.0, "last": 4.0}},
                      "rule": {"kind": "sgd", "lr": 0.5}},
}


def engine_rate(name: str, chains: int, steps: int) -> float:
    cfg = WORKLOADS[name]
    spec = expand(validate({**cfg, "run": {**cfg.get("run", {}), "chains": chains,
                                           "dtype": "float32", "thin": THIN}}))[0]
    eng = build_engine(spec, chains, "cuda")
    gen = torch.Generator("cuda").manual_seed(0)
    state, _ = eng.run_block(gen, eng.init(gen, 1.0), 2 * THIN, THIN)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    eng.run_block(gen, state, steps, THIN)
    torch.cuda.synchronize()
    return chains * steps / (time.perf_counter() - t0)


def torch_rate(name: str, chains: int, steps: int) -> float:
    dev, gen = "cuda", torch.Generator("cuda").manual_seed(0)
    if name == "linreg":
        x = torch.randn(N, D, device=dev, generator=gen)
        y = torch.randn(N, device=dev, generator=gen)
        theta = torch.zeros(chains, D, device=dev)

        def step(theta: torch.Tensor) -> torch.Tensor:
            idx = torch.randint(N, (chains, B), device=dev, generator=gen)
            xb, yb = x[idx], y[idx]
            r = (xb @ theta.unsqueeze(-1)).squeeze(-1) - yb
            return theta - 0.01 * (r.unsqueeze(1) @ xb).squeeze(1) / B
    else:
        h = torch.logspace(0, -1.3, 10_000, device=dev)
        s = torch.linspace(1, 4, 10_000, device=dev).sqrt()
        theta = torch.zeros(chains, 10_000, device=dev)

        def step(theta: torch.Tensor) -> torch.Tensor:
            z = torch.randn(theta.shape, device=dev, generator=gen)
            return theta - 0.5 * (h * theta + s * z)
    for _ in range(THIN):
        theta = step(theta)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        theta = step(theta)
    torch.cuda.synchronize()
    return chains * steps / (time.perf_counter() - t0)


def user_network_rates(chains: int, steps: int) -> tuple[float, float]:
    """Chain-steps/s of the torch kind (engine) and of torch.func ensembling, on CUDA."""
    import copy

    import torch.nn.functional as F
    from bench_user_networks import _digits_file, data, mlp
    from torch.func import functional_call, grad, stack_module_state, vmap

    cfg = {"model": {"kind": "torch", "module": f"{__file__.rsplit('/', 1)[0]}/"
                     "bench_user_networks.py:mlp", "data": {"file": _digits_file()}},
           "rule": {"kind": "sgd", "lr": 0.01},
           "run": {"chains": chains, "batch_size": B, "dtype": "float32", "thin": THIN}}
    eng = build_engine(expand(validate(cfg))[0], chains, "cuda")
    gen = torch.Generator("cuda").manual_seed(0)
    state, _ = eng.run_block(gen, eng.init(gen, 1.0), 2 * THIN, THIN)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    eng.run_block(gen, state, steps, THIN)
    torch.cuda.synchronize()
    ours = chains * steps / (time.perf_counter() - t0)
    x, y = (t.cuda() for t in data())
    models = [mlp().cuda() for _ in range(chains)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def loss(p: dict, b: dict, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(base, (p, b), (xb,)), yb)

    step_grad = vmap(grad(loss))
    idx = torch.randint(0, len(x), (steps, chains, B), device="cuda")
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.no_grad():
        for t in range(steps):
            g = step_grad(params, buffers, x[idx[t]], y[idx[t]])
            torch._foreach_add_(list(params.values()), list(g.values()), alpha=-0.01)
    torch.cuda.synchronize()
    return ours, chains * steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure (run this on a GPU machine)")
        return
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, float32")
    print("| workload | C | engine | torch | engine / torch |")
    print("|---|---:|---:|---:|---:|")
    for name in WORKLOADS:
        for chains in (256, 4096, 16384):
            e, t = engine_rate(name, chains, args.steps), torch_rate(name, chains, args.steps)
            print(f"| {name} | {chains} | {e:,.0f} | {t:,.0f} | {e / t:.2f} |")
    for chains in (16, 64, 256):
        e, t = user_network_rates(chains, args.steps)
        print(f"| user mlp (torch kind vs torch.func) | {chains} | {e:,.0f} | {t:,.0f} | "
              f"{e / t:.2f} |")


if __name__ == "__main__":
    main()
