"""Reading archives and judging them; no Ray here.

* ``reader`` is the only door to the archive (xarray / ArviZ views of committed draws).
* ``estimators``, ``contrast_tests``, ``gibbs``, ``temperature``, ``theory`` (with
  ``theory_diagonal``) and ``convergence`` are functions of arrays, tested without an archive;
  ``blocks`` streams coordinate blocks of a large run through them with bounded memory.
* ``measure`` makes the one gradient pass per run; ``record.analyze_run`` turns a run into one
  typed ``RunAnalysis``; ``analyze.analyze_archive`` adds the claim verdict (``claims``, which
  take ``RunAnalysis`` records and own their names).
* ``text``, ``report`` (HTML) and ``ArchiveAnalysis.to_json`` render that one record.

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
