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


# --- the owner's own machine: a gone driver is taken over at once --------------------------

HOLDER = """
import sys, time
from sgdthermo.cluster import lease
held = lease.acquire(sys.argv[1])
held.set_writers_local(sys.argv[2] == "local")
print("held", flush=True)
time.sleep(600)
"""

WRITER = """
import sys, time
from sgdthermo.cluster.machine import WritersLock
lock = WritersLock(sys.argv[1])
print("writing", flush=True)
time.sleep(600)
"""


def _start(code: str, *args: str):
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() in ("held", "writing")
    return proc


def _kill(proc) -> None:
    import signal

    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_killed_driver_on_this_machine_is_taken_over_at_once(tmp_path):
    archive = str(tmp_path / "a.zarr")
    (tmp_path / "a.zarr").mkdir()
    driver = _start(HOLDER, archive, "local")
    with pytest.raises(ArchiveError, match=r"is being written by .*\(heartbeat"):
        lease.acquire(archive)  # a live driver is refused
    assert not lease.read_lease(archive)["gone"]
    _kill(driver)
    seen = lease.read_lease(archive)
    assert seen["gone"] and seen["stale"] and seen["age_s"] < lease.EXPIRY_S
    start = time.monotonic()
    held = lease.acquire(archive)  # at once, not after the 30 s expiry
    assert time.monotonic() - start < 5
    assert held.taken_from["gone"] and held.taken_from["pid"] == driver.pid
    line = lease.takeover_line(archive, held.taken_from)
    assert line.endswith("(its process is gone from this machine)"), line
    held.release()


def test_a_gone_driver_whose_writer_lingers_is_waited_for(tmp_path, monkeypatch):
    """Its actors outlive a killed driver by seconds: the takeover waits for the last one."""
    monkeypatch.setattr(lease, "EXPIRY_S", 30.0)
    archive = str(tmp_path / "a.zarr")
    (tmp_path / "a.zarr").mkdir()
    driver, writer = _start(HOLDER, archive, "local"), _start(WRITER, archive)
    _kill(driver)
    import threading

    threading.Timer(1.0, _kill, args=(writer,)).start()
    start = time.monotonic()
    held = lease.acquire(archive)
    assert time.monotonic() - start >= 0.9  # it waited for the writer
    held.release()
    # a writer that never stops: refused once the wait (the expiry) is over
    driver, writer = _start(HOLDER, archive, "local"), _start(WRITER, archive)
    _kill(driver)
    monkeypatch.setattr(lease, "EXPIRY_S", 0.5)
    with pytest.raises(ArchiveError, match="still holds the archive"):
        lease.refuse_if_held(archive)
    _kill(writer)


def test_writers_on_other_machines_keep_the_expiry(tmp_path):
    archive = str(tmp_path / "a.zarr")
    (tmp_path / "a.zarr").mkdir()
    driver = _start(HOLDER, archive, "cluster")  # its Ray cluster had nodes elsewhere
    _kill(driver)
    with pytest.raises(ArchiveError, match="may run on other machines"):
        lease.acquire(archive)


def _fake_lease(tmp_path, **fields) -> str:
    import json
    import os

    archive = tmp_path / "a.zarr"
    archive.mkdir(exist_ok=True)
    from sgdthermo.cluster.machine import process_start, this_machine

    data = {"owner": "h:1:x", "started": time.time(), "heartbeat": time.time(),
            "expiry_s": 30.0, "machine": this_machine(), "pid": os.getpid(),
            "pid_start": process_start(os.getpid()), "writers_local": True, **fields}
    (archive / "lease.json").write_text(json.dumps(data))
    return str(archive)


def test_which_owners_count_as_gone(tmp_path):
    import subprocess

    from sgdthermo.cluster.machine import process_gone, process_start, this_machine

    assert not lease.read_lease(_fake_lease(tmp_path))["gone"]  # this very process
    # the same PID with another start time: the PID was reused, the owner is gone
    assert lease.read_lease(_fake_lease(tmp_path, pid_start="1"))["gone"]
    # another host, another boot or another PID namespace: not judged, the expiry decides
    for key in ("host", "boot", "pid_ns"):
        other = {**this_machine(), key: "elsewhere"}
        seen = lease.read_lease(_fake_lease(tmp_path, machine=other, pid=2**22 + 7))
        assert not seen["gone"] and not seen["stale"], key
    # a lease from before machines were recorded: the expiry decides
    assert not lease.read_lease(_fake_lease(tmp_path, machine=None))["gone"]
    # a zombie (killed, not yet reaped) is gone
    child = subprocess.Popen(["sleep", "600"])
    start = process_start(child.pid)
    assert start is not None and not process_gone(child.pid, start)
    child.kill()
    time.sleep(0.2)
    assert process_gone(child.pid, start)
    child.wait()
    assert process_gone(child.pid, start)


def test_run_overwrite_takes_over_a_gone_driver_in_one_line(tmp_path):
    """What `sgdthermo run --overwrite` checks before Ray starts, on a killed driver's archive."""
    import io

    from rich.console import Console
    from sgdthermo.cluster.jobs import check_job, load_config

    from tests.conftest import make_archive

    config = {"model": {"kind": "quadratic", "hessian": [1.0], "noise_cov": [1.0]},
              "rule": {"kind": "sgd", "lr": 0.1}}
    archive = make_archive(tmp_path, config)
    job = load_config(config)
    driver = _start(HOLDER, archive, "local")
    with pytest.raises(ArchiveError, match="is being written by"):
        check_job(job, archive, overwrite=True)
    _kill(driver)
    out = io.StringIO()
    check_job(job, archive, overwrite=True, console=Console(file=out, width=200))
    assert out.getvalue().strip() == (f"taking over {archive!r} from "
                                      f"{lease.read_lease(archive)['owner'].rsplit(':', 1)[0]} "
                                      "(its process is gone from this machine)")
