"""Reading archives and judging them; no Ray here.

* ``reader`` is the only door to the archive (xarray / ArviZ views of committed draws).
* ``estimators``, ``contrast_tests``, ``gibbs``, ``temperature``, ``theory`` (with
  ``theory_diagonal``) and ``convergence`` are functions of arrays, tested without an archive;
  ``blocks`` streams coordinate blocks of a large run through them with bounded memory.
* ``measure`` makes the one gradient pass per run; ``record.analyze_run`` turns a run into one
  typed ``RunAnalysis``; ``analyze.analyze_archive`` adds the claim verdict (``claims``, which
  take ``RunAnalysis`` records and own their names).
* ``text``, ``report`` (HTML) and ``ArchiveAnalysis.to_json`` render that one record.
"""
