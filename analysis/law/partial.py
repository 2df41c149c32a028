"""Analysis of a run whose draws record only part of θ (``run.record``).

Without every coordinate at each draw there is no full-batch gradient at the draws, so the
temperatures come from the engine's per-coordinate sums (``measure.temperatures``), the Gibbs test
(which needs all coordinates and their gradients jointly) is undecided with that reason, and the
theory comparison covers the variances of the recorded coordinates.
"""

from __future__ import annotations

import numpy as np

from ..diagnostics.blocks import columns
from ..diagnostics.estimators import batches_for, mean_and_se
from ..reader import RunData
from .gibbs import ALPHA, GibbsResult

GIBBS_REASON = ("θ recorded as a subset of its coordinates (run.record): the Gibbs test needs "
                "every coordinate and its gradient at each draw")


def slowest_recorded_time(diag: dict) -> float:
    """The largest integrated time (in draws) of what the run recorded.

    Over θ's recorded coordinates and the recorded projections (which see every coordinate).
    """
    taus = [np.asarray(diag[name]["iat"], dtype=float).ravel()
            for name in ("theta", "projection") if name in diag and "iat" in diag[name]]
    finite = np.concatenate(taus)[np.isfinite(np.concatenate(taus))] if taus else np.array([])
    return float(finite.max()) if finite.size else 1.0


OPAQUE_REASON = ("the Gibbs test needs the full-data gradient at each draw, which is not "
                 "taken for a user's module (its virial comes from the engine's sums)")


def gibbs_unavailable(partial: bool = True) -> GibbsResult:
    """The Gibbs verdict of a partly recorded run or a user's module: undecided, with why."""
    nan = float("nan")
    return GibbsResult("undecided", nan, ALPHA, GIBBS_REASON if partial else OPAQUE_REASON,
                       [], nan, nan, 0)


def recorded_variance(run: RunData, tau: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(θ̄, Var θ_i, SE)`` of the recorded coordinates over the non-diverged chains.

    The SE uses batch means of at least ``10·tau`` draws (``estimators.mean_and_se``).
    """
    keep = ~run.diverged_chains()
    theta = run.posterior()["theta"]
    draws = np.concatenate([col for _, col in columns(theta, 1, keep)], axis=-1).astype(float)
    center = draws.mean(axis=(0, 1))
    n_batches = batches_for(tau, draws.shape[1])
    var, se = mean_and_se((draws - center) ** 2, n_batches)
    return center, var, se
