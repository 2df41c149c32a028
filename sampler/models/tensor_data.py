"""A user's dataset for a torch module: inputs of any shape ``[N, ...]`` and targets ``[N, ...]``.

Read from ``.npz`` (arrays ``X`` or ``x``, and ``y``), ``.pt`` (a dict with those keys or a
tuple ``(x, y)``, loaded with ``weights_only=True`` so that no pickled code runs) or ``.csv``
(features and a target column, as the regression models read it), or given as arrays in Python.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import DataError, load_file

SUFFIXES = (".npz", ".pt", ".csv")


def load_tensors(file: str, field: str = "model.data.file") -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` as numpy arrays from a file, checked (``check_arrays``)."""
    path = Path(file).expanduser()
    if not path.is_file():
        raise DataError(f"{field}: no such file {str(path)!r}")
    if path.suffix not in SUFFIXES:
        raise DataError(f"{field}: allowed suffixes {', '.join(SUFFIXES)}, got {path.suffix!r}")
    if path.suffix == ".csv":
        return load_file(str(path), None, False)
    try:
        x, y = _load_npz(path, field) if path.suffix == ".npz" else _load_pt(path, field)
    except DataError:
        raise
    except (ValueError, TypeError, OSError, EOFError, RuntimeError, KeyError,
            zipfile.BadZipFile, UnicodeDecodeError, AttributeError) as err:
        first = (str(err).strip().splitlines() or [""])[0][:120]
        raise DataError(f"{field} {str(path)!r}: cannot be read as {path.suffix[1:]} "
                        f"({type(err).__name__}: {first})") from None
    return check_arrays(x, y, f"{field} {str(path)!r}")


def _pick(found: dict[str, Any], where: str) -> tuple[Any, Any]:
    xkey = "X" if "X" in found else "x" if "x" in found else None
    if xkey is None or "y" not in found:
        raise DataError(f"{where}: needs arrays X (or x) and y, has {sorted(found)}")
    return found[xkey], found["y"]


def _load_npz(path: Path, field: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return _pick({k: f[k] for k in f.files}, f"{field} {str(path)!r}")


def _load_pt(path: Path, field: str) -> tuple[Any, Any]:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    where = f"{field} {str(path)!r}"
    if isinstance(obj, dict):
        return _pick(obj, where)
    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        return obj[0], obj[1]
    raise DataError(f"{where}: expected a dict with X (or x) and y, or a tuple (x, y), got "
                    f"{type(obj).__name__}")


def check_arrays(x: Any, y: Any, where: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """Both as real numpy arrays with the same number of rows, at least one, all finite."""
    xs, ys = (np.asarray(a.detach().cpu() if isinstance(a, torch.Tensor) else a) for a in (x, y))
    for name, a in (("x", xs), ("y", ys)):
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) or np.iscomplexobj(a):
            raise DataError(f"{where}: {name} must hold real numbers, got dtype {a.dtype}")
        if a.ndim == 0:
            raise DataError(f"{where}: {name} must have a first axis of examples, got a scalar")
    if xs.shape[0] != ys.shape[0] or xs.shape[0] == 0:
        raise DataError(f"{where}: x and y need the same number of examples (at least 1), got "
                        f"x {list(xs.shape)} and y {list(ys.shape)}")
    for name, a in (("x", xs), ("y", ys)):
        if not np.isfinite(a.astype(float)).all():
            bad = int((~np.isfinite(a.astype(float))).sum())
            raise DataError(f"{where}: {name} contains {bad} non-finite values (NaN or inf)")
    return xs, ys
