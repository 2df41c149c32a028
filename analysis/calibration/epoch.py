"""Simulated replicates for the size and power of the per-phase epoch test (``epoch_phases``).

The seeds' ``mean`` model on N = 20 examples, SGD at η = 0.1 with B = 5 under epoch reshuffling
(K = 4 steps per epoch), simulated in numpy: ``θ' = (1 − η)θ + η·ȳ_S`` with a fresh permutation
per epoch. Each replicate's draws are tested per phase (``epoch_comparison``) against: the exact
epoch law (the null), the exact laws at slightly larger rates (named near alternatives), and a
law that ignores the dependence of an epoch's batches (every phase at the without-replacement
stationary variance: the alternative a user would otherwise assume).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...sampler.config import MeanConfig, RunConfig, SGDConfig
from ..law.epoch_phases import epoch_comparison
from ..theory.linear import StationaryTheory, stationary_theory

N, B, LR = 20, 5, 0.1


def laws(factors: tuple[float, ...] = (1.0,)) -> dict[str, StationaryTheory]:
    """The exact epoch law at each ``factor·η`` (1: the null) and the independent-batch law."""
    model = MeanConfig(kind="mean", n=N).build(B)
    run = RunConfig(sampling="epoch", batch_size=B, thin=1, burn_in=0)
    out = {}
    for f in factors:
        law = stationary_theory(model, SGDConfig(lr=f * LR).build(B), run)
        assert law is not None and law.epoch is not None
        out[f"{f:g} η"] = law
    exact = out[f"{factors[0]:g} η"]
    wor = stationary_theory(model, SGDConfig(lr=LR).build(B),
                            run.model_copy(update={"sampling": "without_replacement"}))
    assert wor is not None and exact.epoch is not None
    flat = replace(exact.epoch, phase_cov=np.broadcast_to(
        wor.cov, exact.epoch.phase_cov.shape).copy())
    out["independent batches"] = replace(exact, epoch=flat)
    return out


def replicates(reps: int, chains: int, epochs: int, seed: int,
               burn_in: int = 200) -> np.ndarray:
    """Independent runs ``[reps, chains, epochs·K, 1]``, every step recorded."""
    y = MeanConfig(kind="mean", n=N).build(B).dataset()[1]
    rng = np.random.default_rng(seed)
    k = N // B
    theta = np.full(reps * chains, y.mean())
    out = np.empty((epochs * k, reps * chains))
    for e in range(burn_in + epochs):
        perm = np.argsort(rng.random((reps * chains, N)), axis=1)
        for j in range(k):
            theta = (1 - LR) * theta + LR * y[perm[:, j * B:(j + 1) * B]].mean(axis=1)
            if e >= burn_in:
                out[(e - burn_in) * k + j] = theta
    return out.T.reshape(reps, chains, epochs * k, 1)


def rejections(reps: int, seed: int, factors: tuple[float, ...] = (1.0, 1.05),
               chains: int = 8, epochs: int = 500, alpha: float = 0.01) -> dict[str, int]:
    """Rejections at ``alpha`` against each law (draw j sits at phase (j + 1) mod K)."""
    theories = laws(factors)
    out = dict.fromkeys(theories, 0)
    for x in replicates(reps, chains, epochs, seed):
        for name, theory in theories.items():
            comparison = epoch_comparison(x, theory, burn_in=0, thin=1)
            assert comparison is not None
            out[name] += comparison.p_value < alpha
    return out
