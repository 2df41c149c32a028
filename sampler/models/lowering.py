"""A user's module made only of layers the built-in networks know, lowered to their batched form.

The general step (every rule but constant-rate SGD) needs the minibatch gradient as one ``[C, D]``
tensor. For the built-in ``mlp`` and ``cnn`` kinds it comes from one reverse pass through a
hand-batched forward (batched matmuls, grouped convolutions over the chains); a ``torch``-kind
module gets it from ``vmap(grad(functional_call))``. θ's layout is the same
(``named_parameters()`` order is the built-in order), so both forms give the same chains to
rounding (``tests/sampler/test_torch_builtin.py``), and the faster one is taken (``FASTER``). Measured
on the momentum step, float32, one thread, 16 and 64 chains (``benchmarks/RESULTS.md``): the
conv net lowered runs 1.02–1.07× the ``vmap`` form, the MLP 0.94–0.97×, so conv nets are
lowered and MLPs keep ``vmap``. The lean SGD path always keeps ``vmap`` (as fast or faster).

Recognised, as an ``nn.Sequential`` with the per-example cross-entropy on integer labels and no
buffers:

* MLP: ``[Flatten] Linear φ Linear φ … Linear``;
* CNN: ``[Unflatten(1, (1, s, s))] Conv2d(·, ·, 3, padding=1) φ … Flatten Linear φ … Linear``
  on square one-channel images ``[N, s²]`` or ``[N, 1, s, s]``,

with one activation φ throughout (``nn.Tanh`` or ``nn.ReLU``) and every layer with a bias.
Anything else keeps the general ``vmap`` form.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from .cnn import CNN
from .mlp import MLP
from .network import Network

_ACTIVATIONS = {nn.Tanh: "tanh", nn.ReLU: "relu"}
FASTER = frozenset({"cnn"})  # the lowered forms measured faster than vmap (module docstring)


def lowered(module: nn.Module, x: Tensor, y: Tensor, cross_entropy: bool,
            l2: float) -> Network | None:
    """The built-in network equal to ``module`` on ``(x, y)``, or None (module docstring)."""
    if (not cross_entropy or not isinstance(module, nn.Sequential) or y.dim() != 1
            or y.is_floating_point() or any(True for _ in module.buffers())):
        return None
    layers = list(module)
    acts = {_ACTIVATIONS.get(type(m)) for m in layers if type(m) in _ACTIVATIONS}
    if len(acts) != 1 or not all(getattr(m, "bias", True) is not None for m in layers):
        return None
    act = acts.pop()
    assert act is not None
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    if convs:
        return _cnn(layers, convs, x, y, act, l2)
    if layers and isinstance(layers[0], nn.Flatten) and layers[0].start_dim == 1:
        layers, x = layers[1:], x.flatten(1)
    hidden = _dense(layers, int(x.shape[1]) if x.dim() == 2 else -1)
    if hidden is None:
        return None
    return MLP(x, y, hidden[-1], hidden[:-1], act, l2)


def _dense(layers: list[nn.Module], n_in: int) -> list[int] | None:
    """Widths after each Linear of ``Linear φ … Linear`` fed ``n_in`` features, or None."""
    widths = []
    for i, m in enumerate(layers):
        want = nn.Linear if i % 2 == 0 else tuple(_ACTIVATIONS)
        if not isinstance(m, want) or (i % 2 == 0 and m.in_features != n_in):
            return None
        if isinstance(m, nn.Linear):
            n_in = m.out_features
            widths.append(n_in)
    return widths if layers and len(layers) % 2 == 1 else None


def _cnn(layers: list[nn.Module], convs: list[nn.Conv2d], x: Tensor, y: Tensor, act: str,
         l2: float) -> Network | None:
    """The built-in CNN of ``[Unflatten] (Conv2d φ)+ Flatten (Linear φ)* Linear``, or None."""
    side = math.isqrt(int(x[0].numel()))
    if side * side != x[0].numel() or not (x.dim() == 2 or tuple(x.shape[1:]) == (1, side, side)):
        return None
    if x.dim() == 2:
        if not (isinstance(layers[0], nn.Unflatten) and layers[0].dim == 1
                and tuple(layers[0].unflattened_size) == (1, side, side)):
            return None
        layers = layers[1:]
    channels, c_in = [], 1
    while layers and isinstance(layers[0], nn.Conv2d):
        m = layers[0]
        if (m.in_channels != c_in or m.kernel_size != (3, 3) or m.stride != (1, 1)
                or m.padding != (1, 1) or m.dilation != (1, 1) or m.groups != 1
                or m.padding_mode != "zeros" or len(layers) < 2
                or type(layers[1]) not in _ACTIVATIONS):
            return None
        channels.append(c_in := m.out_channels)
        layers = layers[2:]
    if len(channels) != len(convs) or not layers or not (
            isinstance(layers[0], nn.Flatten) and layers[0].start_dim == 1):
        return None
    widths = _dense(layers[1:], c_in * side * side)
    if widths is None:
        return None
    return CNN(x.reshape(x.shape[0], -1), y, widths[-1], channels, widths[:-1], act, l2)
