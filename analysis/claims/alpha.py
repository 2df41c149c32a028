"""Claim 8: the 1-D Gibbs density ``p ∝ exp(−L/(αησ²))`` and the value of α (docs/claims.md).

For SGD on ``ℓ_i(β) = ½(β − y_i)²`` (curvature h = 1) the stationary law is Gaussian with
``Var = αησ²/h``, where σ² is the per-step noise variance of ĝ under i.i.d. sampling,
``σ_1²/B``. Exact (docs/theory.md, exact laws): ``α = 1/(2 − ηh)`` for i.i.d. batches,
times ``(N−B)/(N−1)``
without replacement; epoch reshuffling is far colder (roughly ``α ≈ ηNh/6``) and its exact law
per epoch phase comes from ``analysis.theory.epoch``. The seeds' ``α ≈ 1/10`` is examined: it is
what one reads off if σ² is taken as the per-example variance σ_1² while the batch has B = 5
(``α_per-example = 1/(2B)``).


Epoch reshuffling is cyclostationary: its variance depends on the step's position in
the epoch, so α is reported per epoch phase and averaged over the epoch, from draws whose
spacing ``thin`` is coprime to the epoch length (a commensurate spacing sees one phase only:
main once read α = 0.101 at even draws and 0.0076 at odd ones). The shape of every law is
checked by the Gibbs test's shape component: Gibbs here means Gaussian.
"""

from __future__ import annotations

import numpy as np

from ..diagnostics.estimators import mean_and_se
from ..record import RunAnalysis
from .common import FAILS, Z_MAX, ClaimResult, data, fmt, shape_verdict


def phase_alpha(run: RunAnalysis,
                scale: float) -> tuple[list[tuple[int, float, float, float | None]], int]:
    """``[(phase, α, se, exact α)]`` per epoch phase of the recorded draws, and the epoch length.

    The phase of draw k is its global step ``burn_in + (k+1)·thin`` modulo ``⌊N/B⌋``; ``α`` is
    the variance at that phase (about the pooled mean) divided by ``scale = ησ²``; the exact α
    is the exact law's second moment at that phase about the same centre, over ``scale``.
    """
    law = run.theory.epoch if run.theory is not None else None
    steps = run.epoch_steps or 1
    theta = np.asarray(run.posterior()["theta"].values)[~run.diverged_chains()][..., 0]
    x = theta - theta.mean()
    k = np.arange(x.shape[1])
    phase = (run.spec.run.burn_in + (k + 1) * run.spec.run.thin) % steps
    out = []
    for p in np.unique(phase):
        v, se = mean_and_se(x[:, phase == p, None] ** 2)
        exact = None if law is None else float(
            law.phase_cov[p, 0, 0] + (law.phase_mean[p, 0] - theta.mean()) ** 2) / scale
        out.append((int(p), float(v[0]) / scale, float(se[0]) / scale, exact))
    return out, steps


def predicted_alpha(run: RunAnalysis, scale: float) -> float | None:
    """Exact α: closed forms for i.i.d. and without-replacement batches, else the epoch law.

    For epoch reshuffling: the exact law's variance averaged over the phases the draws visit,
    over ``scale = ησ²``.
    """
    lr, b = run.spec.rule.param("lr"), run.spec.run.batch_size
    n = run.model.n_examples
    base = 1.0 / (2.0 - lr)
    if run.spec.run.sampling == "iid":
        return base
    if run.spec.run.sampling == "without_replacement" and n:
        return base * (n - b) / (n - 1)
    if run.spec.run.sampling == "epoch" and run.theory is not None and run.theory.epoch:
        return float(run.theory.variance[0]) / scale
    return None


