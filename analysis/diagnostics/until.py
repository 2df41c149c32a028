"""What ``run.until`` decides from: Yaida's equilibration test and the monitored targets.

* ``fdr_ratio``: the half-running ratio of the two sides of the rate-weighted stationarity
  identity (docs/theory.md identities O2, O3; Yaida 2019), ``R = Σ_i(Σθ_ip_ig_i − c_iΣp_ig_i) / Σ_i
  Σ½(p_ig_i)²``
  over the later half of the warm-up blocks so far (blocks ``⌊k/2⌋ … k−1``), all chains of a shard
  and all coordinates, with ``c`` the mean of θ over the earlier half (the first block alone at
  the first barrier). Per step the difference of the two sides telescopes:
  ``Σ_t [(θ_t−c)·s_t − ½|s_t|²] = ½(|θ_a−c|² − |θ_b−c|²)`` for the steps ``s_t = p⊙g`` of any
  rule, so ``E[R] − 1`` is the change of ``E|θ−c|²`` across the window divided by ``N·E|s|²``:
  zero at stationarity for any c, of order ``τ/N`` in a decaying transient, and −1 for a
  driftless random walk (which a c taken inside the window would hide by symmetry).
* ``monitored``: the smallest bulk ESS and the largest R-hat over θ's recorded coordinates
  (ArviZ's estimators, ``convergence``) and the largest relative MCSE of a coordinate's variance
  ``se(mean (θ_i − θ̄_i)²)/mean (θ_i − θ̄_i)²`` (``estimators.mean_and_se``, sized to τ), streamed
  over coordinate blocks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...sampler.config.until import TARGETS
from ..reader import RunData
from .blocks import map_blocks
from .convergence import block_size, diagnose_block
from .estimators import mean_and_se


def fdr_ratio(identity: np.ndarray, center: np.ndarray) -> float:
    """``R = Σ(θ⊙pg − c⊙pg)/Σ½(pg)²`` of identity sums ``[C, blocks, 3, D]`` around ``c [D]``."""
    lhs = float((identity[:, :, 0] - center * identity[:, :, 1]).sum())
    rhs = float(identity[:, :, 2].sum())
    return lhs / rhs if rhs > 0 else float("nan")


def half_window(k: int) -> slice:
    """The later half of ``k`` blocks, ``⌊k/2⌋ … k−1`` (Yaida's half-running average)."""
    return slice(k // 2, k)


def passes(now: np.ndarray, before: np.ndarray, tolerance: float) -> np.ndarray:
    """Judged stationary: ``|R − 1| < tolerance`` at this barrier and at the one before.

    One pass is Yaida's rule; asking for two in a row guards against the many looks of a
    test repeated at every block (a driftless random walk in 1-D with 8 chains per shard is
    accepted before 40 blocks 39 % of the time on one pass, 2 % on two:
    ``benchmarks/until_calibration.py``).
    """
    return (np.abs(now - 1) < tolerance) & (np.abs(before - 1) < tolerance)


def center_window(k: int) -> slice:
    """The blocks whose mean θ is the centre c: the earlier half (the first block when k = 1)."""
    return slice(0, max(k // 2, 1))


def _block_monitor(x: np.ndarray) -> dict[str, np.ndarray]:
    """Bulk ESS, R-hat and the relative MCSE of the variance of each coordinate of ``x``."""
    diag = diagnose_block(x)
    sq = np.square(x - x.mean(axis=(0, 1)))
    mean, se = mean_and_se(sq)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(mean > 0, se / mean, np.nan)
    return {"ess_bulk": diag["ess_bulk"], "r_hat": diag["r_hat"], "mcse_rel": rel}


def monitored(run: RunData, chains: np.ndarray | None = None) -> dict[str, float]:
    """The monitored values of a run's committed posterior: min ESS, max R-hat, max rel. MCSE.

    ``chains``: boolean mask of the chains to use (default: those that never diverged). NaN
    where a value cannot be computed yet (fewer than 4 draws; R-hat with one chain).
    """
    if run.draws < 4:
        return {t: float("nan") for t in TARGETS}
    theta: Any = run.posterior()["theta"]
    rows = ~run.diverged_chains() if chains is None else chains
    if not rows.any():
        return {t: float("nan") for t in TARGETS}
    c, n = int(rows.sum()), theta.sizes["draw"]
    parts = map_blocks(theta, _block_monitor, block_size(c, n), rows=rows)
    cat = {q: np.concatenate([p[q] for p in parts]) for q in TARGETS}

    def pick(values: np.ndarray, fn: Any) -> float:
        return float(fn(values)) if np.isfinite(values).any() else float("nan")
    return {"ess_bulk": pick(cat["ess_bulk"], np.nanmin), "r_hat": pick(cat["r_hat"], np.nanmax),
            "mcse_rel": pick(cat["mcse_rel"], np.nanmax)}


def met(values: dict[str, float], targets: dict[str, float]) -> list[str]:
    """The targets a run's monitored values meet (NaN meets none)."""
    out = []
    for name, target in targets.items():
        v = values.get(name, float("nan"))
        if np.isfinite(v) and (v >= target if name == "ess_bulk" else v <= target):
            out.append(name)
    return out


def until_record(run: RunData) -> dict[str, Any] | None:
    """JSON form of a ``run.until`` run's decisions (``None`` for other runs)."""
    state, until = run.store.until, run.spec.run.until
    if state is None or until is None:
        return None
    warmup_steps = sum(b.steps for b in run.store.blocks if b.group == "warmup")
    return {"targets": until.targets(), "max_draws": until.max_draws,
            "fdr_tolerance": until.fdr_tolerance if until.equilibrate else None,
            "warmup": state.warmup_words, "burn_in_steps": warmup_steps,
            "warmup_draws": state.warmup_draws, "posterior_draws": state.posterior_draws,
            "stationary_step": [int(s) if s >= 0 else None for s in state.stationary_step],
            "stopped": state.stopped, "stopped_by": state.reasons(),
            "monitor": {t: float(v) if np.isfinite(v) else None
                        for t, v in zip(TARGETS, state.monitor, strict=True)}}


def until_sentence(u: dict[str, Any]) -> str:
    """One sentence: the burn-in and why the run stopped, with each target's last value."""
    steps = ", ".join("not judged" if s is None else f"{s:,}" for s in u["stationary_step"])
    burn = f"Run until: burn-in {u['burn_in_steps']:,} steps ({u['warmup']}"
    if u["fdr_tolerance"] is not None:
        burn += (f"; FDR test |O_L/O_R − 1| < {u['fdr_tolerance']:g} over the later half, "
                 f"shards at steps {steps}")
    checks = []
    for name, target in u["targets"].items():
        value = u["monitor"].get(name)
        sign = "≥" if name == "ess_bulk" else "≤"
        state = "met" if name in u["stopped_by"] else "not met"
        checks.append(f"{name} {'–' if value is None else f'{value:.4g}'} "
                      f"(target {sign} {target:g}, {state})")
    if not u["stopped"]:
        end = f"still running at {u['posterior_draws']:,} draws"
    elif "max_draws" in u["stopped_by"]:
        end = f"stopped by the cap max_draws = {u['max_draws']:,}"
    else:
        end = f"stopped at {u['posterior_draws']:,} draws by its targets"
    return f"{burn}); {end}: {'; '.join(checks)}."
