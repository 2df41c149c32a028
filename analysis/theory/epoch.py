"""The exact cyclostationary law of constant-rate rules under epoch reshuffling (least squares).

With ``sampling = "epoch"`` each epoch draws a fresh permutation and takes its ``K = ⌊N/B⌋``
batches in turn (the rest dropped), so successive batches are dependent and the law depends on the
*phase* k (batches already taken in the epoch). For least squares (``linear_regression``,
``mean``; per-example gradient ``g_i = P_iθ − r_i`` with ``P_i = s(x_ix_iᵀ + l2·I)``,
``r_i = s·x_iy_i``) one step of a heavy-ball rule (``sampler.linear_forms``) on ``z = (θ − θ*, b)``
is affine, ``z' = A_S z + B_S ξ_S`` with ``ξ_S = P_Sθ* − r_S``, and the epoch map is an average
over permutations in which the second moments close:

* **Equal curvature** (every ``P_i = P``: the ``mean`` model): A and B are fixed and the ξ_j of
  one epoch are exchangeable with ``Cov(ξ_j, ξ_l) = V·(N−B)/(B(N−1))`` for j = l and
  ``−V/(N−1)`` otherwise (sampling without replacement; ``V = (1/N)Σ(r_i − r̄)(r_i − r̄)ᵀ``). With
  ``G_k = Σ_{j<k} A^j B`` and ``Q_k = Σ_{j<k} A^j B V Bᵀ A^jᵀ``, the noise of k steps has
  ``W_k = c_o G_k V G_kᵀ + (c_d − c_o) Q_k``; the phase-0 covariance solves the discrete
  Lyapunov equation ``S_0 = A^K S_0 A^Kᵀ + W_K`` and ``S_k = A^k S_0 A^kᵀ + W_k``. Any N, O(K D³).
* **General** (N ≤ ``DP_MAX_EXAMPLES``, D ≤ ``DP_MAX_DIM``): the moments
  ``w = (1, z, vec zzᵀ)`` evolve linearly, ``w' = T_S w``; a dynamic programme over the set U
  of examples already used in the epoch sums ``Φ(U ∪ S) += T_S Φ(U) / C(N − |U|, B)``, the
  phase-k map is ``Φ_k = Σ_{|U| = kB} Φ(U)`` and the phase-0 moments are the fixed point of
  ``Φ_K``. Exact; ``2^N`` sets.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ...sampler.linear_forms import heavy_ball_matrices
from ...sampler.models import Model
from ...sampler.rules import UpdateRule

DP_MAX_EXAMPLES = 12  # the general method visits 2^N sets of used examples
DP_MAX_DIM = 2  # … each with a (1 + 2D + 4D²)² operator: D = 2 with momentum is 21 × 21


@dataclass
class EpochLaw:
    """The law of θ at each epoch phase k = 0 … K−1 (k batches of the epoch taken)."""

    theta_star: np.ndarray  # [D] full-batch optimum
    hessian: np.ndarray  # [D, D] H = mean P_i
    phase_mean: np.ndarray  # [K, D] E θ at each phase
    phase_cov: np.ndarray  # [K, D, D] Cov θ at each phase
    method: str  # "closed form (equal curvature)" or "exact over used-example sets"

    @property
    def steps(self) -> int:
        """K, steps per epoch."""
        return self.phase_cov.shape[0]

    def pooled(self, phases: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance of θ at a phase drawn uniformly from ``phases`` (default: all)."""
        k = np.arange(self.steps) if phases is None else np.asarray(phases)
        means, covs = self.phase_mean[k], self.phase_cov[k]
        mean = means.mean(axis=0)
        second = (covs + np.einsum("ki,kj->kij", means, means)).mean(axis=0)
        return mean, second - np.outer(mean, mean)


def visited_phases(steps: int, burn_in: int, thin: int) -> np.ndarray:
    """The epoch phases the recorded draws sit at: ``(burn_in + j·thin) mod K``, j ≥ 1."""
    period = steps // math.gcd(thin, steps)
    return np.unique((burn_in + thin * np.arange(1, period + 1)) % steps)


def _phase_laws(a: np.ndarray, b: np.ndarray, v: np.ndarray, n: int, bs: int,
                steps: int) -> np.ndarray:
    """Closed form: ``S_k [K, m, m]`` of the joint state for equal curvature."""
    m = a.shape[0]
    c_d = (n - bs) / (bs * (n - 1)) if n > 1 else 0.0
    c_o = -1.0 / (n - 1) if n > 1 else 0.0
    g, q, power = np.zeros((m, v.shape[0])), np.zeros((m, m)), np.eye(m)
    ws, powers = [], []
    bvb = b @ v @ b.T
    for _ in range(steps + 1):
        ws.append(c_o * g @ v @ g.T + (c_d - c_o) * q)
        powers.append(power)
        g, q, power = a @ g + b, a @ q @ a.T + bvb, a @ power
    s0 = scipy.linalg.solve_discrete_lyapunov(powers[steps], ws[steps])
    return np.stack([powers[k] @ s0 @ powers[k].T + ws[k] for k in range(steps)])


