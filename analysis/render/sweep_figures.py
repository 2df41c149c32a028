"""The sweep is the experiment: each swept variable against what it changes, with theory.

For each swept key (``rule.lr``, ``run.batch_size``, ``rule.mu``, or a whole ``rule`` table) up
to three panels against that variable, each its own image:

* the virial temperatures ``T_i`` (±2 SE) of the first coordinates, with exact theory;
* the ratio ``β_0/β_1 = T_1/T_0`` (±2 SE by the delta method,
  ``SE² = r²((s_0/T_0)² + (s_1/T_1)²)``, coordinates taken independent), only where the model
  has two coordinates or more;
* the Gibbs test's family-wise p-value as ``−log₁₀ p``, with the level α as a line; a p that
  underflowed (``p < 10⁻³⁰⁰``) is drawn at 300 as an upward triangle.

In a sweep of several keys, the runs are grouped by the values of the *other* keys: one series
per group, each with its own theory (the panel for ``run.batch_size`` of a rule × batch grid has
one series per rule). Where a numeric variable's runs all have exact theory, theory is a curve:
the stationary law recomputed at 40 values between the smallest and largest swept value
(``theory.stationary_theory`` on the group's spec with that value); otherwise a bar at each
swept point. Tick labels are the swept values (wrapped and, if they still collide, rotated).
"""

from __future__ import annotations

import copy
import textwrap
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from ...sampler.config import RunSpec
from ..record import RunAnalysis
from ..theory.linear import stationary_theory
from .plots import ticks_overlap, to_png

SHOWN = 3  # coordinates whose temperatures are drawn
CURVE_POINTS = 40
MARKERS = "os^"  # coordinate i's marker
P_FLOOR = 300.0  # −log₁₀ p drawn for p < 1e-300 (underflow)


def swept_keys(config: dict[str, Any]) -> list[str]:
    """The keys a job sweeps (grid and zip), in the config's order."""
    sweep = config.get("sweep") or {}
    return [*(sweep.get("grid") or {}), *(sweep.get("zip") or {})]


def label_parts(label: str, keys: list[str]) -> dict[str, str]:
    """``"run.batch_size=4, rule=sgd(lr=0.1)"`` → ``{"run.batch_size": "4", "rule": ...}``.

    A run's label joins ``key=value`` for each swept key with ``", "``; values may contain
    commas themselves (a rule table), so the label is cut only where a swept key starts.
    """
    starts = sorted((label.find(f"{k}=") if label.startswith(f"{k}=")
                     else label.find(f", {k}=") + 2, k) for k in keys
                    if label.startswith(f"{k}=") or f", {k}=" in label)
    out = {}
    for n, (at, key) in enumerate(starts):
        end = starts[n + 1][0] - 2 if n + 1 < len(starts) else len(label)
        out[key] = label[at + len(key) + 1:end]
    return out


def _with(spec: RunSpec, key: str, value: Any) -> RunSpec:
    data = spec.model_dump()
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    return RunSpec.model_validate(copy.deepcopy(data))


def _value(spec: RunSpec, key: str) -> Any:
    node: Any = spec.model_dump()
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _theory_curve(run: RunAnalysis, key: str, xs: np.ndarray, n: int) -> np.ndarray | None:
    """Theory temperatures ``[len(xs), n]`` along ``key`` from one run's spec, or None."""
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
        out.append(theory.temperature[:n])
    return np.asarray(out)


def _wrap(text: str, width: int = 16) -> str:
    """A level's name on short lines, e.g. ``rmsprop`` above ``(alpha=0.99)``."""
    if len(text) <= width:
        return text
    head, paren, rest = text.partition("(")
    lines = [head] if paren else []
    for part in ((paren + rest).split(", ") if paren else text.split(", ")):
        lines += textwrap.wrap(part, width) or [part]
    return "\n".join(lines)


