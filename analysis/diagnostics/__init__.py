"""Is the run usable? Monte Carlo estimators and convergence, streamed over coordinates.

* ``estimators``: autocorrelation, integrated time, batch-means standard errors;
* ``convergence``: rank-normalised split R-hat, bulk/tail ESS and MCSE, vectorised (ArviZ's
  definitions); ``blocks`` streams a run's coordinates through them with bounded memory;
* ``run_diagnostics``: every recorded quantity of a run; ``mixing``: the convergence gate in
  front of every verdict; ``until``: Yaida's equilibration test behind ``run.until``.

May import: ``sgdthermo.sampler``, the archive's door (``analysis.reader``, ``flat_layers``) and
this subpackage (``law``'s types in annotations only).
"""
