"""Minibatch sampling schemes: i.i.d. indices, without replacement within a batch, epoch reshuffle.

The scheme is part of a run's identity: the stationary formulas (docs/theory.md, exact
laws) hold for i.i.d. batches
(noise covariance ``Σ_1/B``) and for batches drawn without replacement afresh each step
(``Σ_1 (N−B)/(B(N−1))``), but not for epoch reshuffling, whose successive batches are dependent.
"""

from __future__ import annotations

import torch
from torch import Tensor

SCHEMES = ("iid", "without_replacement", "epoch")


class IndexSampler:
    """Draws ``[C, B]`` example indices from an explicit generator.

    Args:
        scheme: One of ``SCHEMES``.
        n_examples: N.
        batch_size: B (at most N for the schemes without replacement).
        n_chains: C.
        device: Where the indices live.
    """

    def __init__(self, scheme: str, n_examples: int, batch_size: int, n_chains: int,
                 device: torch.device) -> None:
        if scheme not in SCHEMES:
            raise ValueError(f"run.sampling must be one of {list(SCHEMES)}, got {scheme!r}")
        if scheme != "iid" and batch_size > n_examples:
            raise ValueError(f"run.batch_size must be at most N = {n_examples} for sampling "
                             f"{scheme!r}, got {batch_size}")
        self.scheme, self.n, self.b, self.c, self.device = (
            scheme, n_examples, batch_size, n_chains, device)
        self.steps_per_epoch = n_examples // batch_size  # epoch: the last partial batch is dropped

    def initial_perm(self) -> Tensor:
        """The epoch permutation state, ``[C, N]`` (``[C, 0]`` for schemes without one)."""
        width = self.n if self.scheme == "epoch" else 0
        return torch.zeros(self.c, width, dtype=torch.long, device=self.device)

    def _permutations(self, generator: torch.Generator) -> Tensor:
        u = torch.rand(self.c, self.n, generator=generator, device=self.device)
        return u.argsort(dim=1)

    def draw(self, generator: torch.Generator, perm: Tensor, step: int) -> tuple[Tensor, Tensor]:
        """Indices for global step ``step`` and the (possibly renewed) epoch permutation."""
        if self.scheme == "iid":
            idx = torch.randint(self.n, (self.c, self.b), generator=generator, device=self.device)
            return idx, perm
        if self.scheme == "without_replacement":
            return self._permutations(generator)[:, :self.b], perm
        k = step % self.steps_per_epoch
        if k == 0:
            perm = self._permutations(generator)
        return perm[:, k * self.b:(k + 1) * self.b], perm