class _Axis:
    """Where each run sits along the swept key: its value, or the index of its level."""

    def __init__(self, runs: list[RunAnalysis], key: str, keys: list[str]) -> None:
        self.key = key
        values = [_value(r.spec, key) for r in runs]
        self.numeric = all(isinstance(v, int | float) and not isinstance(v, bool)
                           for v in values)
        texts = [label_parts(r.label, keys).get(key, r.label) for r in runs]
        if self.numeric:
            self.x = np.asarray(values, dtype=float)
            self.ticks = sorted(set(self.x.tolist()))
            self.names = [f"{v:g}" for v in self.ticks]
        else:
            levels = list(dict.fromkeys(texts))
            self.x = np.asarray([levels.index(t) for t in texts], dtype=float)
            self.ticks = list(range(len(levels)))
            self.names = [_wrap(t) for t in levels]
        lo, hi = (min(self.ticks), max(self.ticks)) if self.ticks else (0, 0)
        self.log = self.numeric and lo > 0 and hi / lo >= 8

    def style(self, ax: plt.Axes) -> None:
        """Log scale where the values span 8× or more; ticks at the swept values only."""
        ax.set_xlabel(self.key)
        if self.log:
            ax.set_xscale("log")
            ax.minorticks_off()
        ax.set_xticks(self.ticks, self.names, fontsize=7)
        ax.set_xlim(min(self.ticks) - (0 if self.numeric else 0.5),
                    max(self.ticks) + (0 if self.numeric else 0.5))
        if self.numeric and len(self.ticks) > 1 and not self.log:
            pad = 0.05 * (max(self.ticks) - min(self.ticks))
            ax.set_xlim(min(self.ticks) - pad, max(self.ticks) + pad)
        elif self.log:
            ax.set_xlim(min(self.ticks) / 1.15, max(self.ticks) * 1.15)


def _groups(runs: list[RunAnalysis], key: str,
            keys: list[str]) -> list[tuple[str, list[RunAnalysis]]]:
    """Runs grouped by the values of the other swept keys (one group when there are none)."""
    out: dict[str, list[RunAnalysis]] = {}
    for r in runs:
        parts = label_parts(r.label, keys)
        out.setdefault(", ".join(f"{k}={parts.get(k, '?')}" for k in keys if k != key),
                       []).append(r)
    return list(out.items())


def sweep_panels(runs: list[RunAnalysis], key: str, keys: list[str],
                 alpha: float) -> list[tuple[str, plt.Figure]]:
    """The panels against ``key`` as ``(what, figure)``; none with fewer than two runs."""
    ok = [r for r in runs if r.ok and not r.partial]
    if len(ok) < 2:
        return []
    axis = _Axis(ok, key, keys)
    groups = _groups(ok, key, keys)
    where = {id(r): x for r, x in zip(ok, axis.x, strict=True)}
    n = min(SHOWN, min(len(r.temperatures.virial) for r in ok))
    panels = [("temperatures", _temperature_panel(groups, where, axis, n))]
    if n >= 2:
        panels.append(("beta ratio", _ratio_panel(groups, where, axis)))
    panels.append(("Gibbs p", _p_panel(groups, where, axis, alpha)))
    return panels


def _figure(axis: _Axis) -> tuple[plt.Figure, plt.Axes]:
    width = 4.6 if axis.numeric else max(4.6, 1.1 * len(axis.ticks) + 1.5)
    return plt.subplots(figsize=(width, 3.6))


def _finish(fig: plt.Figure, ax: plt.Axes, axis: _Axis, groups: int) -> plt.Figure:
    axis.style(ax)
    if groups > 1 or ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    if ticks_overlap(fig, ax):
        plt.setp(ax.get_xticklabels(), rotation=35, ha="right")
        fig.tight_layout()
    return fig


def _series(groups: list[tuple[str, list[RunAnalysis]]], where: dict[int, float], g: int
            ) -> tuple[str, list[RunAnalysis], np.ndarray]:
    name, members = groups[g]
    members = sorted(members, key=lambda r: where[id(r)])
    return name, members, np.array([where[id(r)] for r in members])


def _temperature_panel(groups: list[tuple[str, list[RunAnalysis]]], where: dict[int, float],
                       axis: _Axis, n: int) -> plt.Figure:
    fig, ax = _figure(axis)
    for g in range(len(groups)):
        name, members, x = _series(groups, where, g)
        colour = f"C{g}" if len(groups) > 1 else None
        for i in range(n):
            c = colour or f"C{i}"
            t = np.array([r.temperatures.virial[i] for r in members])
            se = np.array([r.temperatures.virial_se[i] for r in members])
            label = f"T_{i}" if len(groups) == 1 else (name if i == 0 else None)
            ax.errorbar(x, t, yerr=2 * se, fmt=MARKERS[i], capsize=3, color=c, label=label)
        curve = None
        if axis.numeric and all(r.theory is not None for r in members):
            xs = (np.arange(x.min(), x.max() + 1) if axis.key == "run.batch_size" else
                  (np.geomspace if axis.log else np.linspace)(x.min(), x.max(), CURVE_POINTS))
            curve = _theory_curve(members[0], axis.key, xs, n) if len(x) > 1 else None
            if curve is not None:
                for i in range(n):
                    ax.plot(xs, curve[:, i], "-" if len(xs) > 12 else ".-", ms=3,
                            color=colour or f"C{i}", lw=1, alpha=0.8)
        if curve is None:
            for i in range(n):
                th = [r.theory.temperature[i] if r.theory is not None else np.nan
                      for r in members]
                ax.scatter(x, th, marker="_", s=300, color=colour or f"C{i}", zorder=3)
    marks = "" if len(groups) == 1 else "; " + ", ".join(
        f"{m} T_{i}" for i, m in zip(range(n), MARKERS, strict=False))
    ax.set_ylabel(f"T_i (virial ±2 SE; theory: line or bar{marks})", fontsize=8)
    ax.set_yscale("log")
    return _finish(fig, ax, axis, len(groups))


