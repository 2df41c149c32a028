"""Exact theory beside a run's measurement: variances, τ and temperatures, with z-scores.

``compare`` puts a run's ``StationaryTheory`` beside what was measured (from the run's one
gradient pass, or from the engine's sums when θ is recorded partly); ``TheoryComparison`` holds
both and renders the ``theory`` record of ``sgdthermo analyze --json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..diagnostics.blocks import concat, map_blocks
from ..diagnostics.convergence import block_size
from ..diagnostics.estimators import integrated_time_se, mean_and_se
from ..reader import RunData
from ..theory.linear import StationaryTheory
from .partial import recorded_variance, slowest_recorded_time
from .temperature import Temperatures, VirialSamples


@dataclass
class TheoryComparison:
    """Exact theory beside measurement; differences in units of the measurement's SE."""

    theory: StationaryTheory
    measured_mean: np.ndarray  # [D] θ̄
    variance: np.ndarray  # [D] measured Var θ_i
    variance_se: np.ndarray
    measured_iat: np.ndarray  # [D] τ_i
    iat_se: np.ndarray
    virial_z: np.ndarray  # [D] (T_vir − T_theory)/se
    fluctuation_z: np.ndarray
    directions_variance: np.ndarray | None = None  # [m] measured Var ûᵀθ (low-rank models)
    directions_variance_se: np.ndarray | None = None
    coords: np.ndarray | None = None  # the recorded coordinates when θ is recorded partly

    @property
    def theory_variance(self) -> np.ndarray:
        """The predicted ``Var θ_i`` of the measured coordinates."""
        v = self.theory.variance
        return v if self.coords is None else v[self.coords]

    @property
    def variance_z(self) -> np.ndarray:
        """``(Var − Var_theory)/se`` per measured coordinate."""
        return (self.variance - self.theory_variance) / self.variance_se

    def as_dict(self) -> dict[str, Any]:
        """JSON form (the keys of ``sgdthermo analyze --json``)."""
        th = self.theory
        return {
            "exact": th.exact, "note": th.note, "gibbs": th.gibbs, "mean": th.mean.tolist(),
            "measured_mean": self.measured_mean.tolist(),
            "variance": th.variance.tolist(), "measured_variance": self.variance.tolist(),
            "variance_se": self.variance_se.tolist(), "variance_z": self.variance_z.tolist(),
            "temperature": th.temperature.tolist(), "virial_z": self.virial_z.tolist(),
            "fluctuation_z": self.fluctuation_z.tolist(),
            "iat": None if th.iat is None else th.iat.tolist(),
            "measured_iat": self.measured_iat.tolist(), "iat_se": self.iat_se.tolist(),
            "excess_loss": th.excess_loss, **self._directions(),
            **({} if self.coords is None else {"coords": self.coords.tolist()})}

    def _directions(self) -> dict[str, Any]:
        th, var, se = self.theory, self.directions_variance, self.directions_variance_se
        if th.directions_variance is None or var is None or se is None:
            return {}
        return {"spike_directions": {
            "variance": th.directions_variance.tolist(), "measured_variance": var.tolist(),
            "variance_se": se.tolist(),
            "variance_z": ((var - th.directions_variance) / se).tolist()}}


def measured_position(theory: dict[str, Any], i: int) -> int | None:
    """Where coordinate ``i``'s measured variance and τ sit in a ``theory`` JSON record.

    ``i`` itself, unless θ was recorded partly (``theory["coords"]``): then its position among
    the recorded coordinates, or ``None`` if it was not recorded.
    """
    coords = theory.get("coords")
    if coords is None:
        return i
    pos = int(np.searchsorted(coords, i))
    return pos if pos < len(coords) and coords[pos] == i else None


def compare(run: RunData, theory: StationaryTheory, samples: VirialSamples | None,
            temps: Temperatures, diag: dict[str, Any] | None = None) -> TheoryComparison:
    """Theory beside the measured variance, τ and temperatures of a run.

    τ comes from the diagnostics pass (``diag["theta"]["iat"]``) when no chain diverged, else
    from a pass over the non-diverged chains. Without ``samples`` (θ recorded partly) the
    variances are those of the recorded coordinates.
    """
    if samples is None:
        center, var, var_se = recorded_variance(run, slowest_recorded_time(diag or {}))
    else:
        center = samples.center
        var, var_se = mean_and_se(samples.centred**2, samples.batches)
    keep = ~run.diverged_chains()
    if diag is not None and keep.all() and "iat" in diag.get("theta", {}):
        tau = np.asarray(diag["theta"]["iat"], dtype=float)
        tau_se = np.asarray(diag["theta"]["iat_se"], dtype=float)
    else:
        theta = run.posterior()["theta"]
        width = block_size(int(keep.sum()), theta.sizes["draw"])
        tau, tau_se = concat(map_blocks(theta, integrated_time_se, width, rows=keep))
    along = along_se = None
    if theory.directions is not None and samples is not None:  # Var ûᵀθ along the spikes
        along, along_se = mean_and_se((samples.centred @ theory.directions) ** 2,
                                      samples.batches)
    return TheoryComparison(
        theory, center, var, var_se, tau, tau_se,
        (temps.virial - theory.temperature) / temps.virial_se,
        (temps.fluctuation - theory.temperature) / temps.fluctuation_se, along, along_se,
        run.recorded_coords)
