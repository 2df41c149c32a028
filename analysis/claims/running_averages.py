"""Claim 5: running averages (docs/claims.md), read off the rules' buffers.

With a rate so small that θ stays at θ₀, the gradients are ``x_t = hθ₀ + ξ_t`` (mean ``x̄ = hθ₀``,
variance σ²/B) and the buffers are the seeds' filters, observable as ``Δθ``:

* y (PyTorch momentum with d = μ = β): ``y_t = βy + (1−β)x``, ``ȳ = x̄``;
* z (the seeds' N_g momentum, ``v = βv + γx``): ``z̄ = γx̄/(1−β)`` and ``z_t = γ/(1−β)·y_t``
  (with γ = 1 this is problem 3's momentum as an EMA of N·x, N = 1/(1−β));
* the EMA's stationary variance ``σ²/(2N − 1)`` against ``σ²/N`` for a block average of N values;
* problem 4: with the ``min(t, N)`` correction (``adam_min_t``, noise-free gradients) the running
  average equals the constant input from the first step, so ``|Δθ_t|/η = |c|/√(c² + ε) = 1``.

Runs: the y-run, the z-run sharing its random stream (same θ₀ and noise) with the y-run's rate
equal to γ/(1−β) — then both move θ identically and ``z_t = γy_t/(1−β)`` holds to rounding —
and an ``adam_min_t`` run with ``sampling = "full"``.
"""

from __future__ import annotations

import numpy as np

from ..record import RunAnalysis
from .common import FAILS, HOLDS, Z_MAX, ClaimResult, fmt, linear_form


def _slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope through the origin of per-chain y on x, with its SE."""
    b = float((x * y).sum() / (x * x).sum())
    resid = y - b * x
    return b, float(np.sqrt(resid.var(ddof=1) / (x * x).sum()))


def running_averages_claim(runs: list[RunAnalysis]) -> ClaimResult:
    """Limits, the z–y relation, EMA variance and the min(t, N) closed form."""
    by_kind = {r.spec.rule.kind: r for r in runs}
    y_run, z_run, a_run = by_kind.get("momentum"), by_kind.get("momentum_ng"), by_kind.get(
        "adam_min_t")
    rows, ok = [], []
    if y_run is not None:
        theta = np.asarray(y_run.posterior()["theta"].values)[:, :, 0]
        lr, beta = y_run.spec.rule.param("lr"), y_run.spec.rule.param("mu")
        form = linear_form(y_run)
        h, s2 = float(form.h_diag[0]), float(form.c_diag[0])  # C̄ = σ²/B
        y = -np.diff(theta, axis=1) / lr
        xbar = h * theta.mean(axis=1)  # θ drifts slightly: the mean gradient over the run
        slope, se = _slope(xbar, y.mean(axis=1))
        ok.append(abs(slope - 1) < Z_MAX * se)
        rows.append(["ȳ = x̄ (slope of per-chain means)", fmt(slope, se), "1"])
        n = 1 / (1 - beta)
        centred = y - y.mean(axis=1, keepdims=True)
        var = float(centred.var())
        var_se = float(centred.var(axis=1).std(ddof=1) / np.sqrt(len(centred)))
        ok.append(abs(var - s2 / (2 * n - 1)) < Z_MAX * var_se)
        rows.append([f"Var(EMA), N = {n:g}", fmt(var, var_se), f"σ²/(2N−1) = {s2 / (2 * n - 1):.4g}"
                     f" (block average of N: σ²/N = {s2 / n:.4g})"])
        if z_run is not None:
            th_z = np.asarray(z_run.posterior()["theta"].values)[:, :, 0]
            gamma = z_run.spec.rule.param("lr")
            z = -np.diff(th_z, axis=1)
            slope, se = _slope(h * th_z.mean(axis=1), z.mean(axis=1))
            pred = gamma / (1 - beta)
            ok.append(abs(slope - pred) < Z_MAX * se)
            rows.append(["z̄ = γx̄/(1−β)", fmt(slope, se), f"{pred:.4g}"])
            dev = float(np.abs(z * (1 - beta) / gamma - y).max() / y.std())
            ok.append(dev < 1e-3)
            rows.append(["z_t = γ/(1−β)·y_t (max |z(1−β)/γ − y| / sd y)", f"{dev:.2g}", "0"])
    if a_run is not None:
        th_a = np.asarray(a_run.posterior()["theta"].values)[:, :, 0]
        lr = a_run.spec.rule.param("lr")
        steps = np.abs(np.diff(th_a[:, :21], axis=1)) / lr
        dev = float(np.abs(steps - 1).max())
        ok.append(dev < 1e-3)
        rows.append(["min(t, N) correction: |Δθ_t|/η for t ≤ 20", f"max |· − 1| = {dev:.2g}",
                     "1 from the first step"])
    verdict = HOLDS if ok and all(ok) else FAILS
    return ClaimResult(
        "running_averages", "Running averages: EMA limits, z as a function of y, EMA variance, "
        "momentum as an EMA, min(t, N) bias correction", "002 (Problems 1–4)",
        "ȳ = x̄; z̄ = γx̄/(1−β); z_t = γy_t/(1−β); Var(EMA) = σ²/(2N−1) (≈ half the block "
        "average's σ²/N); min(t, N) averages are exact from t = 1",
        verdict, "Every identity holds within its standard error (or to rounding for the exact "
                 "ones)." if verdict == HOLDS else "Some identity is violated.",
        ["quantity", "measured", "predicted"], rows, {})
