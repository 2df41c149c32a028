"""One typed analysis record per run (``RunAnalysis``), computed once by ``analyze_run``.

The record holds the diagnostics, both temperatures with the stationarity check, the Gibbs test,
the exact theory and its comparison with the measurement, and the arrays they came from (the one
gradient pass of the run, which the claims reuse). Text, HTML and JSON are renderers of this record
(``text``, ``report``, ``as_dict``), so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from ..sampler.optimum import optimum
from .blocks import concat, map_blocks
from .convergence import block_size
from .current import MAX_COORDS, Current, probability_current
from .diagnostics import diagnostics, worst
from .epoch_phases import EpochComparison, epoch_comparison
from .estimators import integrated_time_se, mean_and_se
from .exact_comparison import ExactComparison, applies, exact_comparison
from .exact_comparison_2d import exact_comparison_2d
from .exact_law import newton_optimum_1d
from .gibbs import GibbsResult, gibbs_test
from .measure import temperatures, virial_samples
from .mixing import Convergence, Thresholds, judge
from .partial import GIBBS_REASON, gibbs_unavailable, recorded_variance, slowest_recorded_time
from .reader import RunData
from .temperature import Temperatures, VirialSamples
from .theory import StationaryTheory, skipped_reason, stationary_theory
from .until import until_record

MIN_DRAWS = 8  # fewer committed draws than this: nothing is estimated
# The JSON records whose comparisons assume a stationary law: each gets ``undecided`` (the
# reason) when the chains have not converged; the Gibbs test's verdict itself becomes undecided.
STATIONARY_RECORDS = ("theory", "current", "epoch", "exact_law", "exact_law_2d")


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


@dataclass
class Estimates:
    """What a run with enough committed, non-diverged draws yields."""

    diagnostics: dict[str, dict[str, Any]]
    worst: dict[str, float]
    samples: VirialSamples | None  # None: θ recorded partly (``analysis.partial``)
    temperatures: Temperatures
    gibbs: GibbsResult
    comparison: TheoryComparison | None
    current: Current | None = None  # the probability current (``current``)
    epoch: EpochComparison | None = None  # per epoch phase, under epoch reshuffling
    exact_law: ExactComparison | None = None  # 1-D SGD, B = 1: the exact finite-η law
    exact_law_2d: dict[str, Any] | None = None  # 2-D GLM, SGD, B = 1 (``exact_comparison_2d``)
    convergence: Convergence | None = None  # None only for records built by hand


@dataclass
class RunAnalysis(RunData):
    """A run with its analysis: a status and, if ``ok``, its estimates and theory.

    It is the ``RunData`` it was computed from (same archive views, model and rule), so claims
    read the run and its estimates from one object.
    """

    status: str = ""  # "ok" or why nothing could be estimated
    diverged: int = 0  # diverged chains
    estimates: Estimates | None = None
    theory: StationaryTheory | None = None
    theory_note: str | None = None  # why there is no theory although the gradient is linear

    # ---- the estimates (claims need an ``ok`` run)
    @property
    def ok(self) -> bool:
        """Whether the run had enough draws to estimate anything."""
        return self.estimates is not None

    def _need(self) -> Estimates:
        if self.estimates is None:
            raise ValueError(f"run {self.index} ({self.label}): {self.status}")
        return self.estimates

    @property
    def converged(self) -> bool:
        """Whether the chains passed every convergence check (``mixing.judge``)."""
        e = self.estimates
        return e is not None and (e.convergence is None or e.convergence.converged)

    @property
    def convergence(self) -> Convergence | None:
        """The convergence judgement (None when nothing could be estimated)."""
        return None if self.estimates is None else self.estimates.convergence

    @property
    def samples(self) -> VirialSamples:
        """Centred draws and full-batch gradients (the run's one gradient pass).

        Raises:
            ValueError: θ is recorded only partly, so there are none.
        """
        samples = self._need().samples
        if samples is None:
            raise ValueError(f"run {self.index} ({self.label}): {GIBBS_REASON}")
        return samples

    @property
    def temperatures(self) -> Temperatures:
        """Both temperature estimates and the stationarity check."""
        return self._need().temperatures

    @property
    def gibbs(self) -> GibbsResult:
        """The Gibbs test."""
        return self._need().gibbs

    def as_dict(self) -> dict[str, Any]:
        """JSON form: the record ``sgdthermo analyze --json`` prints for the run."""
        out: dict[str, Any] = {
            "run": self.index, "label": self.label, "rule": self.spec.rule.kind,
            "model": self.spec.model.kind, "chains": self.spec.run.chains, "draws": self.draws,
            "complete": self.complete, "diverged_chains": self.diverged,
            "status": self.status}
        if self.theory_note:
            out["theory_note"] = self.theory_note
        until = until_record(self)
        if until is not None:
            out["until"] = until
        e = self.estimates
        if e is None:
            return out
        out.update({"diagnostics": e.diagnostics, "worst": e.worst,
                    "convergence": e.convergence.as_dict() if e.convergence else None,
                    "temperature": temperature_record(e.temperatures),
                    "gibbs": e.gibbs.as_dict(),
                    "theory": e.comparison.as_dict() if e.comparison else None,
                    "current": e.current.as_dict() if e.current else None,
                    "epoch": e.epoch.as_dict() if e.epoch else None,
                    "exact_law": e.exact_law.as_dict() if e.exact_law else None,
                    "exact_law_2d": e.exact_law_2d})
        if not self.converged and e.convergence is not None:
            for key in STATIONARY_RECORDS:  # measured, but not judged
                if out[key] is not None:
                    out[key] = {**out[key], "undecided": e.convergence.undecided}
        return out


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


def temperature_record(temps: Temperatures) -> dict[str, Any]:
    """JSON form of ``Temperatures``: both estimates and the run's exact stationarity check."""
    out = {"virial": temps.virial.tolist(), "virial_se": temps.virial_se.tolist(),
           "fluctuation": temps.fluctuation.tolist(),
           "fluctuation_se": temps.fluctuation_se.tolist(),
           "fluctuation_exact": temps.fluctuation_exact, "check": temps.check,
           "z": temps.z.tolist(), "agreement_p": temps.agreement_p, "agree": temps.agree}
    if temps.identity_lhs is not None and temps.identity_rhs is not None:
        out["identity_lhs"] = temps.identity_lhs.tolist()
        out["identity_rhs"] = temps.identity_rhs.tolist()
    return out


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


def _leading_draws(run: RunData) -> np.ndarray:
    """θ's first ``MAX_COORDS`` coordinates ``[C, N, d]`` of the non-diverged chains."""
    theta = run.posterior()["theta"].isel(coord=slice(0, MAX_COORDS)).values
    return np.asarray(theta)[~run.diverged_chains()]


def _exact_law(run: RunData, lead: np.ndarray) -> ExactComparison | None:
    """The exact 1-D law's comparison, where it applies (``exact_comparison.applies``)."""
    r = run.spec.run
    if applies(run.model, run.rule, r.batch_size, r.sampling) is None:
        return None
    theta_star = newton_optimum_1d(run.model, float(optimum(run.model)[0]))
    return exact_comparison(lead[..., 0], run.model, run.rule, r.batch_size, r.sampling,
                            theta_star)


def withheld(gibbs: GibbsResult, convergence: Convergence) -> GibbsResult:
    """The Gibbs test with its verdict withheld when the chains have not converged.

    Its statistics and p-values stay (they describe the draws); its verdict becomes
    "undecided" and its reason says which convergence check failed.
    """
    if convergence.converged:
        return gibbs
    return replace(gibbs, verdict="undecided",
                   reason="the chains have not converged (see convergence); the test assumes "
                   "stationary draws")


def analyze_run(run: RunData, thresholds: Thresholds | None = None) -> RunAnalysis:
    """Everything ``sgdthermo analyze`` reports for one run, computed once.

    ``thresholds`` sets what "converged" means (``mixing.Thresholds``; R-hat ≤ 1.01 and bulk
    and tail ESS ≥ 400 by default): a run that fails keeps its numbers, and every verdict that
    assumes a stationary law is "undecided" with the reason.
    """
    diverged = int(run.diverged_chains().sum())
    theory = stationary_theory(run.model, run.rule, run.spec.run)
    note = None if theory is not None else skipped_reason(run.model, run.rule, run.spec.run)
    base = {f.name: getattr(run, f.name) for f in fields(RunData)}
    if run.draws < MIN_DRAWS or diverged == run.spec.run.chains:
        out = RunAnalysis(**base, status="not enough committed, non-diverged draws to analyze",
                          diverged=diverged, theory=theory, theory_note=note)
    else:
        diag = diagnostics(run)
        samples = None if run.partial else virial_samples(run)
        temps = temperatures(run, samples, tau=slowest_recorded_time(diag))
        comparison = (compare(run, theory, samples, temps, diag) if theory is not None
                      else None)
        convergence = judge(worst(diag), temps, int((~run.diverged_chains()).sum()),
                            thresholds)
        gibbs = withheld(gibbs_test(samples) if samples is not None else gibbs_unavailable(),
                         convergence)
        current = epoch = exact = exact_2d = None
        if not run.partial:  # θ's first coordinates, read once for all four
            lead = _leading_draws(run)
            current = probability_current(lead, theory, run.spec.run.thin,
                                          tau=slowest_recorded_time(diag))
            epoch = epoch_comparison(lead, theory, run.spec.run.burn_in, run.spec.run.thin)
            exact = _exact_law(run, lead)
            exact_2d = None if run.model.dim != 2 else exact_comparison_2d(
                lead, run.model, run.rule, run.spec.run.batch_size, run.spec.run.sampling,
                lambda: np.asarray(optimum(run.model), dtype=float))
        estimates = Estimates(diag, worst(diag), samples, temps, gibbs, comparison, current,
                              epoch, exact, exact_2d, convergence)
        out = RunAnalysis(**base, status="ok", diverged=diverged, estimates=estimates,
                          theory=theory, theory_note=note)
    out.__dict__.update({k: run.__dict__[k] for k in ("model", "rule") if k in run.__dict__})
    return out
