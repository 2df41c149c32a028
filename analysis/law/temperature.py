"""Per-coordinate temperatures (docs/theory.md identity O3) and every rule's exact stationarity check.

* Virial: ``T_i = E[(θ_i − c_i) ∂_iL(θ)]`` with ``c = θ̄`` (any constant works since
  ``E[∇L] = 0``, O1), from the recorded draws and full-batch gradients evaluated in batches. This
  is the definition of the per-coordinate temperature, for every rule. When θ is recorded only
  partly, from the engine's sums of ``θ, θ⊙g_B, g_B`` over every step (``virial_from_sums``).
* Fluctuation: ``T_i = (η_i/2) κ E[u_i²]`` accumulated during the run by the rule (see
  ``sampler.rules.base``). Exact for constant rates (SGD, both momentum forms, preconditioning by
  a known σ²); for rates that depend on the state or the step's own minibatch (RMSProp, Adam,
  estimated σ, the seeds' rules) it is an approximation and is labelled so.

The stationarity check is always an exact identity: for constant rates the agreement of the two
temperatures (Yaida 2019), ``z_i = (T_vir − T_fl)/√(se_vir² + se_fl²)``; otherwise the
rate-weighted identity ``E[(θ_i − c_i)p_ig_i] = ½E[p_i²g_i²]`` (docs/theory.md identity R), both sides
accumulated during the run. No agreement test is ever run on a relation that is only approximate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.special

from ...sampler.models import Model
from ...sampler.rules import UpdateRule
from ..diagnostics.estimators import batches_for, integrated_time, mean_and_se

AGREEMENT_P = 1e-3  # the stationarity check's level


@dataclass
class VirialSamples:
    """Centred draws and their full-batch gradients for the non-diverged chains."""

    centred: np.ndarray  # [C, n, D] θ − θ̄
    grads: np.ndarray  # [C, n, D] ∇L(θ)
    center: np.ndarray  # [D]
    tau: float  # largest integrated autocorrelation time of θ, in (thinned) draws
    thin: int  # recorded every thin-th step (times the subsampling stride)

    @property
    def batches(self) -> int:
        """Batches per chain, each spanning at least 10 τ draws."""
        return batches_for(self.tau, self.centred.shape[1])

    def columns(self, coords: slice) -> VirialSamples:
        """The same samples restricted to a block of coordinates (views, same τ)."""
        return VirialSamples(self.centred[..., coords], self.grads[..., coords],
                             self.center[coords], self.tau, self.thin)


def samples_from_arrays(theta: np.ndarray, grads: np.ndarray, thin: int = 1) -> VirialSamples:
    """``VirialSamples`` from draws ``theta [C, n, D]`` and their gradients ``∇L(θ) [C, n, D]``."""
    center = theta.mean(axis=(0, 1))
    tau = 1.0
    if theta.shape[1] > 3:  # in blocks of coordinates: the FFT temporaries are 16× the block
        width = max(1, 2**24 // (theta.shape[0] * theta.shape[1]))
        tau = max(float(np.max(integrated_time(theta[..., lo:lo + width])))
                  for lo in range(0, theta.shape[-1], width))
    return VirialSamples(theta - center, grads, center, tau, thin)


def thinning_stride(n_chains: int, n_draws: int, max_rows: int, epoch_steps: int | None,
                    thin: int) -> int:
    """Subsampling stride of the draws for the gradient pass, at least ``⌈C·n/max_rows⌉``.

    Under epoch reshuffling the stride is coprime to the period of the draws' phases, so the kept
    draws visit every epoch phase the draws visit, equally often (docs/theory.md, epoch reshuffling):
    a stride sharing a factor with it sees only some phases (spacing 10 steps in an epoch of 4
    sees two of the four, which once biased the epoch average by 18 %).
    """
    stride = max(1, int(np.ceil(n_chains * n_draws / max_rows)))
    if epoch_steps and epoch_steps > 1:
        period = epoch_steps // math.gcd(thin, epoch_steps)  # the draws' phases repeat after it
        while period > 1 and math.gcd(stride, period) != 1:
            stride += 1
    return stride


def fluctuation_is_exact(rule: UpdateRule, model: Model, sampling: str = "iid") -> bool:
    """Whether ``(η_i/2)κE[u_i²]`` is an exact identity for this rule on this model.

    O3 equates ``E[(θ−c)·g_B]`` (the step's own batch) with ``E[(θ−c)·∇L]``, which needs each
    batch drawn independently of θ. Under epoch reshuffling the batches of one epoch depend on
    the earlier ones, and so on θ: there the check is the rate-weighted identity, which uses
    the step's own gradient on both sides and holds for any sampling.
    """
    if sampling == "epoch":
        return False
    return rule.rates == "constant" or (rule.rates == "noise" and model.constant_noise)


@dataclass
class Temperatures:
    """Both temperature estimates per coordinate and the run's exact stationarity check."""

    virial: np.ndarray  # [D]
    virial_se: np.ndarray
    fluctuation: np.ndarray
    fluctuation_se: np.ndarray
    fluctuation_exact: bool  # False: (η_i/2)κE[u_i²] is only an approximation for this rule
    check: str  # "O3" (temperatures agree), "rate-weighted identity" or "not recorded"
    z: np.ndarray  # [D] z-scores of the check
    agreement_p: float  # χ²_D p-value of Σ z² (NaN when nothing exact could be checked)
    identity_lhs: np.ndarray | None = None  # [D] E[(θ−c)pg] (rate-weighted identity)
    identity_rhs: np.ndarray | None = None  # [D] ½E[(pg)²]

    @property
    def agree(self) -> bool | None:
        """The stationarity check passes at the 0.1 % level (``None`` if none was possible)."""
        return None if not np.isfinite(self.agreement_p) else bool(
            self.agreement_p >= AGREEMENT_P)


def grouped_block_means(sums: np.ndarray, steps: np.ndarray, min_steps: float) -> np.ndarray:
    """Per-step means over groups of consecutive blocks of at least ``min_steps`` steps.

    Args:
        sums: ``[C, blocks, ...]`` per-block sums.
        steps: ``[blocks]`` steps in each block.
        min_steps: Group length (``10·τ`` in steps makes group means nearly independent).

    Returns:
        ``[C·groups, ...]`` group means; a short tail group is folded into the one before.
    """
    per_group = max(1, int(np.ceil(min_steps / max(steps.max(), 1))))
    groups = np.arange(len(steps)) // per_group
    if groups[-1] > 0 and (groups == groups[-1]).sum() < per_group:
        groups[groups == groups[-1]] -= 1
    g_sums = np.stack([sums[:, groups == k].sum(axis=1) for k in np.unique(groups)], axis=1)
    g_steps = np.array([steps[groups == k].sum() for k in np.unique(groups)], dtype=float)
    shape = (1, -1) + (1,) * (sums.ndim - 2)
    return (g_sums / g_steps.reshape(shape)).reshape(-1, *sums.shape[2:])


@dataclass
class FluctuationSums:
    """What the engine accumulated per posterior block, for the non-diverged chains."""

    sums: np.ndarray  # [C, blocks, D] Σ of the rule's fluctuation term
    steps: np.ndarray  # [blocks] steps in each block
    identity: np.ndarray | None = None  # [C, blocks, 3, D] Σ θ⊙pg, pg, ½(pg)²; None: not recorded


def fluctuation_temperature(fl: FluctuationSums,
                            tau_steps: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``T_i`` and its SE from the per-block accumulator sums.

    Consecutive blocks are merged into groups of at least ``10·tau_steps`` steps, so that group
    means are nearly independent; the SE is their spread over chains × groups.
    """
    sums, steps = fl.sums, fl.steps
    if sums.size == 0 or steps.sum() == 0:
        d = sums.shape[-1]
        return np.full(d, np.nan), np.full(d, np.nan)
    t = sums.sum(axis=(0, 1)) / (sums.shape[0] * steps.sum())
    means = grouped_block_means(sums, steps, 10 * tau_steps)
    se = means.std(axis=0, ddof=1) / np.sqrt(means.shape[0]) if means.shape[0] > 1 else (
        np.full_like(t, np.nan))
    return t, se


def identity_check(sums: np.ndarray, steps: np.ndarray,
                   center: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both sides of ``E[(θ_i − c_i)p_ig_i] = ½E[p_i²g_i²]`` and the z-scores of their difference.

    Per chain, ``LHS = (Σθ⊙pg − c⊙Σpg)/N`` and ``RHS = Σ½(pg)²/N`` over its ``N`` posterior
    steps. Their difference telescopes to ``−[(θ_end − c)² − (θ_start − c)²]/(2N)``, so block sums
    within a chain are dependent while chains are independent: the standard error is the spread
    over chains, and each ``t = mean/SE`` (``C − 1`` degrees of freedom) is mapped to the normal
    score with the same tail probability.

    Args:
        sums: ``[C, blocks, 3, D]`` per-block sums of ``θ⊙pg``, ``pg``, ``½(pg)²``.
        steps: ``[blocks]``.
        center: ``c [D]``.

    Returns:
        ``(LHS [D], RHS [D], z [D])``; z is NaN with fewer than two chains.
    """
    total = sums.sum(axis=1) / max(steps.sum(), 1)  # [C, 3, D]
    lhs = total[:, 0] - center * total[:, 1]
    diff = lhs - total[:, 2]
    c = diff.shape[0]
    if c < 2:
        return lhs.mean(0), total[:, 2].mean(0), np.full(diff.shape[-1], np.nan)
    se = diff.std(axis=0, ddof=1) / np.sqrt(c)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = diff.mean(axis=0) / se
    z = -scipy.special.ndtri(scipy.special.stdtr(c - 1, -np.abs(t))) * np.sign(t)
    return lhs.mean(0), total[:, 2].mean(0), z


def o3_from_sums(virial: np.ndarray, fluct: np.ndarray, steps: np.ndarray,
                 center: np.ndarray) -> np.ndarray:
    """O3 z-scores when both temperatures come from the engine's sums (partial records).

    ``E[(θ − c)g_B] = E[fluctuation term]`` holds exactly for constant rates and its per-step
    difference telescopes (for SGD, ``2η(θ − c)g − η²g² = (θ − c)² − (θ' − c)²``), so, as in
    ``identity_check``, the SE is the spread of per-chain totals, not of block means.

    Args:
        virial: ``[C, blocks, 3, D]`` sums of θ, θ⊙g_B, g_B.
        fluct: ``[C, blocks, D]`` sums of the fluctuation term.
        steps: ``[blocks]``.
        center: ``c [D]``.
    """
    stacked = np.stack([virial[:, :, 1], virial[:, :, 2], fluct], axis=2)
    return identity_check(stacked, steps, center)[2]


def join(parts: list[Temperatures]) -> Temperatures:
    """Temperatures of consecutive blocks of coordinates as one (the p-value over all of them)."""
    first = parts[0]

    def cat(name: str) -> np.ndarray | None:
        values = [getattr(p, name) for p in parts]
        return None if values[0] is None else np.concatenate(values)

    z = np.concatenate([p.z for p in parts])
    p = _chi2_p(z) if first.check != "not recorded" else float("nan")
    return Temperatures(np.concatenate([q.virial for q in parts]), np.concatenate(
        [q.virial_se for q in parts]), np.concatenate([q.fluctuation for q in parts]),
        np.concatenate([q.fluctuation_se for q in parts]), first.fluctuation_exact, first.check,
        z, p, cat("identity_lhs"), cat("identity_rhs"))


def _chi2_p(z: np.ndarray) -> float:
    """``P(χ²_k > Σz²)`` over the defined z-scores.

    A z of 0/0 (both sides exactly equal with no spread: a coordinate that never moves) carries
    no information and is left out; ±∞ (unequal with no spread) makes the check fail with
    certainty (p = 0); NaN when no z is defined (fewer than two chains, nothing moves).
    """
    z = np.asarray(z, dtype=float)
    if np.isinf(z).any():
        return 0.0
    z = z[np.isfinite(z)]
    return float(scipy.special.chdtrc(len(z), np.sum(z**2))) if len(z) else float("nan")


def virial_from_sums(sums: np.ndarray, steps: np.ndarray,
                     tau_steps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(θ̄, T, SE)`` from the engine's per-block sums of ``θ, θ⊙g_B, g_B`` (partial records).

    ``T_i = E[θ_ig_i] − E[θ_i]E[g_i]`` (``sampler.kernels.general_step.VirialWindow``: with
    batches drawn independently of θ this is ``E[(θ_i − c_i)∂_iL]``). The SE is the spread over
    chains × groups of ≥ 10τ steps of the estimator's linearisation ``u = (θg)_k − ḡθ_k − θ̄g_k``.

    Args:
        sums: ``[C, blocks, 3, D]``.
        steps: ``[blocks]``.
        tau_steps: Integrated autocorrelation time in steps.
    """
    theta, cross, grad = sums.sum(axis=(0, 1)) / (sums.shape[0] * max(steps.sum(), 1))
    t = cross - theta * grad
    means = grouped_block_means(sums, steps, 10 * tau_steps)  # [groups, 3, D]
    infl = means[:, 1] - grad * means[:, 0] - theta * means[:, 2]
    se = infl.std(axis=0, ddof=1) / np.sqrt(len(infl)) if len(infl) > 1 else (
        np.full_like(t, np.nan))
    return theta, t, se


def temperatures(samples: VirialSamples, fl: FluctuationSums, exact: bool) -> Temperatures:
    """Virial and fluctuation temperatures with the exact stationarity check, from arrays.

    Args:
        samples: Centred draws and their full-batch gradients.
        fl: The run's accumulated sums (non-diverged chains).
        exact: Whether the fluctuation term is an exact identity for this rule and model
            (``fluctuation_is_exact``); then the check is O3, else the rate-weighted identity.
    """
    s = samples
    t_v, se_v = mean_and_se(s.centred * s.grads, s.batches)
    return combine(t_v, se_v, s.center, s.tau * s.thin, fl, exact)


def combine(t_v: np.ndarray, se_v: np.ndarray, center: np.ndarray, tau_steps: float,
            fl: FluctuationSums, exact: bool, z_o3: np.ndarray | None = None) -> Temperatures:
    """The virial temperature ``t_v ± se_v`` beside the fluctuation one, and the check.

    ``z_o3``: the O3 z-scores when the two temperatures come from the same steps' sums
    (``o3_from_sums``); by default they are independent estimates (draws and sums), so
    ``z = (t_v − t_f)/√(se_v² + se_f²)``.
    """
    t_f, se_f = fluctuation_temperature(fl, tau_steps)
    if exact:
        with np.errstate(divide="ignore", invalid="ignore"):  # no spread: ±inf or 0/0, which
            z = (t_v - t_f) / np.sqrt(se_v**2 + se_f**2) if z_o3 is None else z_o3  # _chi2_p reads
        return Temperatures(t_v, se_v, t_f, se_f, True, "O3", z, _chi2_p(z))
    if fl.identity is None:
        nan = np.full_like(t_v, np.nan)
        return Temperatures(t_v, se_v, t_f, se_f, False, "not recorded", nan, float("nan"))
    lhs, rhs, z = identity_check(fl.identity, fl.steps, center)
    return Temperatures(t_v, se_v, t_f, se_f, False, "rate-weighted identity", z, _chi2_p(z),
                        lhs, rhs)
