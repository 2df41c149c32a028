"""``run.until``: run until converged — burn-in judged from the data, draws until targets are met.

The run is extended block by block (one archive chunk of draws each) at barriers where every shard
of the run has committed the same blocks, so a decision reads the same data whatever the order in
which shards finished, and a resumed job makes the same decisions (docs/theory.md's stationarity
identity, Yaida 2019):

* **Burn-in** (``equilibrate``): after each warm-up block, per shard, the two sides of the
  rate-weighted stationarity identity ``O_L = Σ_i (θ_i − c_i) p_ig_i`` and ``O_R = ½Σ_i (p_ig_i)²``
  are averaged over the later half of the warm-up so far (Yaida's half-running averages); the
  shard is judged stationary at the first barrier where ``|O_L/O_R − 1| < fdr_tolerance`` holds
  there and at the barrier before (``analysis.until.passes``). The posterior starts when every
  shard is (or at ``max_burn_in`` steps).
* **Draws**: after each posterior block (from ``run.draws`` on), the monitored quantities are
  computed from the committed draws; the run stops when every given target is met, or at
  ``max_draws``.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import _Strict

TARGETS = ("ess_bulk", "r_hat", "mcse_rel")


class UntilConfig(_Strict):
    """Targets that stop a run, the caps, and the equilibration test of its burn-in."""

    ess_bulk: float | None = Field(
        None, gt=0, description="Stop once the smallest bulk ESS over θ's recorded coordinates "
        "reaches this.")
    r_hat: float | None = Field(
        None, gt=1, description="Stop once the largest rank-normalised split R-hat over θ's "
        "recorded coordinates is below this.")
    mcse_rel: float | None = Field(
        None, gt=0, description="Stop once the largest relative MCSE of a coordinate's variance "
        "(the relative SE of its temperature) is below this.")
    max_draws: int = Field(
        ..., gt=0, description="Cap on recorded draws per chain (run.draws is the least).")
    equilibrate: bool = Field(
        True, description="Judge the burn-in by Yaida's fluctuation-dissipation test "
        "(run.burn_in is then the least burn-in); false: run.burn_in as given.")
    fdr_tolerance: float = Field(
        0.02, gt=0, lt=1, description="Stationary once |O_L/O_R − 1| over the later half of "
        "the warm-up is below this at two barriers in a row.")
    max_burn_in: int | None = Field(
        None, gt=0, description="Cap on burn-in steps when equilibrating (default: "
        "max_draws·thin).")

    @model_validator(mode="after")
    def _some_target(self) -> UntilConfig:
        if all(getattr(self, t) is None for t in TARGETS):
            raise ValueError(f"run.until needs at least one target of {list(TARGETS)}, got none")
        return self

    def targets(self) -> dict[str, float]:
        """The given targets by name."""
        return {t: float(v) for t in TARGETS if (v := getattr(self, t)) is not None}
