"""A small convolutional classifier for square images, batched over chains.

Every chain has its own filters, so the chains' images are stacked along the channel axis and
each convolution is ONE grouped convolution with ``groups = R`` (rows of θ in the chunk): group
``r`` sees only chain ``r``'s channels and filters.
"""

from __future__ import annotations

import math
from typing import Any

import torch.nn.functional as F
from torch import Tensor

from .network import ACTIVATIONS, Network, Variable, dense, dense_stack


def conv(name: str, c_in: int, c_out: int, k: int) -> list[Variable]:
    """A convolution's filters ``[out, in, k, k]`` (PyTorch's layout) and bias ``[out]``."""
    dims = (f"conv{name}_out", f"conv{name}_in", f"conv{name}_kh", f"conv{name}_kw")
    return [Variable(f"conv{name}_w", (c_out, c_in, k, k), dims),
            Variable(f"conv{name}_b", (c_out,), (f"conv{name}_out",))]


class CNN(Network):
    """``3×3`` convolutions (stride 1, padding 1) with the activation, then dense layers.

    ``f_θ(x) = dense(φ(conv_k(… φ(conv_1(x)) …)))`` on images ``[side, side]`` with one channel;
    the last convolution's maps are flattened into the dense part (``hidden`` widths, then K).

    Args:
        x: Images flattened ``[N, side²]`` (digits: 8 × 8).
        y: Class labels ``[N]``.
        n_classes: K.
        channels: Output channels of each convolution.
        hidden: Widths of the dense hidden layers after the convolutions.
        activation: ``"tanh"`` or ``"relu"``.
        l2: Ridge term.
    """

    name = "cnn"

    def __init__(self, x: Tensor, y: Tensor, n_classes: int, channels: list[int],
                 hidden: list[int], activation: str = "relu", l2: float = 0.0) -> None:
        self.side = math.isqrt(int(x.shape[1]))
        if self.side * self.side != x.shape[1]:
            raise ValueError(f"cnn needs square images, got {int(x.shape[1])} pixels")
        params: list[Variable] = []
        for i, (a, b) in enumerate(zip([1, *channels[:-1]], channels, strict=True)):
            params += conv(str(i + 1), a, b, 3)
        sizes = [channels[-1] * self.side ** 2, *hidden, n_classes]
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            params += dense(str(i + 1), a, b)
        pixels = self.side ** 2
        super().__init__(x, y, params, width=max(max(channels) * pixels, *sizes), l2=l2)
        self.channels, self.hidden, self.n_classes = channels, hidden, n_classes
        self.activation, self._act = activation, ACTIVATIONS[activation]

    def logits(self, layers: dict[str, Tensor], x: Tensor) -> Tensor:
        """Grouped convolutions over the rows, then the dense layers per row."""
        rows = layers["conv1_w"].shape[0]
        shared = x.dim() == 2
        n = x.shape[0] if shared else x.shape[1]
        if shared:  # [N, P] for every row: the same images in every group
            a = x.view(n, 1, self.side, self.side).expand(n, rows, self.side, self.side)
        else:  # [R, B, P] → [B, R, side, side]
            a = x.transpose(0, 1).reshape(n, rows, self.side, self.side)
        for i in range(1, len(self.channels) + 1):
            w, b = layers[f"conv{i}_w"], layers[f"conv{i}_b"]
            a = F.conv2d(a, w.reshape(-1, *w.shape[2:]), b.reshape(-1), padding=1, groups=rows)
            a = self._act(a)
        a = a.view(n, rows, -1).transpose(0, 1)  # [R, B, C_last·side²]
        return dense_stack(layers, a, len(self.hidden) + 1, self._act)

    def describe(self) -> dict[str, Any]:
        """Dimension, dataset size, layer shapes and sizes."""
        return {**super().describe(), "channels": self.channels, "hidden": self.hidden}
