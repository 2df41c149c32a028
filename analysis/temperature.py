"""Per-coordinate temperatures from both estimators of THEORY.md O3, with standard errors.

* Virial: ``T_i = E[(θ_i − c_i) ∂_iL(θ)]`` with ``c = θ̄`` (any constant works since
  ``E[∇L] = 0``, O1), from the recorded draws and full-batch gradients evaluated in batches.
* Fluctuation: ``T_i = (η_i/2) κ E[u_i²]`` accumulated during the run by the rule (see
  ``sampler.rules.base``), read from the archive's per-block sums.

Standard errors come from batch means over (chain, batch) pairs. Their agreement is a stationarity
diagnostic (Yaida 2019): ``z_i = (T_vir − T_fl)/√(se_vir² + se_fl²)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats
import torch

from .estimators import batch_means, batches_for, integrated_time, mean_and_se
from .reader import RunData

FULL_MATRIX_MAX_DIM = 16  # the full virial matrix (and the Gibbs test on θ) up to this dimension


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


def virial_samples(run: RunData, max_rows: int = 200_000, chunk: int = 4096,
                   work_budget: float = 2e9) -> VirialSamples:
    """Full-batch gradients at (an evenly thinned subset of) the committed draws.

    At most ``max_rows`` draws, and at most ``work_budget / (N·D)`` for dataset models (a full
    gradient costs about N·D), but never fewer than 2000 (every draw if there are fewer).
    """
    keep = ~run.diverged_chains()
    theta = np.asarray(run.posterior()["theta"].values)[keep]
    c, n, d = theta.shape
    if run.model.n_examples is not None:
        max_rows = min(max_rows, max(2000, int(work_budget / (run.model.n_examples * d))))
    stride = max(1, int(np.ceil(c * n / max_rows)))
    theta = theta[:, ::stride]
    flat = torch.as_tensor(theta.reshape(-1, d), dtype=run.model.dtype)
    grads = torch.cat([run.model.full_loss_grad(flat[i:i + chunk])[1]
                       for i in range(0, flat.shape[0], chunk)]) if flat.numel() else flat
    grads_np = grads.double().numpy().reshape(theta.shape)
    center = theta.mean(axis=(0, 1))
    tau = float(np.max(integrated_time(theta).mean(axis=0))) if theta.shape[1] > 3 else 1.0
    return VirialSamples(theta - center, grads_np, center, tau, run.spec.run.thin * stride)


@dataclass
class Temperatures:
    """Both estimates per coordinate, with standard errors and their agreement."""

    virial: np.ndarray  # [D]
    virial_se: np.ndarray
    fluctuation: np.ndarray
    fluctuation_se: np.ndarray
    z: np.ndarray  # [D] (virial − fluctuation)/se
    agreement_p: float  # χ²_D p-value of Σ z²

    @property
    def agree(self) -> bool:
        """Estimators consistent at the 0.1% level."""
        return bool(self.agreement_p >= 1e-3)


def fluctuation_temperature(run: RunData, tau_steps: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``T_i`` and its SE from the per-block accumulator sums (non-diverged chains).

    Consecutive blocks are merged into groups of at least ``10·tau_steps`` steps, so that group
    means are nearly independent; the SE is their spread over chains × groups.
    """
    sums, steps = run.fluctuation()
    sums = sums[~run.diverged_chains()]
    if sums.size == 0 or steps.sum() == 0:
        d = sums.shape[-1]
        return np.full(d, np.nan), np.full(d, np.nan)
    t = sums.sum(axis=(0, 1)) / (sums.shape[0] * steps.sum())
    per_group = max(1, int(np.ceil(10 * tau_steps / steps.max())))
    groups = np.arange(len(steps)) // per_group
    if groups[-1] > 0 and (groups == groups[-1]).sum() < per_group:  # fold a short tail group
        groups[groups == groups[-1]] -= 1
    g_sums = np.stack([sums[:, groups == k].sum(axis=1) for k in np.unique(groups)], axis=1)
    g_steps = np.array([steps[groups == k].sum() for k in np.unique(groups)])
    means = (g_sums / g_steps[None, :, None]).reshape(-1, sums.shape[-1])
    se = means.std(axis=0, ddof=1) / np.sqrt(means.shape[0]) if means.shape[0] > 1 else (
        np.full_like(t, np.nan))
    return t, se


def temperatures(run: RunData, samples: VirialSamples | None = None) -> Temperatures:
    """Virial and fluctuation temperatures of a run with their agreement test."""
    s = samples or virial_samples(run)
    t_v, se_v = mean_and_se(s.centred * s.grads, s.batches)
    t_f, se_f = fluctuation_temperature(run, s.tau * s.thin)
    z = (t_v - t_f) / np.sqrt(se_v**2 + se_f**2)
    p = float(scipy.stats.chi2.sf(np.sum(z**2), df=len(z))) if np.isfinite(z).all() else (
        float("nan"))
    return Temperatures(t_v, se_v, t_f, se_f, z, p)


def virial_batches(s: VirialSamples, directions: np.ndarray | None = None) -> np.ndarray:
    """Batch means of ``V_ij = (θ_i − c_i)∂_jL`` ``[batches, k, k]``, optionally projected.

    With orthonormal ``directions`` ``U [k, D]`` the matrix is ``U V Uᵀ``, which also equals
    ``T·I_k`` under a Gibbs law: the test of O12 on random projections of a large model.
    """
    a, g = s.centred, s.grads
    if directions is not None:
        a, g = a @ directions.T, g @ directions.T
    return batch_means(np.einsum("cni,cnj->cnij", a, g), s.batches)
