"""Matrix-valued config fields: a list, rows, a spectrum table or a diagonal-plus-low-rank table.

``model.hessian`` and ``model.noise_cov`` of a quadratic take any of these; a table's keys choose
its kind (``_table_tag``), so an error names the one field that is wrong.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, Discriminator, Field, Tag

from ..low_rank import DiagPlusLowRank, random_factors
from ..models.data import DataError
from .base import PositiveFloat, _Strict


class Spectrum(_Strict):
    """A diagonal of ``d`` values from ``first`` to ``last`` (for thousands of coordinates)."""

    spectrum: Literal["geometric", "linear"] = Field(
        "geometric", description="geometric: log-spaced values; linear: evenly spaced.")
    d: int = Field(gt=0, description="Number of coordinates D.")
    first: PositiveFloat = Field(description="The first diagonal value.")
    last: PositiveFloat = Field(description="The last diagonal value.")

    def values(self) -> np.ndarray:
        """The D diagonal values."""
        space = np.geomspace if self.spectrum == "geometric" else np.linspace
        return np.asarray(space(self.first, self.last, self.d), dtype=float)


class LowRank(_Strict):
    """``diag(diagonal) + Σ_j spikes_j·u_j u_jᵀ``: a bulk plus k outliers, kept factored.

    The directions ``u_j`` are given (k rows of length D) or drawn with i.i.d. ``N(0, 1/D)``
    entries from ``seed`` (``sampler.low_rank.random_factors``).
    """

    diagonal: list[float] | Spectrum = Field(description="The bulk: a list or a spectrum table.")
    spikes: list[Annotated[float, Field(ge=0)]] = Field(
        default_factory=list, description="Weights s_j ≥ 0 of the rank-one terms.")
    directions: list[list[float]] | None = Field(
        None, description="The u_j as rows (default: random, from seed).")
    seed: int = Field(0, description="Seed of the random directions.")

    def factored(self, field: str) -> DiagPlusLowRank:
        """The matrix as ``DiagPlusLowRank``; a wrong shape is a ``DataError`` naming the field."""
        diag = values(self.diagonal, f"{field}.diagonal")
        k = len(self.spikes)
        if self.directions is None:
            factors = random_factors(len(diag), k, self.seed)
        else:
            factors = values(self.directions, f"{field}.directions").reshape(-1, len(diag)).T
            if len(self.directions) != k or any(len(r) != len(diag) for r in self.directions):
                raise DataError(f"{field}.directions: expected {k} rows (one per spike) of "
                                f"length {len(diag)}, got {len(self.directions)} rows of "
                                f"lengths {sorted({len(r) for r in self.directions})}")
        return DiagPlusLowRank(diag, np.ascontiguousarray(factors), np.asarray(self.spikes, float))


class NoiseOfHessian(_Strict):
    """``Σ = isotropic·I + hessian·H``: noise shaped like the curvature (exact theory at any D)."""

    isotropic: float = Field(0.0, ge=0, description="α in Σ = αI + βH.")
    hessian: float = Field(0.0, ge=0, description="β in Σ = αI + βH.")


Matrix = list[float] | list[list[float]] | Spectrum


def _table_tag(value: Any) -> str:
    if isinstance(value, BaseModel):
        return type(value).__name__
    if not isinstance(value, dict):
        return "list"
    if {"diagonal", "spikes", "directions", "seed"} & value.keys():
        return "LowRank"
    return "NoiseOfHessian" if {"isotropic", "hessian"} & value.keys() else "Spectrum"


_LIST = Annotated[list[float] | list[list[float]], Tag("list")]
HessianTable = Annotated[_LIST | Annotated[Spectrum, Tag("Spectrum")]
                         | Annotated[LowRank, Tag("LowRank")], Discriminator(_table_tag)]
NoiseTable = Annotated[_LIST | Annotated[Spectrum, Tag("Spectrum")]
                       | Annotated[LowRank, Tag("LowRank")]
                       | Annotated[NoiseOfHessian, Tag("NoiseOfHessian")],
                       Discriminator(_table_tag)]


def values(value: Matrix, field: str) -> np.ndarray:
    """A list, rows or spectrum as an array; ragged rows are a ``DataError`` naming the field."""
    if isinstance(value, Spectrum):
        return value.values()
    try:
        return np.asarray(value, dtype=float)
    except ValueError:
        raise DataError(f"{field}: rows must all have the same length, got lengths "
                        f"{[len(r) for r in value if isinstance(r, list)]}") from None


def factored(value: Matrix | LowRank, field: str) -> DiagPlusLowRank:
    """A diagonal (list or spectrum) or a low-rank table as ``DiagPlusLowRank``."""
    if isinstance(value, LowRank):
        return value.factored(field)
    diag = values(value, field)
    if diag.ndim != 1:
        raise DataError(f"{field}: with a low-rank table beside it, expected a diagonal (a list "
                        f"or a spectrum table), got a matrix of shape {list(diag.shape)}")
    return DiagPlusLowRank(diag, np.zeros((len(diag), 0)), np.zeros(0))
