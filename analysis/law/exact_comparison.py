"""A 1-D run measured against its exact finite-η law (``theory.one_d``), beyond quadratics.

For SGD at a constant rate with B = 1 and i.i.d. indices on a 1-D dataset model (``mean``,
``linear_regression`` or ``logistic_regression`` with one feature) small enough that the
operator converges in seconds (examples × iterations ≤ ``WORK_1D``): the exact stationary CDF,
the goodness-of-fit test of the draws against it (``gof``), measured against exact mean,
variance and skewness, the stationary-mean bias ``E[θ] − θ*`` measured, exact and at leading
order (``Linearised1D.mean_bias``), and the exact law's sup distance from the Gaussian with its
own mean and variance — the Gibbs law of a quadratic — beside the Gibbs test's shape verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.special

from ...sampler.models import Model
from ...sampler.rules import UpdateRule
from ..diagnostics.estimators import mean_and_se
from ..theory.one_d import (
    WORK_1D,
    DiscreteLaw1D,
    ExactLaw1D,
    Linearised1D,
    discrete_law_1d,
    exact_law_1d,
    iterations,
    linearise_1d,
)
from .gof import BINS, GofResult, gof_binned, gof_test, gof_words, merge_groups


@dataclass
class ExactComparison:
    """Measured against the exact law of one run."""

    law: ExactLaw1D
    linear: Linearised1D
    lr: float
    gof: GofResult
    mean: tuple[float, float]  # measured E θ, its SE
    variance: tuple[float, float]
    gaussian_distance: float  # sup |F_exact − Φ((x − m)/s)|
    method: str = "transfer operator"  # or "discrete: every map is constant"

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``theory.one_d`` in ``sgdthermo analyze --json``)."""
        m, v, skew = self.law.moments()
        return {"lr": self.lr, "theta_star": self.law.theta_star, "method": self.method,
                "exact": {"mean": m, "variance": v, "skewness": skew},
                "measured": {"mean": self.mean[0], "mean_se": self.mean[1],
                             "variance": self.variance[0], "variance_se": self.variance[1]},
                "bias": {"exact": m - self.law.theta_star,
                         "leading_order": self.linear.mean_bias(self.lr),
                         "measured": self.mean[0] - self.law.theta_star},
                "gof": self.gof.as_dict(),
                "gaussian_distance": self.gaussian_distance,
                "grid_error": self.law.grid_error, "tail_mass": self.law.tail_mass}


def constant_sgd_rate(rule: UpdateRule, dim: int) -> float | None:
    """η when the rule is constant-rate SGD (one rate, no momentum, nothing injected), else None."""
    if rule.linear_form is None or not rule.stationary:
        return None
    hb = rule.linear_form(np.ones(dim), np.ones(dim), True)
    if not hb.exact or hb.mu != 0 or hb.dampening != 0 or hb.injected or hb.rates.ndim != 1:
        return None
    return float(hb.rates[0]) if np.all(hb.rates == hb.rates[0]) else None


def applies(model: Model, rule: UpdateRule, batch_size: int, sampling: str) -> float | None:
    """The constant rate η when the exact 1-D law applies to this run, else ``None``."""
    if model.dim != 1 or model.dataset() is None or batch_size != 1 or sampling != "iid":
        return None
    return constant_sgd_rate(rule, 1)


def exact_comparison(theta: np.ndarray, model: Model, rule: UpdateRule, batch_size: int,
                     sampling: str, theta_star: float) -> ExactComparison | None:
    """The comparison for draws ``theta [C, n]`` of a 1-D run (``None`` where no law applies)."""
    lr = applies(model, rule, batch_size, sampling)
    if lr is None or theta.shape[1] < 8:
        return None
    linear = linearise_1d(model, theta_star)
    discrete = discrete_law_1d(model, lr)
    if discrete is not None:
        return _discrete_comparison(theta, discrete, linear, lr, theta_star)
    n = len(model.dataset()[1])
    if n * iterations(lr, linear.h, 1e-13) > WORK_1D:
        return None  # a large dataset at a small rate: the operator would take minutes
    law = exact_law_1d(model, lr, theta_star, linear.variance(lr))
    if law is None:
        return None
    return _measured(theta, law, linear, lr, gof_test(theta, law.cdf_at, law.quantile))


