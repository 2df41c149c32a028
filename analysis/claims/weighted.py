"""Claim 3: weighted-average updates, ``Σ_ΔΦ = (Σ_k α_k²) Σ_g`` (docs/claims.md).

A heavy-ball buffer ``b_t = μ b_{t−1} + (1−d) g_t`` is the weighted sum ``Σ_k (1−d)μ^k g_{t−k}``,
so for independent gradients ``Var(b) = (1−d)²/(1−μ²) · Var(g)``: momentum (d = 0) gives
``1/(1−μ²)``, the EMA filter (d = μ) gives ``(1−μ)/(1+μ)``. Measured from the parameter increments
``ΔΦ = −η b`` of runs whose rate is so small that θ, and hence the gradient distribution, is frozen.
"""

from __future__ import annotations

import numpy as np

from ..diagnostics.estimators import mean_and_se
from ..record import RunAnalysis
from .common import FAILS, HOLDS, Z_MAX, ClaimResult, fmt, linear_form


def weighted_average_claim(runs: list[RunAnalysis]) -> ClaimResult:
    """Var(ΔΦ)/(η² Var(g)) per coordinate against Σ α_k²."""
    rows, zs, numbers = [], [], []
    for run in runs:
        r = run.spec.rule
        mu = getattr(r, "mu", 0.0)
        d = getattr(r, "dampening", 0.0)
        alpha2 = (1 - d) ** 2 / (1 - mu**2)
        theta = np.asarray(run.posterior()["theta"].values)
        steps = np.diff(theta, axis=1) / r.param("lr")
        var_g = linear_form(run).c_diag  # σ²/B
        var, se = mean_and_se(steps**2)
        ratio, ratio_se = var / var_g, se / var_g
        for i in range(len(ratio)):
            z = (ratio[i] - alpha2) / ratio_se[i]
            zs.append(z)
            rows.append([run.label, f"μ={mu:g}, d={d:g}", str(i), fmt(ratio[i], ratio_se[i]),
                         fmt(alpha2), f"{z:+.1f}"])
        numbers.append({"run": run.index, "ratio": ratio.tolist(), "predicted": alpha2})
    verdict = HOLDS if all(abs(z) < Z_MAX for z in zs) else FAILS
    return ClaimResult(
        "weighted_average", "Weighted-average updates: Σ_ΔΦ = (Σ α_i²) Σ_g",
        "004 (Problem 2)", "Var(ΔΦ)/(η²Var(g)) = Σ_k α_k² = (1−d)²/(1−μ²)", verdict,
        "Measured increment variances equal Σα² for momentum (d = 0) and the EMA filter "
        "(d = μ)." if verdict == HOLDS else "Some increment variance differs from Σα².",
        ["run", "filter", "i", "Var(ΔΦ)/(η²Var g)", "Σ α_k²", "z"], rows, {"runs": numbers})
