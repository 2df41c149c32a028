"""The chain engine: C chains advanced together in one set of tensors on one device.

Structure (after blackjax): a carried ``ChainState``; one step is ``draw`` (consume randomness from
the shard's explicit generator) followed by the deterministic ``apply``; ``run_block`` runs many
steps with thinning and returns a ``BlockRecord`` that is recorded but not carried. Nothing in the
step loop synchronises with the host: divergence is handled with ``torch.where`` (a chain whose
parameters go non-finite is frozen at its last finite value and flagged), and the block's records
are stacked once at its end.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .chain_state import BlockRecord, ChainState, freeze_buffers
from .kernels import FusedPath, choose
from .kernels.general_step import GeneralStepKernel
from .kernels.lean_sgd import LeanSGDKernel
from .minibatch import IndexSampler
from .models import Batch, FullBatch, IndexBatch, Model, NoiseBatch, SurrogateBatch
from .recording import Recording
from .rules import GradSample, UpdateRule


class Engine:
    """Runs C chains of one (model, rule, batch size, sampling scheme).

    Args:
        model: The model (its dtype and device are the engine's).
        rule: The update rule.
        batch_size: B.
        sampling: Minibatch scheme (dataset models); synthetic-noise models need ``"iid"``.
        n_chains: C.
        record_full_loss: Evaluate ``L`` at every draw; ``None`` asks the model if it is cheap.
        kernel: ``"native"`` runs blocks through ``NativeDiagonalKernel`` where it applies,
            else as ``"fused"``; ``"fused"`` through ``DiagonalLinearKernel`` where it applies;
            ``"step"`` always takes the general step (``kernels.choose`` decides). ``kernel_name``
            says which path runs. ``None``: ``kernels.default_kernel()``.
        recording: What a recorded step keeps of θ (``run.record``; default all of it); with a
            subset the engine also sums ``θ, θ⊙g_B, g_B`` per block
            (``kernels.general_step.VirialWindow``).
    """

    def __init__(self, model: Model, rule: UpdateRule, batch_size: int, sampling: str,
                 n_chains: int, record_full_loss: bool | None = None,
                 kernel: str | None = None, recording: Recording | None = None) -> None:
        self.model, self.rule, self.c = model, rule, n_chains
        self.recording = recording or Recording(None, None)
        self.virial = self.recording.keeps_virial
        self.record_full_loss = (model.full_grad_cheap() if record_full_loss is None
                                 else record_full_loss)
        self.indexer: IndexSampler | None = None
        self.sampling, self.batch_size = sampling, batch_size
        if model.n_examples is None:
            if sampling not in ("iid", "gaussian", "full"):
                raise ValueError(f"run.sampling must be one of ['iid', 'gaussian', 'full'] for "
                                 f"model {model.name!r} (its noise is synthetic), got {sampling!r}")
        elif sampling not in ("full", "gaussian"):
            self.indexer = IndexSampler(sampling, model.n_examples, batch_size, n_chains,
                                        model.device)
        self.fused: FusedPath | None
        path, self.kernel_name = choose(kernel, model, rule, batch_size, sampling,
                                        self.record_full_loss, self.recording)
        self.lean = path if isinstance(path, LeanSGDKernel) else None
        self.general = path if isinstance(path, GeneralStepKernel) else None
        self.fused = None if isinstance(path, LeanSGDKernel | GeneralStepKernel) else path

    def init(self, generator: torch.Generator, init_scale: float,
             start: Tensor | None = None) -> ChainState:
        """Initial state: fresh rule state, nothing diverged.

        ``θ₀`` comes from the generator, or is ``start`` (``[D]`` for every chain, or ``[C, D]``
        one row per chain); the generator is advanced the same way in all cases.
        """
        params = self.model.init_params(generator, self.c, init_scale)
        if start is not None:
            params = start.to(params).expand_as(params).clone()
        perm = (self.indexer.initial_perm() if self.indexer is not None
                else torch.zeros(self.c, 0, dtype=torch.long, device=params.device))
        diverged = torch.zeros(self.c, dtype=torch.bool, device=params.device)
        return ChainState(params, self.rule.init(params), diverged, perm, 0,
                          self.model.init_buffers(self.c))

    def draw(self, generator: torch.Generator, state: ChainState) -> tuple[Batch, Tensor]:
        """The randomness of the next step, and the updated epoch permutation."""
        if self.model.n_examples is None:  # synthetic noise: the model draws it
            noise = self.model.draw(generator, self.c)
            if self.sampling == "full":  # drawn all the same, so full and iid share a stream
                noise = NoiseBatch(torch.zeros_like(noise.noise))
            return noise, state.perm
        if self.sampling == "full":
            return FullBatch(), state.perm
        if self.sampling == "gaussian":
            z = torch.randn(self.c, self.model.n_examples, generator=generator,
                            dtype=self.model.dtype, device=self.model.device)
            return SurrogateBatch(z), state.perm
        assert self.indexer is not None
        idx, perm = self.indexer.draw(generator, state.perm, state.step)
        seed = None
        if self.model.random_forward:  # the forward pass's randomness, from the same stream
            seed = int(torch.randint(0, 2**62, (1,), generator=generator,
                                     device=generator.device).item())
        return IndexBatch(idx, seed), perm

    def gradient(self, params: Tensor, batch: Batch, with_loss: bool = True,
                 buffers: dict[str, Tensor] | None = None
                 ) -> tuple[Tensor | None, Tensor, dict[str, Tensor]]:
        """Loss ``[C]`` (``None`` unless ``with_loss``), gradient ``[C, D]`` and new buffers.

        Index or noise batches give the minibatch gradient; an empty batch the full-batch
        gradient (``full``); a ``weights`` batch the full gradient plus the Gaussian surrogate
        noise ``N(0, Σ_1(θ)/B)`` (``gaussian``). Skipping the minibatch loss on steps that are
        not recorded leaves the gradient bit for bit the same (``Model.minibatch_gradient``).
        """
        buffers = {} if buffers is None else buffers
        if isinstance(batch, IndexBatch | NoiseBatch):
            return self.model.step_grad(params, buffers, batch, with_loss)
        loss, g = self.model.full_loss_grad(params)
        if isinstance(batch, SurrogateBatch):
            g = g + self.model.surrogate_noise(params, batch.weights, self.batch_size)
        return loss, g, buffers

    def apply(self, state: ChainState, batch: Batch, perm: Tensor, record: bool = True,
              guard: bool = True, noise: Tensor | None = None
              ) -> tuple[ChainState, Tensor | None, Tensor, Tensor, Tensor]:
        """One deterministic step given its randomness.

        The minibatch loss is evaluated only when the step is recorded or the rule needs it.
        With ``guard`` a chain whose parameters turn non-finite is frozen and flagged; without it
        (``run_block``'s optimistic pass, no chain diverged yet) nothing is checked, and every
        chain that stays finite gets bit for bit what the guarded step gives it.

        Returns:
            The new state, the minibatch loss ``[C]`` (or ``None``), the gradient ``[C, D]``, the rule's
            fluctuation term ``[C, D]`` and the step ``δ_t = θ_{t+1} − θ_t = −p_t⊙g_t`` ``[C, D]``:
            with the step written this way for any per-coordinate rate ``p_t``, stationarity of
            ``E[(θ_i − c_i)²]`` gives exactly ``E[(θ_i − c_i)p_ig_i] = ½E[p_i²g_i²]`` (docs/theory.md
            identity R); ``run_block`` accumulates both sides. Fluctuation and
            ``δ`` are zero for diverged chains.
        """
        loss, g, buffers = self.gradient(state.params, batch, record or self.rule.needs_loss,
                                         state.buffers)
        stats_batch = batch
        if not isinstance(batch, IndexBatch) and self.model.n_examples is not None:
            stats_batch = self.model.all_examples(self.c)
        ev = (self.model.example_var(state.params, stats_batch) if self.rule.needs_example_var
              else None)
        sq = (self.model.example_sq(state.params, stats_batch) if self.rule.needs_example_sq
              else None)
        grad = GradSample(g, ev, sq, loss, state.params, state.step, noise)
        delta, rule_state = self.rule.update(grad, state.rule_state, state.params, state.step)
        new = state.params + delta
        if not guard:
            return (ChainState(new, rule_state, state.diverged, perm, state.step + 1, buffers),
                    loss, g, self.rule.fluctuation(grad, rule_state), delta)
        bad = state.diverged | ~torch.isfinite(new).all(dim=-1)
        keep = bad.unsqueeze(-1)
        params = torch.where(keep, state.params, new)
        rule_state = type(rule_state)(*(
            torch.where(keep.view(-1, *([1] * (n.dim() - 1))), o, n)
            for o, n in zip(state.rule_state, rule_state, strict=True)))
        buffers = freeze_buffers(bad, state.buffers, buffers)
        fluct = torch.where(keep, 0.0, self.rule.fluctuation(grad, rule_state))
        delta = torch.where(keep, 0.0, delta)
        return (ChainState(params, rule_state, bad, perm, state.step + 1, buffers), loss, g,
                fluct, delta)

    def step(self, generator: torch.Generator, state: ChainState, record: bool = True,
             guard: bool = True) -> tuple[ChainState, Tensor | None, Tensor, Tensor, Tensor]:
        """``draw`` then ``apply`` (after the batch, N(0, I) for a rule that injects noise)."""
        batch, perm = self.draw(generator, state)
        noise = (torch.randn(state.params.shape, generator=generator, dtype=state.params.dtype,
                             device=state.params.device) if self.rule.needs_noise else None)
        return self.apply(state, batch, perm, record, guard, noise)

    def run_block(self, generator: torch.Generator, state: ChainState, n_steps: int,
                  thin: int) -> tuple[ChainState, BlockRecord]:
        """Run ``n_steps`` (a multiple of ``thin``), recording after every ``thin``-th step.

        Divergence is checked once per block, not per step: while no chain has diverged the
        block runs unguarded, and only if some chain ends it non-finite (a non-finite θ never
        returns to finite: ``±∞ + x`` is ``±∞`` or NaN) is the generator rewound and the block
        re-run with the per-step guard. Either way the result is bit for bit the guarded one.
        """
        if n_steps % thin:
            raise ValueError(f"n_steps must be a multiple of thin ({thin}), got {n_steps}")
        if self.fused is not None:
            return self.fused.run_block(generator, state, n_steps, thin)
        block = self._run_block
        if not bool(state.diverged.any()):
            rewind = generator.get_state()
            new, record = block(generator, state, n_steps, thin, guard=False)
            if bool(torch.isfinite(new.params).all()):
                return new, record
            generator.set_state(rewind)
        return block(generator, state, n_steps, thin, guard=True)

    def _run_block(self, generator: torch.Generator, state: ChainState, n_steps: int,
                   thin: int, guard: bool) -> tuple[ChainState, BlockRecord]:
        """One block by the lean path or the general step (``kernels.general_step``)."""
        path = self.lean or self.general
        assert path is not None
        return path.run_block(self, generator, state, n_steps, thin, guard)
