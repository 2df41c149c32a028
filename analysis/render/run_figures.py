"""A run's figures beside exact theory: pair plot with ellipses, ACF with ρ_k, ESS plots.

The pair plot shows covariance ellipses, the autocorrelation the theoretical ρ_k, and ArviZ's
local and quantile ESS. Each returns a base64 PNG, or ``None`` when the run cannot show it
(one coordinate, say); without theory the overlays are left out.

Ellipses are 2-SD contours ``{x : (x − m)ᵀ C⁻¹ (x − m) = 4}`` of the marginal of coordinates
0 and 1: measured ``C`` from the draws; theory's exact stationary covariance; and the Gibbs
prediction ``p ∝ exp(−L/T̄)``, whose marginal covariance for a quadratic loss is
``T̄·[H⁻¹]_{01 block}`` with ``T̄`` the mean of the exact per-coordinate temperatures (what a
Gibbs law with the same average temperature would do).

The theoretical autocorrelation at lag k (draws ``thin`` steps apart) is
``ρ_k(i) = [Aᵏᵗ Σ_z]_ii / Σ_ii`` for the joint (δ, buffer) recursion ``z' = A z + B ξ``.
"""

from __future__ import annotations

import warnings

import arviz as az
import matplotlib.pyplot as plt
import numpy as np

from ..record import RunAnalysis
from .plots import to_png

MAX_POINTS = 2000  # scatter points in the pair plot
ACF_LAGS = 40


def _ellipse(ax: plt.Axes, mean: np.ndarray, cov: np.ndarray, **style: object) -> None:
    """Draw the 2-SD contour of N(mean, cov) (2×2) on ``ax``."""
    vals, vecs = np.linalg.eigh(cov)
    t = np.linspace(0, 2 * np.pi, 200)
    circle = np.stack([np.cos(t), np.sin(t)])
    pts = mean[:, None] + vecs @ (2 * np.sqrt(np.maximum(vals, 0))[:, None] * circle)
    ax.plot(pts[0], pts[1], **style)  # type: ignore[arg-type]


def _draws(run: RunAnalysis, coords: list[int]) -> np.ndarray:
    """``[chains·draws, len(coords)]`` draws of the non-diverged chains."""
    theta = run.posterior()["theta"].isel(coord=coords).values[~run.diverged_chains()]
    return np.asarray(theta).reshape(-1, len(coords))


def _hessian_inverse_block(run: RunAnalysis) -> np.ndarray | None:
    """``[H⁻¹]`` restricted to coordinates 0 and 1 for a quadratic-gradient model, else None."""
    form = run.model.linear_gradient(run.spec.run.batch_size, run.spec.run.sampling)
    if form is None:
        return None
    if form.diagonal:
        return np.diag(1.0 / np.asarray(form.hessian)[:2])
    if run.model.dim > 512:
        return None
    h = np.asarray(form.dense().hessian)
    return np.linalg.inv(h)[:2, :2]


def pair_plot(run: RunAnalysis) -> str | None:
    """θ_0 against θ_1 with the measured, exact and Gibbs-predicted 2-SD ellipses."""
    if run.partial or run.model.dim < 2:
        return None
    xy = _draws(run, [0, 1])
    rng = np.random.default_rng(0)
    shown = xy[rng.choice(len(xy), size=min(MAX_POINTS, len(xy)), replace=False)]
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.scatter(shown[:, 0], shown[:, 1], s=3, alpha=0.3, color="0.45", label="draws")
    _ellipse(ax, xy.mean(0), np.cov(xy.T), color="C0", lw=1.5, label="measured")
    th = run.theory
    if th is not None:
        cov = th.cov[:2, :2] if th.cov.ndim == 2 else np.diag(th.cov[:2])
        _ellipse(ax, th.mean[:2], cov, color="k", lw=1.5, ls="--", label="exact theory")
        inv = _hessian_inverse_block(run)
        if inv is not None:
            t_bar = float(np.mean(th.temperature))
            _ellipse(ax, th.mean[:2], t_bar * inv, color="C3", lw=1.2, ls=":",
                     label=f"Gibbs, T = {t_bar:.3g}")
    ax.set_xlabel("θ[0]")
    ax.set_ylabel("θ[1]")
    ax.legend(fontsize=7, loc="best")
    ax.set_title("pair plot, 2-SD ellipses", fontsize=9)
    return to_png(fig)


def theory_acf(run: RunAnalysis, coord: int, lags: int = ACF_LAGS) -> np.ndarray | None:
    """The exact ρ_k of coordinate ``coord`` for k = 0 … lags at the run's thinning."""
    th = run.theory
    if th is None or th.lag_covariance(0) is None:
        return None
    diag = [th.lag_covariance(k * run.spec.run.thin) for k in range(lags + 1)]
    values = np.asarray([c[coord, coord] for c in diag if c is not None])
    return values / values[0]


def acf_plot(run: RunAnalysis, coords: int = 2) -> str | None:
    """ArviZ's autocorrelation of the first coordinates (chains combined) with the exact ρ_k."""
    if run.partial:
        return None
    n = min(coords, run.model.dim)
    post = run.posterior()[["theta"]].isel(coord=slice(0, n)).load()
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 2.8), squeeze=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(n):
            ax = axes[0, i]
            az.plot_autocorr(post.isel(coord=i), var_names=["theta"], combined=True,
                             max_lag=ACF_LAGS, ax=ax, show=False)
            rho = theory_acf(run, i)
            if rho is not None:
                ax.plot(np.arange(len(rho)), rho, "k--", lw=1.2, label="exact ρ_k")
                ax.legend(fontsize=7)
            ax.set_title(f"θ[{i}] autocorrelation (lag in draws)", fontsize=9)
    return to_png(fig)


def ess_plot(run: RunAnalysis) -> str | None:
    """ArviZ's local and quantile ESS of θ[0]."""
    if run.draws < 40:
        return None
    post = run.posterior()[["theta"]].isel(coord=0).load()
    fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ax, kind in zip(axes, ("local", "quantile"), strict=True):
            az.plot_ess(post, var_names=["theta"], kind=kind, ax=ax, show=False)
            ax.set_title(f"θ[0] {kind} ESS", fontsize=9)
    fig.tight_layout()
    return to_png(fig)
