"""Epoch reshuffling measured per epoch phase against its exact law (``theory.epoch``).

The draw recorded after global step ``t`` sits at phase ``t mod K`` (``K = ⌊N/B⌋`` batches per
epoch; draw j is at step ``burn_in + (j+1)·thin``). For each phase the draws visit and each of
θ's first ``MAX_COORDS`` coordinates, the second moment about the exact phase mean,
``E[(θ_i − m_{k,i})²] = Cov_k,ii``, is measured with a batch-means SE sized to the integrated
time of that phase's own subsequence (``estimators.mean_and_se``), beside its exact value; the
z-scores are summarised by a two-sided Bonferroni p-value over phases × coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.special

from ..diagnostics.estimators import mean_and_se
from ..theory.linear import StationaryTheory

MAX_COORDS = 4  # coordinates compared per phase
SHOWN_PHASES = 6  # phases a sentence lists (the JSON and the report have all)


@dataclass
class EpochComparison:
    """Per-phase variances, measured and exact, for θ's first coordinates."""

    steps: int  # K
    phases: np.ndarray  # [P] phases the draws visit
    coords: np.ndarray  # [d]
    measured: np.ndarray  # [P, d] E[(θ − m_k)²]
    se: np.ndarray  # [P, d]
    exact: np.ndarray  # [P, d]
    average: tuple[np.ndarray, np.ndarray, np.ndarray]  # pooled: measured, se, exact [d]
    method: str

    @property
    def z(self) -> np.ndarray:
        """``(measured − exact)/se`` ``[P, d]``."""
        return (self.measured - self.exact) / self.se

    @property
    def p_value(self) -> float:
        """Two-sided Bonferroni p-value of the largest |z| over phases × coordinates."""
        z = np.abs(self.z[np.isfinite(self.z)])
        if z.size == 0:
            return float("nan")
        return float(min(1.0, 2 * scipy.special.ndtr(-z.max()) * z.size))

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``epoch`` in ``sgdthermo analyze --json``)."""
        m, se, ex = self.average
        return {"steps_per_epoch": self.steps, "phases": self.phases.tolist(),
                "coords": self.coords.tolist(), "measured": self.measured.tolist(),
                "se": self.se.tolist(), "exact": self.exact.tolist(), "z": self.z.tolist(),
                "p_value": self.p_value, "method": self.method,
                "average": {"measured": m.tolist(), "se": se.tolist(), "exact": ex.tolist()}}


def draw_phases(n_draws: int, burn_in: int, thin: int, steps: int) -> np.ndarray:
    """The epoch phase of every recorded draw ``[n]``."""
    return (burn_in + (np.arange(n_draws) + 1) * thin) % steps


def epoch_comparison(theta: np.ndarray, theory: StationaryTheory | None, burn_in: int,
                     thin: int) -> EpochComparison | None:
    """Measured against exact per phase, from draws ``theta [C, n, D]`` (None without a law)."""
    law = None if theory is None else theory.epoch
    if law is None or theta.shape[1] < 8:
        return None
    d = min(MAX_COORDS, theta.shape[2])
    coords = np.arange(d)
    x = np.asarray(theta[..., :d], dtype=float)
    phase = draw_phases(x.shape[1], burn_in, thin, law.steps)
    phases = np.unique(phase)
    rows, ses, exact = [], [], []
    for k in phases:
        dev = x[:, phase == k] - law.phase_mean[k, :d]
        m, se = mean_and_se(dev**2)
        rows.append(m)
        ses.append(se)
        exact.append(np.diag(law.phase_cov[k])[:d])
    mean, cov = law.pooled(phases)
    m, se = mean_and_se((x - mean[:d]) ** 2)
    return EpochComparison(law.steps, phases, coords, np.array(rows), np.array(ses),
                           np.array(exact), (m, se, np.diag(cov)[:d]), law.method)


def epoch_sentence(e: dict[str, Any]) -> str:
    """One sentence: the per-phase comparison of θ_0, the epoch average and the summary test."""
    z = np.asarray(e["z"], dtype=float)
    shown = range(0, len(e["phases"]), max(1, -(-len(e["phases"]) // SHOWN_PHASES)))
    parts = [f"phase {e['phases'][j]}: {e['measured'][j][0]:.4g}±{e['se'][j][0]:.2g} "
             f"(exact {e['exact'][j][0]:.4g}, z {z[j][0]:+.1f})" for j in shown]
    avg = e["average"]
    return (f"Epoch reshuffling (K = {e['steps_per_epoch']} steps per epoch, "
            f"{len(e['phases'])} phases visited; {e['method']}): Var θ_0 by " + "; ".join(parts)
            + f"; epoch average {avg['measured'][0]:.4g}±{avg['se'][0]:.2g} (exact "
            f"{avg['exact'][0]:.4g}); largest |z| over {z.size} phase × coordinate pairs "
            f"{np.nanmax(np.abs(z)):.2f}, p = {e['p_value']:.3g} (Bonferroni).")
