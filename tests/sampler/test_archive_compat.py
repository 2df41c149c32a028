"""An archive written before the restructuring (schema 1, sgdthermo at commit d5e535b) still
opens, resumes bitwise identically and analyses.

``tests/data/schema1_rmsprop_partial.tar.gz`` was written by that commit from
``schema1_rmsprop_partial.toml`` (RMSProp on linear regression, burn-in kept, 2 shards): shard 0
committed 3 blocks and shard 1 two, then the writer stopped. Finishing it with today's code must
give the same bytes as running the same config from scratch today, and the reader must see only
what both shards committed.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import numpy as np
from sgdthermo.analysis.reader import open_run
from sgdthermo.analysis.record import analyze_run
from sgdthermo.sampler.archive import RunStore, read_root
from sgdthermo.sampler.jobspec import load_job
from sgdthermo.sampler.shard import ShardRunner

from tests.conftest import archive_arrays, make_archive

DATA = Path(__file__).resolve().parents[1] / "data"


def _old(tmp_path: Path) -> str:
    with tarfile.open(DATA / "schema1_rmsprop_partial.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    return str(tmp_path / "schema1.zarr")


def _finish(path: str) -> None:
    for shard in range(len(RunStore(path, 0).shards)):
        ShardRunner(path, 0, shard).run_until(10**9)


def test_old_archive_opens_with_only_what_both_shards_committed(tmp_path):
    path = _old(tmp_path)
    assert read_root(path)["schema_version"] == 1
    store = RunStore(path, 0)
    assert store.committed().tolist() == [3, 2]
    run = open_run(path, 0)
    assert (run.warmup_draws, run.draws) == (10, 20)  # 1 warm-up block + 1 posterior block
    assert np.isfinite(run.posterior()["theta"].values).all()


def test_old_archive_resumes_bitwise_identically_and_analyses(tmp_path):
    """Resuming is bitwise reproducible and keeps every committed byte; a fresh run agrees.

    The tarball's blocks were computed on the machine that wrote it, so a bitwise comparison
    with a fresh run would depend on this CPU's kernels (AVX2 vs AVX-512 round differently).
    Bitwise: resuming in one call equals resuming in two, and what was committed before is
    untouched. Tolerance: a fresh run equals the finished archive to 1e-9 relative (float64,
    100 steps of a contracting recursion: kernel rounding of 1e-16 per step cannot reach it;
    a wrong restore — state, slot or generator — moves the draws by O(1)).
    """
    old, again = _old(tmp_path / "old"), _old(tmp_path / "again")
    before = archive_arrays(old)
    _finish(old)
    for shard in range(2):
        ShardRunner(again, 0, shard).run_until(4)
        ShardRunner(again, 0, shard).run_until(10**9)
    a, b = archive_arrays(old), archive_arrays(again)
    assert a.keys() == b.keys()
    assert [k for k in a if not np.array_equal(a[k], b[k], equal_nan=True)] == []
    theta_before, theta_after = before["run_000/posterior/theta"], a["run_000/posterior/theta"]
    committed = ~np.isnan(theta_before)
    assert committed.any() and np.array_equal(theta_before[committed], theta_after[committed])
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    config = load_job(DATA / "schema1_rmsprop_partial.toml").model_dump(mode="json")
    new = make_archive(fresh, config)
    _finish(new)
    np.testing.assert_allclose(archive_arrays(new)["run_000/posterior/theta"], theta_after,
                               rtol=1e-9, atol=1e-12)
    record = analyze_run(open_run(old, 0))
    assert record.ok and record.draws == 60
    assert record.temperatures.check == "rate-weighted identity"
    shutil.rmtree(new)