def _ratio_panel(groups: list[tuple[str, list[RunAnalysis]]], where: dict[int, float],
                 axis: _Axis) -> plt.Figure:
    fig, ax = _figure(axis)
    for g in range(len(groups)):
        name, members, x = _series(groups, where, g)
        t0, t1, s0, s1 = (np.array([getattr(r.temperatures, a)[i] for r in members])
                          for a, i in (("virial", 0), ("virial", 1), ("virial_se", 0),
                                       ("virial_se", 1)))
        ratio = t1 / t0
        colour = f"C{g}" if len(groups) > 1 else "k"
        ax.errorbar(x, ratio, yerr=2 * np.abs(ratio) * np.hypot(s0 / t0, s1 / t1), fmt="o",
                    capsize=3, color=colour, label=name if len(groups) > 1 else "measured")
        th = [r.theory.temperature[1] / r.theory.temperature[0] if r.theory is not None
              else np.nan for r in members]
        ax.scatter(x, th, marker="_", s=300, color=colour, zorder=3)
    ax.axhline(1.0, color="C2", ls=":", label="Gibbs (β equal)")
    ax.set_ylabel("β_0/β_1 = T_1/T_0 (theory: bar)", fontsize=8)
    return _finish(fig, ax, axis, len(groups))


def _p_panel(groups: list[tuple[str, list[RunAnalysis]]], where: dict[int, float],
             axis: _Axis, alpha: float) -> plt.Figure:
    fig, ax = _figure(axis)
    for g in range(len(groups)):
        name, members, x = _series(groups, where, g)
        p = np.array([r.gibbs.p_value for r in members], dtype=float)
        with np.errstate(divide="ignore"):
            y = -np.log10(p)
        colour = f"C{g}" if len(groups) > 1 else "k"
        under = np.isfinite(p) & (p < 10**-P_FLOOR)
        shown = np.isfinite(y) & ~under
        ax.scatter(x[shown], y[shown], color=colour, label=name if len(groups) > 1 else None)
        if under.any():
            ax.scatter(x[under], np.full(under.sum(), P_FLOOR), marker="^", color=colour,
                       label="p < 1e-300" if g == 0 else None)
        missing = ~np.isfinite(p)
        if missing.any():
            ax.scatter(x[missing], np.zeros(missing.sum()), marker="x", color=colour,
                       label="no p-value" if g == 0 else None)
        undecided = [r.gibbs.verdict == "undecided" for r in members]
        for xi, yi, u in zip(x, np.where(under, P_FLOOR, y), undecided, strict=True):
            if u and np.isfinite(yi):
                ax.annotate("undecided", (xi, yi), fontsize=6, xytext=(3, 3),
                            textcoords="offset points")
    ax.axhline(-np.log10(alpha), color="C3", ls="--", label=f"α = {alpha}")
    ps = np.array([r.gibbs.p_value for _, m in groups for r in m], dtype=float)
    ps = ps[np.isfinite(ps)]
    top = max(float((-np.log10(np.clip(ps, 10**-P_FLOOR, 1.0))).max(initial=0.0)),
              float(-np.log10(alpha)))
    ax.set_ylim(0, 1.1 * top + 0.5)
    ax.set_ylabel("−log₁₀ Gibbs p (family-wise)", fontsize=8)
    return _finish(fig, ax, axis, len(groups))


def sweep_images(runs: list[RunAnalysis], key: str, keys: list[str],
                 alpha: float) -> list[tuple[str, str]]:
    """``sweep_panels`` encoded: ``(what, base64 PNG)`` per panel."""
    return [(what, to_png(fig)) for what, fig in sweep_panels(runs, key, keys, alpha)]
