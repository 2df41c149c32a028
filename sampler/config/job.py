"""The job table: model, rule, run and cluster settings, and the sweep over them."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import _Strict
from .models import ModelConfig
from .rules import RuleConfig
from .until import UntilConfig


class RecordConfig(_Strict):
    """What each draw records: θ in full (default) or a subset, projections, per-layer norms.

    Recording a subset keeps every per-coordinate accumulator (fluctuation, stationarity
    identity and, then, the virial sums ``Σθ, Σθ⊙g_B, Σg_B``), so temperatures stay per
    coordinate for all D; the Gibbs test, which needs every coordinate at each draw, does not.
    """

    coords: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, description="Record only these coordinates of θ (0-based, increasing).")
    every: int | None = Field(
        None, gt=0, description="Record every k-th coordinate of θ: 0, k, 2k, ….")
    projections: int = Field(
        0, ge=0, description="Also record ûᵀθ for this many random unit directions û "
        "(posterior/projection; the directions are stored in the archive).")
    seed: int = Field(0, description="Seed of the projection directions.")
    layer_norms: bool = Field(
        False, description="Also record ‖θ_layer‖ per draw for each named variable (w1, b1, … "
        "of a network; ‖θ‖ for other models) as posterior/<name>_norm.")
    dtype: Literal["float16", "float32", "float64"] | None = Field(
        None, description="How the draws (θ, projections, norms) are stored; default "
        "run.dtype. float16 halves float32's size but keeps about 3 significant digits: "
        "enough for trajectories and R-hat of large moves, not for small fluctuations (the "
        "temperatures come from the engine's float64 sums either way).")

    @field_validator("coords")
    @classmethod
    def _increasing(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and any(b <= a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError("must be strictly increasing")
        return v

    @model_validator(mode="after")
    def _one_subset(self) -> RecordConfig:
        if self.coords is not None and self.every is not None:
            raise ValueError("give coords or every, not both")
        return self

    @property
    def partial(self) -> bool:
        """Whether θ is recorded as a subset of its coordinates."""
        return self.coords is not None or self.every is not None

    def indices(self, dim: int) -> list[int] | None:
        """The recorded coordinates of a D-coordinate model (``None``: all of them).

        Raises:
            ValueError: An index is not below D.
        """
        if self.every is not None:
            return list(range(0, dim, self.every))
        if self.coords is not None and self.coords and self.coords[-1] >= dim:
            raise ValueError(f"run.record.coords: indices must be in [0, {dim}) for this model "
                             f"(D = {dim}), got {self.coords[-1]}")
        return self.coords


class RunConfig(_Strict):
    """Chain settings shared by every run of a job (sweeps may override any of them)."""

    chains: int = Field(8, gt=0, description="Chains per run.")
    draws: int = Field(1000, gt=0, description="Recorded draws per chain after burn-in.")
    burn_in: int = Field(1000, ge=0, description="Steps before recording; a multiple of thin.")
    thin: int = Field(1, gt=0, description="Record every thin-th step.")
    batch_size: int = Field(1, gt=0, description="Minibatch size B.")
    sampling: Literal["iid", "without_replacement", "epoch", "full", "gaussian"] = Field(
        "iid", description="iid indices, without replacement within a batch, epoch reshuffle, "
        "full (deterministic full-batch gradient: gradient flow as lr → 0) or gaussian (the "
        "SDE surrogate: full gradient + N(0, Σ_1(θ)/B) noise, Euler–Maruyama with dt = lr).")
    dtype: Literal["float32", "float64"] = Field("float64", description="Precision of the "
                                                 "chains.")
    init_scale: float = Field(1.0, ge=0, description="θ₀ = init_scale·N(0, I) (MLP: Glorot).")
    init: Literal["random", "optimum"] = Field(
        "random", description="optimum: start every chain at θ* from full-batch L-BFGS.")
    superchains: int | None = Field(
        None, ge=2, description="Start the chains in this many groups, each from one point "
        "(superchains: chain c is in group c // (chains/superchains)), for nested R-hat "
        "(Margossian et al. 2024). Must divide run.chains; none: every chain its own start.")
    keep_warmup: bool = Field(False, description="Record burn-in draws in warmup_posterior.")
    record: RecordConfig = Field(
        default_factory=RecordConfig, description="What each draw records (default: all of θ).")
    stream: int | None = Field(
        None, ge=0, description="Random stream (default: the run index). Runs with the same "
        "stream share their random numbers: common random numbers for paired comparisons.")
    until: UntilConfig | None = Field(
        None, description="Run until converged: burn-in judged from the data and draws "
        "extended until targets are met (sampler.config.until).")

    @property
    def storage_dtype(self) -> str:
        """The dtype the recorded draws are stored in (``record.dtype``, else ``dtype``)."""
        return self.record.dtype or self.dtype

    @model_validator(mode="after")
    def _burn_in_multiple(self) -> RunConfig:
        if self.burn_in % self.thin:
            raise ValueError(f"run.burn_in must be a multiple of run.thin ({self.thin}), "
                             f"got {self.burn_in}")
        if self.record.partial and self.sampling == "epoch":
            raise ValueError("run.record: a subset of θ needs the virial from minibatch "
                             "gradients, unbiased only for sampling iid, without_replacement, "
                             "gaussian or full; got epoch")
        if self.until is not None and self.until.r_hat is not None and self.chains < 2:
            raise ValueError(f"run.until.r_hat needs at least 2 chains (run.chains), "
                             f"got {self.chains}")
        if self.superchains is not None and self.chains % self.superchains:
            raise ValueError(f"run.superchains must divide run.chains ({self.chains}), "
                             f"got {self.superchains}")
        if self.superchains is not None and self.init == "optimum":
            raise ValueError("run.superchains: every chain starts at θ* with init = optimum; "
                             "use init = random for superchains")
        if self.until is not None and self.until.max_draws < self.draws:
            raise ValueError(f"run.until.max_draws must be at least run.draws ({self.draws}), "
                             f"got {self.until.max_draws}")
        return self

    @property
    def records_warmup(self) -> bool:
        """Whether burn-in draws are recorded (``keep_warmup``, or an equilibrated burn-in)."""
        return self.keep_warmup or (self.until is not None and self.until.equilibrate)

    @property
    def max_burn_in(self) -> int:
        """The most burn-in steps the run can take."""
        u = self.until
        if u is None or not u.equilibrate:
            return self.burn_in
        cap = u.max_burn_in if u.max_burn_in is not None else u.max_draws * self.thin
        return max(self.burn_in, cap - cap % self.thin)

    @property
    def max_draws(self) -> int:
        """The most posterior draws the run can record."""
        return self.draws if self.until is None else self.until.max_draws


class ClusterConfig(_Strict):
    """How runs are split over Ray actors and how the archive is chunked."""

    shard_chains: int = Field(64, gt=0, description="Chains per actor (one shard).")
    chunk_draws: int = Field(256, gt=0, description="Draws per archive chunk (one commit).")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto: CUDA when the Ray cluster has GPUs, else the CPU.")
    num_gpus: float = Field(1.0, gt=0, le=1, description="GPU fraction per actor on GPU clusters.")
    max_restarts: int = Field(3, ge=0, description="Actor restarts after a crash.")
    executor: Literal["auto", "ray", "process"] = Field(
        "auto", description="Where shards run. ray: one actor each, in parallel, restarted "
        "after a crash. process: one after another in the driver's own process, with no Ray "
        "start (a small job is done before Ray would be up). auto: process for a CPU job of at "
        "most 10⁷ coordinate-steps (chains × steps × D) when no Ray cluster is named or "
        "running here and no run has run.until; else ray. The archive is the same either way.")
    storage_options: dict[str, Any] = Field(
        {}, description="fsspec options of an archive URL (an S3 endpoint, a profile); stored "
                        "with the config, so credentials belong in the environment.")


MAX_RUNS = 1000  # runs per job: each is an archive group, shards and actors


class SweepConfig(_Strict):
    """Sweep points: the product of ``grid`` lists times the lock-step ``zip`` lists.

    Keys are dotted paths into the config (``"rule.lr"``, ``"run.batch_size"``) or ``"rule"`` /
    ``"model"`` with whole tables as values.
    """

    grid: dict[str, list] = Field({}, description="Dotted paths (\"rule.lr\", or rule / model "
                                  "with whole tables) to lists: every combination is a run.")
    zip: dict[str, list] = Field({}, description="Dotted paths to lists of one length, taken "
                                 "in lock-step.")

    @field_validator("grid", "zip")
    @classmethod
    def _not_empty(cls, v: dict[str, list]) -> dict[str, list]:
        empty = [k for k, x in v.items() if not x]
        if empty:
            raise ValueError(f"every sweep list needs at least one value, got [] for {empty[0]!r}")
        return v

    @field_validator("zip")
    @classmethod
    def _same_length(cls, v: dict[str, list]) -> dict[str, list]:
        lengths = {k: len(x) for k, x in v.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"all sweep.zip lists must have the same length, got {lengths}")
        return v

    @model_validator(mode="after")
    def _not_too_many(self) -> SweepConfig:
        n = math.prod(len(x) for x in self.grid.values()) * (
            len(next(iter(self.zip.values()))) if self.zip else 1)
        if n > MAX_RUNS:
            raise ValueError(f"at most {MAX_RUNS} runs per job, got {n:,} (grid × zip); split "
                             f"the sweep into several jobs")
        return self


class JobConfig(_Strict):
    """A whole job: one model, one rule, run settings, and optionally a sweep over any of them."""

    name: str = Field("job", description="The job's name.")
    claim: str | None = Field(
        None, description="Claim (docs/claims.md) this job tests; the report adds "
        "its verdict section. "
        "Claims are an analysis concept: the CLI checks the name against "
        "sgdthermo.analysis.claims.CLAIMS before Ray starts.")
    seed: int = Field(0, ge=0, description="Root seed; every shard's generator derives from it.")
    model: ModelConfig = Field(description="The loss: one table per kind (below).")
    rule: RuleConfig = Field(description="The update rule: one table per kind (below).")
    run: RunConfig = Field(RunConfig(), description="Chains, draws and what is recorded.")
    cluster: ClusterConfig = Field(ClusterConfig(), description="Shards, chunks and devices.")
    sweep: SweepConfig = Field(SweepConfig(), description="Runs over values of any field.")


class RunSpec(_Strict):
    """One expanded sweep point: the settings a shard needs to run its chains."""

    index: int
    label: str
    model: ModelConfig
    rule: RuleConfig
    run: RunConfig
