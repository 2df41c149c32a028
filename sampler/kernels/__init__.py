"""The engine's step paths, and the one rule that chooses among them (``choose``).

* ``general_step``: the general torch step (``Engine.step`` each step, with the block's sums
  around it): any model, rule and sampling scheme (``"step"``);
* ``fused_linear``: SGD and heavy-ball momentum on diagonal quadratics as a few fused torch
  operations per block (``"fused"``);
* ``native_diagonal`` and ``native_regression``: the same, and least squares, as one C pass per
  block (``"native"``; the C sources and their build live in ``sampler.native``), sharing
  ``native_block``;
* ``lean_sgd``: constant-rate SGD on any dataset model, networks and a user's module included,
  in the fewest elementwise passes per step (``"lean"``); the gradient is the model's own
  (``Model.step_grad_parts``: for a user's module, ``vmap`` of ``grad(functional_call)``);
  ``native_lean`` makes its step one C pass per layer (``"lean_native"``).

An archive names the path that wrote it and is continued by it (``kernel`` in the run's
attributes), so which path runs is decided in ``choose`` only.
"""

from __future__ import annotations

from .choose import KERNELS, FusedPath, choose, default_kernel

__all__ = ["KERNELS", "FusedPath", "choose", "default_kernel"]
