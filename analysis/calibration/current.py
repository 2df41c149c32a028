"""Simulated replicates for the size and power of the zero-current test (``current``).

SGD at rate η on ``L = ½θᵀHθ`` in 2-D with Gaussian gradient noise ``N(0, diag(1, 9))``,
simulated in numpy. With ``H = R(φ) diag(1, 3) R(φ)ᵀ`` the noise axes and H's eigenvectors are
at angle φ: at φ = 0 ΛHΣ is diagonal and the current is exactly zero (the null); φ > 0 is a
named alternative with a current that grows with φ (exact value: ``current.exact_current``).
"""

from __future__ import annotations

import numpy as np

from ..law.current import measured_current, pairs_of, zero_current_p

NOISE = np.array([1.0, 9.0])
LR = 0.2


def rotated_hessian(angle: float, spectrum: tuple[float, float] = (1.0, 3.0)) -> np.ndarray:
    """``R(φ) diag(spectrum) R(φ)ᵀ``."""
    c, s = np.cos(angle), np.sin(angle)
    r = np.array([[c, -s], [s, c]])
    return r @ np.diag(spectrum) @ r.T


def replicates(angle: float, reps: int, chains: int, draws: int, seed: int,
               burn_in: int = 300) -> np.ndarray:
    """Independent runs ``[reps, chains, draws, 2]`` of SGD at the given angle."""
    rng = np.random.default_rng(seed)
    n, m = reps * chains, np.eye(2) - LR * rotated_hessian(angle)
    theta = np.zeros((n, 2))
    out = np.empty((draws, n, 2))
    for t in range(burn_in + draws):
        theta = theta @ m.T - LR * rng.standard_normal((n, 2)) * np.sqrt(NOISE)
        if t >= burn_in:
            out[t - burn_in] = theta
    return out.transpose(1, 0, 2).reshape(reps, chains, draws, 2)


def rejections(angle: float, reps: int, seed: int, chains: int = 4, draws: int = 3000,
               alpha: float = 0.01) -> int:
    """How many of ``reps`` replicates reject a zero current at ``alpha`` (lag 1)."""
    count = 0
    for x in replicates(angle, reps, chains, draws, seed):
        a, se = measured_current(x, pairs_of(2), [1])
        count += zero_current_p(a, se) < alpha
    return count
