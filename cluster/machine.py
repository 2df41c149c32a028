"""Which machine a driver runs on, whether its process still lives, and who still writes.

A lease records its owner's machine as host name, boot and PID namespace
(``/proc/sys/kernel/random/boot_id``, ``/proc/self/ns/pid``), and its process as PID and start
time (``/proc/PID/stat``, field 22). A driver reading the lease on the *same* machine can then
tell at once that the owner is gone: no such process, a zombie, or another process that reuses
the PID (a different start time). Where any of these is unknown (no ``/proc``: macOS; another
container with the same host name but its own PID namespace), nothing is judged and the
heartbeat's expiry decides, as it does across machines.

A driver's actors outlive it by a few seconds after a SIGKILL (Ray notices the lost driver,
then kills them; ~3 s measured). So every process that writes an archive from this machine —
the driver and each shard actor — holds a shared ``flock`` on the archive's lock file in this
machine's temporary folder (``writers_lock_path``: one per archive path or URL) for as long as
it lives; the kernel drops it when the process dies, however it dies. A new driver takes over
from a gone owner only once it can take that lock exclusively: no writer of the archive is left
on this machine (and the lease says every writer ran here: ``Lease.writers_local``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def this_machine() -> dict[str, Any]:
    """``{"host", "boot", "pid_ns"}`` of this process (``None`` where unknown)."""
    try:
        ns: str | None = os.readlink("/proc/self/ns/pid")
    except OSError:
        ns = None
    return {"host": socket.gethostname(), "boot": _read("/proc/sys/kernel/random/boot_id"),
            "pid_ns": ns}


def same_machine(recorded: dict[str, Any] | None) -> bool:
    """Whether ``recorded`` (a lease's ``machine``) is this machine, every field known."""
    here = this_machine()
    return (recorded is not None and all(here[k] is not None for k in here)
            and all(recorded.get(k) == here[k] for k in here))


def process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot, ``None`` if no such live process.

    A zombie (killed, not yet reaped by its parent) counts as gone.
    """
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state is field 3
    return None if fields[0] in ("Z", "X") else fields[19]


def process_gone(pid: int, start: str | None) -> bool:
    """Whether the process ``pid`` that started at ``start`` (this machine) no longer runs."""
    now = process_start(pid)
    return now is None or (start is not None and now != start)


def writers_lock_path(archive: str) -> str:
    """This machine's lock file for ``archive`` (a local path, resolved, or a URL)."""
    where = archive if "://" in archive else os.path.realpath(archive)
    folder = Path(tempfile.gettempdir()) / f"sgdthermo-writers-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return str(folder / f"{hashlib.sha256(where.rstrip('/').encode()).hexdigest()[:24]}.lock")


class WritersLock:
    """A shared ``flock`` on the archive's lock file, held while this process may write it."""

    def __init__(self, archive: str) -> None:
        self._fd: int | None = None
        try:
            self._fd = os.open(writers_lock_path(archive), os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_SH)
        except OSError:  # no temporary folder or no locks there: nothing is held
            self.release()

    def release(self) -> None:
        """Drop the lock (idempotent; the process's exit drops it too)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def writers_gone(archive: str, wait_s: float) -> bool:
    """Wait up to ``wait_s`` until no process on this machine holds the archive's lock."""
    try:
        fd = os.open(writers_lock_path(archive), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return False
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
    finally:
        os.close(fd)  # closing drops the exclusive lock: the caller then takes a shared one
