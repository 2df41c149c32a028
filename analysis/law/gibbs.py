"""The Gibbs test: is the stationary law ``p ∝ exp(−L/T)``? Three components, one verdict.

A Gibbs law satisfies Stein's identity ``E[T f'(θ_i) − f(θ_i) ∂_iL] = 0`` for every coordinate i
and smooth f (integration by parts; docs/theory.md identity O12). With ``f(θ) = θ_j − c_j`` this is
``E[(θ_j − c_j)∂_iL] = T δ_ij``. The test checks three consequences, each on batch means of
per-draw terms (batches of at least 10 τ draws, so that batch means are nearly independent):

1. *Equal temperatures*: ``T_i = E[(θ_i − c_i)∂_iL]`` equal for all i. Statistic
   ``Q = Σ_i (T̂_i − T̄_w)²/se_i²`` (``T̄_w`` the inverse-variance weighted mean), referred to a
   scaled χ² matched to the first two moments of ``Q`` under the estimated correlation of the
   ``T̂_i``, or beyond 64 coordinates ``max_i |z_i|`` with Bonferroni
   (``analysis.contrast_tests``). O(D) work per draw, any D.
2. *No coupling*: ``E[(θ_i − c_i)∂_jL] = 0`` for i ≠ j, on ``q ≤ 8`` directions (the coordinates
   when D ≤ 8, else the 4 leading principal directions of the draws and 4 random ones, all
   orthonormal: ``U V Uᵀ = T·I_q`` under Gibbs). Hotelling's T² on the informative contrasts only:
   for a quadratic loss ``V H⁻¹`` is symmetric draw by draw, so part of the off-diagonal terms is
   an exact linear function of the others; the contrasts are projected on the eigenvectors of
   their sample covariance with eigenvalues above ``1e-9`` of the largest (the covariance rank
   ``r``) and referred to ``F(r, n − r)``. Never a D×D matrix per batch.
3. *Shape*: per coordinate, Stein's identity ``E[T f'(u) − f(u)∂_iL] = 0`` (``u = θ_i − c_i``)
   for an even and an odd test function, ``f = e`` and ``f = u·e`` with the Gaussian weight
   ``e(u) = exp(−u²/(4s_i²))``. Polynomials (``u²``, ``u³``) are the textbook choice but give
   heavy-tailed terms (``u³∂L`` grows like ``u⁴``) whose batch-means t-statistics have tails far
   heavier than Student's at the levels a test over many coordinates needs; the weighted ones
   are bounded. A Gaussian marginal (quadratic L) passes at any temperature; a skewed or
   heavy-tailed law fails. This is what makes a 1-D verdict meaningful.

Multiplicity: Bonferroni over the m applicable components. The family p-value is
``min(1, m·min_j p_j)`` and the verdict is "not Gibbs" when it is below α (family-wise error ≤ α
for any dependence between the components); otherwise "undecided" if a component lacks
effective draws (with the reason), else "Gibbs".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..diagnostics.estimators import batch_means, batches_for, integrated_time
from .contrast_tests import Means, contrast_test, hotelling

ALPHA = 0.01
MIN_BATCHES = 20  # batch means needed for any component
MAX_DIRECTIONS = 8
COMPONENTS = ("equal temperatures", "no coupling", "shape")


@dataclass
class Component:
    """One component of the Gibbs test."""

    name: str  # "equal temperatures", "no coupling" or "shape"
    status: str  # "ok", "undecided" (with reason) or "not applicable"
    statistic: float = float("nan")
    df: list[float] = field(default_factory=list)
    p_value: float = float("nan")
    reason: str = ""
    statistic_kind: str = ""  # "Q" (χ²_ν), "max|z|" (t_ν, Bonferroni), "T²", "certain" (p = 0)


@dataclass
class GibbsResult:
    """Outcome of the Gibbs test for one run."""

    verdict: str  # "Gibbs", "not Gibbs" or "undecided"
    p_value: float  # family-wise (Bonferroni) p-value over the applicable components
    alpha: float
    reason: str
    components: list[Component]
    temperature_ratio: float  # max T_i / min T_i
    max_offdiag: float  # max |V_ij| / mean T over the tested off-diagonal terms
    batches: int  # batch means the components were computed from

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


def p_equals(p: float | None, digits: int = 3) -> str:
    """``p = 0.05``, or ``p < 1e-300`` where it underflowed (never ``p = < 1e-300``)."""
    text = format_p(p, digits)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def format_p(p: float | None, digits: int = 3) -> str:
    """A p-value for people: ``< 1e-300`` where it underflowed to 0, never ``0``; ``–`` if none."""
    if p is None or not np.isfinite(p):
        return "–"
    return "< 1e-300" if p < 1e-300 else f"{p:.{digits}g}"


def directions(centred: np.ndarray, seed: int = 0, k: int = MAX_DIRECTIONS) -> np.ndarray | None:
    """Orthonormal test directions ``[k, D]`` for D > k: 4 leading principal directions + random.

    Principal directions come from a randomised range finder on (at most 4096) draws, O(n·D·k).
    """
    d = centred.shape[-1]
    if d <= k:
        return None
    rng = np.random.default_rng(seed)
    rows = centred.reshape(-1, d)
    rows = rows[rng.choice(len(rows), size=min(len(rows), 4096), replace=False)]
    sketch = rows.T @ (rows @ rng.standard_normal((d, k)))  # power iteration once: [D, k]
    lead = np.linalg.qr(sketch)[0][:, : k // 2]
    rand = rng.standard_normal((d, k - k // 2))
    rand -= lead @ (lead.T @ rand)
    return np.linalg.qr(np.concatenate([lead, rand], axis=1))[0].T


def shape_terms(u: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Per-draw Stein terms ``[C, n, 2D]`` for the even and odd test functions, with influence.

    ``f_e(u) = e(u)``, ``f_o(u) = u·e(u)``, ``e(u) = exp(−u²/(4s²))`` with ``s²`` the sample
    variance of the coordinate. Each term is ``T̂f'(u) − f(u)g + E[f'](ug − T̂) + E[f]g`` with
    ``u = θ − θ̄`` and ``g = ∇L − ∇L̄``: the mean of the first two parts is Stein's identity; the
    last two have zero sample mean and carry the influence of the estimated temperature and of
    centring the gradient (the identity holds for every centre and every s, so those have none).
    """
    t_hat = (u * g).mean(axis=(0, 1))
    s2 = (u**2).mean(axis=(0, 1))
    e = np.exp(-(u**2) / (4 * s2))
    out = []
    for f, df in ((e, -u / (2 * s2) * e), (u * e, (1 - u**2 / (2 * s2)) * e)):
        out.append(t_hat * df - f * g + df.mean(axis=(0, 1)) * (u * g - t_hat)
                   + f.mean(axis=(0, 1)) * g)
    return np.concatenate(out, axis=-1)


