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
from .diagnostics.mixing import Convergence, Thresholds, judge
from .diagnostics.nested_rhat import nested_record
from .diagnostics.run_diagnostics import diagnostics, worst
from .diagnostics.until import until_record
from .landscape.curvature import curvature
from .landscape.displacement import displacement
from .landscape.fdr import layer_fdr
from .landscape.flatness import flatness
from .law.comparison import TheoryComparison, compare
from .law.current import MAX_COORDS, Current, probability_current
from .law.epoch_phases import EpochComparison, epoch_comparison
from .law.exact_comparison import ExactComparison, applies, exact_comparison
from .law.exact_comparison_2d import exact_comparison_2d
from .law.gibbs import GibbsResult, gibbs_test
from .law.layers import layer_summary
from .law.measure import temperatures, virial_samples
from .law.partial import GIBBS_REASON, gibbs_unavailable, slowest_recorded_time
from .law.temperature import Temperatures, VirialSamples
from .reader import RunData
from .theory.linear import StationaryTheory, skipped_reason, stationary_theory
from .theory.one_d import newton_optimum_1d

MIN_DRAWS = 8  # fewer committed draws than this: nothing is estimated
# The JSON records whose comparisons assume a stationary law: each gets ``undecided`` (the
# reason) when the chains have not converged; the Gibbs test's verdict itself becomes undecided.
STATIONARY_RECORDS = ("theory", "current", "epoch", "exact_law", "exact_law_2d")


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
    layers: list[dict[str, Any]] | None = None  # one row per layer (``layers.layer_summary``)
    displacement: dict[str, Any] | None = None  # MSD against lag (``landscape.displacement``)
    fdr: dict[str, Any] | None = None  # per-layer fluctuation–dissipation (``landscape.fdr``)
    nested_r_hat: dict[str, Any] | None = None  # superchains (``diagnostics.nested_rhat``)
    curvature: dict[str, Any] | None = None  # top-k Hessian directions (``landscape.curvature``)
    flatness: dict[str, Any] | None = None  # variance against flatness (``landscape.flatness``)


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
                    "exact_law_2d": e.exact_law_2d, "layers": e.layers,
                    "displacement": e.displacement, "fdr": e.fdr,
                    "nested_r_hat": e.nested_r_hat, "curvature": e.curvature,
                    "flatness": e.flatness})
        if not self.converged and e.convergence is not None:
            for key in STATIONARY_RECORDS:  # measured, but not judged
                if out[key] is not None:
                    out[key] = {**out[key], "undecided": e.convergence.undecided}
        return out


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


def analyze_run(run: RunData, thresholds: Thresholds | None = None, top_k: int = 0,
                curvature_at: str = "mean", pca: int = 0) -> RunAnalysis:
    """Everything ``sgdthermo analyze`` reports for one run, computed once.

    ``top_k``: also the K sharpest Hessian directions at ``curvature_at`` (``"mean"`` or
    ``"optimum"``) and the temperatures along them (``landscape.curvature``).

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
        samples = None if run.virial_from_sums else virial_samples(run)
        temps = temperatures(run, samples, tau=slowest_recorded_time(diag))
        comparison = (compare(run, theory, samples, temps, diag) if theory is not None
                      else None)
        extremes = worst(diag)
        convergence = judge(extremes, temps, int((~run.diverged_chains()).sum()),
                            thresholds)
        gibbs = (withheld(gibbs_test(samples), convergence) if samples is not None
                 else gibbs_unavailable(run.partial))  # why it cannot run comes first
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
        tau = slowest_recorded_time(diag)
        layers = layer_summary(run, diag, temps, tau)
        estimates = Estimates(diag, extremes, samples, temps, gibbs, comparison, current,
                              epoch, exact, exact_2d, convergence, layers, displacement(run),
                              layer_fdr(run, samples, tau), nested_record(run),
                              curvature(run, samples, top_k, curvature_at, theory)
                              if top_k > 0 else None,
                              flatness(run, pca) if pca > 0 else None)
        out = RunAnalysis(**base, status="ok", diverged=diverged, estimates=estimates,
                          theory=theory, theory_note=note)
    out.__dict__.update({k: run.__dict__[k] for k in ("model", "rule") if k in run.__dict__})
    return out
