"""The job table: model, rule, run and cluster settings, and the sweep over them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import _Strict
from .models import ModelConfig
from .rules import RuleConfig


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
    dtype: Literal["float32", "float64"] = "float64"
    init_scale: float = Field(1.0, ge=0, description="θ₀ = init_scale·N(0, I) (MLP: Glorot).")
    init: Literal["random", "optimum"] = Field(
        "random", description="optimum: start every chain at θ* from full-batch L-BFGS.")
    keep_warmup: bool = Field(False, description="Record burn-in draws in warmup_posterior.")
    stream: int | None = Field(
        None, ge=0, description="Random stream (default: the run index). Runs with the same "
        "stream share their random numbers: common random numbers for paired comparisons.")

    @model_validator(mode="after")
    def _burn_in_multiple(self) -> RunConfig:
        if self.burn_in % self.thin:
            raise ValueError(f"run.burn_in must be a multiple of run.thin ({self.thin}), "
                             f"got {self.burn_in}")
        return self


class ClusterConfig(_Strict):
    """How runs are split over Ray actors and how the archive is chunked."""

    shard_chains: int = Field(64, gt=0, description="Chains per actor (one shard).")
    chunk_draws: int = Field(256, gt=0, description="Draws per archive chunk (one commit).")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_gpus: float = Field(1.0, gt=0, le=1, description="GPU fraction per actor on GPU clusters.")
    max_restarts: int = Field(3, ge=0, description="Actor restarts after a crash.")


class SweepConfig(_Strict):
    """Sweep points: the product of ``grid`` lists times the lock-step ``zip`` lists.

    Keys are dotted paths into the config (``"rule.lr"``, ``"run.batch_size"``) or ``"rule"`` /
    ``"model"`` with whole tables as values.
    """

    grid: dict[str, list] = {}
    zip: dict[str, list] = {}

    @field_validator("zip")
    @classmethod
    def _same_length(cls, v: dict[str, list]) -> dict[str, list]:
        lengths = {k: len(x) for k, x in v.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"all sweep.zip lists must have the same length, got {lengths}")
        return v


class JobConfig(_Strict):
    """A whole job: one model, one rule, run settings, and optionally a sweep over any of them."""

    name: str = "job"
    claim: str | None = Field(
        None, description="Seed claim this job tests; the report adds its verdict section. "
        "Claims are an analysis concept: the CLI checks the name against "
        "sgdthermo.analysis.claims.CLAIMS before Ray starts.")
    seed: int = Field(0, ge=0, description="Root seed; every shard's generator derives from it.")
    model: ModelConfig
    rule: RuleConfig
    run: RunConfig = RunConfig()
    cluster: ClusterConfig = ClusterConfig()
    sweep: SweepConfig = SweepConfig()


class RunSpec(_Strict):
    """One expanded sweep point: the settings a shard needs to run its chains."""

    index: int
    label: str
    model: ModelConfig
    rule: RuleConfig
    run: RunConfig
