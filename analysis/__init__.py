"""Reading archives and judging them; no Ray here.

The door, the record and the entry point stay at the top; the rooms are subpackages by role,
each with its own docstring saying what lives there and what it may import
(``tests/test_layering.py`` keeps those rules):

* ``reader`` (with ``flat_layers``) is the only door to the archive: xarray / ArviZ views of
  committed draws, opened without running any code from the archive;
* ``theory``: exact stationary laws (linear, diagonal, low-rank, 1-D, 2-D, epoch);
* ``diagnostics``: estimators, convergence (R-hat, ESS, MCSE, IAT), the convergence gate;
* ``law``: temperatures and the tests of the stationary law (Gibbs, goodness of fit, current),
  and a run beside its exact theory;
* ``calibration``: the simulators that measure those tests' size and power;
* ``claims``: the seed claims' experiments and verdicts;
* ``render``: text, the HTML report, figures and tables;
* ``record.analyze_run`` turns a run into one typed ``RunAnalysis``; ``analyze.analyze_archive``
  adds the claim verdict.

From Python: ``open_archive(path)`` (each run's ``RunData``: ``inference_data()``, ``posterior()``),
``analyze_run(run)`` (its ``RunAnalysis``), ``analyze_archive(path)`` (all runs, the claim).
"""

from typing import Any

_API = {"open_archive": "reader", "open_run": "reader", "analyze_run": "record",
        "analyze_archive": "analyze"}


def __getattr__(name: str) -> Any:  # imported on first use
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_API[name]}", __name__), name)


__all__ = list(_API)
