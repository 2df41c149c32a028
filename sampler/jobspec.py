"""Loading a job config from TOML, applying ``--set`` overrides, and expanding sweeps into runs."""

from __future__ import annotations

import copy
import itertools
import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from .config import MODEL_KINDS, RULE_KINDS, JobConfig, RunSpec
from .config.base import ConfigError, parse_value
from .config.fields import allowed_keys


def _field(loc: tuple[object, ...]) -> tuple[object, ...]:
    """An error's location without the tags pydantic adds for union members.

    Type tags (``list[float]``, ``Spectrum``) always go; a kind tag goes unless it follows
    another kind tag, where it is a real key (``rule.momentum`` mistyped for ``rule.mu``).
    """
    out: list[object] = []
    after_kind = False
    for part in loc:
        kind = isinstance(part, str) and part in _KINDS
        if _union_tag(part) and not (kind and after_kind):
            after_kind = kind
            continue
        out.append(part)
        after_kind = False
    return tuple(out)


def _union_tag(part: object) -> bool:
    """A location part pydantic adds for a member of an untagged union (``list[float]``)."""
    return isinstance(part, str) and (part in _KINDS or part in _TYPE_TAGS or "[" in part
                                      or part[:1].isupper())


_TYPE_TAGS = {"list", "float", "int", "str", "bool", "dict"}
_CONTAINERS = ("list_type", "dict_type", "model_type", "model_attributes_type")
_MISMATCH = ("list_type", "dict_type", "model_type", "float_type", "int_type", "string_type",
             "float_parsing", "int_parsing", "model_attributes_type")


def format_validation_error(err: ValidationError, prefix: str = "") -> str:
    """One line per problem: ``field: message (got value)``.

    For a field typed as a union (a list or a spectrum table), pydantic reports every member it
    tried; the members whose type does not even match the input are dropped when another member
    says what is actually wrong.
    """
    errors = err.errors()
    fields = [_field(e["loc"]) for e in errors]
    real = {f for f, e in zip(fields, errors, strict=True) if e["type"] not in _MISMATCH}
    values = {f for f, e in zip(fields, errors, strict=True) if e["type"] not in _CONTAINERS}
    lines = []
    for field, e in zip(fields, errors, strict=True):
        whole = _without_indices(field)  # a list item's mismatch speaks for the whole list
        if e["type"] in _MISMATCH and any(r[:len(whole)] == whole for r in real):
            continue
        if e["type"] in _CONTAINERS and any(v[:len(whole)] == whole for v in values):
            continue  # "not a list" from a union member, beside what is wrong with a value
        loc = ".".join(str(p) for p in field)
        loc = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "config"
        msg = e["msg"].removeprefix("Value error, ")
        given = e.get("input")
        got = "" if isinstance(given, dict) or e["type"] == "missing" else f" (got {given!r})"
        line = f"{loc}: {msg}{got}"
        if e["type"] == "extra_forbidden":
            keys = allowed_keys(e["loc"])
            line = f"{loc}: unknown field{got}" + (f"; allowed: {', '.join(keys)}" if keys else "")
        if line not in lines:
            lines.append(line)
    return "\n".join(lines)


def _without_indices(field: tuple[object, ...]) -> tuple[object, ...]:
    """The location without trailing list indices (``model.hessian.1`` → ``model.hessian``)."""
    end = len(field)
    while end and isinstance(field[end - 1], int):
        end -= 1
    return field[:end]


_KINDS = {*MODEL_KINDS, *RULE_KINDS}  # union tags pydantic puts in error locations


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for ``dotted = "a.b.c"``, creating tables as needed."""
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        nxt = node.setdefault(k, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"{dotted}: '{k}' is a value, not a table (got {nxt!r})")
        node = nxt
    node[keys[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides (dotted keys) to a raw config mapping.

    An override of a field that the sweep sets for every run (the same key, a field inside a
    swept table, or a table that sets a swept field) would be ignored: it is refused instead.
    """
    out = copy.deepcopy(data)
    keys = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set: expected key=value, got {item!r}")
        key, text = item.split("=", 1)
        set_path(out, key.strip(), parse_value(text.strip()))
        keys.append(key.strip())
    _refuse_swept(out, keys)
    return out


def _get_path(data: Any, dotted: str) -> Any:
    for k in dotted.split("."):
        data = data.get(k) if isinstance(data, dict) else None
    return data


def _holds(table: Any, dotted: str) -> bool:
    """Whether a table sets the field at ``dotted`` (``rule={lr = 0.1}`` holds ``lr``)."""
    *parents, last = dotted.split(".")
    node = _get_path(table, ".".join(parents)) if parents else table
    return isinstance(node, dict) and last in node


def _refuse_swept(data: dict[str, Any], keys: list[str]) -> None:
    """``ConfigError`` for the first override that a sweep key shadows."""
    sweep = data.get("sweep")
    if not isinstance(sweep, dict):
        return
    swept = [(part, name) for part in ("grid", "zip") if isinstance(sweep.get(part), dict)
             for name in sweep[part]]
    for key in keys:
        for part, name in swept:
            inner = name.startswith(f"{key}.") and _holds(_get_path(data, key),
                                                           name[len(key) + 1:])
            if key == name or key.startswith(f"{name}.") or inner:
                values = json.dumps(sweep[part][name])
                values = values if len(values) <= 40 else values[:37] + "..."
                hint = (f"set the table's other fields one by one ({key}.<field>=…), "
                        if inner else "")
                raise ConfigError(
                    f"--set {key}: [sweep.{part}] sets {name!r} for every run (= {values}), "
                    f"so this value would be ignored; {hint}change the config's sweep, or empty "
                    f"it with --set sweep.{part}={{}} to run at your value alone")


