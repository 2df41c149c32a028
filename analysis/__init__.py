"""Reading archives and judging them; no Ray here.

* ``reader`` is the only door to the archive (xarray / ArviZ views of committed draws).
* ``estimators``, ``contrast_tests``, ``gibbs``, ``temperature`` and ``theory`` are functions of
  arrays, tested without an archive.
* ``measure`` makes the one gradient pass per run; ``record.analyze_run`` turns a run into one
  typed ``RunAnalysis``; ``analyze.analyze_archive`` adds the claim verdict (``claims``, which
  take ``RunAnalysis`` records and own their names).
* ``text``, ``report`` (HTML) and ``ArchiveAnalysis.to_json`` render that one record.
"""
