"""What every config table shares: strict validation (unknown keys are errors) and kind lists."""

from __future__ import annotations

from typing import Annotated, Any, get_args

from pydantic import BaseModel, ConfigDict, Field

PositiveFloat = Annotated[float, Field(gt=0)]


class _Strict(BaseModel):
    """A table that refuses unknown keys."""

    model_config = ConfigDict(extra="forbid")


def kinds(union: Any) -> list[str]:
    """The ``kind`` values of a discriminated union of configs, in declaration order."""
    members = get_args(get_args(union)[0])
    return [get_args(m.model_fields["kind"].annotation)[0] for m in members]
