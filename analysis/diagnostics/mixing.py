"""Have a run's chains converged? The gate in front of every verdict that assumes a stationary law.

A Gibbs test, a temperature comparison, a z-score against exact theory or a claim verdict is a
statement about the stationary law. Computed from chains that have not mixed it is a statement
about where they started, so it is withheld ("undecided", with the reason) unless all hold:

* **R-hat.** The largest rank-normalised split R-hat (Vehtari, Gelman, Simpson, Carpenter &
  Bürkner 2021) over every diagnosed quantity (θ's coordinates, the loss, projections) is at
  most ``r_hat_max``. The default 1.05 is Stan's rule for using a sample at all; the paper's
  stricter 1.01 is meant per quantity, and as a maximum over thousands of coordinates of
  many short chains it fails converged runs by chance (a 2-D quadratic of 8 chains × 4000
  draws at τ ≈ 40 sits at 1.008). Pass ``r_hat_max = 1.01`` for the strict reading. It needs
  two chains or more; with one the run is judged by the other checks alone, and says so.
* **Effective draws.** The smallest bulk and tail ESS are at least ``ess_min`` (default 400,
  the paper's minimum for R-hat and MCSE estimates to be reliable).
* **Equilibration.** Where the run's stationarity identity is exact (SGD's O3 relation between
  the two temperatures, the rate-weighted identity of adaptive rules), it holds at the 0.1 %
  level (``Temperatures.agree``). A run whose identity is only approximate is not judged by it.

A run that is not judged converged keeps every measured number in the record; only the verdicts
built on them become "undecided".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # annotations only: diagnostics does not import law at run time
    from ..law.temperature import Temperatures


R_HAT_MAX = 1.05
ESS_MIN = 400.0


@dataclass(frozen=True)
class Thresholds:
    """What ``converged`` means: the largest R-hat and the smallest bulk/tail ESS allowed."""

    r_hat_max: float = R_HAT_MAX
    ess_min: float = ESS_MIN

    def __post_init__(self) -> None:
        if not (np.isfinite(self.r_hat_max) and self.r_hat_max >= 1.0):
            raise ValueError(f"r_hat_max (--r-hat-max) must be a finite number ≥ 1, got "
                             f"{self.r_hat_max!r}")
        if not (np.isfinite(self.ess_min) and self.ess_min >= 0):
            raise ValueError(f"ess_min (--ess-min) must be a finite number ≥ 0, got "
                             f"{self.ess_min!r}")


@dataclass
class Convergence:
    """The judgement: ``converged`` and, when not, each failed check in words."""

    converged: bool
    reasons: list[str]  # one per failed check; empty when converged
    max_r_hat: float
    min_ess_bulk: float
    min_ess_tail: float
    thresholds: Thresholds
    notes: list[str] = field(default_factory=list)  # checks that could not be made

    @property
    def reason(self) -> str:
        """``"max R-hat 2.66 > 1.01; min bulk ESS 38 < 400"``, or ``""`` when converged."""
        return "; ".join(self.reasons)

    @property
    def undecided(self) -> str:
        """The reason a verdict that needs a stationary law is withheld."""
        return f"chains not converged ({self.reason})"

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``runs[i].convergence``)."""
        return {"converged": self.converged, "reasons": list(self.reasons),
                "notes": list(self.notes), "max_r_hat": self.max_r_hat,
                "min_ess_bulk": self.min_ess_bulk, "min_ess_tail": self.min_ess_tail,
                "r_hat_max": self.thresholds.r_hat_max, "ess_min": self.thresholds.ess_min}


def judge(worst: dict[str, float], temps: Temperatures | None, chains: int,
          thresholds: Thresholds | None = None) -> Convergence:
    """Judge convergence from the worst diagnostics and the stationarity check.

    Args:
        worst: ``diagnostics.worst``: ``max_r_hat``, ``min_ess_bulk``, ``min_ess_tail``.
        temps: The run's temperatures (their ``agree`` is the equilibration check), or None.
        chains: Non-diverged chains the diagnostics came from.
        thresholds: The limits; the defaults when None.

    Returns:
        ``Convergence``. An R-hat that is NaN because no quantity varies (the chains sit at a
        point) is noted, not failed: there is nothing to mix. A NaN ESS fails its check.
    """
    th = thresholds or Thresholds()
    r_hat, bulk, tail = (float(worst.get(k, np.nan)) for k in
                         ("max_r_hat", "min_ess_bulk", "min_ess_tail"))
    reasons, notes = [], []
    if chains < 2:
        notes.append("R-hat needs 2 chains or more; judged by ESS and the stationarity check")
    elif not np.isfinite(r_hat):  # every quantity constant: nothing to mix (a point mass)
        notes.append("R-hat undefined: no diagnosed quantity varies")
    elif r_hat > th.r_hat_max:
        reasons.append(f"max R-hat {r_hat:.3g} > {th.r_hat_max:g}")
    for name, value in (("bulk", bulk), ("tail", tail)):
        if not np.isfinite(value):
            reasons.append(f"{name} ESS undefined")
        elif value < th.ess_min:
            reasons.append(f"min {name} ESS {value:.0f} < {th.ess_min:g}")
    if temps is not None and temps.agree is False:
        reasons.append(f"the exact stationarity identity ({temps.check}) fails, "
                       f"p = {temps.agreement_p:.2g}")
    return Convergence(not reasons, reasons, r_hat, bulk, tail, th, notes)


def convergence_words(record: dict[str, Any] | None) -> str:
    """The overview table's cell: ``yes``, or ``NO`` with the first failed check's name."""
    if not record:
        return "–"
    if record["converged"]:
        return "yes"
    first = record["reasons"][0]
    return "NO (" + ("R-hat" if "R-hat" in first else "ESS" if "ESS" in first
                     else "identity") + ")"
