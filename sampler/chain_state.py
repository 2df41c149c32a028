"""What the engine carries from step to step (``ChainState``) and what a block records."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor


class ChainState(NamedTuple):
    """Everything needed to continue the chains bitwise identically (with the generator state)."""

    params: Tensor  # [C, D]
    rule_state: Any  # NamedTuple of [C, ...] tensors
    diverged: Tensor  # [C] bool
    perm: Tensor  # [C, N] epoch permutation ([C, 0] unless sampling = "epoch")
    step: int  # steps done, identical for all chains
    buffers: dict[str, Tensor] = {}  # noqa: RUF012 - per-chain module buffers [C, ...], never mutated


def freeze_buffers(bad: Tensor, old: dict[str, Tensor],
                   new: dict[str, Tensor]) -> dict[str, Tensor]:
    """The new buffers, but a chain flagged in ``bad [C]`` keeps its old ones."""
    return {k: torch.where(bad.view(-1, *([1] * (b.dim() - 1))), old[k], b)
            for k, b in new.items()}


class BlockRecord(NamedTuple):
    """What one block records: draws after every thin-th step, and the fluctuation sums."""

    theta: Tensor  # [C, n, D] parameters after the recorded steps (run.record: its coordinates)
    loss: Tensor  # [C, n] minibatch loss of the recorded step (evaluated before its update)
    grad_norm: Tensor  # [C, n] ‖g_B‖ of the recorded step
    full_loss: Tensor | None  # [C, n] full-batch L at the recorded draw (cheap models only)
    diverged: Tensor  # [C, n] bool
    fluct_sum: Tensor  # [C, D] Σ over the block's steps of the rule's fluctuation term
    ident_sum: Tensor  # [C, 3, D] float64 Σ of θ_t⊙(p⊙g)_t, (p⊙g)_t and ½(p⊙g)_t² (see apply)
    n_steps: int
    virial_sum: Tensor | None = None  # [C, 3, D] float64 Σθ_t, Σθ_t⊙g_t, Σg_t (partial records)
    projection: Tensor | None = None  # [C, n, k] θU at the recorded steps (run.record)
    layer_norms: Tensor | None = None  # [C, n, L] ‖θ_layer‖ at the recorded steps (run.record)