def _offdiag(a: np.ndarray, b: np.ndarray, n_batches: int) -> np.ndarray:
    q = a.shape[-1]
    mask = ~np.eye(q, dtype=bool)
    return batch_means(np.einsum("cni,cnj->cnij", a, b)[..., mask], n_batches)


def gibbs_test_arrays(centred: np.ndarray, grads: np.ndarray, tau: float | None = None,
                      alpha: float = ALPHA, seed: int = 0) -> GibbsResult:
    """The three-component Gibbs test on draws ``centred [C, n, D]`` (θ − θ̄) and ``∇L [C, n, D]``.

    Args:
        centred: Draws minus their mean over chains and draws.
        grads: Full-batch gradients at the draws.
        tau: Largest integrated time of θ in draws (estimated when ``None``).
        alpha: Family-wise level.
        seed: Seed of the random test directions (large D).
    """
    frozen = ((centred.max(axis=(0, 1)) == centred.min(axis=(0, 1)))  # θ_i never moves, or
              | (np.einsum("cnd,cnd->d", centred, centred) == 0))  # less than float64 squares
    if frozen.any():
        return _with_frozen(centred, grads, frozen, tau, alpha, seed)
    c, n, d = centred.shape
    tau = float(np.max(integrated_time(centred))) if tau is None else tau
    # E[∇L] = 0 (O1) and Σ(θ − θ̄) = 0, so centring the gradients leaves every mean below
    # unchanged; it removes terms linear in θ whose sample mean is exactly zero (they would
    # count as informative contrasts and cost degrees of freedom).
    g_mean = grads.mean(axis=(0, 1))
    nb = batches_for(tau, n)
    n_total = c * nb
    virial, shape = _summaries(centred, grads, g_mean, nb)
    temps = virial.mean
    comps: list[Component] = []
    few = (f"too few effective draws: τ = {tau:.3g} draws against {n} per chain gives "
           f"{n_total} batch means of ≥ 10τ (need {MIN_BATCHES})")
    if d == 1:
        comps.append(Component("equal temperatures", "not applicable", reason="one coordinate"))
    elif n_total < MIN_BATCHES:
        comps.append(Component("equal temperatures", "undecided", reason=few))
    else:
        kind, q, nu, p = contrast_test(virial, nb, contrast_mean=True)
        comps.append(_tested("equal temperatures", q, [nu], p, kind))
    max_off = 0.0
    if d == 1:
        comps.append(Component("no coupling", "not applicable", reason="one coordinate"))
    else:
        u = directions(centred, seed)
        a, b = ((centred, grads - g_mean) if u is None else
                (centred @ u.T, grads @ u.T - g_mean @ u.T))
        off = _offdiag(a, b, nb)
        max_off = float(np.abs(off.mean(axis=0)).max() / abs(temps.mean()))
        t2, r, dof2, p = hotelling(off)
        if n_total < MIN_BATCHES or dof2 < 10:
            comps.append(Component("no coupling", "undecided", reason=(
                few if n_total < MIN_BATCHES else
                f"too few effective draws: {n_total} batch means for {r} contrasts")))
        else:
            comps.append(_tested("no coupling", t2, [r, dof2], p, "T²"))
    if n_total < MIN_BATCHES:
        comps.append(Component("shape", "undecided", reason=few))
    else:
        kind, q, nu, p = contrast_test(shape, nb, contrast_mean=False)
        comps.append(_tested("shape", q, [nu], p, kind))
    return _verdict(comps, alpha, temps, max_off, n_total)


