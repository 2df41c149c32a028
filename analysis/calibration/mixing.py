"""Operating characteristics of the convergence gate (``mixing.judge``), by simulation.

Chains of K independent coordinates, each an AR(1) ``z_t = φz_{t−1} + √(1 − φ²)ε_t`` with
N(0, 1) marginals and ``τ = (1 + φ)/(1 − φ)`` draws, are diagnosed exactly as a run is
(``convergence.diagnose_block``, then ``diagnostics.worst`` over the K coordinates) and judged
by R-hat and ESS (the stationarity identity needs a rule and is calibrated with the rules).

* **Size**: every chain starts in the stationary law, with enough effective draws
  (``C·n/τ`` well above ``ess_min``). Any "not converged" is a false alarm.
* **Power**: (a) chains started far out, ``z_0 ~ N(0, spread²)``, judged while the transient
  ``spread·φ^t`` is still large over the first draws; (b) one chain stuck in another mode,
  its coordinates shifted by ``offset`` standard deviations for the whole run.
"""

from __future__ import annotations

import numpy as np

from ..diagnostics.convergence import diagnose_block
from ..diagnostics.mixing import Thresholds, judge
from ..diagnostics.run_diagnostics import worst
from .exact_law import ar1_chains


def scenario(name: str, chains: int, draws: int, coords: int, phi: float,
             rng: np.random.Generator, spread: float = 10.0, offset: float = 1.0) -> np.ndarray:
    """One replicate of ``"stationary"``, ``"far start"`` or ``"stuck chain"``."""
    if name == "stationary":
        return ar1_chains(chains, draws, phi, rng, coords)
    if name == "far start":
        return ar1_chains(chains, draws, phi, rng, coords,
                          rng.normal(size=(chains, coords)) * spread)
    if name == "stuck chain":
        z = ar1_chains(chains, draws, phi, rng, coords)
        z[0] += offset
        return z
    raise ValueError(f"scenario must be one of ['stationary', 'far start', 'stuck chain'], "
                     f"got {name!r}")


def flag_rate(name: str, reps: int, seed: int, chains: int, draws: int, coords: int,
              phi: float, thresholds: Thresholds | None = None) -> tuple[int, int]:
    """``(replicates judged not converged, replicates)`` for one scenario."""
    rng = np.random.default_rng(seed)
    flagged = 0
    for _ in range(reps):
        diag = {"theta": diagnose_block(scenario(name, chains, draws, coords, phi, rng))}
        flagged += not judge(worst(diag), None, chains, thresholds).converged
    return flagged, reps