def _measured(theta: np.ndarray, law: ExactLaw1D, linear: Linearised1D, lr: float,
              gof: GofResult, method: str = "transfer operator") -> ExactComparison:
    """The draws' mean and variance (τ-sized SEs) and the law's Gaussian distance beside it."""
    m, v, _ = law.moments()
    mean, mean_se = mean_and_se(theta[..., None])
    var, var_se = mean_and_se(((theta - m) ** 2)[..., None])
    gauss = float(np.abs(law.cdf - scipy.special.ndtr((law.grid - m) / np.sqrt(v))).max())
    return ExactComparison(law, linear, lr, gof, (float(mean[0]), float(mean_se[0])),
                           (float(var[0]), float(var_se[0])), gauss, method)


def _discrete_comparison(theta: np.ndarray, discrete: DiscreteLaw1D, linear: Linearised1D,
                         lr: float, theta_star: float) -> ExactComparison:
    """Against a discrete exact law (``exact_law.discrete_law_1d``).

    Each draw is assigned the atom it lies on (``DiscreteLaw1D.atom_of``); atoms are grouped
    into at most ``gof.BINS`` bins of consecutive atoms by cumulative mass, and a draw on no
    atom lies in no bin, which the test rejects with certainty. The CDF is kept as steps of
    width ``tol`` at the atoms (for the moments and the Gaussian distance).
    """
    atoms, masses = discrete.atoms, discrete.masses
    cdf = np.cumsum(masses)
    grid = np.ravel(np.column_stack([atoms - discrete.tol / 4, atoms]))
    steps = np.ravel(np.column_stack([cdf - masses, cdf]))
    law = ExactLaw1D(grid, steps, 0.0, 0.0, theta_star)
    groups = merge_groups(masses, BINS)  # runs of consecutive atoms
    assert groups is not None  # BINS ≥ 2
    bin_of = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    on = discrete.atom_of(theta)
    index = np.where(on >= 0, bin_of[on], -1)
    expected = np.array([masses[g].sum() for g in groups])
    return _measured(theta, law, linear, lr, gof_binned(index, expected),
                     "discrete: every map is constant, mass 1/N at each T_i")


def exact_sentence(e: dict[str, Any], shape: str | None = None) -> str:
    """One sentence: the fit to the exact law, the moments and the bias against it."""
    ex, me, b, g = e["exact"], e["measured"], e["bias"], e["gof"]
    z_mean = (me["mean"] - ex["mean"]) / me["mean_se"]
    z_var = (me["variance"] - ex["variance"]) / me["variance_se"]
    text = (f"Exact finite-η law (η = {e['lr']:g}, B = 1, {e['method']}; grid error "
            f"{e['grid_error']:.1g}): {gof_words(g)}; mean {me['mean']:.6g} ± {me['mean_se']:.2g} "
            f"(exact {ex['mean']:.6g}, z {z_mean:+.1f}), variance {me['variance']:.4g} ± "
            f"{me['variance_se']:.2g} (exact {ex['variance']:.4g}, z {z_var:+.1f}), exact "
            f"skewness {ex['skewness']:.3g}; bias E[θ] − θ* measured {b['measured']:.3g}, exact "
            f"{b['exact']:.3g}, leading order {b['leading_order']:.3g}; the exact law is "
            f"{e['gaussian_distance']:.2g} (sup |ΔF|) from the Gaussian (a quadratic's Gibbs law)")
    return text + (f", and the Gibbs test's shape component says: {shape}." if shape else ".")


def shape_words(gibbs: dict[str, Any]) -> str | None:
    """The Gibbs test's shape component in words, from its JSON record (``None``: absent)."""
    for c in gibbs.get("components", []):
        if c.get("name") == "shape":
            if c.get("status") != "ok":
                return "undecided"
            p = c.get("p_value")
            rejects = p is not None and p < gibbs.get("alpha", 0.01)
            return f"{'not ' if rejects else ''}Gibbs shape (p = {p:.3g})"
    return None
