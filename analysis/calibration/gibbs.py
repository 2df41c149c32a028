"""Exact-Gibbs nulls and named alternatives for calibrating the Gibbs test by simulation.

Every case is plain SGD on a diagonal quadratic ``L = ½ Σ h_i θ_i²`` (so ``∂_iL = h_i θ_i``),
simulated in numpy, started from its exact stationary law, so size and power are measured on
exactly known laws (docs/theory.md law G0):

* ``null``: noise variance ``c_i = k(2 − ηh_i)``; the law is ``N(0, T/h_i)`` with ``T = ηk`` for
  every i, i.e. exactly ``p ∝ exp(−L/T)``, with non-isotropic ``h``.
* ``hotter``: the same with ``c_i`` of a fraction of the coordinates multiplied by ``1 + δ``: those
  coordinates are exactly ``1 + δ`` times hotter.
* ``coupling``: equal ``h`` and correlated noise between coordinate pairs (correlation ρ): equal
  temperatures, but ``E[θ_i ∂_jL] ≠ 0`` for the paired i ≠ j.
* ``skewed``: the innovations are centred exponential instead of Gaussian (SGD on the ``mean``
  model with skewed data): equal temperatures, no coupling, a skewed stationary law.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats


@dataclass(frozen=True)
class Case:
    """A simulated law: D coordinates, per-step contraction ``1 − ηh_i`` and its alternative."""

    dim: int
    kind: str = "null"  # "null", "hotter", "coupling" or "skewed"
    fraction: float = 0.0  # hotter: share of hotter coordinates
    delta: float = 0.0  # hotter: relative temperature excess; coupling: noise correlation
    tau: float = 10.0  # IAT of the slowest coordinate, in draws
    spread: float = 3.0  # ratio of the largest to the smallest ηh_i

    def rates(self) -> np.ndarray:
        """``ηh_i``, log-spaced from ``2/(τ+1)`` (IAT τ) up to ``spread`` times that."""
        lo = 2.0 / (self.tau + 1.0)
        if self.kind == "coupling":
            return np.full(self.dim, lo)
        return lo * np.geomspace(1.0, self.spread, self.dim)

    def temperatures(self) -> np.ndarray:
        """Exact ``T_i`` (``T = 1`` for the null)."""
        t = np.ones(self.dim)
        if self.kind == "hotter":
            t[: max(1, round(self.fraction * self.dim))] *= 1.0 + self.delta
        return t


def simulate(case: Case, chains: int, draws: int, rng: np.random.Generator,
             eta: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Draws ``θ [C, n, D]`` and gradients ``∇L(θ) [C, n, D]`` of one case, from stationarity.

    With ``a_i = ηh_i`` and target temperatures ``T_i``: ``h_i = a_i/η``, noise variance
    ``c_i = (T_i/η)(2 − a_i)`` so that ``Var θ_i = T_i/h_i`` exactly.
    """
    a = case.rates()
    h = a / eta
    t = case.temperatures()
    sd_noise = np.sqrt(t / eta * (2 - a))
    sd_stat = np.sqrt(t / h)
    x = rng.standard_normal((chains, case.dim)) * sd_stat
    out = np.empty((chains, draws, case.dim))
    for s in range(draws):
        xi = _innovations(case, rng, chains)
        x = (1 - a) * x - eta * sd_noise * xi
        out[:, s] = x
    return out, out * h


def _innovations(case: Case, rng: np.random.Generator, chains: int) -> np.ndarray:
    """Unit-variance innovations ``[C, D]`` of the case."""
    if case.kind == "skewed":
        return rng.standard_exponential((chains, case.dim)) - 1.0
    z = rng.standard_normal((chains, case.dim))
    if case.kind == "coupling":
        pairs = case.dim // 2 * 2
        other = rng.standard_normal((chains, pairs // 2))
        r = case.delta
        z[:, 1:pairs:2] = r * z[:, 0:pairs:2] + np.sqrt(1 - r * r) * other
    return z


def o3_sums_pvalues(reps: int, seed: int, mis_scale: float = 1.0, dim: int = 4, chains: int = 8,
                    blocks: int = 8, block_steps: int = 250, lr: float = 0.2) -> np.ndarray:
    """P-values of the O3 check from the engine's sums (``temperature.o3_from_sums``).

    Plain SGD on ``L = ½ Σ h_i θ_i²`` with ``ηh_i`` from 0.1 to 0.3 and unit noise, started from
    its exact stationary law ``N(0, η/(h(2 − ηh)))``; per block the sums of ``θ, θg, g`` and the
    fluctuation term ``(η/2)g²`` (multiplied by ``mis_scale``: 1 is the exact null, anything else
    a rule whose fluctuation term is wrong by that factor).
    """
    from ..law.temperature import _chi2_p, o3_from_sums

    rng = np.random.default_rng(seed)
    h = np.linspace(0.1, 0.3, dim) / lr
    theta = rng.standard_normal((reps, chains, dim)) * np.sqrt(lr / (h * (2 - lr * h)))
    virial = np.zeros((reps, chains, blocks, 3, dim))
    fluct = np.zeros((reps, chains, blocks, dim))
    for b in range(blocks):
        for _ in range(block_steps):
            g = h * theta + rng.standard_normal(theta.shape)
            virial[:, :, b, 0] += theta
            virial[:, :, b, 1] += theta * g
            virial[:, :, b, 2] += g
            fluct[:, :, b] += 0.5 * lr * mis_scale * g * g
            theta = theta - lr * g
    steps = np.full(blocks, block_steps)
    total = chains * blocks * block_steps
    out = np.empty(reps)
    for r in range(reps):
        center = virial[r, :, :, 0].sum(axis=(0, 1)) / total
        out[r] = _chi2_p(o3_from_sums(virial[r], fluct[r], steps, center))
    return out


def binomial_rate(k: int, n: int) -> str:
    """``k/n (rate) [95 % interval]`` with the exact (Clopper-Pearson) interval."""
    ci = scipy.stats.binomtest(k, n).proportion_ci(0.95)
    return f"{k}/{n} ({k / n:.3f}) [{ci.low:.3f}, {ci.high:.3f}]"
