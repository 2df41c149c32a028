"""The probability current: how far a stationary chain is from reversible.

A Gibbs law is reversible; SGD with anisotropic noise is not (Chaudhari & Soatto 2018; Kunin
et al. 2021). The measure is the antisymmetric part of the lag-k cross-covariance,

    A_k = E[θ_t θ_{t+k}ᵀ] − E[θ_{t+k} θ_tᵀ],    A_k(i, j) = E[x_{t,i} x_{t+k,j} − x_{t+k,i} x_{t,j}]

with x = θ − E θ and k in draws (``thin`` steps each), for every pair i < j of the first
``MAX_COORDS`` coordinates. Measured as a mean over chains and draws of the product series,
with the batch-means SE of ``estimators.mean_and_se`` sized to θ's slowest integrated time.

Exact value, for a rule with a heavy-ball form on a quadratic (``theory.StationaryTheory``):
with the joint recursion ``z' = A z + B ξ`` (z = (δ, buffer)) and stationary ``Σ_z``,
``C_k = E[z_{t+k} z_tᵀ] = (A^thin)^k Σ_z``, so ``A_k = [C_kᵀ − C_k]_δδ``; for plain SGD with rate
matrix Λ this is ``Σ(I − ΛH)ᵀ − (I − ΛH)Σ`` at k = 1 step, zero iff ΛHΣ is symmetric.

The test of zero current uses lag 1: ``z_p = A_1(p)/SE_p`` per pair, the largest |z| with a
Bonferroni correction over the pairs. Entropy production (nats per step) where it is defined:
when δ alone is Markov (μ = 0: the buffer does not feed back) with ``δ' = Mδ + w``, ``w ~
N(0, Q)``, ``Q = Σ − MΣMᵀ ≻ 0``, it is the KL divergence of the stationary pair (δ_t, δ_{t+1})
from its time reversal, ``½[tr(S_r⁻¹ S_f) − 2d]`` with ``S_f = [[Σ, ΣMᵀ], [MΣ, Σ]]`` and
``S_r`` its transpose-swapped form (equal determinants); zero iff MΣ is symmetric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.special

from ..diagnostics.estimators import mean_and_se
from ..theory.linear import StationaryTheory
from .gibbs import p_equals

MAX_COORDS = 8  # pairs among the first coordinates: 28 at most
LAGS = (1, 2, 3, 5, 10)  # in draws
ALPHA = 0.01


@dataclass
class Current:
    """The measured and exact antisymmetric lag covariances of one run, and the zero test."""

    pairs: list[tuple[int, int]]
    lags: list[int]  # in draws
    measured: np.ndarray  # [K, P]
    se: np.ndarray  # [K, P]
    exact: np.ndarray | None  # [K, P]
    p_zero: float  # test of zero current at lag 1 (Bonferroni over pairs); NaN: undecided
    entropy_production: float | None  # nats per step (Gaussian linear, μ = 0)
    theory_exact: bool = True  # False: the theory freezes adaptive rates (an approximation)

    @property
    def zero_rejected(self) -> bool:
        """Whether the test rejects a zero current at ``ALPHA``."""
        return bool(np.isfinite(self.p_zero) and self.p_zero < ALPHA)

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``analyze --json``: ``current``)."""
        z = None if self.exact is None else ((self.measured - self.exact) / self.se).tolist()
        return {"pairs": [list(p) for p in self.pairs], "lags": self.lags,
                "measured": self.measured.tolist(), "se": self.se.tolist(),
                "exact": None if self.exact is None else self.exact.tolist(),
                "z_vs_exact": z, "p_zero": self.p_zero, "alpha": ALPHA,
                "zero_rejected": self.zero_rejected,
                "entropy_production": self.entropy_production,
                "theory_exact": self.theory_exact}


def pairs_of(dim: int) -> list[tuple[int, int]]:
    """Pairs ``i < j`` of the first ``MAX_COORDS`` coordinates."""
    d = min(dim, MAX_COORDS)
    return [(i, j) for i in range(d) for j in range(i + 1, d)]


