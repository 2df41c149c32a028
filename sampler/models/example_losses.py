"""The per-example losses a ``torch``-kind config names: ``ℓ(output [B, ...], y [B, ...]) → [B]``."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor

Loss = Callable[[Tensor, Tensor], Tensor]


def cross_entropy(output: Tensor, y: Tensor) -> Tensor:
    """``−log softmax(output)[y]`` per example ``[B]`` (extra axes averaged)."""
    out = F.cross_entropy(output, y.long(), reduction="none")
    return out.flatten(1).mean(1) if out.dim() > 1 else out


def mse(output: Tensor, y: Tensor) -> Tensor:
    """``mean_k (output_k − y_k)²`` per example ``[B]`` (``F.mse_loss`` averaged per example)."""
    diff = output - y.reshape(output.shape)
    return diff.square().flatten(1).mean(1) if diff.dim() > 1 else diff.square()


LOSSES: dict[str, Loss] = {"cross_entropy": cross_entropy, "mse": mse}