def validate(data: dict[str, Any]) -> JobConfig:
    """Validate a raw mapping into a ``JobConfig`` or raise ``ConfigError``."""
    try:
        job = JobConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None
    except RecursionError:
        raise ConfigError("config: nested too deeply (arrays or tables)") from None
    expand(job)  # sweep points must validate too
    return job


def job_from_mapping(data: dict[str, Any], overrides: list[str] | None = None,
                     base: Path | None = None) -> JobConfig:
    """Validate a config given as tables (``dict``), after overrides.

    Relative data files are resolved against ``base`` (default: the working folder).
    """
    data = apply_overrides(data, overrides or [])
    _absolute_data_file(data, base or Path.cwd())
    return validate(data)


def load_job(path: str | Path, overrides: list[str] | None = None) -> JobConfig:
    """Read a TOML job config, apply overrides and validate it."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config: no such file {str(p)!r}")
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config {str(p)!r}: not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {str(p)!r}: not UTF-8 text") from None
    except RecursionError:
        raise ConfigError(f"config {str(p)!r}: nested too deeply (arrays or tables)") from None
    return job_from_mapping(data, overrides, p.parent)


def _absolute_data_file(data: dict[str, Any], base: Path) -> None:
    """Resolve relative ``data.file`` paths and user code files against the config's folder.

    Covers the model and swept model tables; actors may run in another working directory.
    """
    models = [data.get("model")]
    sweep = data.get("sweep")
    if isinstance(sweep, dict):
        for part in ("grid", "zip"):
            table = sweep.get(part)
            if isinstance(table, dict) and isinstance(table.get("model"), list):
                models += table["model"]
    for model in models:
        if isinstance(model, dict):
            for key in ("module", "loss"):  # user code named by a file: "net.py:build"
                ref = model.get(key)
                if isinstance(ref, str) and ".py:" in ref:
                    where, _, name = ref.rpartition(":")
                    path = Path(where).expanduser()
                    if not path.is_absolute():
                        model[key] = f"{(base / path).resolve()}:{name}"
        table = model.get("data") if isinstance(model, dict) else None
        if isinstance(table, dict) and isinstance(table.get("file"), str):
            path = Path(table["file"]).expanduser()
            if not path.is_absolute():
                table["file"] = str((base / path).resolve())


def _points(job: JobConfig) -> list[dict[str, Any]]:
    grid_keys = list(job.sweep.grid)
    grid = [dict(zip(grid_keys, combo, strict=True))
            for combo in itertools.product(*job.sweep.grid.values())]
    zipped = [dict(zip(job.sweep.zip, vals, strict=True))
              for vals in zip(*job.sweep.zip.values(), strict=True)] or [{}]
    return [{**g, **z} for g in grid for z in zipped]


def _differing(points: list[dict[str, Any]]) -> dict[str, dict[str, set[str]]]:
    """For each swept whole table (``rule``, ``model``), the fields whose values differ.

    Each with the kinds whose tables set it: a table of another kind shows the field only if
    it sets it too (``sgd`` does not say ``matrix=default``).
    """
    out: dict[str, dict[str, set[str]]] = {}
    for key in {k for p in points for k, v in p.items() if isinstance(v, dict)}:
        tables = [p[key] for p in points if isinstance(p.get(key), dict)]
        names = sorted({f for t in tables for f in t} - {"kind"})
        out[key] = {f: {str(t.get("kind")) for t in tables if f in t} for f in names
                    if len({json.dumps(t.get(f), sort_keys=True) for t in tables}) > 1}
    return out


def _label(point: dict[str, Any],
           differing: dict[str, dict[str, set[str]]] | None = None) -> str:
    """A run's label, e.g. ``rule.lr=0.1, rule=preconditioned(power=0.5)``.

    A swept table shows its kind and the fields that differ between the sweep's tables
    (``default`` where a table leaves one out).
    """
    parts = []
    for k, v in point.items():
        if isinstance(v, dict):
            fields = (differing or {}).get(k, {})
            kind = v.get("kind", json.dumps(v))
            shown = [f"{f}={_compact(v[f]) if f in v else 'default'}"
                     for f, kinds in fields.items() if f in v or kind in kinds]
            v = f"{kind}({', '.join(shown)})" if shown else kind
        parts.append(f"{k}={v}")
    return ", ".join(parts) or "base"


def _compact(value: Any) -> str:
    """A field's value for a label: JSON, or the shape of a long array (``[10×10]``)."""
    shape = np.shape(value) if isinstance(value, list) else ()
    if shape and int(np.prod(shape)) > 4:
        return "[" + "×".join(str(n) for n in shape) + "]"
    return json.dumps(value)


def expand(job: JobConfig) -> list[RunSpec]:
    """Expand the sweep into run specs (grid product × zip), each validated on its own."""
    base = job.model_dump(include={"model", "rule", "run"})
    runs = []
    points = _points(job)
    differing = _differing(points)
    for index, point in enumerate(points):
        data = copy.deepcopy(base)
        for key, value in point.items():
            if key in ("model", "rule"):
                data[key] = value
            else:
                if key.split(".")[0] not in ("model", "rule", "run"):
                    raise ConfigError(f"sweep key {key!r}: must start with model., rule. or run.")
                set_path(data, key, value)
        try:
            runs.append(RunSpec.model_validate({"index": index,
                                                "label": _label(point, differing), **data}))
        except ValidationError as err:
            raise ConfigError(format_validation_error(
                err, prefix=f"sweep point {index} ({_label(point, differing)}): ")) from None
    return runs