def measured_current(theta: np.ndarray, pairs: list[tuple[int, int]], lags: list[int],
                     tau: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(A_k [K, P], SE [K, P])`` from draws ``theta [C, N, D]`` (non-diverged chains)."""
    x = theta - theta.mean(axis=(0, 1), keepdims=True)
    i = np.array([p[0] for p in pairs])
    j = np.array([p[1] for p in pairs])
    means, ses = [], []
    for k in lags:
        y = x[:, :-k, i] * x[:, k:, j] - x[:, k:, i] * x[:, :-k, j]  # [C, N−k, P]
        m, se = mean_and_se(y, tau=tau)
        means.append(m)
        ses.append(se)
    return np.asarray(means), np.asarray(ses)


def exact_current(theory: StationaryTheory, thin: int, pairs: list[tuple[int, int]],
                  lags: list[int]) -> np.ndarray | None:
    """``A_k [K, P]`` of the joint recursion, or ``None`` without it (diagonal/low-rank solvers)."""
    if theory.lag_covariance(0) is None:
        return None
    out = []
    for k in lags:
        c = theory.lag_covariance(k * thin)
        assert c is not None
        a = c.T - c
        a[np.abs(a) <= 1e-12 * np.abs(c).max()] = 0.0  # rounding of an exactly zero current
        out.append([a[i, j] for i, j in pairs])
    return np.asarray(out)


def entropy_production(theory: StationaryTheory) -> float | None:
    """Nats per step of the stationary δ-chain, where δ alone is Markov with full-rank noise.

    ``½(tr(R⁻¹F) − 2d)``: the KL divergence per step between the forward pair law
    ``F = Cov(δ_t, δ_{t+1})`` and its time reversal ``R``; 0 within rounding is returned as 0.
    """
    if theory.transition is None or theory.state_cov is None:
        return None
    d = len(theory.mean)
    a, sigma = theory.transition, theory.state_cov[:d, :d]
    if np.abs(a[:d, d:]).max(initial=0.0) > 0:
        return None  # the buffer feeds back (μ ≠ 0): δ alone is not Markov
    m = a[:d, :d]
    q = sigma - m @ sigma @ m.T
    if np.linalg.eigvalsh(0.5 * (q + q.T)).min() <= 1e-12 * np.abs(sigma).max():
        return None
    forward = np.block([[sigma, sigma @ m.T], [m @ sigma, sigma]])
    reverse = np.block([[sigma, m @ sigma], [sigma @ m.T, sigma]])
    ep = float(0.5 * (np.trace(np.linalg.solve(reverse, forward)) - 2 * d))
    # The trace is 2d plus the production: rounding leaves ~ε·cond·2d where it is exactly 0
    # (a reversible chain), which is reported as 0, not as -6.7e-16.
    rounding = 1e3 * np.finfo(float).eps * np.linalg.cond(reverse) * 2 * d
    return 0.0 if abs(ep) <= rounding else ep


def zero_current_p(measured: np.ndarray, se: np.ndarray) -> float:
    """Bonferroni p-value of the largest |A_1(p)/SE_p| over pairs (NaN without SEs)."""
    if not np.all(np.isfinite(se)) or np.any(se <= 0):
        return float("nan")
    z = np.abs(measured[0] / se[0])
    return float(min(1.0, len(z) * 2 * scipy.special.ndtr(-z.max())))


def probability_current(theta: np.ndarray, theory: StationaryTheory | None, thin: int,
                        tau: float | None = None) -> Current | None:
    """The run's current from its draws ``[C, N, D]``; ``None`` for one coordinate."""
    pairs = pairs_of(theta.shape[-1])
    if not pairs:
        return None
    lags = [k for k in LAGS if k < theta.shape[1] // 4]
    if not lags:
        return None
    measured, se = measured_current(theta, pairs, lags, tau)
    exact = None if theory is None else exact_current(theory, thin, pairs, lags)
    ep = None if theory is None else entropy_production(theory)
    return Current(pairs, lags, measured, se, exact, zero_current_p(measured, se), ep,
                   theory is None or theory.exact)


def current_sentence(c: dict[str, Any]) -> str:
    """One line for text and HTML from the JSON form: the largest lag-1 entry and the test."""
    measured, se = np.asarray(c["measured"][0]), np.asarray(c["se"][0])
    p = int(np.nanargmax(np.abs(measured / se))) if np.all(np.isfinite(se)) else 0
    i, j = c["pairs"][p]
    kind = "exact" if c.get("theory_exact", True) else "approximate theory"
    exact = "" if c["exact"] is None else (
        f" ({kind} {c['exact'][0][p]:.4g}, z {c['z_vs_exact'][0][p]:+.1f})")
    if not np.isfinite(c["p_zero"]):
        verdict = "zero current undecided (too few batches)"
    else:
        verdict = (f"zero current {'rejected' if c['zero_rejected'] else 'not rejected'} "
                   f"({p_equals(c['p_zero'])}, {len(c['pairs'])} pair(s), Bonferroni)")
    ep = c["entropy_production"]
    tail = "" if ep is None else f"; entropy production {ep:.4g} nats/step ({kind})"
    return (f"Probability current, lag 1: A[{i},{j}] = {measured[p]:.4g} ± {se[p]:.2g}{exact}; "
            f"{verdict}{tail}.")
