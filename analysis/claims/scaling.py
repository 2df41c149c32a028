"""Claims 1 and 2: learning-rate scaling rules make the temperature depend on η₀ alone.

Claim 1 (seed 004, problem 1): with ``η = Bη₀`` the stationary law depends on η₀ only.
Claim 2 (seed 004, problem 2): with momentum, ``η = (1−μ)Bη₀`` (PyTorch form) or, in the seeds'
``N_g`` form, ``η = Bη₀/N_g`` makes the temperature independent of μ and B.

Prediction: to first order in η every run has the same temperature ``T_i = η₀ Σ_1,ii / 2``
(THEORY.md: SGD ``T = ηC/2``, momentum ``T = ηC/(2(1−μ))``, ``C = Σ_1/B``). The exact finite-η
law (discrete Lyapunov) says how far each run departs from it; the verdict compares the
measurements with both.
"""

from __future__ import annotations

import numpy as np

from ..record import RunAnalysis
from .common import (
    FAILS,
    FIRST_ORDER,
    HOLDS,
    ClaimResult,
    first_order_temperature,
    first_order_verdict,
    fmt,
    measure,
    theory,
    z_scores,
)


def _effective(run: RunAnalysis) -> str:
    r, b = run.spec.rule, run.spec.run.batch_size
    lr = r.param("lr")
    if r.kind == "momentum":
        return f"η/((1−μ)B) = {lr / ((1 - r.param('mu')) * b):.4g}"
    if r.kind == "momentum_ng":
        return f"ηN_g/B = {lr * r.param('n_g') / b:.4g}"
    return f"η/B = {lr / b:.4g}"


def scaling_claim(runs: list[RunAnalysis], name: str, title: str, seed: str) -> ClaimResult:
    """Compare every run's temperature with the common first-order value and the exact law."""
    rows, z_first_all, z_exact_all, numbers = [], [], [], []
    for run in runs:
        m, first, exact = measure(run), first_order_temperature(run), theory(run)
        if first is None or exact is None:
            continue
        z_first = z_scores(m.temperature, m.temperature_se, first)
        z_exact = z_scores(m.temperature, m.temperature_se, exact.temperature)
        z_first_all.append(z_first)
        z_exact_all.append(z_exact)
        dev = (m.temperature - first) / first
        for i in range(len(first)):
            rows.append([run.label, _effective(run), str(i), fmt(m.temperature[i],
                         m.temperature_se[i]), fmt(first[i]), fmt(exact.temperature[i]),
                         f"{z_first[i]:+.1f}", f"{z_exact[i]:+.1f}",
                         fmt(100 * dev[i], 100 * m.temperature_se[i] / first[i]) + "%"])
        numbers.append({"run": run.index, "temperature": m.temperature.tolist(),
                        "temperature_se": m.temperature_se.tolist(),
                        "first_order": first.tolist(), "exact": exact.temperature.tolist()})
    if not z_first_all:
        return ClaimResult(name, title, seed, "", "undecided", "no run has an exact theory")
    verdict = first_order_verdict(np.concatenate(z_first_all), np.concatenate(z_exact_all))
    spread = np.ptp([n["first_order"] for n in numbers], axis=0) / np.mean(
        [n["first_order"] for n in numbers], axis=0)
    if spread.max() > 1e-4:  # the runs do not share one η₀: the scaling rule was not applied
        return ClaimResult(
            name, title, seed, "T_i depends on η₀ alone", FAILS,
            f"Counterexample: these runs' first-order temperatures differ by up to "
            f"{100 * spread.max():.0f}% (and the measurements follow them), so the law depends "
            "on more than η₀ for this sweep: its rates do not follow the scaling rule.",
            ["run", "scaled rate", "i", "T measured", "T first order", "T exact", "z (first)",
             "z (exact)", "deviation from first order"], rows, {"runs": numbers})
    explanation = {
        HOLDS: "Every run's measured temperature equals the common first-order value within "
               "4 standard errors.",
        FIRST_ORDER: "The first-order temperatures of all runs coincide (relative spread "
                     f"{spread.max():.1e}), but the measurements resolve the exact finite-η "
                     "correction: large-η runs sit where the discrete Lyapunov law puts them, "
                     "not at the first-order value (last column: measured deviation).",
    }.get(verdict, "Some run disagrees with both the first-order and the exact prediction.")
    return ClaimResult(
        name, title, seed,
        "T_i depends on η₀ alone: first-order T_i identical for every run; exact finite-η "
        "law from the discrete Lyapunov equation",
        verdict, explanation,
        ["run", "scaled rate", "i", "T measured", "T first order", "T exact", "z (first)",
         "z (exact)", "deviation from first order"], rows, {"runs": numbers})
