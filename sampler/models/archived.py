"""What an archive says about a model whose code it does not hold: a user's module.

Reading an archive never imports code from it. For the ``torch`` kind the reader gets this
stand-in, built from the facts the run stored (dimension, dataset size, variables): it has no
gradients, so the analysis takes its virial temperatures from the engine's per-block sums
(``fluctuation/virial``) and exact theory does not apply.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import Batch, Model
from .network import Variable


class ArchivedModel(Model):
    """A model known only by its stored description (``Model.describe``) and variables.

    Args:
        facts: The run's stored ``model`` description (``name``, ``dim``, ``n_examples``, …).
        variables: θ's named blocks ``(name, shape, dims)``.
        dtype: The run's dtype.
    """

    opaque = True
    gradient_available = False

    def __init__(self, facts: dict[str, Any], variables: list[Any],
                 dtype: torch.dtype = torch.float64) -> None:
        self.facts = dict(facts)
        self.name = str(facts.get("name", "torch"))
        self.dim = int(facts["dim"])
        n = facts.get("n_examples")
        self.n_examples = None if n is None else int(n)
        self.dtype, self.device = dtype, torch.device("cpu")
        self._variables = [Variable(str(n), tuple(int(s) for s in shape), tuple(dims))
                           for n, shape, dims in variables]

    def variables(self) -> list[Variable]:
        """The stored parameter variables."""
        return list(self._variables)

    def full_grad_cheap(self) -> bool:
        """No gradient can be evaluated."""
        return False

    def _no_code(self, *_: Any) -> Any:
        raise RuntimeError(f"model {self.name!r}: its code is not imported when an archive is "
                           f"read; gradients at the draws are not available")

    def minibatch_grad(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Not available (module docstring)."""
        return self._no_code()

    def full_loss_grad(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """Not available (module docstring)."""
        return self._no_code()

    def describe(self) -> dict[str, Any]:
        """The stored description."""
        return dict(self.facts)
