"""Vectorised Monte Carlo estimators: batch means, integrated autocorrelation time.

All functions take arrays with explicit axes ``[chain, draw, ...]`` and never loop over
coordinates, so they scale to models with many parameters (ArviZ loops per element).
"""

from __future__ import annotations

import numpy as np


def batch_means(x: np.ndarray, n_batches: int | None = None) -> np.ndarray:
    """Non-overlapping batch means along ``draw``: ``[C, n, ...] → [C·b, ...]``.

    With ``b`` batches per chain of length ``L = n // b`` (default ``b = min(⌊√n⌋, 30)``), the batch
    means of a stationary chain are nearly independent once ``L ≫ τ``; chains are independent.
    """
    c, n = x.shape[:2]
    b = n_batches or max(min(int(np.sqrt(n)), 30), 1)
    length = n // b
    trimmed = x[:, : b * length].reshape(c, b, length, *x.shape[2:])
    return trimmed.mean(axis=2).reshape(c * b, *x.shape[2:])


def mean_and_se(x: np.ndarray, n_batches: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean over chains and draws and its batch-means standard error.

    ``SE = sd(batch means) / √(#batches)``; ``NaN`` with fewer than two batches.
    """
    m = batch_means(x, n_batches)
    se = m.std(axis=0, ddof=1) / np.sqrt(m.shape[0]) if m.shape[0] > 1 else np.full(
        m.shape[1:], np.nan)
    return x.mean(axis=(0, 1)), se


def autocorrelation(x: np.ndarray) -> np.ndarray:
    """Per-chain normalised autocorrelation along axis 1 via FFT: ``[C, n, ...] → [C, n, ...]``.

    Chains are centred on the pooled mean over all chains and normalised by the pooled variance:
    for independent chains of one stationary law this removes the ``O(τ/n)`` downward bias that
    centring each chain on its own mean puts on every lag (it sums the autocorrelations to −½).
    """
    n = x.shape[1]
    y = x - x.mean(axis=(0, 1), keepdims=True) if x.shape[0] > 1 else x - x.mean(1, keepdims=True)
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(y, n=size, axis=1)
    acov = np.fft.irfft(f * np.conj(f), n=size, axis=1)[:, :n] / n
    var = acov[:, :1].mean(axis=0, keepdims=True)
    return acov / np.where(var > 0, var, 1.0)


def integrated_time(x: np.ndarray, window: float = 10.0) -> np.ndarray:
    """Integrated autocorrelation time per chain, ``τ = 1 + 2 Σ_{k≥1} ρ_k``.

    Two stages. Geyer's initial monotone sequence (pair sums ``Γ_m = ρ_{2m} + ρ_{2m+1}`` up to the
    first non-positive one) gives the time scale ``τ_G``; it is exact for reversible chains,
    including anticorrelated ones (SGD with ηh > 1: ``ρ_k = (1−ηh)^k``, τ < 1), but biased for
    non-reversible ones such as heavy-ball momentum, whose autocorrelation oscillates. The
    estimate is therefore the plain windowed sum ``1 + 2 Σ_{k=1}^{M} ρ_k`` with
    ``M = ⌈window · max(τ_G, 1)⌉``, which keeps the negative lobes.

    Args:
        x: ``[C, n, ...]``.
        window: Window length in units of ``max(τ_G, 1)``.

    Returns:
        ``[C, ...]`` estimates of τ.
    """
    rho = autocorrelation(x)
    n = x.shape[1]
    n_pairs = n // 2
    pairs = rho[:, 0:2 * n_pairs:2] + rho[:, 1:2 * n_pairs:2]  # Γ_m
    positive = np.cumprod(pairs > 0, axis=1).astype(bool)  # up to the first non-positive Γ
    monotone = np.minimum.accumulate(np.where(positive, pairs, 0.0), axis=1)
    tau_geyer = -1.0 + 2.0 * monotone.sum(axis=1)
    m = np.minimum(np.ceil(window * np.maximum(tau_geyer, 1.0)).astype(int), n - 1)
    partial = 2.0 * np.cumsum(rho, axis=1) - 1.0  # 1 + 2 Σ_{k=1}^{M} ρ_k at index M
    return np.take_along_axis(partial, np.expand_dims(m, 1), axis=1).squeeze(1)


def batches_for(tau: float, n: int, max_batches: int = 30, span: float = 10.0) -> int:
    """Batches per chain so that each spans at least ``span·τ`` draws (between 1 and max)."""
    if not np.isfinite(tau) or tau <= 0:
        return min(max_batches, max(1, int(np.sqrt(n))))
    return int(np.clip(n // max(span * tau, 1.0), 1, max_batches))
