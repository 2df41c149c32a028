"""The schedule of a run that runs until converged (``run.until``), and where its decisions live.

A ``run.until`` run is pre-allocated at its caps (``max_burn_in``, ``max_draws``; Zarr stores no
chunk that is never written) and its schedule is the prefix its decisions allow so far::

    _sgdthermo/run_NNN/until/state            (field,)  int64: warm-up draws W, posterior draws P,
                                                        stop bits, warm-up outcome
    _sgdthermo/run_NNN/until/stationary_step  (shard,)  step at which each shard was judged
                                                        stationary (−1: not judged)
    _sgdthermo/run_NNN/until/monitor          (target,) the monitored values at the last check
    _sgdthermo/run_NNN/fluctuation/warmup_identity  (chain, block, term, coord)  the identity's
                                                        sums of each warm-up block (equilibrating)

Only the driver writes ``until/`` (between blocks, when every shard of the run waits at the
barrier), and it writes a decision before any shard runs the blocks it allows, so a resumed job
finds every decision it made and makes the next one from the same committed data. Blocks are whole
chunks from the start (W and P grow by ``chunk_draws``; only a cap cuts the last one), so an
extension never touches a committed chunk. When the run stops, ``finalize`` shrinks the draw
arrays to the draws taken: ArviZ then reads exactly the run's posterior and warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from ..config.until import TARGETS
from .schema import (
    LAYOUT_LAYERS,
    WARMUP_PREFIX,
    Block,
    block_schedule,
    internal_group_name,
    run_group_name,
)
from .storage import consolidate, open_store

if TYPE_CHECKING:
    from ..config import RunSpec

# stop bits: one per target met, and the cap
STOP_BITS = {name: 1 << i for i, name in enumerate(TARGETS)} | {"max_draws": 1 << len(TARGETS)}
# warm-up outcome
WARMUP_OPEN, WARMUP_STATIONARY, WARMUP_CAPPED, WARMUP_FIXED = 0, 1, 2, 3
WARMUP_WORDS = {WARMUP_OPEN: "being judged", WARMUP_STATIONARY: "judged stationary",
                WARMUP_CAPPED: "cut at run.until.max_burn_in (not every shard judged "
                               "stationary)", WARMUP_FIXED: "run.burn_in as given"}


def _align(n: int, chunk: int) -> int:
    """``n`` rounded up to whole chunks (at least one)."""
    return max(chunk, -(-n // chunk) * chunk)


@dataclass
class UntilState:
    """The decisions of a ``run.until`` run so far.

    Attributes:
        warmup_draws: W, the warm-up draws scheduled.
        posterior_draws: P, the posterior draws scheduled (0 while the warm-up is being judged).
        stop: ``STOP_BITS`` of the reasons the run stopped (0: still running).
        warmup: ``WARMUP_*``: open, judged stationary, cut at the cap, or fixed by run.burn_in.
        stationary_step: ``[n_shards]`` step at which each shard was judged stationary (−1).
        monitor: The monitored values at the last check, by target (NaN: not yet checked).
    """

    warmup_draws: int
    posterior_draws: int
    stop: int
    warmup: int
    stationary_step: np.ndarray
    monitor: np.ndarray

    @property
    def stopped(self) -> bool:
        """Whether the run has stopped (nothing more will be scheduled)."""
        return self.stop != 0

    @property
    def warmup_words(self) -> str:
        """The warm-up outcome in words."""
        return WARMUP_WORDS[self.warmup]

    def reasons(self) -> list[str]:
        """Names of what stopped the run: the targets met, or ``max_draws``."""
        return [name for name, bit in STOP_BITS.items() if self.stop & bit]


def initial_state(spec: RunSpec, chunk: int, n_shards: int) -> UntilState:
    """The first decision: ``run.burn_in`` (or whole chunks of it) and no posterior yet."""
    run = spec.run
    assert run.until is not None
    if run.until.equilibrate:
        w = min(_align(run.burn_in // run.thin, chunk), run.max_burn_in // run.thin)
        return UntilState(w, 0, 0, WARMUP_OPEN, np.full(n_shards, -1), np.full(len(TARGETS),
                                                                               np.nan))
    return UntilState(run.burn_in // run.thin, first_posterior(spec, chunk), 0, WARMUP_FIXED,
                      np.full(n_shards, -1), np.full(len(TARGETS), np.nan))


def first_posterior(spec: RunSpec, chunk: int) -> int:
    """Posterior draws before the first check: ``run.draws`` in whole chunks, at most the cap."""
    return min(_align(spec.run.draws, chunk), spec.run.max_draws)


def extended(n: int, chunk: int, cap: int) -> int:
    """One more chunk of draws, at most ``cap``."""
    return min(n + chunk, cap)


def until_schedule(spec: RunSpec, chunk: int, state: UntilState | None) -> list[Block]:
    """The blocks a run's decisions allow (every block at the caps when ``state`` is None)."""
    if state is None:
        return block_schedule(spec, chunk, spec.run.max_burn_in // spec.run.thin,
                              spec.run.max_draws)
    return block_schedule(spec, chunk, state.warmup_draws, state.posterior_draws)


