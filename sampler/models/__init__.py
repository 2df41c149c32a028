"""Models: losses evaluated for many chains at once. ``build_model`` turns a config into one."""

from __future__ import annotations

import numpy as np
import torch

from ..config import (
    LinearRegressionConfig,
    LogisticRegressionConfig,
    MeanConfig,
    MLPConfig,
    ModelConfig,
    QuadraticConfig,
)
from .base import Batch, DatasetModel, Model
from .data import DataError, digits, regression_data
from .mlp import MLP
from .quadratic import Quadratic
from .regression import LinearRegression, LogisticRegression, MeanModel
from .scaled import ScaledModel

__all__ = ["Batch", "DataError", "DatasetModel", "LinearRegression", "LogisticRegression",
           "MLP", "MeanModel", "Model", "Quadratic", "ScaledModel", "build_model", "as_matrix"]


def as_matrix(values: list[float] | list[list[float]], field: str) -> np.ndarray:
    """A diagonal list or a list of rows as a square symmetric matrix; errors name the field."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 1:
        arr = np.diag(arr)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise DataError(f"{field}: expected a list or a square list of rows, got shape "
                        f"{list(arr.shape)}")
    if not np.allclose(arr, arr.T):
        raise DataError(f"{field}: must be symmetric, got {arr.tolist()}")
    return arr


def build_model(cfg: ModelConfig, batch_size: int, dtype: torch.dtype = torch.float64,
                device: str | torch.device = "cpu") -> Model:
    """Instantiate a model from its config (scaled by ``loss_scale``) on a dtype and device."""
    model = _build_unscaled(cfg, batch_size, dtype, device)
    return model if cfg.loss_scale == 1.0 else ScaledModel(model, cfg.loss_scale)


def _build_unscaled(cfg: ModelConfig, batch_size: int, dtype: torch.dtype,
                    device: str | torch.device) -> Model:

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)

    if isinstance(cfg, QuadraticConfig):
        h = as_matrix(cfg.hessian, "model.hessian")
        s = as_matrix(cfg.noise_cov, "model.noise_cov")
        if h.shape != s.shape:
            raise DataError(f"model.noise_cov: expected shape {list(h.shape)} to match "
                            f"model.hessian, got {list(s.shape)}")
        if np.linalg.eigvalsh(h).min() <= 0:
            raise DataError(f"model.hessian: must be positive definite, eigenvalues "
                            f"{np.linalg.eigvalsh(h).round(6).tolist()}")
        if np.linalg.eigvalsh(s).min() < -1e-12:
            raise DataError("model.noise_cov: must be positive semi-definite")
        return Quadratic(t(h), t(s), batch_size)
    if isinstance(cfg, MeanConfig):
        y = (np.asarray(cfg.values, float) if cfg.values is not None else
             np.random.default_rng(cfg.seed).normal(cfg.loc, cfg.scale, cfg.n))
        return MeanModel(t(y))
    if isinstance(cfg, LinearRegressionConfig | LogisticRegressionConfig):
        x, y = regression_data(cfg.data, cfg.kind)
        cls = LinearRegression if cfg.kind == "linear_regression" else LogisticRegression
        return cls(t(x), t(y), l2=cfg.l2)
    if isinstance(cfg, MLPConfig):
        x, y = digits(cfg.n)
        return MLP(t(x), t(y), n_classes=10, hidden=list(cfg.hidden),
                   activation=cfg.activation, l2=cfg.l2)
    raise TypeError(f"model: unknown config type {type(cfg).__name__}")
