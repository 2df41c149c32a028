"""One shard of one run: restore from the archive, run blocks, write them with the commit protocol.

``ShardRunner`` is what a Ray actor holds; it needs nothing from Ray and is tested on its own. Its
public method ``run_until(blocks)`` is idempotent: asking for blocks already committed does nothing,
so a retried call after a crash simply continues from the last commit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .archive import DTYPES, BlockData, CorruptArchiveError, RunStore
from .archive.schema import LAYOUT_FLAT, LAYOUT_LAYERS
from .config import RunSpec
from .config.base import ConfigError
from .engine import BlockRecord, ChainState, Engine
from .models.weight_decay import with_weight_decay
from .optimum import optimum
from .recording import Recording
from .stability import check_curvature_floor, check_second_moment, check_stability


def build_engine(spec: RunSpec, n_chains: int, device: str | torch.device = "cpu",
                 kernel: str | None = None, recording: Recording | None = None) -> Engine:
    """Model + rule + engine of one run, after the stability check.

    ``recording``: what the draws keep (a shard passes the archive's, whose projection
    directions are stored); default ``run.record`` resolved for the model.

    ``kernel`` as in ``Engine`` (``None``: the fastest path built here): an archive names the
    path that wrote it and is continued with it (archives from before the fused path read as
    ``"step"``).
    """
    rule = spec.rule.build(spec.run.batch_size)
    model = with_weight_decay(spec.model.build(spec.run.batch_size, DTYPES[spec.run.dtype],
                                               device), rule.weight_decay)
    if getattr(model, "batch_dependent", False) and (rule.needs_example_var
                                                     or rule.needs_example_sq):
        raise ConfigError(f"rule.kind: {rule.name!r} needs per-example gradients, which a module "
                          f"with BatchNorm in training mode does not have; use GroupNorm or "
                          f"LayerNorm, or a rule without them (sgd, momentum, adam, rmsprop)")
    check_stability(model, rule)
    check_curvature_floor(model, rule)
    check_second_moment(model, rule, spec.run.batch_size, spec.run.sampling)
    recording = recording or Recording.of(spec.run.record, model.dim,
                                          [(v.name, v.size) for v in model.variables()],
                                          sums_virial=model.opaque)
    return Engine(model, rule, spec.run.batch_size, spec.run.sampling, n_chains, kernel=kernel,
                  recording=recording)


def shard_seed(job_seed: int, run_index: int, shard_index: int) -> int:
    """Independent 63-bit seed per (job seed, run, shard) via ``numpy.random.SeedSequence``."""
    ss = np.random.SeedSequence([job_seed, run_index, shard_index])
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def flatten_state(state: ChainState) -> dict[str, torch.Tensor]:
    """The chain-indexed tensors of a state by name.

    ``rule_<field>`` for the rule state, ``buffer_<name>`` for a module's buffers.
    """
    out = {"params": state.params, "diverged": state.diverged, "perm": state.perm}
    for field, value in state.rule_state._asdict().items():
        out[f"rule_{field}"] = value
    for name, value in state.buffers.items():
        out[f"{BUFFER}{name}"] = value
    return out


BUFFER = "buffer_"
"""Prefix of a module buffer's name in the checkpoint (``buffer_bn1.running_mean``)."""


def state_facts(spec: RunSpec) -> dict[str, Any]:
    """Shapes and dtypes the driver needs to pre-allocate a run (built with one chain on CPU)."""
    engine = build_engine(spec, 1, "cpu")
    state = engine.init(torch.Generator().manual_seed(0), spec.run.init_scale)
    shapes = {k: (tuple(v.shape[1:]), str(v.dtype).removeprefix("torch."))
              for k, v in flatten_state(state).items()}
    return {"dim": engine.model.dim, "full_loss": engine.record_full_loss,
            "kernel": engine.kernel_name,
            "recording": engine.recording,
            "layout": LAYOUT_LAYERS if engine.model.variables() and not engine.recording.partial
            else LAYOUT_FLAT,
            "variables": [[v.name, list(v.shape), list(v.dims)] for v in engine.model.variables()],
            "model": engine.model.describe(), "arrays": engine.model.arrays(), "state": shapes}


