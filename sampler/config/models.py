"""Model tables: each ``build``s its model (``sampler.models``), scaled by ``loss_scale``."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from ..low_rank import DiagPlusLowRank
from ..models import (
    CNN,
    MLP,
    LinearRegression,
    LogisticRegression,
    MeanModel,
    Model,
    Quadratic,
    ScaledModel,
)
from ..models.data import Synthetic, digits, regression_data
from ..models.low_rank_quadratic import LowRankQuadratic
from .base import PositiveFloat, _Strict, kinds
from .matrices import HessianTable, LowRank, NoiseOfHessian, NoiseTable, factored, values
from .torch_model import TorchConfig


class _Model(_Strict):
    loss_scale: PositiveFloat = Field(
        1.0, description="Multiply the loss by this (1/ln 2: nats to bits).")

    def build(self, batch_size: int, dtype: torch.dtype = torch.float64,
              device: str | torch.device = "cpu") -> Model:
        """The model on a dtype and device, scaled by ``loss_scale``."""
        model = self.build_loss(batch_size, dtype, device)
        return model if self.loss_scale == 1.0 else ScaledModel(model, self.loss_scale)

    def build_loss(self, batch_size: int, dtype: torch.dtype,
                   device: str | torch.device) -> Model:
        """The unscaled model."""
        raise NotImplementedError


def _tensor(a: np.ndarray, dtype: torch.dtype, device: str | torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


class QuadraticConfig(_Model):
    """``L = ½θᵀHθ`` with per-example gradient noise ``N(0, Σ)`` (minibatch: ``Σ/B``).

    H and Σ both diagonal (lists or spectra) are kept as vectors: O(D) per step, no D×D matrix;
    either diagonal plus low rank (``LowRank``) keeps both factored: O(Dk) per step.
    """

    kind: Literal["quadratic"] = "quadratic"
    hessian: HessianTable = Field(
        description="H: a list (the diagonal), a list of rows (full symmetric matrix), a "
        "spectrum table {spectrum, d, first, last} (diagonal) or a low-rank table "
        "{diagonal, spikes, directions, seed}.")
    noise_cov: NoiseTable = Field(
        description="Σ, per-example gradient noise covariance: diagonal list, rows, spectrum, "
        "low-rank table, or {isotropic = α, hessian = β} for Σ = αI + βH.")

    def build_loss(self, batch_size: int, dtype: torch.dtype,
                   device: str | torch.device) -> Model:
        """``Quadratic`` or ``LowRankQuadratic`` (validates H and Σ)."""
        h, s = self.hessian, self.noise_cov
        if isinstance(h, LowRank) or isinstance(s, LowRank):
            hf = factored(h, "model.hessian")
            sf = (DiagPlusLowRank(s.isotropic + s.hessian * hf.diag, hf.factors,
                                  s.hessian * hf.weights) if isinstance(s, NoiseOfHessian)
                  else factored(s, "model.noise_cov"))
            return LowRankQuadratic(hf, sf, batch_size, dtype, device)
        hv = values(h, "model.hessian")
        if isinstance(s, NoiseOfHessian):
            eye = np.ones(hv.shape[0]) if hv.ndim == 1 else np.eye(hv.shape[0])
            sv = s.isotropic * eye + s.hessian * hv
        else:
            sv = values(s, "model.noise_cov")
        return Quadratic.from_values(hv, sv, batch_size, dtype, device)


class DataConfig(_Strict):
    """Where a regression model's data comes from: synthetic (default) or a file."""

    file: str | None = Field(None, description="Path to a .npz (arrays X, y) or .csv file.")
    dataset: Literal["synthetic", "diabetes"] = Field(
        "synthetic", description="diabetes: scikit-learn's bundled data (442 × 10), features "
        "and target standardised.")
    target: str | None = Field(None, description="CSV column of the target (default: last).")
    n: int = Field(1024, gt=0, description="Synthetic: number of examples N.")
    d: int = Field(8, gt=0, description="Synthetic: number of features.")
    condition: float = Field(10.0, ge=1, description="Synthetic: ratio of largest to smallest "
                             "feature scale (anisotropy).")
    noise_std: float = Field(1.0, ge=0, description="Synthetic linear: label noise std.")
    seed: int = Field(0, description="Seed of the synthetic data (independent of the job seed).")
    standardize: bool = Field(False, description="File data: standardise the feature columns.")
    intercept: bool = Field(False, description="Append a constant-1 feature.")

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if self.file is not None and self.dataset != "synthetic":
            raise ValueError(f"give file or dataset, not both (got file {self.file!r} and "
                             f"dataset {self.dataset!r})")
        return self

    def load(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """``(X, y)`` for a model of this kind (``models.data.regression_data``)."""
        synthetic = Synthetic(self.n, self.d, self.condition, self.noise_std, self.seed)
        return regression_data(kind, self.dataset, self.file, self.target, self.standardize,
                               self.intercept, synthetic)


class MeanConfig(_Model):
    """The seeds' ``ℓ_i(β) = ½(β − y_i)²``: explicit values, or N draws of ``N(loc, scale²)``."""

    kind: Literal["mean"] = "mean"
    values: list[float] | None = Field(None, description="The dataset y; overrides n/loc/scale.")
    n: int = Field(100, gt=1, description="Synthetic dataset size.")
    loc: float = Field(0.0, description="Mean of the drawn values.")
    scale: PositiveFloat = Field(1.0, description="Standard deviation of the drawn values.")
    seed: int = Field(0, description="Seed of the drawn values.")

    def build_loss(self, batch_size: int, dtype: torch.dtype,
                   device: str | torch.device) -> Model:
        """``MeanModel`` on the values or on N seeded draws."""
        y = (np.asarray(self.values, float) if self.values is not None else
             np.random.default_rng(self.seed).normal(self.loc, self.scale, self.n))
        return MeanModel(_tensor(y, dtype, device))


class LinearRegressionConfig(_Model):
    """Least squares ``½(xᵀθ − y)²`` on synthetic anisotropic data or a user's file."""

    kind: Literal["linear_regression"] = "linear_regression"
    data: DataConfig = Field(DataConfig(), description="The dataset: a file, scikit-learn's "
                             "diabetes or synthetic data ([model.data]).")
    l2: float = Field(0.0, ge=0, description="Ridge term (l2/2)‖θ‖² on every example.")

    def build_loss(self, batch_size: int, dtype: torch.dtype,
                   device: str | torch.device) -> Model:
        """``LinearRegression`` on the configured data."""
        x, y = self.data.load(self.kind)
        return LinearRegression(_tensor(x, dtype, device), _tensor(y, dtype, device), l2=self.l2)


class LogisticRegressionConfig(_Model):
    """Binary logistic regression on synthetic anisotropic data or a user's file (y in {0,1})."""

    kind: Literal["logistic_regression"] = "logistic_regression"
    data: DataConfig = Field(DataConfig(), description="The dataset: a file, scikit-learn's "
                             "diabetes or synthetic data ([model.data]).")
    l2: float = Field(1e-3, ge=0, description="Ridge term; keeps the minimum finite.")

    def build_loss(self, batch_size: int, dtype: torch.dtype,
                   device: str | torch.device) -> Model:
        """``LogisticRegression`` on the configured data (targets 0/1)."""
        x, y = self.data.load(self.kind)
        return LogisticRegression(_tensor(x, dtype, device), _tensor(y, dtype, device),
                                  l2=self.l2)


class _DigitsNetwork(_Model):
    """A classifier on scikit-learn's digits (ships with scikit-learn, nothing downloaded)."""

    l2: float = Field(1e-4, ge=0, description="Ridge (l2/2)‖θ‖² added to the loss.")
    n: int | None = Field(None, gt=0, description="Use only the first n examples.")

    def _digits(self, dtype: torch.dtype,
                device: str | torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = digits(self.n)
        return _tensor(x, dtype, device), _tensor(y, dtype, device)


class MLPConfig(_DigitsNetwork):
    """MLP classifier on the digits (``hidden`` widths, 10 classes)."""

    kind: Literal["mlp"] = "mlp"
    hidden: list[Annotated[int, Field(gt=0)]] = Field(
        [16], description="Hidden-layer widths ([384, 256]: 126 090 parameters).")
    activation: Literal["tanh", "relu"] = Field("tanh", description="Activation between "
                                                "layers.")

    def build_loss(self, batch_size: int, dtype: torch.dtype,
                   device: str | torch.device) -> Model:
        """``MLP`` on the digits (10 classes)."""
        return MLP(*self._digits(dtype, device), n_classes=10, hidden=list(self.hidden),
                   activation=self.activation, l2=self.l2)


class CNNConfig(_DigitsNetwork):
    """Convolutional classifier on the 8 × 8 digits (3×3 convolutions, then dense layers)."""

    kind: Literal["cnn"] = "cnn"
    channels: list[Annotated[int, Field(gt=0)]] = Field(
        [8, 16], min_length=1, description="Output channels of each 3×3 convolution "
        "(padding 1).")
    hidden: list[Annotated[int, Field(gt=0)]] = Field(
        [32], description="Widths of the dense layers after the convolutions.")
    activation: Literal["tanh", "relu"] = Field("relu", description="Activation after every "
                                                "layer but the last.")

    def build_loss(self, batch_size: int, dtype: torch.dtype,
                   device: str | torch.device) -> Model:
        """``CNN`` on the digits (10 classes)."""
        return CNN(*self._digits(dtype, device), n_classes=10, channels=list(self.channels),
                   hidden=list(self.hidden), activation=self.activation, l2=self.l2)


ModelConfig = Annotated[
    QuadraticConfig | MeanConfig | LinearRegressionConfig | LogisticRegressionConfig | MLPConfig
    | CNNConfig | TorchConfig,
    Field(discriminator="kind"),
]


MODEL_KINDS: list[str] = kinds(ModelConfig)