def gibbs_alpha_claim(runs: list[RunAnalysis]) -> ClaimResult:
    """α = h·Var/(ησ²) per run against its exact value, and against the seeds' 1/10."""
    rows, numbers, z_all, seeds_z, phases = [], [], [], [], []
    for run in runs:
        y = data(run)[1]
        b, lr = run.spec.run.batch_size, run.spec.rule.param("lr")
        sigma2 = y.var() / b
        s = run.samples
        var, var_se = mean_and_se(s.centred**2, s.batches)
        alpha, se = float(var[0] / (lr * sigma2)), float(var_se[0] / (lr * sigma2))
        shape, p_shape = shape_verdict(run.gibbs)
        if run.spec.run.sampling == "epoch":
            per_phase, steps = phase_alpha(run, lr * sigma2)
            phases.append(_phase_text(per_phase, steps))
        pred = predicted_alpha(run, lr * sigma2)
        z = (alpha - pred) / se if pred is not None else float("nan")
        if pred is not None:
            z_all.append(z)
        seeds_z.append((alpha - 0.1) / se)
        rows.append([run.label, run.spec.run.sampling, str(b), f"{lr:g}", fmt(alpha, se),
                     fmt(pred) if pred is not None else "no formula",
                     f"{z:+.1f}" if np.isfinite(z) else "–", fmt(alpha / b, se / b),
                     f"{shape} (p = {p_shape:.2g})"])
        numbers.append({"run": run.index, "alpha": alpha, "se": se, "predicted": pred,
                        "sampling": run.spec.run.sampling, "per_example": alpha / b,
                        "shape": shape, "shape_p": p_shape, "lr": lr, "batch_size": b})
    exact_ok = all(abs(z) < Z_MAX for z in z_all)
    verdict = FAILS if any(abs(z) > Z_MAX for z in seeds_z) else "holds"
    shapes = sorted({f"{n['shape']} at η = {n['lr']:g}, B = {n['batch_size']}"
                     for n in numbers if n["shape"] != "Gibbs shape"})
    explanation = (
        f"Measured α matches the exact finite-η value in every run with a formula "
        f"({'all' if exact_ok else 'NOT all'} |z| < {Z_MAX:g}); α → 1/2 as η → 0 for i.i.d. "
        "batches, not 1/10. The seeds' 1/10 is reproduced only when σ² is the per-example "
        "variance while the batch has B = 5 (last column: α_per-example = α/B = 1/(2B) at "
        "small η)" + (f"; epoch reshuffling is cyclostationary and far colder, as its exact "
                      f"law per epoch phase says: {'; '.join(phases)} (the seed notes' rough "
                      "estimate is ηNh/(6B)); a value near 1/10 is at most one epoch phase's, "
                      "not the law's"
                      if phases else "") + ". Shape: " + (
            ", ".join(shapes) + (" (at η = 1, B = 1 the law is the data's own distribution)"
                                 if any(n["lr"] == 1 and n["batch_size"] == 1 for n in numbers)
                                 else "")
            if shapes else "every law is Gaussian, as exp(−L/T) requires") + ".")
    return ClaimResult(
        "gibbs_alpha", "The 1-D Gibbs density exp(−L/(αησ²)): what is α?",
        "003 (The 1-D Langevin Stationary Distribution)",
        "α = 1/(2 − ηh) (i.i.d.), × (N−B)/(N−1) without replacement, the exact epoch law "
        "averaged over its phases under epoch reshuffling; seeds claim α ≈ 1/10",
        verdict, explanation,
        ["run", "sampling", "B", "η", "α measured", "α exact", "z",
         "α with per-example σ² (= α/B)", "Gibbs shape test"],
        rows, {"runs": numbers})


def _phase_text(per_phase: list[tuple[int, float, float, float | None]], steps: int) -> str:
    """α per epoch phase (with its exact value) and, when every phase is sampled, the average."""
    parts = ", ".join(f"phase {p}: {fmt(a, se)}" + ("" if ex is None else f" (exact {ex:.4g})")
                      for p, a, se, ex in per_phase)
    if len(per_phase) < steps:
        return (f"α by epoch phase {parts} (only {len(per_phase)} of {steps} phases sampled: "
                "thin is not coprime to the epoch length, no epoch average)")
    avg = float(np.mean([a for _, a, _, _ in per_phase]))
    avg_se = float(np.sqrt(sum(se**2 for _, _, se, _ in per_phase)) / len(per_phase))
    return f"α by epoch phase {parts}; epoch average {fmt(avg, avg_se)}"
