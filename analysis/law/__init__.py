"""Temperatures and tests of the stationary law: measured against each other and theory.

* ``temperature``: per-coordinate virial and fluctuation temperatures with the exact
  stationarity check; ``measure``: from a run to the arrays they take (the one gradient pass);
  ``layers``: their per-layer rows; ``partial``: runs that record part of θ;
* ``contrast_tests``, ``gibbs``, ``gof``, ``current``: the Gibbs test, goodness of fit against
  an exact law and the zero-current test, each with a defined outcome on degenerate input;
* ``comparison``, ``exact_comparison``, ``exact_comparison_2d``, ``epoch_phases``: a run beside
  its exact theory, with z-scores.

May import: ``sgdthermo.sampler``, ``theory``, ``diagnostics``, the archive's door
(``analysis.reader``) and this subpackage.
"""
