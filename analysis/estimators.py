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
    """Per-chain normalised autocorrelation along axis 1 via FFT: ``[C, n, ...] → [C, n, ...]``."""
    n = x.shape[1]
    y = x - x.mean(axis=1, keepdims=True)
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(y, n=size, axis=1)
    acov = np.fft.irfft(f * np.conj(f), n=size, axis=1)[:, :n] / n
    return acov / np.where(acov[:, :1] > 0, acov[:, :1], 1.0)


def integrated_time(x: np.ndarray, window: float = 5.0) -> np.ndarray:
    """Integrated autocorrelation time per chain, ``τ = 1 + 2 Σ_{k≥1} ρ_k`` (Sokal's window).

    The sum is cut at the smallest M with ``M ≥ window·τ(M)`` (emcee's automatic window). Negative
    lags beyond are ignored, so τ < 1 (anticorrelated chains, ηh > 1) is estimated correctly.

    Args:
        x: ``[C, n, ...]``.
        window: Sokal's constant c.

    Returns:
        ``[C, ...]`` estimates of τ.
    """
    rho = autocorrelation(x)
    taus = 2.0 * np.cumsum(rho, axis=1) - 1.0  # τ(M) = 1 + 2 Σ_{k=1}^{M} ρ_k
    m = np.arange(x.shape[1]).reshape(1, -1, *([1] * (x.ndim - 2)))
    ok = m >= window * taus
    first = np.where(ok.any(axis=1), ok.argmax(axis=1), x.shape[1] - 1)
    return np.take_along_axis(taus, np.expand_dims(first, 1), axis=1).squeeze(1)