def _step_operator(a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``T`` with ``(1, z', vec z'z'ᵀ) = T (1, z, vec zzᵀ)`` for ``z' = Az + c`` (row-major vec)."""
    m = a.shape[0]
    t = np.zeros((1 + m + m * m, 1 + m + m * m))
    t[0, 0] = 1.0
    t[1:1 + m, 0], t[1:1 + m, 1:1 + m] = c, a
    t[1 + m:, 0] = np.kron(c, c)
    t[1 + m:, 1:1 + m] = np.kron(a, c[:, None]) + np.kron(c[:, None], a)
    t[1 + m:, 1 + m:] = np.kron(a, a)
    return t


def _subset_programme(p: np.ndarray, r: np.ndarray, theta_star: np.ndarray, bs: int,
                      steps: int, form: tuple[np.ndarray, float, float, bool]) -> list[np.ndarray]:
    """General method: the phase maps ``Φ_k`` (k = 0 … K; ``Φ_0 = I``) over used-example sets."""
    n = len(p)
    size = 1 + 2 * r.shape[1] + (2 * r.shape[1]) ** 2
    layer: dict[frozenset[int], np.ndarray] = {frozenset(): np.eye(size)}
    maps: list[np.ndarray] = []
    for k in range(steps + 1):
        maps.append(np.sum(list(layer.values()), axis=0))
        if k == steps:
            break
        nxt: dict[frozenset[int], np.ndarray] = {}
        for used, phi in layer.items():
            rest = [i for i in range(n) if i not in used]
            weight = 1.0 / math.comb(len(rest), bs)
            for batch in itertools.combinations(rest, bs):
                idx = list(batch)
                ps = p[idx].mean(axis=0)
                a, b = heavy_ball_matrices(ps, *form)
                t = _step_operator(a, b @ (ps @ theta_star - r[idx].mean(axis=0)))
                step = weight * (t @ phi)
                key = used | frozenset(batch)
                nxt[key] = nxt[key] + step if key in nxt else step
        layer = nxt
    return maps


def epoch_law(model: Model, rule: UpdateRule, batch_size: int) -> EpochLaw | None:
    """The exact law per phase, or ``None`` (not least squares, rates not constant, N too large).

    The momentum buffer starts each run at 0 and is part of the state ``z``; both methods give
    the law of its θ part.
    """
    affine = model.example_affine()
    if affine is None or rule.linear_form is None or not rule.stationary:
        return None
    p, r = affine
    n, d = r.shape
    steps = n // batch_size
    if steps < 1:
        return None
    hb = rule.linear_form(np.ones(d), np.ones(d), True)
    if not hb.exact or hb.injected:
        return None
    h = p.mean(axis=0)
    theta_star = np.linalg.solve(h, r.mean(axis=0))
    form = (hb.rates, hb.mu, hb.dampening, hb.nesterov)
    if np.allclose(p, h, rtol=1e-12, atol=0.0):  # equal curvature: closed form, any N
        a, b = heavy_ball_matrices(h, *form)
        if np.abs(np.linalg.eigvals(a)).max() >= 1:
            return None
        dev = r - r.mean(axis=0)
        s = _phase_laws(a, b, dev.T @ dev / n, n, batch_size, steps)
        return EpochLaw(theta_star, h, np.tile(theta_star, (steps, 1)), s[:, :d, :d],
                        "closed form (equal curvature)")
    if n > DP_MAX_EXAMPLES or d > DP_MAX_DIM:
        return None
    return _general_law(p, r, h, theta_star, batch_size, steps, form)


def _general_law(p: np.ndarray, r: np.ndarray, h: np.ndarray, theta_star: np.ndarray, bs: int,
                 steps: int, form: tuple[np.ndarray, float, float, bool]) -> EpochLaw | None:
    """The general method's fixed point and phase laws."""
    d = len(theta_star)
    m = 2 * d
    maps = _subset_programme(p, r, theta_star, bs, steps, form)
    epoch = maps[steps]
    lin = epoch[1:, 1:]
    if np.abs(np.linalg.eigvals(lin)).max() >= 1:
        return None  # no stationary second moment
    w0 = np.concatenate([[1.0], np.linalg.solve(np.eye(len(lin)) - lin, epoch[1:, 0])])
    means, covs = [], []
    for k in range(steps):
        w = maps[k] @ w0
        mean = w[1:1 + m]
        second = w[1 + m:].reshape(m, m)
        means.append(theta_star + mean[:d])
        covs.append(second[:d, :d] - np.outer(mean[:d], mean[:d]))
    return EpochLaw(theta_star, h, np.array(means), np.array(covs),
                    "exact over used-example sets")
