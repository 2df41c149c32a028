"""A small MLP classifier whose parameters are stacked per chain and called functionally."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from .base import DatasetModel


def _build_net(n_in: int, hidden: list[int], n_out: int, activation: str) -> nn.Sequential:
    act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    layers: list[nn.Module] = []
    sizes = [n_in, *hidden]
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), act()]
    layers.append(nn.Linear(sizes[-1], n_out))
    return nn.Sequential(*layers)


class MLP(DatasetModel):
    """Softmax classifier ``ℓ_i(θ) = −log softmax(f_θ(x_i))[y_i] + (l2/2)‖θ‖²``.

    ``f_θ`` is an ``nn.Sequential`` MLP evaluated with ``torch.func.functional_call`` on the
    parameters unflattened from one row of ``θ: [C, D]``; ``vmap`` runs all chains at once.

    Args:
        x: Inputs ``[N, p]``.
        y: Class labels ``[N]`` (stored as the input dtype and cast back to ``long``).
        n_classes: Number of classes.
        hidden: Hidden-layer widths.
        activation: ``"tanh"`` or ``"relu"``.
        l2: Ridge term.
    """

    name = "mlp"

    def __init__(self, x: Tensor, y: Tensor, n_classes: int, hidden: list[int],
                 activation: str = "tanh", l2: float = 0.0) -> None:
        net = _build_net(int(x.shape[1]), hidden, n_classes, activation).to(x.dtype)
        self.net = net.to(x.device)
        self._shapes = [(name, p.shape) for name, p in net.named_parameters()]
        dim = sum(math.prod(s) for _, s in self._shapes)
        super().__init__(x, y, dim=dim, l2=l2)
        self.hidden, self.n_classes = hidden, n_classes

    def unflatten(self, theta: Tensor) -> dict[str, Tensor]:
        """Split one chain's flat ``θ: [D]`` into the named parameter tensors."""
        out, start = {}, 0
        for name, shape in self._shapes:
            n = math.prod(shape)
            out[name] = theta[start:start + n].view(shape)
            start += n
        return out

    def example_loss(self, theta: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """Cross-entropy of one example."""
        logits = functional_call(self.net, self.unflatten(theta), (x.unsqueeze(0),))
        return F.cross_entropy(logits, y.long().unsqueeze(0))

    def init_params(self, generator: torch.Generator, n_chains: int, scale: float) -> Tensor:
        """Per-chain Glorot-style init: weights ``scale·N(0, 1/fan_in)``, biases zero."""
        rows = []
        for _, shape in self._shapes:
            n = math.prod(shape)
            if len(shape) == 2:
                w = torch.randn(n_chains, n, generator=generator, dtype=self.dtype,
                                device=self.device)
                rows.append(scale * w / math.sqrt(shape[1]))
            else:
                rows.append(torch.zeros(n_chains, n, dtype=self.dtype, device=self.device))
        return torch.cat(rows, dim=1)

    def describe(self) -> dict[str, Any]:
        """Dimension, dataset size, layer shapes."""
        return {**super().describe(), "hidden": self.hidden,
                "shapes": [[n, list(s)] for n, s in self._shapes]}
