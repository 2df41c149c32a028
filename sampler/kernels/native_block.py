"""What the native kernels share: a block's state advanced in place, its record, its sums.

A native kernel (``native_kernel.py``, ``native_regression.py``) runs a block as sub-blocks of
``S`` steps, each one C call that advances θ (and the heavy-ball buffer) in place, writes the
recorded steps straight into the chain-major record (or, for a subset of θ, into a sub-block's
worth that ``Recording.pick`` reduces), and adds per-coordinate sums ``Σθ·src, Σsrc, Σsrc², Σθ``
(heavy ball also ``Σθ·g, Σg``) in float64. ``NativeBlock`` holds all of that; ``record_sums``
maps the sums to the record's fluctuation, identity and virial sums.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor

from ..chain_state import BlockRecord, ChainState
from ..recording import Recording
from ..rules import GradSample, UpdateRule
from .fused_linear import block_outputs


def fluctuation_factor(rule: UpdateRule, dim: int, dtype: torch.dtype) -> Tensor | None:
    """``f [D]`` with the rule's fluctuation term ``= f⊙src²`` (``None`` if it is not that form).

    ``src`` is the minibatch gradient for a stateless rule and the heavy-ball buffer otherwise.
    Read at ``src = 1`` and checked at ``src = 2`` and ``−3`` (with a different gradient, which
    a heavy-ball rule's term must not depend on).
    """
    hb = rule.buffer_map

    def term(src: float, grad: float) -> Tensor:
        s = torch.full((1, dim), src, dtype=torch.float64)
        g = s if hb is None else torch.full((1, dim), grad, dtype=torch.float64)
        state = hb.state(s) if hb is not None else ()
        return rule.fluctuation(GradSample(g, None, None, None, torch.zeros_like(s), 1), state)[0]

    f = term(1.0, 5.0)
    for src, grad in ((2.0, 7.0), (-3.0, 0.5)):
        if not torch.allclose(term(src, grad), f * src * src, rtol=1e-12, atol=0.0):
            return None
    return f.to(dtype)


def record_sums(sums: Tensor, rates64: Tensor, factor: Tensor, heavy: bool, partial: bool,
                dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor | None]:
    """A native kernel's sums as the record's: fluctuation, identity and virial sums.

    The identity sums are ``Λ·Σθ·src, Λ·Σsrc, ½Λ²·Σsrc²``, the fluctuation ``f⊙Σsrc²`` in θ's
    dtype, and the virial sums ``Σθ, Σθ·g, Σg`` (kept only for partial records).
    """
    r = rates64
    ident = torch.stack([r * sums[0], r * sums[1], 0.5 * r.square() * sums[2]], 1)
    virial = None
    if partial:
        pair = (sums[4], sums[5]) if heavy else (sums[0], sums[1])
        virial = torch.stack([sums[3], *pair], 1)
    return (factor.double() * sums[2]).to(dtype), ident, virial


class SubBlock(NamedTuple):
    """One C call of ``steps`` steps.

    Its recorded steps go to ``rec[:, at:]`` (chain stride ``stride`` records) and to rows
    ``r0:r1`` of the block's record; ``first`` is the first recorded step; ``undamped`` whether
    it holds PyTorch's undamped first heavy-ball step.
    """

    steps: int
    first: int
    r0: int
    r1: int
    rec: Tensor
    at: int
    stride: int
    undamped: bool


class NativeBlock:
    """A block's state (advanced in place by the kernel) and record.

    Args:
        state: The chains at the start of the block.
        rule: The rule (its ``buffer_map`` says whether there is a heavy-ball buffer).
        recording: What a draw records.
        full_loss: Whether the record has the full loss.
        n_steps: Steps of the block (a multiple of ``thin``).
        thin: Record after every ``thin``-th step.
    """

    def __init__(self, state: ChainState, rule: UpdateRule, recording: Recording,
                 full_loss: bool, n_steps: int, thin: int) -> None:
        c, d = state.params.shape
        self.start, self.rule, self.recording = state, rule, recording
        self.n_steps, self.thin, self.n_rec = n_steps, thin, n_steps // thin
        self.out = block_outputs(c, self.n_rec, state.params, recording, full_loss)
        self.flags = torch.empty(c, self.n_rec, dtype=torch.uint8)
        self.theta = state.params.clone(memory_format=torch.contiguous_format)
        hb = rule.buffer_map
        self.buf = (hb.buffer(state.rule_state).clone(memory_format=torch.contiguous_format)
                    if hb is not None else None)
        self.heavy = hb is not None
        self.dead = state.diverged.to(torch.uint8).contiguous()
        self.sums = torch.zeros(6 if self.heavy else 4, c, d, dtype=torch.float64)

    def sub_blocks(self, size: int) -> Iterator[SubBlock]:
        """The block as sub-blocks of at most ``size`` steps (each recorded on return)."""
        c, d = self.theta.shape
        hb, direct = self.rule.buffer_map, self.recording.coords is None
        done = r0 = 0
        while done < self.n_steps:
            s = min(size, self.n_steps - done)
            first = (self.thin - 1 - done) % self.thin
            r1 = r0 + len(range(first, s, self.thin))
            rec, at, stride = ((self.out["theta"], r0, self.n_rec) if direct else
                               (self.theta.new_empty(c, r1 - r0, d), 0, r1 - r0))
            undamped = hb is not None and hb.first_undamped and self.start.step + done == 0
            yield SubBlock(s, first, r0, r1, rec, at, stride, undamped)
            self._picked(rec[:, at:at + r1 - r0], r0, r1, direct)
            done, r0 = done + s, r1

    def pointer(self, name: str, row: int) -> int:
        """Address of a record's ``row`` for chain 0 (0 where it is not recorded).

        ``name``: ``loss``, ``grad_norm``, ``full_loss`` or ``flags``.
        """
        t = self.flags if name == "flags" else self.out.get(name)
        return 0 if t is None else t.data_ptr() + row * t.element_size()

    def _picked(self, recorded: Tensor, r0: int, r1: int, direct: bool) -> None:
        if direct and self.recording.directions is None and self.recording.layers is None:
            return
        picked, proj, norms = self.recording.pick(recorded)
        if not direct:
            self.out["theta"][:, r0:r1] = picked
        if proj is not None:
            self.out["projection"][:, r0:r1] = proj
        if norms is not None:
            self.out["layer_norms"][:, r0:r1] = norms

    def finish(self, rates64: Tensor, factor: Tensor) -> tuple[ChainState, BlockRecord]:
        """The new state and the block's record."""
        out = self.out
        out["diverged"].copy_(self.flags.bool())
        fluct, ident, virial = record_sums(self.sums, rates64, factor, self.heavy,
                                           self.recording.keeps_virial, self.theta.dtype)
        hb, start = self.rule.buffer_map, self.start
        rule_state = (hb.state(self.buf) if hb is not None and self.buf is not None
                      else start.rule_state)
        new = ChainState(self.theta, rule_state, self.dead.bool(), start.perm,
                         start.step + self.n_steps)
        return new, BlockRecord(out["theta"], out["loss"], out["grad_norm"],
                                out.get("full_loss"), out["diverged"], fluct, ident,
                                self.n_steps, virial, out.get("projection"),
                                out.get("layer_norms"))