def _tested(name: str, statistic: float, df: list[float], p: float, kind: str) -> Component:
    """A computed component; undecided where its statistic is degenerate (no p-value)."""
    if not np.isfinite(p):
        return Component(name, "undecided", reason="none of its terms varies between batches")
    return Component(name, "ok", statistic, df, p, statistic_kind=kind)


def _with_frozen(centred: np.ndarray, grads: np.ndarray, frozen: np.ndarray,
                 tau: float | None, alpha: float, seed: int) -> GibbsResult:
    """Coordinates that never move have temperature exactly 0.

    "Never move": constant, or spread so small that its square underflows (a coordinate with no
    gradient noise, decayed to 1e-199 of its start).

    All frozen: a point mass, nothing to test (undecided). Some: no single T > 0 gives a
    Gibbs law with ``Var θ_i = 0`` beside fluctuating coordinates, so "equal temperatures"
    rejects with certainty (p = 0); the other components run on the moving coordinates.
    """
    k, d = int(frozen.sum()), len(frozen)
    if k == d:
        why = "θ never varies (a point mass: temperature 0 everywhere); nothing to test"
        return GibbsResult("undecided", float("nan"), alpha, why,
                           [Component(name, "undecided", reason=why) for name in COMPONENTS],
                           float("nan"), 0.0, 0)
    moving = gibbs_test_arrays(centred[..., ~frozen], grads[..., ~frozen], tau, alpha, seed)
    certain = Component("equal temperatures", "ok", float("inf"), [], 0.0,
                        f"{k} of {d} coordinates never vary (temperature exactly 0) while the "
                        f"others fluctuate", "certain")
    comps = [certain if x.name == certain.name else x for x in moving.components]
    return _verdict(comps, alpha, np.zeros(1), moving.max_offdiag, moving.batches)


def _summaries(centred: np.ndarray, grads: np.ndarray, g_mean: np.ndarray, nb: int,
               budget_bytes: float = 2**26) -> tuple[Means, Means]:
    """``Means`` of the virial terms ``u⊙g`` and of the Stein terms, block by block of coordinates.

    The per-draw terms of one block (about ten ``[C, n, W]`` float64 temporaries) stay within
    ``budget_bytes``; only their grand and batch means are kept, so memory beyond the samples is
    O(#batches · D), not O(C · n · D). The shape component's contrasts come in block order
    (even and odd terms of each block); its statistics are invariant to that order.
    """
    c, n, d = centred.shape
    width = int(max(1, budget_bytes // (10 * 8 * c * n)))
    virial, shape = [], []
    for lo in range(0, d, width):
        u = centred[..., lo:lo + width]
        g = grads[..., lo:lo + width] - g_mean[lo:lo + width]
        virial.append(Means.of(u * g, nb))
        shape.append(Means.of(shape_terms(u, g), nb))
    return Means.join(virial), Means.join(shape)


def _verdict(comps: list[Component], alpha: float, temps: np.ndarray, max_off: float,
             n_total: int) -> GibbsResult:
    done = [x for x in comps if x.status == "ok" and np.isfinite(x.p_value)]
    applicable = [x for x in comps if x.status != "not applicable"]
    p = min(1.0, len(applicable) * min(x.p_value for x in done)) if done else float("nan")
    undecided = [x for x in comps if x.status == "undecided"]
    if done and p < alpha:
        worst = min(done, key=lambda x: x.p_value)
        how = "p = 0, certain" if worst.statistic_kind == "certain" else p_equals(worst.p_value)
        why = f"; {worst.reason}" if worst.reason else ""
        verdict, reason = "not Gibbs", f"{worst.name} rejected ({how}{why})"
    elif undecided:
        verdict, reason = "undecided", f"{undecided[0].name}: {undecided[0].reason}"
    else:
        verdict, reason = "Gibbs", f"no component rejects at family-wise α = {alpha}"
    ratio = float(temps.max() / temps.min()) if temps.min() > 0 else float("nan")
    return GibbsResult(verdict, p, alpha, reason, comps, ratio, max_off, n_total)


def gibbs_test(samples: Any, seed: int = 0, alpha: float = ALPHA) -> GibbsResult:
    """The Gibbs test on a run's ``VirialSamples`` (``analysis.temperature``)."""
    return gibbs_test_arrays(samples.centred, samples.grads, samples.tau, alpha, seed)
