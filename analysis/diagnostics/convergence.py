"""Rank-normalised split R-hat, bulk and tail ESS and MCSE, vectorised over coordinates.

The definitions are ArviZ 0.23's (Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021), computed
for a block of K coordinates at once from draws ``x [C, n, K]``, so that a run with 10⁴ coordinates
is diagnosed in a few batched FFTs and sorts instead of 10⁴ Python calls. The tests compare every
quantity with ArviZ to 1e-6.

* Split chains: the first and last ``⌊n/2⌋`` draws of each chain, ``m = 2C`` chains.
* Rank normalisation: ``z = Φ⁻¹((r − 3/8)/(S + 1/4))`` with average ranks r over all S draws.
* ``R̂ = max(R̂(z(x)), R̂(z(|x − median x|)))``, ``R̂(y) = √((B/W + n − 1)/n)`` with W the mean
  within-chain variance and ``B = n·Var(chain means)``.
* ESS by Geyer's initial monotone sequence on the pooled autocorrelation
  ``ρ_t = 1 − (W − mean_c γ_c(t))/V̂``: bulk on z(x), tail the smaller for the indicators
  ``x ≤ q₀.₀₅`` and ``x ≤ q₀.₉₅``, and the ESS of the mean on x itself, which sizes
  ``MCSE = sd(x)/√ESS_mean``.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.special

from .estimators import fft_autocovariance

QUANTITIES = ("r_hat", "ess_bulk", "ess_tail", "mcse_mean", "mean", "sd")


def split_chains(x: np.ndarray) -> np.ndarray:
    """``[K, C, n] → [K, 2C, ⌊n/2⌋]``: first and last halves of every chain."""
    half = x.shape[2] // 2
    return np.concatenate([x[:, :, :half], x[:, :, x.shape[2] - half:]], axis=1)


def _twice_run_ranks(ordered: np.ndarray) -> np.ndarray:
    """Twice the average ranks of rows already sorted ``[K, S]``, in sorted order, as integers.

    Position p (0-based) has rank ``p + 1`` unless it sits in a run of equal values; a run over
    positions ``a … b`` gets ``(a + b)/2 + 1``. Twice that is a whole number, which indexes the
    normal-score table directly. Ties are rare in continuous draws, so only the tied positions
    are visited (as flat indices), not every element.
    """
    k, s = ordered.shape
    twice = np.tile(np.arange(2, 2 * s + 2, 2, dtype=np.int64), (k, 1))
    tie = np.flatnonzero(ordered[:, 1:] == ordered[:, :-1])  # p where ordered[p + 1] == [p]
    if tie.size == 0:
        return twice
    row, p = np.divmod(tie, s - 1)
    flat = row * s + p  # flat index of the first element of each tied pair
    first = np.ones(tie.size, bool)
    first[1:] = flat[1:] != flat[:-1] + 1  # a new run unless it continues the previous pair
    run_id = np.cumsum(first) - 1
    start = flat[first]
    end = np.zeros(start.size, np.int64)
    np.maximum.at(end, run_id, flat + 1)  # flat index of the last element of each run
    lengths = end - start + 1
    members = np.repeat(start, lengths) + (
        np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths))
    offset = (start // s) * s  # the row's first flat index
    twice.reshape(-1)[members] = np.repeat(start + end - 2 * offset + 2, lengths)
    return twice


def _scatter(order: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``out[i, order[i, p]] = values[i, p]``: back from sorted positions to the original ones."""
    out = np.empty(values.shape, dtype=values.dtype)
    np.put_along_axis(out, order, values, axis=1)
    return out


def average_ranks(a: np.ndarray) -> np.ndarray:
    """Ranks 1…S along the last axis of ``a [K, S]``, ties given their average rank."""
    order = np.argsort(a, axis=1)
    return _scatter(order, _twice_run_ranks(np.take_along_axis(a, order, axis=1))) / 2.0


def _normal_scores(twice_ranks: np.ndarray, size: int) -> np.ndarray:
    """``Φ⁻¹((r − 3/8)/(S + 1/4))``, looked up by ``2r`` (average ranks are multiples of ½)."""
    table = scipy.special.ndtri((np.arange(2 * size + 1) / 2.0 - 0.375) / (size + 0.25))
    return table[twice_ranks]


def z_scale(x: np.ndarray) -> np.ndarray:
    """Rank-normalise every coordinate of ``x [K, m, n]`` over all its draws (average ranks)."""
    k, m, n = x.shape
    flat = x.reshape(k, m * n)
    order = np.argsort(flat, axis=1)
    twice = _scatter(order, _twice_run_ranks(np.take_along_axis(flat, order, axis=1)))
    return _normal_scores(twice, m * n).reshape(k, m, n)


