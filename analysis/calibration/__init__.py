"""Simulators that measure the statistical tests' size and power.

Their tables are in ``benchmarks/RESULTS.md``; the suite checks a small cell of each.

* ``gibbs``: exact-Gibbs nulls and named alternatives for the Gibbs test;
* ``exact_law``, ``current``, ``epoch``, ``mixing``, ``until``: replicates for the
  goodness-of-fit, zero-current, per-phase epoch, convergence-gate and equilibration tests.

May import: ``sgdthermo.sampler``, ``theory``, ``diagnostics``, ``law`` and this subpackage;
never an archive.
"""
