"""The driver's decisions for ``run.until`` runs: extend the warm-up, start sampling, or stop.

``decide`` is called when every shard of a run has committed every block its schedule allows (a
barrier): it reads the committed data, stores the next decision (``sampler.archive.until_state``)
and returns it; the shards then run the blocks it allows. A stopped run is ``finalize``d: its
draw arrays are cut to the draws it took. Both are idempotent, so ``resume`` repeats whatever a
kill interrupted and makes the same decision from the same data. The analysis that reads the
data is imported when a decision is made, not with the driver (whose start-up stays a plain
job's).
"""

from __future__ import annotations

import numpy as np

from ..sampler.archive import RunStore
from ..sampler.archive.until_state import (
    STOP_BITS,
    WARMUP_CAPPED,
    WARMUP_OPEN,
    WARMUP_STATIONARY,
    UntilState,
    extended,
    finalize,
    first_posterior,
    warmup_center,
    write_until,
)
from ..sampler.config.until import TARGETS


def at_barrier(store: RunStore) -> bool:
    """Whether every shard of the run has committed every block its schedule allows."""
    return bool((store.committed() >= len(store.blocks)).all())


def shard_ratios(store: RunStore, k: int) -> np.ndarray:
    """``analysis.until.fdr_ratio`` of each shard over the later half of ``k`` warm-up blocks."""
    from ..analysis.diagnostics.until import center_window, fdr_ratio, half_window
    before = store.blocks[center_window(k)]  # c: fixed before the window
    draws = slice(before[0].draw_start, before[-1].draw_start + before[-1].n_draws)
    identity = store.node("fluctuation/warmup_identity")
    return np.array([fdr_ratio(np.asarray(identity[lo:hi, half_window(k)]),
                               warmup_center(store, slice(lo, hi), draws))
                     for lo, hi in store.shards])


def _judge_warmup(store: RunStore, state: UntilState) -> None:
    """Mark the shards that pass the equilibration test; start sampling once all have."""
    from ..analysis.diagnostics.until import passes

    run, chunk = store.spec.run, store.chunk_draws
    assert run.until is not None
    k = len(store.blocks)
    if k < 2:
        passed = np.zeros(len(store.shards), bool)
    else:
        passed = passes(shard_ratios(store, k), shard_ratios(store, k - 1),
                        run.until.fdr_tolerance)
    step = sum(b.steps for b in store.blocks)
    state.stationary_step = np.where((state.stationary_step < 0) & passed, step,
                                     state.stationary_step)
    cap = run.max_burn_in // run.thin
    if (state.stationary_step >= 0).all():
        state.warmup = WARMUP_STATIONARY
    elif state.warmup_draws >= cap:
        state.warmup = WARMUP_CAPPED
    else:
        state.warmup_draws = extended(state.warmup_draws, chunk, cap)
        return
    state.posterior_draws = first_posterior(store.spec, chunk)


def _check_targets(store: RunStore, state: UntilState) -> None:
    """Stop when every target is met or at ``max_draws``; else one more chunk of draws."""
    from ..analysis.diagnostics.until import met, monitored
    from ..analysis.reader import open_run

    until = store.spec.run.until
    assert until is not None
    values = monitored(open_run(store.path, store.index))
    state.monitor = np.array([values[t] for t in TARGETS])
    targets = until.targets()
    ok = met(values, targets)
    if len(ok) == len(targets):
        state.stop = sum(STOP_BITS[t] for t in ok)
    elif state.posterior_draws >= until.max_draws:
        state.stop = STOP_BITS["max_draws"] | sum(STOP_BITS[t] for t in ok)
    else:
        state.posterior_draws = extended(state.posterior_draws, store.chunk_draws,
                                         until.max_draws)


def decide(path: str, index: int) -> UntilState:
    """The next decision of run ``index`` at its barrier (stored before it is returned)."""
    store = RunStore(path, index, writable=True)
    state = store.until
    assert state is not None
    if state.stopped or not at_barrier(store):
        return state
    if state.warmup == WARMUP_OPEN:
        _judge_warmup(store, state)
    else:
        _check_targets(store, state)
    write_until(store.internal, state)
    return state


def cumulative_steps(store: RunStore) -> list[int]:
    """Steps done after each block of the run's schedule so far."""
    return np.cumsum([b.steps for b in store.blocks]).tolist()


def advance(path: str, index: int) -> list[int] | None:
    """At a run's barrier: decide; the new schedule's cumulative steps, or ``None`` if stopped.

    A stopped run is finalized here (again, after a kill between stopping and finalizing).
    """
    state = decide(path, index)
    if state.stopped:
        finalize(path, index)
        return None
    return cumulative_steps(RunStore(path, index))


def finish_until(path: str, index: int) -> None:
    """For a finished run: finalize it if it is a stopped ``run.until`` run (else nothing)."""
    store = RunStore(path, index)
    if store.until is not None and store.until.stopped:
        finalize(path, index)


def until_status(path: str, index: int) -> dict[str, str]:
    """``{"until": phase}`` for a ``run.until`` run (``status``), else ``{}``."""
    state = RunStore(path, index).until
    if state is None:
        return {}
    if state.stopped:
        return {"until": f"stopped by {', '.join(state.reasons())} at "
                         f"{state.posterior_draws:,} draws"}
    if state.posterior_draws == 0:
        return {"until": f"warming up: {state.warmup_draws:,} warm-up draws scheduled"}
    return {"until": f"sampling: {state.posterior_draws:,} draws scheduled"}
