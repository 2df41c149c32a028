"""The engine's step paths, and the one rule that chooses among them (``choose``).

* the general torch step, ``Engine.apply`` in ``sampler.engine``: any model and rule;
* ``fused_linear``: SGD and heavy-ball momentum on diagonal quadratics as a few fused torch
  operations per block (``"fused"``);
* ``native_diagonal`` and ``native_regression``: the same, and least squares, as one C pass per
  block (``"native"``; the C sources and their build live in ``sampler.native``), sharing
  ``native_block``;
* ``lean_sgd``: constant-rate SGD on any dataset model, networks and a user's module included,
  in the fewest elementwise passes per step (``"lean"``); the gradient is the model's own
  (``Model.step_grad``: for a user's module, ``vmap`` of ``grad(functional_call)``).

An archive names the path that wrote it and is continued by it (``kernel`` in the run's
attributes), so which path runs is decided in ``choose`` only.
"""

from __future__ import annotations

from .choose import KERNELS, FusedPath, choose, default_kernel

__all__ = ["KERNELS", "FusedPath", "choose", "default_kernel"]
