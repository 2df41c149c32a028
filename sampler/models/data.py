"""Datasets for the regression and MLP models: synthetic, user files, and scikit-learn's digits."""

from __future__ import annotations

import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Synthetic:
    """Synthetic anisotropic data (``sampler.config.DataConfig`` documents the fields)."""

    n: int
    d: int
    condition: float
    noise_std: float
    seed: int


class DataError(ValueError):
    """A data file that cannot be used; the message names the file and the problem."""


def synthetic_features(cfg: Synthetic) -> np.ndarray:
    """``X = Z · diag(s)`` with ``Z ~ N(0, 1)`` and scales ``s`` geometric from 1 to 1/condition."""
    rng = np.random.default_rng(cfg.seed)
    scales = np.geomspace(1.0, 1.0 / cfg.condition, cfg.d)
    return rng.standard_normal((cfg.n, cfg.d)) * scales


def synthetic_linear(cfg: Synthetic) -> tuple[np.ndarray, np.ndarray]:
    """``y = Xθ_true + noise_std·ε`` with ``θ_true ~ N(0, I)`` (from the data seed)."""
    x = synthetic_features(cfg)
    rng = np.random.default_rng(cfg.seed + 1)
    theta = rng.standard_normal(cfg.d)
    return x, x @ theta + cfg.noise_std * rng.standard_normal(cfg.n)


def synthetic_logistic(cfg: Synthetic) -> tuple[np.ndarray, np.ndarray]:
    """``y ~ Bernoulli(sigmoid(Xθ_true))`` with ``θ_true ~ N(0, I)``."""
    x = synthetic_features(cfg)
    rng = np.random.default_rng(cfg.seed + 1)
    theta = rng.standard_normal(cfg.d)
    p = 1.0 / (1.0 + np.exp(-(x @ theta)))
    return x, (rng.random(cfg.n) < p).astype(np.float64)


def load_file(file: str, target: str | None,
              standardize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Load ``X, y`` from ``.npz`` (arrays ``X`` and ``y``) or ``.csv`` (target column or the last)."""
    path = Path(file).expanduser()
    if not path.is_file():
        raise DataError(f"model.data.file: no such file {str(path)!r}")
    if path.suffix not in (".npz", ".csv"):
        raise DataError(f"model.data.file: allowed suffixes .npz, .csv, got {path.suffix!r}")
    try:
        x, y = _load_npz(path) if path.suffix == ".npz" else _load_csv(path, target)
    except DataError:
        raise
    except (ValueError, TypeError, OSError, EOFError, IndexError, zipfile.BadZipFile,
            UnicodeDecodeError, MemoryError) as err:  # numpy's and zipfile's own words
        first = (str(err).strip().splitlines() or [""])[0][:120]
        raise DataError(f"model.data.file {str(path)!r}: cannot be read as {path.suffix[1:]} "
                        f"({type(err).__name__}: {first})") from None
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise DataError(f"model.data.file {str(path)!r}: expected X [N, d] and y [N], "
                        f"got X {list(x.shape)} and y {list(y.shape)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise DataError(f"model.data.file {str(path)!r}: contains non-finite values")
    if standardize:
        x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    return x, y


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        missing = {"X", "y"} - set(f.files)
        if missing:
            raise DataError(f"model.data.file {str(path)!r}: needs arrays X and y, "
                            f"missing {sorted(missing)} (has {sorted(f.files)})")
        x, y = f["X"], f["y"]
        if not all(np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)
                   or a.dtype == bool for a in (x, y)):
            raise DataError(f"model.data.file {str(path)!r}: X and y must be real numbers, "
                            f"got {x.dtype} and {y.dtype}")
        return np.asarray(x, float), np.asarray(y, float)


def _load_csv(path: Path, target: str | None) -> tuple[np.ndarray, np.ndarray]:
    lines = path.read_text().splitlines()
    if not lines:
        raise DataError(f"model.data.file {str(path)!r}: empty")
    first = lines[0].split(",")
    has_header = any(_not_number(c) for c in first)
    with warnings.catch_warnings():  # "input contained no data": refused below, in one line
        warnings.simplefilter("ignore", UserWarning)
        data = np.loadtxt(path, delimiter=",", skiprows=int(has_header), ndmin=2)
    column = data.shape[1] - 1
    if target is not None:
        names = [c.strip() for c in first] if has_header else []
        if target not in names:
            raise DataError(f"model.data.target: column {target!r} not in {str(path)!r} "
                            f"(columns: {names or 'no header'})")
        column = names.index(target)
    if data.shape[0] == 0 or data.shape[1] < 2:
        raise DataError(f"model.data.file {str(path)!r}: needs a header or data rows with at "
                        f"least two columns (features and target), got {list(data.shape)}")
    return np.delete(data, column, axis=1), data[:, column]


def _not_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False


def regression_data(kind: str, dataset: str, file: str | None, target: str | None,
                    standardize: bool, intercept: bool,
                    synthetic: Synthetic) -> tuple[np.ndarray, np.ndarray]:
    """Data for ``linear_regression`` or ``logistic_regression``, with the optional intercept.

    ``dataset = "diabetes"`` is scikit-learn's (standardised); else a ``file`` if given; else
    ``synthetic`` data.
    """
    if dataset == "diabetes":
        from sklearn.datasets import load_diabetes

        x, y = load_diabetes(return_X_y=True)
        x = (x - x.mean(0)) / x.std(0)
        y = (y - y.mean()) / y.std()
    elif file:
        x, y = load_file(file, target, standardize)
        if kind == "logistic_regression" and not np.isin(y, (0.0, 1.0)).all():
            raise DataError(f"model.data.file {file!r}: logistic targets must be 0 or 1, "
                            f"got values {np.unique(y)[:5].tolist()}")
    else:
        x, y = (synthetic_linear if kind == "linear_regression" else synthetic_logistic)(
            synthetic)
    if intercept:
        x = np.hstack([x, np.ones((x.shape[0], 1))])
    return x, y


def digits(n: int | None) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits (1797 × 64), pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    ds = load_digits()
    x, y = ds.data / 16.0, ds.target.astype(float)
    return (x[:n], y[:n]) if n else (x, y)
