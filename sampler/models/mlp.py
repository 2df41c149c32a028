"""A multilayer perceptron classifier, batched over chains (``network.Network``)."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from .network import ACTIVATIONS, Network, Variable, dense, dense_stack


class MLP(Network):
    """``f_θ(x) = W_L φ(… φ(W_1 x + b_1) …) + b_L`` with softmax cross-entropy.

    θ holds, layer by layer, ``w1 [h_1, p]``, ``b1 [h_1]``, …, ``wL [K, h_{L−1}]``, ``bL [K]``
    (PyTorch's ``nn.Linear`` layout and order, so archives written before the batched path
    read the same).

    Args:
        x: Inputs ``[N, p]``.
        y: Class labels ``[N]``.
        n_classes: K.
        hidden: Hidden-layer widths.
        activation: ``"tanh"`` or ``"relu"``.
        l2: Ridge term.
    """

    name = "mlp"

    def __init__(self, x: Tensor, y: Tensor, n_classes: int, hidden: list[int],
                 activation: str = "tanh", l2: float = 0.0) -> None:
        sizes = [int(x.shape[1]), *hidden, n_classes]
        params: list[Variable] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            params += dense(str(i + 1), a, b)
        super().__init__(x, y, params, width=max(sizes), l2=l2)
        self.hidden, self.n_classes, self.activation = hidden, n_classes, activation
        self._act = ACTIVATIONS[activation]

    def logits(self, layers: dict[str, Tensor], x: Tensor) -> Tensor:
        """Dense layers with the activation between them."""
        return dense_stack(layers, x, len(self.hidden) + 1, self._act)

    def chain_logits(self, layers: dict[str, Tensor], x: Tensor) -> Tensor:
        """One chain's logits with ``F.linear`` (its batching rule under ``vmap`` is a bmm)."""
        a = x
        for i in range(1, len(self.hidden) + 2):
            a = F.linear(a, layers[f"w{i}"], layers[f"b{i}"])
            if i <= len(self.hidden):
                a = self._act(a)
        return a

    def describe(self) -> dict[str, Any]:
        """Dimension, dataset size, layer shapes and widths."""
        return {**super().describe(), "hidden": self.hidden}
