"""Claim 11: the classical convergence theorem (docs/claims.md).

With ``η_t → 0`` and ``Σ η_t = ∞`` SGD converges; with constant η it does not (it samples the
stationary law). For SGD on a quadratic with diagonal H and Σ the second moment of every
coordinate obeys the exact recursion ``v_{t+1} = (1 − η_t h)² v_t + η_t² σ²/B`` from
``v_0 = init_scale²``, which the measured ``E[θ_t²]`` (mean over independent chains, SE from their
spread) is compared with at several times. Converging runs have ``v_T/v_{T/2} < 1``; the
constant-η run settles at ``v_∞ = ησ²/(B h (2 − ηh))``. Convergence is measured as the ratio of
per-chain window means of θ² (last quarter of the run over the second quarter).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...sampler.rules.schedule import schedule_factor
from ..record import RunAnalysis
from .common import FAILS, HOLDS, Z_MAX, ClaimResult, fmt, linear_form


def exact_second_moment(run: RunAnalysis, steps: int) -> np.ndarray:
    """``v_t`` for t = 1 … steps, per coordinate ``[steps, D]``."""
    spec = run.spec
    form = linear_form(run)
    h, s2 = form.h_diag.copy(), form.c_diag.copy()  # C̄ = Σ/B
    if spec.run.sampling == "full":  # the deterministic gradient-flow limit: no noise
        s2 = np.zeros_like(s2)
    sch = spec.rule.schedule
    v = np.full_like(h, spec.run.init_scale**2)
    out = np.empty((steps, len(h)))
    for t in range(steps):
        eta = spec.rule.param("lr") * schedule_factor(sch.kind, t, sch.t0, sch.power)
        v = (1 - eta * h) ** 2 * v + eta**2 * s2
        out[t] = v
    return out


def convergence_claim(runs: list[RunAnalysis]) -> ClaimResult:
    """E[θ_t²] against the exact recursion; which runs converge."""
    rows: list[list[str]] = []
    zs: list[float] = []
    ok: list[bool] = []
    numbers: list[dict[str, Any]] = []
    for run in runs:
        theta = np.asarray(run.posterior()["theta"].values)[:, :, 0]  # [C, n]
        thin, n = run.spec.run.thin, theta.shape[1]
        exact = exact_second_moment(run, run.spec.run.burn_in + n * thin)[:, 0]
        sq = theta**2
        picks = sorted({max(n // 16, 1) - 1, n // 4 - 1, n // 2 - 1, n - 1})
        for k in picks:
            t = run.spec.run.burn_in + (k + 1) * thin
            m, se = sq[:, k].mean(), sq[:, k].std(ddof=1) / np.sqrt(sq.shape[0])
            z = (m - exact[t - 1]) / se
            zs.append(z)
            rows.append([run.label, run.spec.rule.schedule.kind, str(t), fmt(m, se),
                         fmt(exact[t - 1]), f"{z:+.1f}"])
        # Per-chain window means (last quarter over second quarter); chains are independent.
        late, early = sq[:, 3 * n // 4:].mean(axis=1), sq[:, n // 4:n // 2].mean(axis=1)
        ratio = late.mean() / early.mean()
        ratio_se = ratio * np.sqrt(late.var(ddof=1) / late.mean() ** 2
                                   + early.var(ddof=1) / early.mean() ** 2) / np.sqrt(len(late))
        converging = (run.spec.rule.schedule.kind != "constant"
                      or run.spec.run.sampling == "full")
        ok.append((ratio < 1 - Z_MAX * ratio_se) == converging)
        name = ("gradient flow" if run.spec.run.sampling == "full"
                else run.spec.rule.schedule.kind)
        numbers.append({"run": run.index, "ratio": float(ratio), "ratio_se": float(ratio_se),
                        "schedule": name})
    ok.append(all(abs(z) < Z_MAX for z in zs))
    verdict = HOLDS if all(ok) else FAILS
    summary = "; ".join(f"{n['schedule']}: E[θ²] last quarter / second quarter = "
                        f"{fmt(n['ratio'], n['ratio_se'])}"
                        for n in numbers)
    return ClaimResult(
        "convergence", "The classical convergence theorem: η_t → 0 with Ση_t = ∞ converges, "
        "constant η does not", "003 (The Classical Convergence Theorem)",
        "E[θ_t²] follows v_{t+1} = (1 − η_t h)² v_t + η_t² σ²/B: → 0 under the schedules, → "
        "ησ²/(Bh(2 − ηh)) at constant η",
        verdict, f"Measured second moments follow the exact recursion at every checked time; "
                 f"{summary}." if verdict == HOLDS else f"Mismatch: {summary}.",
        ["run", "schedule", "step t", "E[θ_t²] measured", "exact v_t", "z"], rows,
        {"runs": numbers})
