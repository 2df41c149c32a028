"""Seed-claim experiments.

Each turns an archive's runs into a prediction, a measurement and a verdict: "holds", "holds to
first order in η" (with the measured deviation) or "fails" (with the counterexample).

May import: ``sgdthermo.sampler``, ``theory``, ``diagnostics``, ``law``, the archive's door
(``analysis.reader``), the typed record (``analysis.record``) and this subpackage.
"""

from __future__ import annotations

from collections.abc import Callable

from ..reader import archive_metadata, open_archive
from ..record import MIN_DRAWS, RunAnalysis, analyze_run
from .alpha import gibbs_alpha_claim
from .common import UNDECIDED, ClaimResult
from .convergence import convergence_claim
from .heat_capacity import heat_capacity_claim
from .loss_units import loss_units_claim
from .posterior import posterior_claim
from .running_averages import running_averages_claim
from .scaling import scaling_claim
from .sde import sgd_vs_sde_claim
from .stationary_bias import stationary_bias_claim
from .stationary_points import stationary_points_claim
from .two_temperatures import two_temperatures_claim
from .tz import tz_claim
from .weighted import weighted_average_claim

CLAIMS: dict[str, Callable[[list[RunAnalysis]], ClaimResult]] = {
    "batch_scaling": lambda runs: scaling_claim(
        runs, "batch_scaling", "Batch scaling: with η = Bη₀ the law depends on η₀ alone",
        "004 (Problem 1), 003 (Scaling η with Batch Size)"),
    "momentum_scaling": lambda runs: scaling_claim(
        runs, "momentum_scaling", "Momentum: with η = (1−μ)Bη₀ the temperature is independent "
        "of μ and B (both parametrisations)", "004 (Problem 2), 003 (Momentum)"),
    "weighted_average": weighted_average_claim,
    "gibbs_alpha": gibbs_alpha_claim,
    "two_temperatures": two_temperatures_claim,
    "heat_capacity": heat_capacity_claim,
    "sgd_vs_sde": sgd_vs_sde_claim,
    "stationary_points": stationary_points_claim,
    "convergence": convergence_claim,
    "conjugacy": lambda runs: scaling_claim(
        runs, "conjugacy", "Hyperparameter conjugacy: N_g = max(1, N'_g/B), η = Bη'/N_g keeps "
        "the law fixed as B changes (also for B > N'_g)", "003 (Putting It Together)"),
    "loss_units": loss_units_claim,
    "tz": tz_claim,
    "posterior": posterior_claim,
    "running_averages": running_averages_claim,
    "stationary_bias": stationary_bias_claim,
    "sqrt_scaling": lambda runs: scaling_claim(
        runs, "sqrt_scaling", "Square-root scaling (Malladi et al. 2022): RMSProp/Adam with "
        "η ∝ √B, 1 − β ∝ B, ε ∝ 1/√B keep the law fixed as B changes",
        "beyond the seeds (Malladi, Lyu, Panigrahi & Arora 2022)"),
}

# Claims whose runs are not stationary on purpose, and what each judges instead.
TRANSIENT: dict[str, str] = {
    "weighted_average": "these runs are not stationary on purpose: the rate is so small that θ "
    "stays put, and only the increments ΔΦ are judged",
    "running_averages": "these runs are not stationary on purpose: the rate is so small that "
    "θ stays put, and only the buffers' running averages are judged",
    "convergence": "these runs are not stationary on purpose: E[θ_t²] is judged against its "
    "exact transient at each time",
    "tz": "these runs are not stationary on purpose: the TZ rates decay, and the progress per "
    "gradient is judged",
}

__all__ = ["CLAIMS", "ClaimResult", "check_claim_name", "evaluate_claim", "evaluate_claims"]


# Each claim's entry in the catalogue shipped with the configs (docs/claims.md).
CATALOGUE = {"batch_scaling": "1", "momentum_scaling": "2", "weighted_average": "3",
             "conjugacy": "4", "running_averages": "5", "loss_units": "6",
             "stationary_points": "7", "gibbs_alpha": "8", "two_temperatures": "9",
             "heat_capacity": "10", "convergence": "11", "sgd_vs_sde": "12", "tz": "13",
             "posterior": "14", "stationary_bias": "15", "sqrt_scaling": "16"}


def catalogue_reference(name: str, origin: str) -> str:
    """Where a reader finds the claim: its catalogue entry, and a published source if any.

    ``origin`` is the claim's provenance as its module records it; only a published source in
    it (``"beyond the seeds (Malladi, … 2022)"``) is worth citing to a reader.
    """
    ref = f"docs/claims.md, claim {CATALOGUE[name]}"
    if origin.startswith("beyond the seeds (") and "README" not in origin:
        ref += "; " + origin.removeprefix("beyond the seeds (").removesuffix(")")
    return ref


def check_claim_name(name: str | None) -> None:
    """Raise ``ValueError`` naming the field, the known claims and the value given."""
    if name is not None and name not in CLAIMS:
        raise ValueError(f"claim must be one of {sorted(CLAIMS)}, got {name!r}")


def evaluate_claims(name: str | None, runs: list[RunAnalysis]) -> ClaimResult | None:
    """The verdict of claim ``name`` (``None``: no claim) on the runs with enough draws.

    A claim about the stationary law is judged only on converged runs (``mixing``): if any run
    it uses has not converged, its table is shown and its verdict is "undecided", naming each
    such run and the check it failed. A claim in ``TRANSIENT`` uses non-stationary runs on
    purpose and judges only what it claims; its explanation says so.
    """
    if not name:
        return None
    check_claim_name(name)
    used = [r for r in runs if r.draws >= MIN_DRAWS]
    result = CLAIMS[name](used)
    result.seed = catalogue_reference(name, result.seed)
    if name in TRANSIENT:
        result.explanation = f"{result.explanation} ({TRANSIENT[name]})"
        return result
    late = [r for r in used if r.ok and not r.converged]
    if late:
        result.numbers = {**result.numbers, "unconverged_runs": [r.index for r in late]}
        result.explanation = (
            f"not judged: {len(late)} of {len(used)} runs have not converged, and this claim "
            "is about the stationary law — " + "; ".join(
                f"run {r.index} ({r.label}): {r.convergence.reason}" for r in late
                if r.convergence is not None) + ". The table shows what was measured.")
        result.verdict = UNDECIDED
    return result


def evaluate_claim(path: str) -> ClaimResult | None:
    """The verdict of the claim an archive's job was configured for (``claim = ...``)."""
    name = archive_metadata(path)["config"].get("claim")
    if not name:
        return None
    return evaluate_claims(name, [analyze_run(r) for r in open_archive(path)])
