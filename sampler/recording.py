"""What a run records per draw (``run.record``): θ in full or a subset, projections, norms.

The engine always advances and checkpoints every coordinate; recording only chooses what of a
block's draws goes into the archive. A 10⁵-parameter network with 64 chains writes 25 MB of θ
per draw in full; a subset of 1 000 coordinates plus 16 projections writes 0.3 MB, while the
per-coordinate accumulators (fluctuation, stationarity identity, virial sums) keep all D.

The projection directions are drawn once, stored in the archive (``recording/directions``) and
read back by every shard, so a resumed run projects with the very same numbers on any machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:  # the engine takes a resolved Recording; only ``of`` reads the config table
    from .config.job import RecordConfig


def projection_directions(dim: int, k: int, seed: int) -> np.ndarray:
    """``U [D, k]``: k independent uniformly random unit vectors (normalised Gaussians)."""
    u = np.random.default_rng(seed).standard_normal((dim, k))
    return u / np.linalg.norm(u, axis=0)


@dataclass(frozen=True)
class Recording:
    """A run's recording choice, resolved for its model.

    Attributes:
        coords: The recorded coordinates of θ, increasing (``None``: all of them).
        directions: ``U [D, k]`` unit directions whose projections ``θU`` are recorded, or
            ``None``.
        layers: ``(name, first, end)`` of each named block of θ whose norm ``‖θ[first:end]‖``
            is recorded (``posterior/<name>_norm``), or ``None``.
        sums_virial: Keep the virial sums although θ is recorded in full (a user's module: the
            analysis never imports its code, so it cannot evaluate gradients at the draws).
    """

    coords: np.ndarray | None
    directions: np.ndarray | None
    layers: tuple[tuple[str, int, int], ...] | None = None
    sums_virial: bool = False
    _on_device: dict[str, tuple[Tensor | None, Tensor | None]] = field(
        default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, record: RecordConfig, dim: int,
           variables: list[tuple[str, int]] | None = None,
           sums_virial: bool = False) -> Recording:
        """The choice of ``run.record`` for a D-coordinate model (raises on a bad index).

        ``variables``: the model's named blocks ``(name, size)`` in order (``[]``: one θ).
        """
        idx = record.indices(dim)
        layers = None
        if record.layer_norms:
            ends = np.cumsum([size for _, size in variables or [("theta", dim)]])
            layers = tuple((name, int(end - size), int(end)) for (name, size), end in zip(
                variables or [("theta", dim)], ends, strict=True))
        return cls(None if idx is None else np.asarray(idx, dtype=np.int64),
                   projection_directions(dim, record.projections, record.seed)
                   if record.projections else None, layers, sums_virial)

    @property
    def partial(self) -> bool:
        """Whether θ is recorded as a subset (then the engine keeps the virial sums)."""
        return self.coords is not None

    @property
    def keeps_virial(self) -> bool:
        """Whether the engine sums ``θ, θ⊙g_B, g_B`` per block (``fluctuation/virial``)."""
        return self.partial or self.sums_virial

    def n_coords(self, dim: int) -> int:
        """Recorded coordinates of θ."""
        return dim if self.coords is None else len(self.coords)

    def n_recorded(self, dim: int) -> int:
        """Numbers per draw and chain: recorded coordinates, projections and norms."""
        return (self.n_coords(dim) + (0 if self.directions is None else self.directions.shape[1])
                + len(self.layers or ()))

    def _tensors(self, device: torch.device) -> tuple[Tensor | None, Tensor | None]:
        """The coordinates and directions as tensors on ``device``, made once per device."""
        key = str(device)
        if key not in self._on_device:
            self._on_device[key] = (
                None if self.coords is None else torch.as_tensor(self.coords, device=device),
                None if self.directions is None else torch.as_tensor(
                    self.directions, dtype=torch.float64, device=device))
        return self._on_device[key]

    def pick(self, theta: Tensor) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """The recorded part of draws ``theta [..., D]``: coordinates, projections, norms.

        The engine calls this at every recorded step, so a block holds only what is recorded.
        Projections and norms are computed in float64 and kept in θ's dtype; norms are
        ``[..., L]``, one per layer.
        """
        idx, u = self._tensors(theta.device)
        picked = theta if idx is None else theta[..., idx]
        proj = norms = None
        if u is not None:
            proj = (theta.double() @ u).to(theta.dtype)
        if self.layers is not None:
            norms = torch.stack([torch.linalg.vector_norm(theta[..., lo:hi].double(), dim=-1)
                                 for _, lo, hi in self.layers], -1).to(theta.dtype)
        return picked, proj, norms
