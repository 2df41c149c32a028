"""What the field measures on networks, read from the archive: diffusion and dissipation.

* ``displacement``: the mean squared displacement against lag, per layer and overall, and its
  growth exponent (free diffusion 1, a settled chain 0; Kunin et al. 2021);
* ``fdr``: Yaida's fluctuation–dissipation relation per layer and for the whole model, a
  stationarity check that works at any D.

Every function reads a run lazily, a block of coordinates or a layer at a time.

May import: ``sgdthermo.sampler``, ``theory``, ``diagnostics``, ``law``, the archive's door
(``analysis.reader``) and this subpackage.
"""
