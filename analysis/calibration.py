"""Exact-Gibbs nulls and named alternatives for calibrating the Gibbs test by simulation.

Every case is plain SGD on a diagonal quadratic ``L = ½ Σ h_i θ_i²`` (so ``∂_iL = h_i θ_i``),
simulated in numpy, started from its exact stationary law, so size and power are measured on
exactly known laws (THEORY.md, "Exact-Gibbs nulls at finite η"):

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
