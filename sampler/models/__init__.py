"""Models: losses evaluated for many chains at once (``base.Model`` is the protocol).

Each model module owns its math: loss, gradients and, where it has one, its exact linear-gradient
form (``Model.linear_gradient``). Models know nothing of configs: ``sampler.config`` builds them
(``ModelConfig.build``).
"""

from __future__ import annotations

from .base import Batch, DatasetModel, FullBatch, IndexBatch, Model, NoiseBatch, SurrogateBatch
from .cnn import CNN
from .data import DataError
from .mlp import MLP
from .network import Network, Variable
from .quadratic import Quadratic, as_matrix
from .regression import LinearRegression, LogisticRegression, MeanModel
from .scaled import ScaledModel

__all__ = ["Batch", "CNN", "DataError", "DatasetModel", "FullBatch", "IndexBatch", "NoiseBatch",
           "Network", "SurrogateBatch", "LinearRegression", "LogisticRegression", "MLP",
           "MeanModel", "Model", "Quadratic", "ScaledModel", "Variable", "as_matrix"]