class ShardRunner:
    """Runs chains ``[lo, hi)`` of run ``run_index`` of the archive at ``path``.

    Args:
        path: Archive path or URL.
        run_index: Which run (sweep point).
        shard_index: Which shard of that run.
        device: Torch device; defaults to the device fixed in the archive.
    """

    def __init__(self, path: str, run_index: int, shard_index: int,
                 device: str | None = None, restore: bool = True) -> None:
        self.store = RunStore(path, run_index, writable=True)
        self.spec, self.blocks = self.store.spec, self.store.blocks
        self.path, self.run_index, self.shard = path, run_index, shard_index
        self.lo, self.hi = self.store.shards[shard_index]
        self.device = torch.device(device or self.store.meta["device"])
        self.engine = build_engine(self.spec, self.hi - self.lo, self.device, self.store.kernel,
                                   self.store.recording())
        self.generator = torch.Generator(self.device)
        stream = self.spec.run.stream if self.spec.run.stream is not None else run_index
        self.generator.manual_seed(shard_seed(self.store.job.seed, stream, shard_index))
        self.blocks_done, self.state = self._restore() if restore else self._start()

    @property
    def n_blocks(self) -> int:
        """Blocks in this run."""
        return len(self.blocks)

    def _start(self) -> tuple[int, ChainState]:
        """The shard's initial state (the generator must be freshly seeded)."""
        start = optimum(self.engine.model) if self.spec.run.init == "optimum" else None
        if self.spec.run.superchains is not None:
            start = self._superchain_starts()
        return 0, self.engine.init(self.generator, self.spec.run.init_scale, start)

    def _superchain_starts(self) -> torch.Tensor:
        """θ₀ of this shard's chains ``[c, D]``: one draw per superchain, shared by its chains.

        Each superchain's point comes from a generator of its own (job seed, stream,
        superchain), so it does not depend on how the chains are split into shards.
        """
        run = self.spec.run
        assert run.superchains is not None
        size = run.chains // run.superchains
        stream = run.stream if run.stream is not None else self.run_index
        points = {}
        for k in sorted({c // size for c in range(self.lo, self.hi)}):
            seed = np.random.SeedSequence([self.store.job.seed, stream, k, 1])
            gen = torch.Generator(self.device).manual_seed(
                int(seed.generate_state(1, np.uint64)[0] >> np.uint64(1)))
            points[k] = self.engine.model.init_params(gen, 1, run.init_scale)[0]
        return torch.stack([points[c // size] for c in range(self.lo, self.hi)])

    def _restore(self) -> tuple[int, ChainState]:
        if not self.store.slot_intact(self.shard):
            raise CorruptArchiveError(
                f"run {self.run_index} shard {self.shard}: its checkpoint does not match its "
                f"checksum; `sgdthermo resume --repair {self.path}` rebuilds it")
        ckpt = self.store.restore(self.shard)
        if ckpt is None:
            return self._start()
        template = self.engine.init(torch.Generator(self.device).manual_seed(0), 0.0)

        def load(name: str, like: torch.Tensor) -> torch.Tensor:
            return torch.as_tensor(ckpt.arrays[name], device=self.device).to(like.dtype)

        rule_cls = type(template.rule_state)
        rule_state = rule_cls(*(load(f"rule_{f}", getattr(template.rule_state, f))
                                for f in rule_cls._fields))
        self.generator.set_state(torch.as_tensor(ckpt.rng, dtype=torch.uint8))
        step = sum(b.steps for b in self.blocks[:ckpt.blocks_done])
        buffers = {k: load(f"{BUFFER}{k}", b) for k, b in template.buffers.items()}
        state = ChainState(load("params", template.params), rule_state,
                           load("diverged", template.diverged), load("perm", template.perm), step,
                           buffers)
        return ckpt.blocks_done, state

    def run_until(self, target_blocks: int) -> dict[str, int]:
        """Run and commit blocks until ``target_blocks`` are done (idempotent).

        A ``run.until`` run's schedule is read again first: the driver extends it between calls.
        """
        if target_blocks > self.n_blocks and self.spec.run.until is not None:
            self.store.refresh()
            self.blocks = self.store.blocks
        target = min(target_blocks, self.n_blocks)
        while self.blocks_done < target:
            self._run_block()
        return {"blocks_done": self.blocks_done,
                "diverged": int(self.state.diverged.sum().item())}

    def _run_block(self) -> None:
        block = self.blocks[self.blocks_done]
        state, record = self.engine.run_block(self.generator, self.state, block.steps,
                                              self.spec.run.thin)
        self.store.write_block(self.shard, block, block_data(record))
        k = self.blocks_done + 1
        state_arrays = {name: t.cpu().numpy() for name, t in flatten_state(state).items()}
        self.store.commit(self.shard, k, state_arrays, self.generator.get_state().numpy())
        self.blocks_done, self.state = k, state


def repair_shard(path: str, run_index: int, shard_index: int, blocks: set[int],
                 checkpoint: bool) -> None:
    """Rewrite corrupt committed blocks (and checkpoint) of a shard by replaying it from its start.

    The replay is bitwise the original run (same seed, kernel and block sizes), so every block
    it passes must digest to its stored checksum: an intact block that does not is an error
    (this machine does not reproduce the run) and a rewritten block must match its stored
    checksum before it is written, so nothing wrong is ever written. Cost: the shard's steps up
    to its last corrupt block (up to its last commit when the checkpoint is corrupt).
    """
    runner = ShardRunner(path, run_index, shard_index, restore=False)
    store, shard = runner.store, shard_index
    done = int(store.committed()[shard])
    sums = store.stored_checksums(shard)
    if sums is None:
        raise CorruptArchiveError(f"run {run_index}: written before checksums; cannot repair")
    last = done if checkpoint else max(blocks) + 1
    for k in range(last):
        block = runner.blocks[k]
        runner.state, record = runner.engine.run_block(runner.generator, runner.state,
                                                       block.steps, runner.spec.run.thin)
        data = block_data(record)
        expected = int(sums[0][k])
        if k in blocks:
            if expected and store.data_digest(shard, block, data) != expected:
                raise CorruptArchiveError(
                    f"run {run_index} shard {shard} block {k}: the replay does not reproduce its "
                    f"checksum on this machine; nothing was rewritten for it")
            store.write_block(shard, block, data)
        elif store.data_digest(shard, block, data) != expected:
            raise CorruptArchiveError(
                f"run {run_index} shard {shard} block {k}: the replay differs from the intact "
                f"block (a different kernel or device?); stopped before rewriting anything after it")
    if checkpoint:
        slot_sum = int(sums[1][done % 2])
        state_arrays = {name: t.cpu().numpy() for name, t in flatten_state(runner.state).items()}
        store.commit(shard, done, state_arrays, runner.generator.get_state().numpy())
        now = store.stored_checksums(shard)
        if slot_sum and now is not None and int(now[1][done % 2]) != slot_sum:
            raise CorruptArchiveError(f"run {run_index} shard {shard}: the replayed checkpoint "
                                      f"does not reproduce its checksum on this machine")


def block_data(rec: BlockRecord) -> BlockData:
    """An engine block record as the numpy arrays the archive stores."""
    stats = {name: getattr(rec, name).cpu().numpy()
             for name in ("loss", "grad_norm", "full_loss", "diverged")
             if getattr(rec, name) is not None}
    return BlockData(rec.theta.cpu().numpy(), stats, rec.fluct_sum.double().cpu().numpy(),
                     rec.ident_sum.cpu().numpy(),
                     None if rec.projection is None else rec.projection.cpu().numpy(),
                     None if rec.virial_sum is None else rec.virial_sum.cpu().numpy(),
                     None if rec.layer_norms is None else rec.layer_norms.cpu().numpy())
