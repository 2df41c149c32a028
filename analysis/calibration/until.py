"""Simulated replicates for the operating characteristics of ``run.until``'s equilibration test.

1-D SGD on ``L = hθ²/2`` with gradient noise ``N(0, σ²)`` at rate η, simulated in numpy per shard
of C chains, with the identity's sums accumulated per block exactly as the engine does
(``θ·s, s, ½s²`` with the step ``s = η g``) and the block means of θ for the centre. The
judgement applies ``until.fdr_ratio`` over ``until.half_window`` around the mean of
``until.center_window``, as ``until.shard_ratios`` does on an archive. Scenarios:

* a transient (θ₀ ~ N(0, s₀²) far from ``s∞ = ησ²/(h(2 − ηh))``): the exact relative excess of
  ``E θ²`` left at the judged step, ``(a^{2t}(s₀² − s∞))/s∞`` with ``a = 1 − ηh``;
* the exact stationary law from the start (the null): how soon it is accepted;
* a driftless random walk (h = 0, the named alternative that never equilibrates): how often it
  is wrongly accepted before the cap.

The judgement is ``until.passes`` (two barriers in a row).
"""

from __future__ import annotations

import numpy as np

from ..diagnostics.until import center_window, fdr_ratio, half_window, passes

LR, SIGMA2 = 0.1, 1.0


def stationary_variance(h: float, lr: float = LR, sigma2: float = SIGMA2) -> float:
    """``s∞ = ησ²/(h(2 − ηh))``."""
    return lr * sigma2 / (h * (2 - lr * h))


def exact_excess(h: float, init_sd: float, t: np.ndarray, lr: float = LR) -> np.ndarray:
    """Relative excess ``E θ_t²/s∞ − 1`` after t steps from θ₀ ~ N(0, init_sd²)."""
    s = stationary_variance(h, lr)
    return (1 - lr * h) ** (2 * np.asarray(t, dtype=float)) * (init_sd**2 - s) / s


def simulate(h: float, init_sd: float, reps: int, chains: int, blocks: int, block_steps: int,
             seed: int, lr: float = LR) -> tuple[np.ndarray, np.ndarray]:
    """Per replicate: identity sums ``[reps, C, blocks, 3]`` and block means ``[reps, blocks]``."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, init_sd, (reps, chains))
    sums = np.zeros((reps, chains, blocks, 3))
    means = np.zeros((reps, blocks))
    for b in range(blocks):
        for _ in range(block_steps):
            means[:, b] += theta.mean(axis=1)
            s = lr * (h * theta + rng.normal(0.0, np.sqrt(SIGMA2), theta.shape))
            sums[:, :, b, 0] += theta * s
            sums[:, :, b, 1] += s
            sums[:, :, b, 2] += 0.5 * s * s
            theta = theta - s
    return sums, means / block_steps


def judged_blocks(sums: np.ndarray, means: np.ndarray, tolerance: float) -> np.ndarray:
    """Per replicate, the number of blocks k at whose barrier the shard was judged (−1: never)."""
    reps, _, blocks, _ = sums.shape
    out = np.full(reps, -1)
    for r in range(reps):
        before = np.array([np.nan])
        for k in range(1, blocks + 1):
            c = means[r, center_window(k)].mean()
            now = np.array([fdr_ratio(sums[r, :, half_window(k), :, None], np.array([c]))])
            if passes(now, before, tolerance)[0]:
                out[r] = k
                break
            before = now
    return out
