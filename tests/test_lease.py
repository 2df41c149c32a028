"""The archive's lease: one driver at a time, taken over when stale or with --force."""

from __future__ import annotations

import time

import pytest
from sgdthermo.cluster import lease
from sgdthermo.sampler.archive import ArchiveError


def test_lease_refuses_a_second_driver_until_released_or_stale(tmp_path, monkeypatch):
    monkeypatch.setattr(lease, "EXPIRY_S", 0.8)
    archive = str(tmp_path / "a.zarr")
    (tmp_path / "a.zarr").mkdir()
    assert lease.read_lease(archive) is None
    first = lease.acquire(archive)
    held = lease.read_lease(archive)
    assert held is not None and held["owner"] == first.owner and not held["stale"]
    with pytest.raises(ArchiveError, match=r"is being written by .*\(heartbeat"):
        lease.acquire(archive)
    time.sleep(1.0)  # the heartbeat (every 0.2 s) keeps it fresh past its expiry
    assert not lease.read_lease(archive)["stale"]
    first.release()
    assert lease.read_lease(archive) is None
    second = lease.acquire(archive)
    second._stop.set()  # its driver "dies": no more heartbeats, the lease stays
    time.sleep(1.0)
    assert lease.read_lease(archive)["stale"]
    third = lease.acquire(archive)  # a stale lease is taken over
    assert lease.read_lease(archive)["owner"] == third.owner
    second.release()  # the dead driver's late release leaves the new owner's lease alone
    assert lease.read_lease(archive)["owner"] == third.owner
    forced = lease.acquire(archive, force=True)  # --force takes over a fresh one
    assert lease.read_lease(archive)["owner"] == forced.owner
    time.sleep(0.5)  # the old owner's next heartbeat sees it lost the lease, and stops
    with pytest.raises(ArchiveError, match="was taken over by"):
        third.check()
    assert lease.read_lease(archive)["owner"] == forced.owner
    third.release()
    forced.release()
    assert lease.read_lease(archive) is None


def test_half_written_lease_reads_as_stale(tmp_path):
    (tmp_path / "a.zarr").mkdir()
    (tmp_path / "a.zarr" / "lease.json").write_text('{"owner": "h')
    assert lease.read_lease(str(tmp_path / "a.zarr"))["stale"]
    lease.acquire(str(tmp_path / "a.zarr")).release()


def test_lease_on_an_fsspec_url():
    import fsspec

    fsspec.filesystem("memory").mkdir("/lease_test.zarr")
    held = lease.acquire("memory://lease_test.zarr")
    with pytest.raises(ArchiveError, match="is being written by"):
        lease.acquire("memory://lease_test.zarr")
    held.release()
    assert lease.read_lease("memory://lease_test.zarr") is None