def z_scale_split_and_folded(split: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``z(split)``, ``z(|split − median|)`` and the sorted draws, from one sort per coordinate.

    In sorted order the folded values fall, then rise (two monotone runs either side of the
    median), so their order comes from a stable (Timsort) pass in O(S) instead of a second full
    sort; average ranks are the same whatever order ties take.
    """
    k, m, n = split.shape
    size = m * n  # even: 2C split chains
    flat = split.reshape(k, size)
    order = np.argsort(flat, axis=1)
    ordered = np.take_along_axis(flat, order, axis=1)
    median = (ordered[:, size // 2 - 1] + ordered[:, size // 2]) / 2  # as np.median
    folded = np.abs(ordered - median[:, None])  # in sorted-split order
    order_f = np.argsort(folded, axis=1, kind="stable")
    folded_ranks = _scatter(order_f, _twice_run_ranks(np.take_along_axis(folded, order_f,
                                                                           axis=1)))
    z = _normal_scores(_scatter(order, _twice_run_ranks(ordered)), size)
    z_folded = _normal_scores(_scatter(order, folded_ranks), size)
    return z.reshape(k, m, n), z_folded.reshape(k, m, n), ordered


def rhat(y: np.ndarray) -> np.ndarray:
    """``√((B/W + n − 1)/n)`` per coordinate of ``y [K, m, n]``."""
    n = y.shape[2]
    within = y.var(axis=2, ddof=1).mean(axis=1)
    between = n * y.mean(axis=2).var(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # constant coordinate: NaN, as ArviZ
        return np.sqrt((between / within + n - 1) / n)


def autocovariance(y: np.ndarray) -> np.ndarray:
    """``γ_c(t)`` of every coordinate and chain ``[K, m, n]`` by one batched FFT (biased, /n)."""
    return fft_autocovariance(y - y.mean(axis=2, keepdims=True), axis=2)


def ess(y: np.ndarray) -> np.ndarray:
    """Effective sample size per coordinate of ``y [K, m, n]`` (Geyer's monotone sequence).

    ArviZ's loop, vectorised: with pair sums ``P_k = ρ_2k + ρ_2k+1`` the positive sequence keeps
    pairs ``1 … k*`` while every earlier ``P_j > 0`` (and ``2k − 1 < n − 3``); the monotone
    sequence replaces ``P_k`` by the running minimum; ``τ = −1 + 2Σ_{k<k*} P_k' + ρ̃_2k*`` with
    ``ρ̃_2k* = ρ_2k*`` when ``P_k* ≥ 0`` or ``ρ_2k* > 0`` (else 0), floored at ``1/log₁₀(mn)``.
    """
    k, m, n = y.shape
    acov = autocovariance(y)
    mean_var = acov[:, :, 0].mean(axis=1) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus = var_plus + y.mean(axis=2).var(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var[:, None] - acov.mean(axis=1)) / var_plus[:, None]  # [K, n]
    rho[:, 0] = 1.0
    n_pairs = n // 2
    pairs = rho[:, 0: 2 * n_pairs: 2] + rho[:, 1: 2 * n_pairs: 2]  # [K, n_pairs]
    index = np.arange(n_pairs)
    allowed = (index >= 1) & (2 * index - 1 < n - 3)
    before = np.concatenate([np.ones((k, 1), bool), pairs[:, :-1] > 0], axis=1)
    k_last = (allowed[None, :] & np.logical_and.accumulate(before, axis=1)).sum(axis=1)
    running = np.minimum.accumulate(pairs, axis=1)
    body = np.where(index[None, :] < k_last[:, None], running, 0.0).sum(axis=1)
    rows = np.arange(k)
    even, last = rho[rows, 2 * k_last], pairs[rows, k_last]
    tail = np.where((last >= 0) | (even > 0), even, 0.0)
    tau = np.maximum(-1.0 + 2.0 * body + tail, 1.0 / np.log10(m * n))
    out = m * n / tau
    out[np.isnan(rho).any(axis=1)] = np.nan
    constant = (y.max(axis=(1, 2)) - y.min(axis=(1, 2))) < np.finfo(float).resolution
    out[constant] = m * n
    return out


def diagnose_block(x: np.ndarray) -> dict[str, np.ndarray]:
    """Every quantity of ``QUANTITIES`` for the coordinates of ``x [C, n, K]``."""
    x = np.ascontiguousarray(np.moveaxis(np.asarray(x, dtype=float), -1, 0))  # [K, C, n]
    k, c, n = x.shape
    flat = x.reshape(k, -1)
    nan = np.full(k, np.nan)
    out = {"mean": flat.mean(axis=1), "sd": flat.std(axis=1, ddof=1)}
    if n < 4:
        return {**out, "r_hat": nan, "ess_bulk": nan, "ess_tail": nan, "mcse_mean": nan}
    split = split_chains(x)
    z, z_folded, ordered = z_scale_split_and_folded(split)
    out["r_hat"] = np.maximum(rhat(z), rhat(z_folded)) if c > 1 else nan
    out["ess_bulk"] = ess(z)
    # With n even the split chains hold every draw: quantiles of the sorted rows (same values,
    # five times faster than selecting from unsorted ones).
    q = np.quantile(ordered if n % 2 == 0 else flat, [0.05, 0.95], axis=1)  # [2, K]
    out["ess_tail"] = np.minimum(ess(split_chains((x <= q[0][:, None, None]).astype(float))),
                                 ess(split_chains((x <= q[1][:, None, None]).astype(float))))
    out["mcse_mean"] = out["sd"] / np.sqrt(ess(split))
    invalid = np.isnan(flat).any(axis=1)  # as ArviZ: a coordinate with a NaN draw has none
    for q in ("r_hat", "ess_bulk", "ess_tail", "mcse_mean"):
        out[q] = np.where(invalid, np.nan, out[q])
    return out


def block_size(n_chains: int, n_draws: int, budget_bytes: float = 2**25) -> int:
    """Coordinates per block so that the FFT temporaries of one block stay within the budget."""
    per_coord = n_chains * (2 * n_draws) * 16 * 4  # complex spectrum + copies, split chains
    return int(max(1, min(4096, budget_bytes // max(per_coord, 1))))
