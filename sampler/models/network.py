"""Neural-network classifiers evaluated for many chains at once, with named per-layer parameters.

A chain's parameters are one row of ``θ [C, D]``; a network reads its layers as views of that row
(``layers``), runs the forward pass for all chains together (batched matmuls, grouped
convolutions) and gets every chain's gradient from ONE reverse pass: the chains are independent,
so ``∂/∂θ_c Σ_c' L_c'(θ_c') = ∇L_c(θ_c)``. The per-example loss ``example_loss`` (one chain, one
example, ``torch.func``) stays the reference the tests check the batched path against, and the
path for per-example gradients (the preconditioned rules).

Each layer is a named variable with named dims (``Variable``), e.g. ``w1 (w1_out, w1_in)`` and
``b1 (w1_out,)``: the archive stores θ flat and the reader presents these variables to ArviZ.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import grad_and_value, vmap

from .base import Batch, DatasetModel, indices_of
from .batching import add_ridge, gather_rows, over_chain_chunks

MAX_ACTIVATIONS = 2**23  # elements of the widest activation per chunk of chains (32 MB float32)


class Variable(NamedTuple):
    """A named block of θ: its shape per chain and the names of its dims."""

    name: str
    shape: tuple[int, ...]
    dims: tuple[str, ...]

    @property
    def size(self) -> int:
        """Number of coordinates."""
        return math.prod(self.shape)


class Network(DatasetModel):
    """Softmax classifier ``ℓ_i(θ) = −log softmax(f_θ(x_i))[y_i] + (l2/2)‖θ‖²``.

    Subclasses set ``self.params`` (the ``Variable`` list, in θ order) and implement
    ``logits(layers, x)`` for a chunk of chains.

    Args:
        x: Inputs ``[N, ...]``.
        y: Class labels ``[N]`` (stored in the input dtype, cast to ``long``).
        params: The parameter variables, in θ order.
        width: The widest activation per example (bounds the chunk of chains).
        l2: Ridge term.
    """

    def __init__(self, x: Tensor, y: Tensor, params: list[Variable], width: int,
                 l2: float = 0.0) -> None:
        self.params, self.width = params, width
        super().__init__(x, y, dim=sum(v.size for v in params), l2=l2)

    def variables(self) -> list[Variable]:
        """The parameters by layer (``Model.variables``)."""
        return list(self.params)

    def layers(self, theta: Tensor) -> dict[str, Tensor]:
        """Views ``[R, *shape]`` of θ's rows ``[R, D]``, by variable name (no copy)."""
        out, start = {}, 0
        for v in self.params:
            out[v.name] = theta[:, start:start + v.size].unflatten(1, v.shape)
            start += v.size
        return out

    def logits(self, layers: dict[str, Tensor], x: Tensor) -> Tensor:
        """``f_θ(x)`` ``[R, B, K]`` for inputs ``[R, B, ...]`` (or shared ``[B, ...]``)."""
        raise NotImplementedError

    def chain_logits(self, layers: dict[str, Tensor], x: Tensor) -> Tensor:
        """``f_θ(x)`` ``[B, K]`` for ONE chain's layers (``vmap`` batches it over chains)."""
        return self.logits({k: v.unsqueeze(0) for k, v in layers.items()}, x.unsqueeze(0))[0]

    def example_loss(self, theta: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """Cross-entropy of one example for one chain (the reference of the batched path)."""
        layers = self.layers(theta.unsqueeze(0))
        logits = self.logits(layers, x.unsqueeze(0).unsqueeze(0))[0, 0]
        return F.cross_entropy(logits.unsqueeze(0), y.long().unsqueeze(0))

    def _loss_grad(self, theta: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Mean loss ``[R]`` and its gradient ``[R, D]`` over the examples of each row.

        Each layer is its own autograd leaf (a view of θ detached): the reverse pass then writes
        each layer's gradient once, instead of a zero-filled ``[R, D]`` per view.
        """
        with torch.enable_grad():
            layers = {k: v.detach().requires_grad_(True) for k, v in self.layers(theta).items()}
            logits = self.logits(layers, x)
            k = logits.shape[-1]
            labels = y.long().expand(logits.shape[:-1]).reshape(-1)
            losses = F.cross_entropy(logits.reshape(-1, k), labels, reduction="none")
            loss = losses.view(logits.shape[:-1]).mean(-1)
            grads = torch.autograd.grad(loss.sum(), list(layers.values()))
        grad = torch.cat([g.flatten(1) for g in grads], 1)
        loss = loss.detach()
        if self.l2:
            grad.add_(theta, alpha=self.l2)
            loss = loss + 0.5 * self.l2 * (theta * theta).sum(-1)
        return loss, grad

    def minibatch_grad(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Loss and ``g_B`` of every chain from one batched forward and one reverse pass."""
        b = indices_of(batch).shape[1]
        return over_chain_chunks(self._minibatch_grad, theta, batch, b * self.width,
                                 max_elements=MAX_ACTIVATIONS)

    def _minibatch_grad(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        idx = indices_of(batch)
        return self._loss_grad(theta, gather_rows(self.x, idx), gather_rows(self.y, idx))

    def step_grad_parts(self, theta: Tensor, buffers: dict[str, Tensor], batch: Batch,
                        with_loss: bool = True
                        ) -> tuple[Tensor | None, list[Tensor], dict[str, Tensor]]:
        """Loss and ``g_B`` per layer ``[C, n_k]`` by ``vmap(grad(·))`` over the chains.

        The lean path's gradient (``kernels.lean_sgd``): torch.func's ensembling form, measured
        faster on CPU than the one reverse pass through the batched forward that
        ``minibatch_grad`` takes (the general step keeps that one, so archives it wrote resume
        bitwise). Equal to it to rounding (``tests/sampler/test_lean_sgd.py``).
        """
        idx = indices_of(batch)
        xb, yb = gather_rows(self.x, idx), gather_rows(self.y, idx)

        def mean_loss(layers: dict[str, Tensor], xs: Tensor, ys: Tensor) -> Tensor:
            return F.cross_entropy(self.chain_logits(layers, xs), ys.long())

        grads, loss = vmap(grad_and_value(mean_loss))(self.layers(theta), xb, yb)
        parts = [g.flatten(1) for g in grads.values()]
        if self.l2:
            add_ridge(parts, theta, self.l2)
            loss = loss + 0.5 * self.l2 * (theta * theta).sum(-1)
        return loss, parts, buffers

    def minibatch_gradient(self, theta: Tensor, batch: Batch) -> Tensor:
        """``g_B`` alone (the loss comes free with the forward pass)."""
        return self.minibatch_grad(theta, batch)[1]

    def full_loss_grad(self, theta: Tensor, chunk: int = 4096) -> tuple[Tensor, Tensor]:
        """``L`` and ``∇L`` over all N examples, in chunks of rows bounded by the activations."""
        rows = max(1, MAX_ACTIVATIONS // (self.n_examples * self.width))
        parts = [self._loss_grad(theta[i:i + rows], self.x, self.y)
                 for i in range(0, theta.shape[0], rows)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def init_params(self, generator: torch.Generator, n_chains: int, scale: float) -> Tensor:
        """Per-chain Glorot-style init: weights ``scale·N(0, 1/fan_in)``, biases zero."""
        rows = []
        for v in self.params:
            if len(v.shape) >= 2:
                w = torch.randn(n_chains, v.size, generator=generator, dtype=self.dtype,
                                device=self.device)
                rows.append(scale * w / math.sqrt(math.prod(v.shape[1:])))
            else:
                rows.append(torch.zeros(n_chains, v.size, dtype=self.dtype, device=self.device))
        return torch.cat(rows, dim=1)

    def describe(self) -> dict[str, Any]:
        """Dimension, dataset size and the parameter variables."""
        return {**super().describe(),
                "shapes": [[v.name, list(v.shape)] for v in self.params]}


def dense(name: str, n_in: int, n_out: int) -> list[Variable]:
    """A dense layer's weight ``[out, in]`` (PyTorch's layout) and bias ``[out]``."""
    return [Variable(f"w{name}", (n_out, n_in), (f"w{name}_out", f"w{name}_in")),
            Variable(f"b{name}", (n_out,), (f"w{name}_out",))]


def apply_dense(layers: dict[str, Tensor], name: str, a: Tensor) -> Tensor:
    """``a W_lᵀ + b_l`` for ``a [R, B, in]`` (or shared ``[B, in]``), per row's own W, b."""
    w, b = layers[f"w{name}"], layers[f"b{name}"]
    if a.dim() == 2:
        return torch.matmul(a, w.transpose(1, 2)) + b.unsqueeze(1)
    return torch.baddbmm(b.unsqueeze(1), a, w.transpose(1, 2))


ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


def dense_stack(layers: dict[str, Tensor], a: Tensor, n_layers: int, act: Any) -> Tensor:
    """Dense layers ``1 … n_layers`` with ``act`` between them (none after the last)."""
    for i in range(1, n_layers + 1):
        a = apply_dense(layers, str(i), a)
        if i < n_layers:
            a = act(a)
    return a
