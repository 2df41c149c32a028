"""The archive on its own (no engine, no model): create, write, commit, restore, committed.

``RunStore`` is the one place that knows the commit protocol; these tests drive it with synthetic
numpy arrays, so a format change that breaks resume or read fails here before any chain runs.
"""

from __future__ import annotations

import numpy as np
import pytest
from sgdthermo.sampler.archive import BlockData, RunStore, create_archive, read_root
from sgdthermo.sampler.jobspec import expand, validate

CONFIG = {"model": {"kind": "quadratic", "hessian": [1.0, 2.0], "noise_cov": [1.0, 1.0]},
          "rule": {"kind": "sgd", "lr": 0.1},
          "run": {"chains": 5, "draws": 6, "burn_in": 4, "thin": 2, "keep_warmup": True},
          "cluster": {"shard_chains": 3, "chunk_draws": 2}}
STATE = {"params": ((2,), "float64"), "diverged": ((), "bool"), "perm": ((0,), "int64")}


@pytest.fixture
def path(tmp_path):
    job = validate(CONFIG)
    runs = expand(job)
    facts = [{"dim": 2, "full_loss": True, "model": {"name": "quadratic"}, "state": STATE}]
    out = str(tmp_path / "a.zarr")
    create_archive(out, job, runs, "cpu", facts)
    return out


def _data(store: RunStore, shard: int, n: int, value: float) -> BlockData:
    lo, hi = store.shards[shard]
    c = hi - lo
    stats = {"loss": np.full((c, n), value), "grad_norm": np.full((c, n), value),
             "full_loss": np.full((c, n), value), "diverged": np.zeros((c, n), bool)}
    return BlockData(np.full((c, n, 2), value), stats, np.full((c, 2), value),
                     np.full((c, 3, 2), value))


def _commit(store: RunStore, shard: int, k: int, value: float) -> None:
    lo, hi = store.shards[shard]
    state = {"params": np.full((hi - lo, 2), value), "diverged": np.zeros(hi - lo, bool),
             "perm": np.zeros((hi - lo, 0), np.int64)}
    store.commit(shard, k, state, np.arange(10, dtype=np.uint8) + k)


def test_schedule_and_shards_come_from_the_schema(path):
    store = RunStore(path, 0)
    assert store.shards == [(0, 3), (3, 5)]
    assert [(b.group, b.draw_start, b.n_draws, b.steps) for b in store.blocks] == [
        ("warmup", 0, 2, 4), ("posterior", 0, 2, 4), ("posterior", 2, 2, 4),
        ("posterior", 4, 2, 4)]
    assert store.n_warmup == 1
    assert read_root(path)["schema_version"] == 2


def test_only_blocks_every_shard_committed_are_visible(path):
    store = RunStore(path, 0, writable=True)
    assert store.committed().tolist() == [0, 0]
    assert store.restore(0) is None
    for k, block in enumerate(store.blocks[:2], start=1):
        store.write_block(0, block, _data(store, 0, block.n_draws, float(k)))
        _commit(store, 0, k, float(k))
    store.write_block(1, store.blocks[0], _data(store, 1, 2, 9.0))  # written, not committed
    reader = RunStore(path, 0)
    assert reader.committed().tolist() == [2, 0]
    assert reader.committed_draws() == {"warmup": 0, "posterior": 0}  # min over shards
    _commit(store, 1, 1, 9.0)
    assert reader.committed_draws() == {"warmup": 2, "posterior": 0}
    assert reader.posterior_blocks_done() == 0


def test_restore_reads_the_slot_of_the_last_commit(path):
    store = RunStore(path, 0, writable=True)
    for k in (1, 2, 3):
        _commit(store, 1, k, 10.0 * k)
    ckpt = RunStore(path, 0).restore(1)
    assert ckpt is not None and ckpt.blocks_done == 3
    np.testing.assert_array_equal(ckpt.arrays["params"], np.full((2, 2), 30.0))
    np.testing.assert_array_equal(ckpt.rng, np.arange(10, dtype=np.uint8) + 3)
    # A crash after writing the next slot but before the commit record changes nothing:
    lo, hi = store.shards[1]
    slot = store.internal["checkpoint"]["slot0"]  # slot of commit 4, written, never committed
    slot["params"][lo:hi] = np.full((2, 2), -1.0)
    again = RunStore(path, 0).restore(1)
    assert again is not None
    np.testing.assert_array_equal(again.arrays["params"], np.full((2, 2), 30.0))


def test_state_array_is_nan_for_shards_without_a_commit(path):
    store = RunStore(path, 0, writable=True)
    _commit(store, 0, 1, 7.0)
    values = RunStore(path, 0).state_array("params")
    assert values.shape == (5, 2)
    np.testing.assert_array_equal(values[:3], 7.0)
    assert np.isnan(values[3:]).all()


def test_posterior_blocks_fill_their_draws_and_fluctuation_rows(path):
    store = RunStore(path, 0, writable=True)
    for k, block in enumerate(store.blocks, start=1):
        for shard in (0, 1):
            store.write_block(shard, block, _data(store, shard, block.n_draws, float(k)))
            _commit(store, shard, k, float(k))
    theta = np.asarray(store.group["posterior"]["theta"][:])
    assert theta.shape == (5, 6, 2)
    np.testing.assert_array_equal(theta[:, :, 0], np.repeat([[2.0, 2, 3, 3, 4, 4]], 5, axis=0))
    np.testing.assert_array_equal(np.asarray(store.internal["fluctuation"]["sum"][:, :, 0]),
                                  np.repeat([[2.0, 3.0, 4.0]], 5, axis=0))
    np.testing.assert_array_equal(np.asarray(store.group["warmup_posterior"]["theta"][:]), 1.0)
    assert RunStore(path, 0).committed_draws() == {"warmup": 2, "posterior": 6}


def test_draws_use_the_measured_compressor_and_round_trip(path):
    """``posterior/theta`` is written with blosc lz4 + shuffle (benchmarks/bench_compression.py)
    and reads back exactly."""
    import zarr
    from zarr.codecs import BloscCodec

    store = RunStore(path, 0, writable=True)
    theta = store.group["posterior"]["theta"]
    assert isinstance(theta.compressors[0], BloscCodec)
    values = np.random.default_rng(0).standard_normal(theta.shape).astype(theta.dtype)
    theta[...] = values
    np.testing.assert_array_equal(zarr.open_group(path, mode="r")["run_000/posterior/theta"][...],
                                  values)
