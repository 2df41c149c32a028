"""Claim 6: loss units (docs/claims.md).

Scaling the loss by s (``1/ln 2`` turns nats into bits; 2 doubles it) scales gradients by s and
per-example standard deviations by s. A rule whose rate goes like ``σ^(−p)`` (SGD p = 0; RMSProp
with exact σ, ``preconditioned`` p = 1; η'/σ², p = 2) therefore moves θ by ``lr·s^(1−p)`` times a
unit-free step, so:

* runs with equal ``k = lr·s^(1−p)`` are the *same chain* (given the same random numbers): for
  SGD, bits need ``η' = η ln 2``; RMSProp with exact σ needs ``η' = η`` at any loss scale;
* otherwise, to first order the temperature measured in each run's own loss units scales as
  ``(s/s_ref)(k/k_ref)``.

Runs are paired by ``run.stream`` (common random numbers); the first run of a stream is the
reference.
"""

from __future__ import annotations

import numpy as np

from ..record import RunAnalysis
from .common import FAILS, HOLDS, Z_MAX, ClaimResult, fmt


def _power(run: RunAnalysis) -> int:
    r = run.spec.rule
    if r.kind == "preconditioned":
        return int(r.param("power"))
    return 1 if r.kind in ("rmsprop", "rmsprop_per_example") else 0


def _k(run: RunAnalysis) -> float:
    return run.spec.rule.param("lr") * run.spec.model.loss_scale ** (1 - _power(run))


def loss_units_claim(runs: list[RunAnalysis]) -> ClaimResult:
    """Identical chains where k matches; temperature ratios where it does not."""
    refs: dict[int, RunAnalysis] = {}
    rows, ok, numbers = [], [], []
    for run in runs:
        stream = run.spec.run.stream if run.spec.run.stream is not None else -1 - run.index
        if stream not in refs:
            refs[stream] = run
            continue
        ref = refs[stream]
        th = np.asarray(run.posterior()["theta"].values)
        th_ref = np.asarray(ref.posterior()["theta"].values)
        n = min(th.shape[1], th_ref.shape[1])
        diff = float(np.abs(th[:, :n] - th_ref[:, :n]).max() / th_ref[:, :n].std())
        same = bool(np.isclose(_k(run), _k(ref), rtol=1e-12))
        t, t_ref = run.temperatures, ref.temperatures
        ratio = float(t.virial.mean() / t_ref.virial.mean())
        ratio_se = ratio * float(np.hypot(np.sqrt((t.virial_se**2).sum()) / t.virial.sum(),
                                          np.sqrt((t_ref.virial_se**2).sum()) / t_ref.virial.sum()))
        s, s_ref = run.spec.model.loss_scale, ref.spec.model.loss_scale
        predicted = (s / s_ref) * (_k(run) / _k(ref))
        z = (ratio - predicted) / ratio_se
        ok.append((diff < 1e-8) if same else (diff > 1e-3 and abs(z) < Z_MAX))
        rows.append([run.label, f"{s:.4g}", f"{run.spec.rule.param('lr'):.4g}", ref.label,
                     "same chain" if same else "different chain", f"{diff:.2g}",
                     fmt(ratio, ratio_se), f"{predicted:.4g}", f"{z:+.1f}"])
        numbers.append({"run": run.index, "reference": ref.index, "same": same, "diff": diff,
                        "ratio": ratio, "ratio_se": ratio_se, "predicted": predicted})
    verdict = HOLDS if ok and all(ok) else FAILS
    return ClaimResult(
        "loss_units", "Loss units: nats versus bits, and RMSProp with exact σ and the loss "
        "doubled", "001 (Problems 5 and 8)",
        "bits need η' = η ln 2 (then the chain is unchanged); RMSProp with exact σ is "
        "invariant to the loss scale (η' = η), and η' = η/2 keeps the temperature in units of "
        "the doubled loss",
        verdict,
        "Paired runs with equal lr·s^(1−p) produce the same chain to rounding (max |Δθ|/sd "
        "column); the others differ, and their temperatures in their own loss units have the "
        "predicted ratios." if verdict == HOLDS else "Some paired run contradicts the scaling.",
        ["run", "loss scale s", "lr", "paired with", "prediction", "max |Δθ| / sd(θ)",
         "T / T_ref (own units)", "predicted ratio", "z"], rows, {"runs": numbers})
