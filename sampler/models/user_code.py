"""A user's code, named by a config: ``"net.py:build"`` or ``"package.module:build"``.

Only ``sgdthermo run`` (and ``resume``) import user code, and only what the config names; the
archive keeps the reference, the callable's arguments and the SHA-256 of the source file, so
that reading an archive imports nothing unless asked (``analyze --import-model``), and
``resume`` and that flag can refuse a changed source.

Every problem is a ``UserCodeError`` whose one line names the config field, what was expected
and what was given.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any


class UserCodeError(ValueError):
    """A user's module or callable that cannot be used; one line naming the field."""


def split_reference(reference: str, field: str) -> tuple[str, str]:
    """``("net.py", "build")`` from ``"net.py:build"``; the part before ``:`` is a file or module."""
    where, sep, name = reference.rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise UserCodeError(f"{field}: expected 'file.py:callable' or 'package.module:callable', "
                            f"got {reference!r}")
    return where, name


def is_file_reference(where: str) -> bool:
    """Whether the module part names a ``.py`` file (else a dotted module name)."""
    return where.endswith(".py")


def source_file(reference: str, field: str) -> Path | None:
    """The source file a reference names (``None`` for an installed module not on disk)."""
    where, _ = split_reference(reference, field)
    if is_file_reference(where):
        return Path(where)
    spec = importlib.util.find_spec(where.split(".")[0]) if where else None
    if spec is None:
        return None
    found = importlib.util.find_spec(where)
    origin = found.origin if found is not None else None
    return Path(origin) if origin and origin.endswith(".py") else None


def source_hash(reference: str, field: str) -> str | None:
    """SHA-256 of the source file of a reference (``None`` where it has no file)."""
    path = source_file(reference, field)
    if path is None or not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


_LOADED: dict[tuple[str, str], Any] = {}
_SHIPPED: dict[str, bytes] = {}  # path on the driver → source text (actors on other nodes)


def ship_sources(sources: dict[str, bytes]) -> None:
    """Source files read by the driver, used where this node does not have the path."""
    _SHIPPED.update(sources)


def read_sources(references: list[str], field: str = "model.module") -> dict[str, bytes]:
    """The source text of every file a list of references names (for ``ship_sources``)."""
    out = {}
    for ref in references:
        where, _ = split_reference(ref, field)
        if is_file_reference(where) and Path(where).is_file():
            out[where] = Path(where).read_bytes()
    return out


def _local_copy(where: str) -> Path:
    """The path of a shipped source on this node (written once, named by its digest)."""
    import tempfile

    text = _SHIPPED[where]
    digest = hashlib.sha256(text).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "sgdthermo-user" / digest
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / Path(where).name
    if not path.is_file():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(text)
        tmp.replace(path)
    return path


def load_callable(reference: str, field: str) -> Any:
    """The callable named by ``reference`` (a file is imported once per process and digest)."""
    where, name = split_reference(reference, field)
    if is_file_reference(where):
        path = Path(where)
        if not path.is_file() and where in _SHIPPED:  # a node without the driver's files
            path = _local_copy(where)
        if not path.is_file():
            raise UserCodeError(f"{field}: no such file {where!r} (in {reference!r})")
        key = (str(path.resolve()), hashlib.sha256(path.read_bytes()).hexdigest())
        module = _LOADED.get(key)
        if module is None:
            module = _import_file(path, field)
            _LOADED[key] = module
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as err:
            raise UserCodeError(f"{field}: cannot import module {where!r} ({err})") from None
    fn = getattr(module, name, None)
    if fn is None:
        have = sorted(k for k in vars(module) if not k.startswith("_") and callable(
            getattr(module, k)))[:8]
        raise UserCodeError(f"{field}: {where!r} has no {name!r} (callables there: "
                            f"{', '.join(have) or 'none'})")
    if not callable(fn):
        raise UserCodeError(f"{field}: {reference!r} is a {type(fn).__name__}, not a callable")
    return fn


def _import_file(path: Path, field: str) -> Any:
    """Import a ``.py`` file as a module of its own (its folder is importable while it loads)."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"sgdthermo_user_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserCodeError(f"{field}: cannot import {str(path)!r} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    folder = str(path.resolve().parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # the user's code may raise anything: say which file and what
        del sys.modules[name]
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise UserCodeError(f"{field}: importing {str(path)!r} raised {type(err).__name__}: "
                            f"{first}") from None
    finally:
        if added:
            sys.path.remove(folder)
    return module
