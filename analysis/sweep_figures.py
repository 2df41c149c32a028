"""The sweep is the experiment: each swept variable against what it changes, with theory.

For a job whose runs differ in one swept key (``rule.lr``, ``run.batch_size``, ``rule.mu``,
or a whole ``rule`` table), three panels against that variable: the virial temperatures
``T_i`` (±2 SE) of the first coordinates; the ratio ``β_0/β_1 = T_1/T_0`` (±2 SE by the delta
method, ``SE² = r²((s_0/T_0)² + (s_1/T_1)²)``, coordinates taken independent); and the Gibbs
family-wise p-value on a log axis with the level α. Where a numeric variable's runs all have
exact theory, the theory is drawn as a curve: the stationary law recomputed at 40 values
between the smallest and largest swept value (``theory.stationary_theory`` on the run's spec
with that value); otherwise theory is marked at the swept points only.
"""

from __future__ import annotations

import copy
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from ..sampler.config import RunSpec
from .plots import to_png
from .record import RunAnalysis
from .theory import stationary_theory

SHOWN = 3  # coordinates whose temperatures are drawn
CURVE_POINTS = 40


def swept_keys(config: dict[str, Any]) -> list[str]:
    """The keys a job sweeps (grid and zip), in the config's order."""
    sweep = config.get("sweep") or {}
    return [*(sweep.get("grid") or {}), *(sweep.get("zip") or {})]


def _value(spec: RunSpec, key: str) -> Any:
    node: Any = spec.model_dump()
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _with(spec: RunSpec, key: str, value: Any) -> RunSpec:
    data = spec.model_dump()
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    return RunSpec.model_validate(copy.deepcopy(data))


def _theory_curve(run: RunAnalysis, key: str, xs: np.ndarray) -> np.ndarray | None:
    """Theory temperatures ``[len(xs), SHOWN]`` along ``key`` from one run's spec, or None."""
    out = []
    for x in xs:
        try:
            spec = _with(run.spec, key, int(round(x)) if key == "run.batch_size" else float(x))
            model = spec.model.build(spec.run.batch_size)
            theory = stationary_theory(model, spec.rule.build(spec.run.batch_size), spec.run)
        except (ValueError, TypeError):
            return None
        if theory is None:
            return None
        out.append(theory.temperature[:SHOWN])
    return np.asarray(out)


def sweep_figure(runs: list[RunAnalysis], key: str, alpha: float) -> str | None:
    """The three panels against ``key``; ``None`` with fewer than two analysed runs."""
    ok = [r for r in runs if r.ok and not r.partial]
    if len(ok) < 2:
        return None
    values = [_value(r.spec, key) for r in ok]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    x = np.asarray(values, dtype=float) if numeric else np.arange(len(ok), dtype=float)
    log_x = numeric and x.min() > 0 and x.max() / x.min() >= 8
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    temps = [r.temperatures for r in ok]
    n = min(SHOWN, min(len(t.virial) for t in temps))
    for i in range(n):
        t = np.array([tt.virial[i] for tt in temps])
        se = np.array([tt.virial_se[i] for tt in temps])
        axes[0].errorbar(x, t, yerr=2 * se, fmt="o", capsize=3, color=f"C{i}", label=f"T_{i}")
    curve = None
    if numeric and all(r.theory is not None for r in ok):
        xs = (np.geomspace if log_x else np.linspace)(x.min(), x.max(), CURVE_POINTS)
        curve = _theory_curve(ok[0], key, xs)
        if curve is not None:
            for i in range(n):
                axes[0].plot(xs, curve[:, i], "-", color=f"C{i}", lw=1, alpha=0.8)
    if curve is None:
        for i in range(n):
            th = [r.theory.temperature[i] if r.theory is not None else np.nan for r in ok]
            axes[0].scatter(x, th, marker="_", s=300, color=f"C{i}", zorder=3)
    axes[0].set_ylabel("T_i (virial ±2 SE; theory: line or bar)")
    axes[0].set_yscale("log")
    if n >= 2:
        t0 = np.array([tt.virial[0] for tt in temps])
        t1 = np.array([tt.virial[1] for tt in temps])
        s0 = np.array([tt.virial_se[0] for tt in temps])
        s1 = np.array([tt.virial_se[1] for tt in temps])
        ratio = t1 / t0
        axes[1].errorbar(x, ratio, yerr=2 * np.abs(ratio) * np.hypot(s0 / t0, s1 / t1),
                         fmt="o", capsize=3, color="k", label="measured")
        if curve is not None:
            axes[1].plot(xs, curve[:, 1] / curve[:, 0], "k-", lw=1, label="theory")
        axes[1].axhline(1.0, color="C2", ls=":", label="Gibbs (β equal)")
        axes[1].set_ylabel("β_0/β_1 = T_1/T_0")
        axes[1].legend(fontsize=7)
    p = np.array([max(r.gibbs.p_value, 1e-300) if np.isfinite(r.gibbs.p_value) else np.nan
                  for r in ok])
    axes[2].scatter(x, p, color="k")
    axes[2].axhline(alpha, color="C3", ls="--", label=f"α = {alpha}")
    axes[2].set_yscale("log")
    low = float(np.nanmin(np.append(p, alpha)))  # the 1e-300 floor plus autoscale margins
    axes[2].set_ylim(max(1e-300, 0.3 * low), 2.0)  # went subnormal and broke the log ticks
    axes[2].set_ylabel("Gibbs p (family-wise; 1e-300 is the floor)")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel(key)
        if log_x:
            ax.set_xscale("log")
            ax.minorticks_off()
        if numeric:  # ticks at the swept values only: no crowded log labels
            ax.set_xticks(x, [f"{v:g}" for v in x], fontsize=8)
        else:
            ax.set_xticks(x, [r.label for r in ok], rotation=20, fontsize=7, ha="right")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return to_png(fig)
