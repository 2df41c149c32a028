"""The keys a table of the config accepts, found from the schema itself (for error messages)."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel

from .job import JobConfig


def allowed_keys(loc: tuple[object, ...]) -> list[str] | None:
    """The field names of the table at a pydantic error location (without its last part).

    Walks the config classes from ``JobConfig``: a string is a field, a list index is skipped,
    and a union tag (``rule.momentum`` → the ``momentum`` member) picks the member whose
    ``kind`` it names. ``None`` when the location does not lead to exactly one table.

    Args:
        loc: A raw pydantic error location, e.g. ``("rule", "momentum", "momentum")``.
    """
    tables: list[type[BaseModel]] = [JobConfig]
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        tagged = [t for t in tables if _kind(t) == part]
        if tagged:
            tables = tagged
            continue
        fields = [t.model_fields[part] for t in tables if part in t.model_fields]
        tables = [c for f in fields for c in _tables(f.annotation)]
        if not tables:
            return None
    return sorted(tables[0].model_fields) if len(tables) == 1 else None


def _kind(table: type[BaseModel]) -> object:
    """The default of a table's ``kind`` field (its union tag), if it has one."""
    field = table.model_fields.get("kind")
    return None if field is None else field.default


def _tables(annotation: Any) -> list[type[BaseModel]]:
    """Every config class inside an annotation (through unions, lists, dicts and Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [t for arg in typing.get_args(annotation) for t in _tables(arg)]
