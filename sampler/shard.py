"""One shard of one run: restore from the archive, run blocks, write them with the commit protocol.

``ShardRunner`` is what a Ray actor holds; it needs nothing from Ray and is tested on its own. Its
public method ``run_until(blocks)`` is idempotent: asking for blocks already committed does nothing,
so a retried call after a crash simply continues from the last commit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import zarr

from .archive import (
    DTYPES,
    RNG_BYTES,
    block_schedule,
    n_posterior_blocks,
    open_store,
    read_root,
    run_group_name,
    shard_bounds,
)
from .config import JobConfig, RunSpec
from .engine import BlockRecord, ChainState, Engine
from .jobspec import expand
from .models import build_model
from .optimum import optimum
from .rules import build_rule
from .stability import check_second_moment, check_stability


def build_engine(spec: RunSpec, n_chains: int, device: str | torch.device = "cpu") -> Engine:
    """Model + rule + engine of one run, after the stability check."""
    model = build_model(spec.model, spec.run.batch_size, DTYPES[spec.run.dtype], device)
    check_stability(model, spec.rule)
    check_second_moment(model, spec.rule, spec.run.batch_size, spec.run.sampling)
    rule = build_rule(spec.rule, spec.run.batch_size)
    return Engine(model, rule, spec.run.batch_size, spec.run.sampling, n_chains)


def shard_seed(job_seed: int, run_index: int, shard_index: int) -> int:
    """Independent 63-bit seed per (job seed, run, shard) via ``numpy.random.SeedSequence``."""
    ss = np.random.SeedSequence([job_seed, run_index, shard_index])
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def flatten_state(state: ChainState) -> dict[str, torch.Tensor]:
    """The chain-indexed tensors of a state by name (``rule_<field>`` for the rule state)."""
    out = {"params": state.params, "diverged": state.diverged, "perm": state.perm}
    for field, value in state.rule_state._asdict().items():
        out[f"rule_{field}"] = value
    return out


def state_facts(spec: RunSpec) -> dict[str, Any]:
    """Shapes and dtypes the driver needs to pre-allocate a run (built with one chain on CPU)."""
    engine = build_engine(spec, 1, "cpu")
    state = engine.init(torch.Generator().manual_seed(0), spec.run.init_scale)
    shapes = {k: (tuple(v.shape[1:]), str(v.dtype).removeprefix("torch."))
              for k, v in flatten_state(state).items()}
    return {"dim": engine.model.dim, "full_loss": engine.record_full_loss,
            "model": engine.model.describe(), "state": shapes}


class ShardRunner:
    """Runs chains ``[lo, hi)`` of run ``run_index`` of the archive at ``path``.

    Args:
        path: Archive path or URL.
        run_index: Which run (sweep point).
        shard_index: Which shard of that run.
        device: Torch device; defaults to the device fixed in the archive.
    """

    def __init__(self, path: str, run_index: int, shard_index: int,
                 device: str | None = None) -> None:
        meta = read_root(path)
        job = JobConfig.model_validate(meta["config"])
        self.spec = expand(job)[run_index]
        self.path, self.run_index, self.shard = path, run_index, shard_index
        self.lo, self.hi = shard_bounds(self.spec.run.chains, job.cluster.shard_chains)[shard_index]
        self.device = torch.device(device or meta["device"])
        self.engine = build_engine(self.spec, self.hi - self.lo, self.device)
        self.blocks = block_schedule(self.spec, job.cluster.chunk_draws)
        self.n_warmup = len(self.blocks) - n_posterior_blocks(self.blocks)
        self.generator = torch.Generator(self.device)
        stream = self.spec.run.stream if self.spec.run.stream is not None else run_index
        self.generator.manual_seed(shard_seed(job.seed, stream, shard_index))
        root = zarr.open_group(store=open_store(path), mode="r+")
        # zarr types group[...] as a union of every node kind; this group's layout is fixed.
        self.group: Any = root[run_group_name(run_index)]
        self.blocks_done, self.state = self._restore()

    @property
    def n_blocks(self) -> int:
        """Blocks in this run."""
        return len(self.blocks)

    def _restore(self) -> tuple[int, ChainState]:
        done, slot = (int(v) for v in self.group["checkpoint"]["commit"][self.shard])
        if done == 0:
            start = optimum(self.engine.model) if self.spec.run.init == "optimum" else None
            return 0, self.engine.init(self.generator, self.spec.run.init_scale, start)
        g = self.group["checkpoint"][f"slot{slot}"]
        template = self.engine.init(torch.Generator(self.device).manual_seed(0), 0.0)

        def load(name: str) -> torch.Tensor:
            arr = np.asarray(g[name][self.lo:self.hi])
            return torch.as_tensor(arr, device=self.device)

        rule_cls = type(template.rule_state)
        rule_state = rule_cls(*(load(f"rule_{f}").to(getattr(template.rule_state, f).dtype)
                                for f in rule_cls._fields))
        n = int(g["rng_len"][self.shard])
        rng = torch.as_tensor(np.asarray(g["rng"][self.shard, :n]), dtype=torch.uint8)
        self.generator.set_state(rng)
        step = sum(b.steps for b in self.blocks[:done])
        state = ChainState(load("params").to(template.params.dtype), rule_state,
                           load("diverged"), load("perm"), step)
        return done, state

    def run_until(self, target_blocks: int) -> dict[str, int]:
        """Run and commit blocks until ``target_blocks`` are done (idempotent)."""
        target = min(target_blocks, self.n_blocks)
        while self.blocks_done < target:
            self._run_block()
        return {"blocks_done": self.blocks_done,
                "diverged": int(self.state.diverged.sum().item())}

    def _run_block(self) -> None:
        block = self.blocks[self.blocks_done]
        state, record = self.engine.run_block(self.generator, self.state, block.steps,
                                              self.spec.run.thin)
        self._write_data(block.group, block.draw_start, record)
        k = self.blocks_done + 1
        self._write_checkpoint(k % 2, state)
        self.group["checkpoint"]["commit"][self.shard] = np.array([k, k % 2])
        self.blocks_done, self.state = k, state

    def _write_data(self, kind: str, start: int, rec: BlockRecord) -> None:
        sl = slice(self.lo, self.hi)
        if kind == "posterior":
            fl, b = self.group["fluctuation"], self.blocks_done - self.n_warmup
            fl["sum"][sl, b] = rec.fluct_sum.double().cpu().numpy()
            if "identity" in fl:  # archives written before the identity was recorded lack it
                fl["identity"][sl, b] = rec.ident_sum.cpu().numpy()
        elif not self.spec.run.keep_warmup:
            return
        prefix = "warmup_" if kind == "warmup" else ""
        draws = slice(start, start + rec.theta.shape[1])
        self.group[f"{prefix}posterior"]["theta"][sl, draws] = rec.theta.cpu().numpy()
        stats = self.group[f"{prefix}sample_stats"]
        for name in ("loss", "grad_norm", "full_loss", "diverged"):
            value = getattr(rec, name)
            if value is not None:
                stats[name][sl, draws] = value.cpu().numpy()

    def _write_checkpoint(self, slot: int, state: ChainState) -> None:
        g = self.group["checkpoint"][f"slot{slot}"]
        for name, tensor in flatten_state(state).items():
            g[name][self.lo:self.hi] = tensor.cpu().numpy()
        rng = self.generator.get_state().numpy()
        if rng.size > RNG_BYTES:  # pragma: no cover - no torch generator is this large
            raise RuntimeError(f"generator state of {rng.size} bytes exceeds {RNG_BYTES}")
        padded = np.zeros(RNG_BYTES, np.uint8)
        padded[: rng.size] = rng
        g["rng"][self.shard] = padded
        g["rng_len"][self.shard] = rng.size