def create_until(internal: Any, spec: RunSpec, chunk: int, n_shards: int) -> None:
    """The ``until/`` arrays of a new run, holding its first decision."""
    group = internal.create_group("until")
    state = initial_state(spec, chunk, n_shards)
    for name, values, dims in (("state", _fields(state), ("field",)),
                               ("stationary_step", state.stationary_step, ("shard",)),
                               ("monitor", state.monitor, ("target",))):
        arr = group.create_array(name, shape=values.shape, chunks=values.shape,
                                 dtype=values.dtype, fill_value=0, dimension_names=dims)
        arr[...] = values


def _fields(state: UntilState) -> np.ndarray:
    return np.array([state.warmup_draws, state.posterior_draws, state.stop, state.warmup],
                    dtype=np.int64)


def read_until(internal: Any) -> UntilState:
    """The decisions stored under ``internal/until``."""
    g = internal["until"]
    w, p, stop, warmup = (int(v) for v in np.asarray(g["state"][:]))
    return UntilState(w, p, stop, warmup, np.asarray(g["stationary_step"][:]),
                      np.asarray(g["monitor"][:]))


def write_until(internal: Any, state: UntilState) -> None:
    """Store a decision (the driver only; the state record last, as a commit)."""
    g = internal["until"]
    g["stationary_step"][...] = state.stationary_step
    g["monitor"][...] = state.monitor
    g["state"][...] = _fields(state)


def shrink_to_state(run_group: Any, state: UntilState) -> None:
    """Cut a stopped run's draw arrays to the draws it took (only never-written chunks go).

    Every ``(chain, draw, …)`` array and ``draw`` coordinate of the posterior, sample-stats and
    warm-up groups; idempotent. The caller consolidates the archive's metadata afterwards.
    """
    for prefix, n in (("", state.posterior_draws), (WARMUP_PREFIX, state.warmup_draws)):
        for name in (f"{prefix}posterior", f"{prefix}sample_stats"):
            if name not in run_group:
                continue
            for _, arr in run_group[name].arrays():
                dims = tuple(arr.metadata.dimension_names or ())
                if dims[:2] == ("chain", "draw") and arr.shape[1] != n:
                    arr.resize((arr.shape[0], n, *arr.shape[2:]))
                elif dims == ("draw",) and arr.shape[0] != n:
                    arr.resize((n,))


def finalize(path: str, index: int) -> None:
    """Cut a stopped run's draw arrays to the draws it took and consolidate (idempotent)."""
    root = zarr.open_group(store=open_store(path), mode="r+")
    state = read_until(root[internal_group_name(index, 2)])
    if not state.stopped:
        return
    shrink_to_state(root[run_group_name(index)], state)
    consolidate(path)


def warmup_center(store: Any, chains: slice, draws: slice) -> np.ndarray:
    """Mean of a ``RunStore``'s recorded warm-up θ over ``draws`` of ``chains`` ``[D]``.

    Coordinates that are not recorded (``run.record``) get 0.
    """
    post = f"{WARMUP_PREFIX}posterior"
    dim = store.node("fluctuation/warmup_identity").shape[-1]
    center = np.zeros(dim)
    if store.layout == LAYOUT_LAYERS:
        lo = 0
        for name, shape, _ in store.variables:
            size = int(np.prod(shape))
            values = np.asarray(store.node(f"{post}/{name}")[chains, draws], dtype=float)
            center[lo:lo + size] = values.reshape(-1, size).mean(axis=0)
            lo += size
        return center
    values = np.asarray(store.node(f"{post}/theta")[chains, draws], dtype=float)
    coords = store.recording().coords
    mean = values.reshape(-1, values.shape[-1]).mean(axis=0)
    if coords is None:
        return mean
    center[np.asarray(coords)] = mean
    return center
