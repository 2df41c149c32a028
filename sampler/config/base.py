"""What every config table shares: strict validation (unknown keys are errors) and kind lists."""

from __future__ import annotations

import tomllib
from typing import Annotated, Any, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

PositiveFloat = Annotated[float, Field(gt=0)]
LearningRate = Annotated[float, Field(gt=0, description="Learning rate η (required).")]


class ConfigError(ValueError):
    """A config that cannot be run; the message names the field, what is allowed and what was given."""


def parse_value(text: str) -> Any:
    """Parse a ``--set`` value as a TOML literal (numbers, bools, lists, tables), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


class _Strict(BaseModel):
    """A table that refuses unknown keys, non-finite numbers and booleans given for numbers.

    TOML and ``--set`` accept ``inf``/``nan`` and ``true``; a stored config must read back as
    written (JSON has no ``inf``), and ``chains = true`` is a typo, not one chain.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, data: Any) -> Any:
        """Pass a boolean given for a number on as its TOML text.

        It then fails to parse as a number, with the field's name, instead of becoming 1 or 0.
        """
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for key, value in data.items():
            field = cls.model_fields.get(key)
            if field is not None and isinstance(value, bool | list):
                annotation = str(field.annotation)
                if "bool" not in annotation and ("int" in annotation or "float" in annotation):
                    out[key] = _as_text(value)
        return out


def _as_text(value: Any) -> Any:
    """Booleans, also inside lists, as their TOML text."""
    if isinstance(value, bool):
        return str(value).lower()
    return [_as_text(v) for v in value] if isinstance(value, list) else value


def kinds(union: Any) -> list[str]:
    """The ``kind`` values of a discriminated union of configs, in declaration order."""
    members = get_args(get_args(union)[0])
    return [get_args(m.model_fields["kind"].annotation)[0] for m in members]
