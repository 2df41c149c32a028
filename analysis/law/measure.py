"""From a run in the archive to the arrays the estimators take: the one gradient pass per run.

``temperature``, ``gibbs`` and ``estimators`` work on arrays only (so they are tested without an
archive); this module reads a ``RunData`` and evaluates full-batch gradients at its draws
(``virial_samples``), reads the engine's accumulated sums and joins them (``temperatures``,
streamed over coordinate blocks). ``record.analyze_run`` calls it once per run.
"""

from __future__ import annotations

import numpy as np
import torch

from ..diagnostics.blocks import columns
from ..reader import RunData
from .temperature import (
    FluctuationSums,
    Temperatures,
    VirialSamples,
    combine,
    fluctuation_is_exact,
    join,
    o3_from_sums,
    samples_from_arrays,
    thinning_stride,
    virial_from_sums,
)
from .temperature import temperatures as temperatures_of


def virial_samples(run: RunData, max_rows: int = 200_000, chunk: int = 4096,
                   work_budget: float = 2e9, memory_budget: float = 2**29) -> VirialSamples:
    """Full-batch gradients at (an evenly thinned subset of) the committed draws.

    At most ``max_rows`` draws; at most ``work_budget / (N·D)`` for dataset models (a full
    gradient costs about N·D), but never fewer than 2000; and at most ``memory_budget / (32·D)``
    (θ, ∇L and two products of that size in float64), but never fewer than 256: memory is
    bounded at any D. Only the kept draws are read from the archive.
    """
    keep = ~run.diverged_chains()
    posterior = run.posterior()["theta"]
    c, n, d = int(keep.sum()), posterior.sizes["draw"], posterior.sizes["coord"]
    if run.model.n_examples is not None:
        max_rows = min(max_rows, max(2000, int(work_budget / (run.model.n_examples * d))))
    max_rows = min(max_rows, max(256, int(memory_budget / (32 * d))))
    stride = thinning_stride(c, n, max_rows, run.epoch_steps, run.spec.run.thin)
    theta = np.concatenate([col for _, col in columns(posterior, 1, keep, stride)], axis=-1)
    flat = torch.as_tensor(theta.reshape(-1, d), dtype=run.model.dtype)
    grads = torch.cat([run.model.full_loss_grad(flat[i:i + chunk])[1]
                       for i in range(0, flat.shape[0], chunk)]) if flat.numel() else flat
    grads_np = grads.double().numpy().reshape(theta.shape)
    return samples_from_arrays(theta, grads_np, run.spec.run.thin * stride)


def temperatures(run: RunData, samples: VirialSamples | None = None,
                 budget_bytes: float = 2**27, tau: float | None = None) -> Temperatures:
    """Virial and fluctuation temperatures of a run with its exact stationarity check.

    Streamed over blocks of coordinates: the accumulated sums (``[C, blocks, 4, D]`` float64,
    1.5 GB for a 10⁵-parameter network with 64 chains) are read one block of coordinates at a
    time, at most ``budget_bytes`` of them. A run that records θ only partly takes its virial
    temperatures from the engine's sums (3 more per coordinate and block), grouped by ``tau``
    (the largest integrated time of what it recorded, in draws).
    """
    if not run.virial_from_sums and samples is None:
        samples = virial_samples(run)
    exact = fluctuation_is_exact(run.rule, run.model, run.spec.run.sampling)
    keep = ~run.diverged_chains()
    d = run.model.dim if samples is None else samples.centred.shape[-1]
    terms = 4 if samples is not None else 7  # fluctuation, identity (3) and virial (3) sums
    per_coord = len(keep) * max(run.posterior_blocks_done, 1) * terms * 8
    width = int(max(1, budget_bytes // per_coord))
    tau_steps = (tau if tau is not None else 1.0) * run.spec.run.thin
    return join([_block(run, slice(lo, min(lo + width, d)), keep, exact, samples, tau_steps)
                 for lo in range(0, d, width)])


def _block(run: RunData, coords: slice, keep: np.ndarray, exact: bool,
           samples: VirialSamples | None, tau_steps: float) -> Temperatures:
    sums, steps = run.fluctuation(coords)
    identity = run.identity_sums(coords)
    fl = FluctuationSums(sums[keep], steps, None if identity is None else identity[keep])
    if samples is not None:
        return temperatures_of(samples.columns(coords), fl, exact)
    virial = run.virial_sums(coords)
    assert virial is not None, "a partly recorded run keeps the virial sums"
    center, t_v, se_v = virial_from_sums(virial[keep], steps, tau_steps)
    z = o3_from_sums(virial[keep], sums[keep], steps, center) if exact else None
    return combine(t_v, se_v, center, tau_steps, fl, exact, z)
