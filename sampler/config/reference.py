"""The config reference, generated from the schema itself (``docs/config.md`` cannot drift).

Every table a job can hold is one pydantic model; this walks them from ``JobConfig`` and writes
one section per table (per ``kind`` for the model and rule unions), one row per field: its
type, its default and its description. ``python -m sgdthermo.sampler.config.reference
docs/config.md`` rewrites the generated part of the page in place; ``tests/configs`` checks
that the page equals this output and that every field has a description.
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from .job import JobConfig

BEGIN = "<!-- generated from the schema by sgdthermo.sampler.config.reference: do not edit -->"
END = "<!-- end of the generated reference -->"


def tables(root: type[BaseModel] = JobConfig) -> list[tuple[str, type[BaseModel]]]:
    """Every table under ``root`` as ``(title, model)``, depth first, each model once.

    A title is the table's TOML path, with ``kind = "…"`` for a member of a union of kinds and
    the schema's class name for a nested table (``[model.data] (DataConfig)``: one path may
    hold different tables under different kinds).
    """
    out: list[tuple[str, type[BaseModel]]] = []
    seen: set[type[BaseModel]] = set()

    def visit(path: str, title: str, model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        out.append((title, model))
        for name, field in model.model_fields.items():
            subs = _models(field.annotation)
            for sub in subs:
                sub_path = f"{path}.{name}" if path else name
                kind = sub.model_fields.get("kind")
                union = len(subs) > 1 and kind is not None and _is_literal(kind.annotation)
                tag = (f' kind = "{typing.get_args(kind.annotation)[0]}"' if union and kind
                       else f" ({sub.__name__})" if path else "")
                visit(sub_path, f"[{sub_path}]{tag}", sub)

    visit("", "", root)
    return out


def undescribed(root: type[BaseModel] = JobConfig) -> list[str]:
    """Fields with no description (``kind`` is described by its table's docstring)."""
    return [f"{model.__name__}.{name}" for _, model in tables(root)
            for name, field in model.model_fields.items()
            if name != "kind" and not (field.description or "").strip()]


def markdown(root: type[BaseModel] = JobConfig) -> str:
    """The generated reference: one section and table per config table."""
    parts = []
    for title, model in tables(root):
        doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        parts.append(f"### `{title}`\n\n{doc}\n" if title else f"### Top level\n\n{doc}\n")
        rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            meaning = (field.description or "").replace("\n", " ").replace("|", "\\|")
            if name == "kind":
                meaning = meaning or "Selects this table."
            rows.append(f"| `{name}` | {_type(field.annotation)} | {_default(field)} | "
                        f"{meaning} |")
        parts.append("\n".join(rows) + "\n")
    return "\n".join(parts)


def rewrite(page: Path) -> bool:
    """Put the generated reference between ``BEGIN`` and ``END`` in ``page``; True if changed."""
    text = page.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    new = f"{head}{BEGIN}\n\n{markdown()}\n{END}{tail}"
    if new != text:
        page.write_text(new)
    return new != text


def _is_literal(annotation: Any) -> bool:
    return typing.get_origin(annotation) is Literal


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in typing.get_args(annotation) for m in _models(a)]


def _type(annotation: Any) -> str:
    """A short, readable form of a field's type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin is Literal:
        return " \\| ".join(f'`"{a}"`' if isinstance(a, str) else f"`{a}`" for a in args)
    if origin in (Union, types.UnionType):
        if len(_models(annotation)) > 3:
            return "table, one per kind"
        return " \\| ".join(_type(a) for a in args)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"table ({annotation.__name__})"
    if origin in (list, dict, tuple):
        return f"{origin.__name__}[{', '.join(_type(a) for a in args)}]"
    if annotation is type(None):
        return "none"
    return getattr(annotation, "__name__", str(annotation)).replace("typing.", "")


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.default
    if value is PydanticUndefined and field.default_factory is not None:
        value = field.default_factory()
    if isinstance(value, BaseModel):
        return "(table defaults)"
    if value is None:
        return "none"
    return f"`{value!r}`".replace("'", '"').replace("|", "\\|")


if __name__ == "__main__":
    changed = rewrite(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/config.md"))
    print("rewritten" if changed else "up to date")
