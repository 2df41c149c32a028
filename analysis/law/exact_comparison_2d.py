"""A 2-D run measured against its exact finite-η density (``theory.two_d``).

For SGD at a constant rate with B = 1 and i.i.d. indices on a 2-D GLM (``linear_regression`` or
``logistic_regression`` with d = 2) small enough for the operator (examples × iterations ≤
``WORK_2D``): the goodness-of-fit test of the draws on a 3 × 3 grid of
bins at the exact marginal tertiles (``gof.gof_binned``, 8 degrees of freedom), measured mean
and covariance against exact, and the stationary-mean bias measured, exact and at leading
order ``−½H⁻¹∇³L(θ*)[Σ]`` with Σ the linearised covariance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...sampler.models import Model
from ...sampler.rules import UpdateRule
from ..diagnostics.estimators import mean_and_se
from ..theory.one_d import iterations
from ..theory.two_d import (
    exact_law_2d,
    glm_curvature,
    linear_covariance,
    newton_optimum,
    quantile_bins,
)
from .exact_comparison import constant_sgd_rate
from .gof import gof_binned, gof_words

WORK_2D = 20_000  # examples × iterations of the 2-D operator (each a G² spline pass: ~10 s)


def exact_comparison_2d(theta: np.ndarray, model: Model, rule: UpdateRule, batch_size: int,
                        sampling: str, start: Callable[[], np.ndarray]) -> dict[str, Any] | None:
    """The comparison for draws ``theta [C, n, 2]`` (``None`` where no exact law applies).

    ``start``: where Newton's method starts (called only when the law applies).
    """
    parts = model.glm_parts()
    lr = constant_sgd_rate(rule, model.dim)
    if (parts is None or lr is None or model.dim != 2 or batch_size != 1 or sampling != "iid"
            or theta.shape[1] < 8):
        return None
    theta_star = newton_optimum(parts, start())
    _, h, third, c = glm_curvature(parts, theta_star)
    if len(parts[1]) * iterations(lr, float(np.linalg.eigvalsh(h).min()), 1e-11) > WORK_2D:
        return None  # a large dataset at a small rate: the operator would take minutes
    cov = linear_covariance(h, c, lr)
    law = exact_law_2d(parts, lr, theta_star, cov)
    if law is None:
        return None
    edges, expected = quantile_bins(law)
    index = (3 * np.searchsorted(edges[0], theta[..., 0], side="left")
             + np.searchsorted(edges[1], theta[..., 1], side="left"))
    gof = gof_binned(index, expected)
    gx, gy = law.axes
    w = law.density * (gx[1] - gx[0]) * (gy[1] - gy[0])
    w = w / w.sum()
    exact_mean = np.array([(w.sum(1) * gx).sum(), (w.sum(0) * gy).sum()])
    mean, mean_se = mean_and_se(theta)
    leading = -0.5 * np.linalg.solve(h, np.einsum("ijk,jk->i", third, cov))
    return {"lr": lr, "theta_star": theta_star.tolist(), "dim": 2,
            "exact_mean": exact_mean.tolist(), "measured_mean": mean.tolist(),
            "mean_se": mean_se.tolist(),
            "bias": {"exact": (exact_mean - theta_star).tolist(),
                     "leading_order": leading.tolist(),
                     "measured": (mean - theta_star).tolist()},
            "gof": gof.as_dict()}


def exact_sentence_2d(e: dict[str, Any]) -> str:
    """One sentence: the fit to the exact 2-D law and the bias against it."""
    g, b = e["gof"], e["bias"]
    z = (np.array(e["measured_mean"]) - np.array(e["exact_mean"])) / np.array(e["mean_se"])
    vec = lambda v: "(" + ", ".join(f"{x:.3g}" for x in v) + ")"  # noqa: E731
    return (f"Exact finite-η law (2-D, η = {e['lr']:g}, B = 1, transfer operator): "
            f"{gof_words(g, 'on 3 × 3 tertile bins ')}; bias E[θ] − θ* measured "
            f"{vec(b['measured'])} (z vs exact {vec(z)}), exact {vec(b['exact'])}, leading "
            f"order {vec(b['leading_order'])}.")
