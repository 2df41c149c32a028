"""Figures for the report, returned as base64 PNG strings (matplotlib, Agg backend)."""

from __future__ import annotations

import base64
import io
import warnings

import matplotlib

matplotlib.use("Agg")
import arviz as az  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..reader import RunData  # noqa: E402


def to_png(fig: plt.Figure) -> str:
    """Encode and close a figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def ticks_overlap(fig: plt.Figure, ax: plt.Axes) -> bool:
    """Whether any two of ``ax``'s x tick labels overlap as drawn (their text boxes intersect)."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels()
             if t.get_visible() and t.get_text()]
    return any(a.overlaps(b) for n, a in enumerate(boxes) for b in boxes[n + 1:])


def trace_and_rank(run: RunData, coords: int = 3) -> str:
    """ArviZ trace and rank plots of the first few coordinates of θ."""
    post = run.posterior().isel(coord=slice(0, coords)).load()
    n = post.sizes["coord"]
    fig, axes = plt.subplots(n, 3, figsize=(12, 2.2 * n), squeeze=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(n):
            sub = post.isel(coord=i)
            az.plot_trace(sub, var_names=["theta"], axes=axes[i:i + 1, :2],  # type: ignore[arg-type]
                          compact=False, show=False)  # ArviZ converts the Dataset itself
            # bars of 16 chains overlap into noise; vertical lines stay readable
            az.plot_rank(sub, var_names=["theta"], ax=axes[i, 2], show=False,
                         kind="vlines" if post.sizes["chain"] > 8 else "bars")
            for ax, what in zip(axes[i], ("density", "trace", "rank"), strict=True):
                ax.set_title(f"θ[{i}] {what}", fontsize=9)
    fig.tight_layout()
    return to_png(fig)


def temperature_bars(record: dict, max_coords: int = 32) -> str:
    """Per-coordinate temperatures: virial and fluctuation with ±2 SE, theory as markers.

    On a log axis when every estimate is positive.
    """
    tp, th = record["temperature"], record.get("theory")
    d = min(len(tp["virial"]), max_coords)
    x = np.arange(d)
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * d + 3), 3))
    ax.errorbar(x - 0.12, tp["virial"][:d], yerr=2 * np.asarray(tp["virial_se"][:d]), fmt="o",
                label="virial ±2 SE", capsize=3)
    ax.errorbar(x + 0.12, tp["fluctuation"][:d], yerr=2 * np.asarray(tp["fluctuation_se"][:d]),
                fmt="s", label="fluctuation ±2 SE", capsize=3)
    if th:
        ax.scatter(x, th["temperature"][:d], marker="_", s=400, color="k", label="theory",
                   zorder=3)
    ax.set_xlabel("coordinate i")
    ax.set_ylabel("T_i (log axis)")
    values = np.concatenate([np.asarray(tp["virial"][:d]), np.asarray(tp["fluctuation"][:d])])
    if np.all(values > 0):  # a 9× spread keeps both ends' error bars visible
        ax.set_yscale("log")
    ax.set_xticks(x)
    ax.legend(fontsize=8)
    ax.set_title(f"run {record['run']}: {record['label']}", fontsize=9)
    return to_png(fig)
