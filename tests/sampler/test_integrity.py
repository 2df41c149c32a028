"""Checksums of committed data: corruption is detected, reported and repaired bit for bit.

The archives are run in-process (no Ray); corruption is made on disk as a user meets it: a
deleted chunk file (reads back as the fill value), a truncated one (a decode error), 8 flipped
bytes in a compressed chunk, a lost checkpoint chunk.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_archives_equal, quadratic_config, run_local
from rich.console import Console
from sgdthermo.analysis.analyze import analyze_archive
from sgdthermo.cluster import cli, jobs
from sgdthermo.sampler.archive import CorruptArchiveError, RunStore, verify_archive
from sgdthermo.sampler.archive.integrity import BLOCK_CHECKSUM, digest
from sgdthermo.sampler.shard import repair_shard

RULE = {"kind": "momentum", "lr": 0.1, "mu": 0.5}


def _config(**run):
    cfg = quadratic_config([1.0, 2.0, 4.0], [1.0, 3.0, 2.0], RULE, chains=4, draws=60,
                           burn_in=40, keep_warmup=True, **run)
    cfg["cluster"] = {"shard_chains": 2, "chunk_draws": 20}
    return cfg


CONFIGS = {
    "quadratic": _config(record={"projections": 2}),
    "partial": _config(record={"coords": [0, 2]}),
    "mlp": {"model": {"kind": "mlp", "hidden": [3], "n": 40},
            "rule": {"kind": "sgd", "lr": 0.05},
            "run": {"chains": 4, "draws": 20, "burn_in": 10, "batch_size": 4,
                    "record": {"layer_norms": True}},
            "cluster": {"shard_chains": 2, "chunk_draws": 10}},
}


def _chunk(path: str, array: str, key: str) -> Path:
    internal = array.split("/")[0] in ("checkpoint", "fluctuation")
    return Path(path) / ("_sgdthermo/run_000" if internal else "run_000") / array / "c" / key


def _flip(file: Path, n: int = 8) -> None:
    data = bytearray(file.read_bytes())
    for i in range(n):
        data[len(data) // 2 + i] ^= 0xFF
    file.write_bytes(bytes(data))


def test_digest_sees_one_bit_and_names():
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    b = a.copy()
    b.view(np.uint64)[1, 2] ^= 1  # the last bit of one mantissa
    assert digest([("x", a)]) == digest([("x", a.copy())])
    assert digest([("x", a)]) != digest([("x", b)])
    assert digest([("x", a)]) != digest([("y", a)])
    assert digest([("x", a)]) != digest([("x", a.astype(np.float32))])
    assert digest([]) != 0


@pytest.mark.parametrize("name", list(CONFIGS))
def test_an_intact_archive_verifies_and_a_flipped_chunk_does_not(tmp_path, name):
    """Every layout (θ flat with projections, θ partly with the virial sums, network layers
    with norms) digests on read what its writer digested; one flipped chunk is found."""
    path = run_local(tmp_path, CONFIGS[name])
    report = verify_archive(path)
    store = RunStore(path, 0)
    assert report.ok and report.blocks_checked == 2 * len(store.blocks)
    stored = store.stored_checksums(0)
    assert stored is not None and np.all(stored[0] != 0) and np.all(stored[1] != 0)
    victim = next(p for p in sorted((Path(path) / "run_000" / "sample_stats" / "loss" / "c")
                                    .rglob("*")) if p.is_file())
    _flip(victim, 4)
    assert not verify_archive(path).ok


def test_corruption_is_listed_refused_and_repaired_bitwise(tmp_path, capsys, monkeypatch):
    path = run_local(tmp_path, CONFIGS["quadratic"])
    pristine = str(tmp_path / "pristine.zarr")
    shutil.copytree(path, pristine)
    store = RunStore(path, 0)
    n_warmup = store.n_warmup  # posterior block b is schedule block n_warmup + b
    _chunk(path, "posterior/theta", "0/1/0").unlink()  # shard 0, posterior block 1: NaN
    truncated = _chunk(path, "sample_stats/grad_norm", "1/2")  # shard 1, posterior block 2
    truncated.write_bytes(truncated.read_bytes()[:10])
    _flip(_chunk(path, "warmup_posterior/theta", "1/0/0"))  # shard 1, warm-up block 0
    _chunk(path, "checkpoint/slot1/params", "0/0").unlink()  # shard 0's committed slot
    assert int(store.committed()[0]) % 2 == 1  # (its commit references slot 1)

    report = verify_archive(path)
    found = {(c.shard, c.block, c.reason.split(" (")[0]) for c in report.corruptions}
    assert found == {(0, n_warmup + 1, "checksum mismatch"), (1, n_warmup + 2, "unreadable"),
                     (1, 0, "checksum mismatch"), (0, None, "checksum mismatch")}

    with pytest.raises(CorruptArchiveError, match=r"4 corrupt .* resume --repair"):
        analyze_archive(path)
    monkeypatch.setattr(jobs, "init_ray", _no_ray)
    assert cli.main(["verify", path]) == 1
    assert "4 corrupt: " in capsys.readouterr().out
    assert cli.main(["resume", path]) == 2  # refused before Ray, nothing written
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "resume --repair" in err

    jobs.check_integrity(path, repair=True, console=Console(file=None, quiet=True))
    assert verify_archive(path).ok
    assert_archives_equal(path, pristine)  # every block and the checkpoint, bit for bit
    assert cli.main(["verify", path, "--json"]) == 0
    assert '"ok": true' in capsys.readouterr().out


def test_repair_stops_when_the_replay_is_not_the_run(tmp_path):
    """A replay that differs from an intact block (a different kernel, say) rewrites nothing."""
    path = run_local(tmp_path, CONFIGS["quadratic"])
    store = RunStore(path, 0, writable=True)
    _flip(_chunk(path, "posterior/theta", "0/2/0"))
    sums = store.internal["checkpoint"][BLOCK_CHECKSUM]
    sums[0, 0] = int(sums[0, 0]) ^ 1  # block 0 now "disagrees" with its own replay
    before = _chunk(path, "posterior/theta", "0/2/0").read_bytes()
    with pytest.raises(CorruptArchiveError, match="block 0: the replay differs"):
        repair_shard(path, 0, 0, {store.n_warmup + 2}, checkpoint=False)
    assert _chunk(path, "posterior/theta", "0/2/0").read_bytes() == before


def test_a_corrupt_checkpoint_is_not_resumed_from(tmp_path):
    from sgdthermo.sampler.shard import ShardRunner

    path = run_local(tmp_path, CONFIGS["quadratic"])
    store = RunStore(path, 0)
    slot = int(store.internal["checkpoint"]["commit"][1, 1])
    _flip(_chunk(path, f"checkpoint/slot{slot}/rng", "1/0"), 2)
    with pytest.raises(CorruptArchiveError, match="shard 1: its checkpoint does not match"):
        ShardRunner(path, 0, 1)


def test_archives_from_before_checksums_are_reported_unchecked(tmp_path, capsys):
    from test_archive_compat import _old

    path = _old(tmp_path)  # written before checksums existed
    report = verify_archive(path)
    assert report.ok and report.unrecorded_runs and report.blocks_checked == 0
    assert cli.main(["verify", path]) == 0
    assert "written before checksums" in capsys.readouterr().out


def _no_ray(*args, **kwargs):
    raise AssertionError("Ray started")
