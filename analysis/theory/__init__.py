"""Exact stationary laws: what a run is measured against. Functions of numbers, no archive.

* ``linear``: the finite-η law of every rule on linear-gradient models (the Lyapunov solve);
  ``diagonal`` (O(D), one 2×2 heavy ball per coordinate) and ``low_rank`` (O(Dk²), Woodbury)
  are its fast forms for diagonal and diagonal-plus-low-rank quadratics;
* ``epoch``: the cyclostationary law under epoch reshuffling;
* ``one_d`` and ``two_d``: the exact finite-η laws of SGD with B = 1 on small datasets, for any
  loss (transfer operators).

May import: ``sgdthermo.sampler`` and this subpackage; nothing else of ``analysis``.
"""
