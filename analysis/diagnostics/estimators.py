"""Vectorised Monte Carlo estimators: autocorrelation, integrated time, batch-means standard errors.

All functions take arrays with explicit axes ``[chain, draw, ...]`` and never loop over
coordinates, so they scale to models with many parameters (ArviZ loops per element).

This module is the one home of every standard error in the package: ``mean_and_se`` sizes its
batches to the integrated autocorrelation time of the quantity being averaged (or of a slower one
the caller names), and ``integrated_time`` is the one IAT estimator.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

ENVELOPE_LEVEL = float(np.exp(-1.0))


def autocovariance(x: np.ndarray) -> np.ndarray:
    """Per-chain autocovariance along axis 1 via FFT, centred on the pooled mean: ``[C, n, ...]``.

    ``γ_c(k) = (1/n) Σ_t (x_{c,t} − x̄)(x_{c,t+k} − x̄)`` with ``x̄`` the mean over all chains and
    draws (the biased, positive-definite ``1/n`` form). Centring each chain on its own mean would
    bias every lag by ``O(τ/n)`` (it forces the autocorrelations to sum to −½).
    """
    y = x - x.mean(axis=(0, 1), keepdims=True) if x.shape[0] > 1 else x - x.mean(1, keepdims=True)
    return fft_autocovariance(y, axis=1)


def fft_autocovariance(centred: np.ndarray, axis: int) -> np.ndarray:
    """``γ(t) = (1/n) Σ_s y_s y_{s+t}``, ``t = 0 … n−1``, along ``axis`` of already centred ``y``.

    With ``F = rfft(y)`` zero-padded to an even length ``N ≥ 2n`` (no circular wrap-around) and
    the power ``P_k = |F_k|²`` (real and even), ``N·n·γ(t) = P_0 + (−1)^t P_{N/2} +
    2Σ_{0<k<N/2} P_k cos(2πkt/N)``: exactly the type-I DCT of ``P``, a third of the time of
    ``irfft(F·F̄)`` and equal to it to 1e-15.
    """
    n = centred.shape[axis]
    size = 2 * scipy.fft.next_fast_len(n)
    f = scipy.fft.rfft(centred, n=size, axis=axis)
    power = np.square(f.real)
    power += np.square(f.imag)
    acov = scipy.fft.dct(power, type=1, axis=axis, overwrite_x=True)
    lags = [slice(None)] * acov.ndim
    lags[axis] = slice(0, n)
    out = acov[tuple(lags)]  # a view: scaled in place, no copy
    out *= 1.0 / (size * n)
    return out


def autocorrelation(x: np.ndarray) -> np.ndarray:
    """Pooled normalised autocorrelation ``ρ_k = Σ_c γ_c(k) / Σ_c γ_c(0)``: ``[C, n, ...] → [n, ...]``.

    Pooling the autocovariance over chains before normalising halves the spread of τ estimates
    relative to averaging per-chain estimates (8 × 4000 draws at τ = 9: 0.50 vs 1.05).
    """
    return _normalise(autocovariance(x).mean(axis=0))


def _normalise(acov: np.ndarray) -> np.ndarray:
    """``γ(k)/γ(0)`` along axis 0 (zero-variance coordinates left unscaled)."""
    return acov / np.where(acov[:1] > 0, acov[:1], 1.0)


def _window(rho: np.ndarray, window: float) -> np.ndarray:
    """Summation window ``M`` per coordinate from the envelope of ``|ρ_k|``.

    ``K`` is the first lag after which ``|ρ_j|`` stays below ``e^{-1}`` for every ``j ≥ K``: the
    decay length of the envelope, whatever the sign pattern (positive, alternating for SGD with
    ηh > 1, oscillating for heavy-ball momentum). ``M = ⌈window·K⌉``, so the truncated tail is
    below ``e^{-window}`` of the envelope. A window sized from τ itself fails for anticorrelated
    chains, whose τ = (2−ηh)/(ηh) ≪ 1 while ``|ρ_k| = |1−ηh|^k`` decays slowly (docs/theory.md law S1).
    """
    n = rho.shape[0]
    envelope = np.maximum.accumulate(np.abs(rho)[::-1], axis=0)[::-1]  # max_{j ≥ k} |ρ_j|
    below = envelope < ENVELOPE_LEVEL
    below[0] = False
    k = np.where(below.any(axis=0), below.argmax(axis=0), n)
    return np.minimum(np.ceil(window * np.maximum(k, 1)).astype(int), n - 1)


def _windowed_tau(rho: np.ndarray, m: np.ndarray) -> np.ndarray:
    partial = 2.0 * np.cumsum(rho, axis=0) - 1.0  # 1 + 2 Σ_{k=1}^{M} ρ_k at index M
    return np.take_along_axis(partial, np.expand_dims(m, 0), axis=0).squeeze(0)


def integrated_time(x: np.ndarray, window: float = 10.0) -> np.ndarray:
    """Integrated autocorrelation time ``τ = 1 + 2 Σ_{k=1}^{M} ρ_k``, pooled over chains.

    A flat-window (truncated) spectral estimate at frequency zero: ``ρ_k`` is pooled over chains
    (``autocorrelation``) and summed in full, negative lobes included, up to ``M = window·K``
    lags, with ``K`` the decay length of the envelope of ``|ρ_k|`` (``_window``). This is right
    for reversible, anticorrelated (SGD with ηh > 1: ``ρ_k = (1−ηh)^k``, τ < 1) and oscillating
    non-reversible chains (heavy-ball momentum), for which Geyer's initial sequences are biased.
    Its relative standard deviation is about ``√(4M/(C·n))`` (use ``integrated_time_se``).

    Args:
        x: ``[C, n, ...]`` draws, ``n ≥ 2``.
        window: Window length in units of the envelope decay length.

    Returns:
        ``[...]`` estimates of τ in draws.
    """
    rho = autocorrelation(x)
    return _windowed_tau(rho, _window(rho, window))


def integrated_time_se(x: np.ndarray, window: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """``integrated_time`` and its jackknife standard error over chains (``NaN`` for one chain).

    Each leave-one-chain-out estimate pools the other chains' autocovariances (same centre and
    window); ``SE² = (C−1)/C Σ_c (τ_(−c) − τ̄_(·))²``.
    """
    acov = autocovariance(x)
    total = acov.mean(axis=0)
    rho = _normalise(total)
    m = _window(rho, window)
    top = int(m.max()) + 1 if m.size else 1  # lags past the largest window never enter
    tau = _windowed_tau(rho[:top], m)
    c = x.shape[0]
    if c < 2:
        return tau, np.full_like(tau, np.nan)
    loo = (total[:top] * c - acov[:, :top]) / (c - 1)  # [C, lags, ...] leaving chain c out
    loo_rho = np.moveaxis(loo / np.where(loo[:, :1] > 0, loo[:, :1], 1.0), 0, 1)
    loo_tau = _windowed_tau(loo_rho, np.broadcast_to(m, loo_rho.shape[1:]))  # [C, ...]
    se = np.sqrt((c - 1) / c * ((loo_tau - loo_tau.mean(axis=0)) ** 2).sum(axis=0))
    return tau, se


def batch_means(x: np.ndarray, n_batches: int) -> np.ndarray:
    """Non-overlapping batch means along ``draw``: ``[C, n, ...] → [C·b, ...]``.

    With ``b`` batches per chain of length ``L = n // b``, the batch means of a stationary chain
    are nearly independent once ``L ≫ τ`` (``batches_for``); chains are independent.
    """
    c, n = x.shape[:2]
    b = max(1, min(n_batches, n))
    length = n // b
    trimmed = x[:, : b * length].reshape(c, b, length, *x.shape[2:])
    return trimmed.mean(axis=2).reshape(c * b, *x.shape[2:])


def batches_for(tau: float, n: int, max_batches: int = 30, span: float = 10.0) -> int:
    """Batches per chain so that each spans at least ``span·max(τ, 1)`` draws (1 to max)."""
    if not np.isfinite(tau) or tau <= 0:
        return 1
    return int(np.clip(n // (span * max(tau, 1.0)), 1, max_batches))


def slowest_time(x: np.ndarray) -> float:
    """The largest integrated time over the trailing axes of ``x [C, n, ...]`` (1 if n < 4)."""
    if x.shape[1] < 4:
        return 1.0
    tau = integrated_time(x.reshape(*x.shape[:2], -1))
    return float(np.nanmax(tau)) if tau.size else 1.0


def mean_and_se(x: np.ndarray, n_batches: int | None = None,
                tau: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean over chains and draws and its batch-means standard error, sized to τ.

    ``SE = sd(batch means)/√(#batches)`` with batches of at least ``10·τ`` draws: ``τ`` is the
    largest integrated time of ``x`` itself unless the caller passes ``n_batches`` or a known
    (slower) ``tau``. ``NaN`` with fewer than two batches in all.
    """
    if n_batches is None:
        n_batches = batches_for(slowest_time(x) if tau is None else tau, x.shape[1])
    m = batch_means(x, n_batches)
    se = m.std(axis=0, ddof=1) / np.sqrt(m.shape[0]) if m.shape[0] > 1 else np.full(
        m.shape[1:], np.nan)
    return x.mean(axis=(0, 1)), se
