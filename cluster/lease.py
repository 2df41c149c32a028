"""One driver per archive: a lease (owner, heartbeat, expiry) in ``lease.json`` at its root.

``run`` and ``resume`` take the lease before any shard starts and hold it while they run: a
thread rewrites the heartbeat every ``expiry / 4`` seconds, and the lease is removed when the
driver ends (done, Ctrl-C, SIGTERM, an error). A second driver on the same archive is refused
with one line while the heartbeat is fresh; a lease whose heartbeat is older than its expiry
(its driver was killed, its machine lost) is taken over, and ``--force`` takes over a fresh
one. On the owner's own machine a fresh lease is taken over at once when the owner's process
is gone (``machine``: same host name, boot and PID namespace; the PID gone, a zombie or reused)
and every writer it started ran here and has stopped (``Lease.writers_local``, the writers'
lock); the takeover is said in one line (``takeover_line``). ``status`` reads the lease to tell
a running job from an interrupted one.

Only the lease's owner writes it, whole (a rename on a local disk, one put on an object
store). On a local disk the first claim is atomic (``O_EXCL``); every claim is read back after
a short pause, which settles all but exactly simultaneous takeovers. Zarr and xarray ignore the
file.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..sampler.archive import ArchiveError, filesystem, storage_errors
from .machine import WritersLock, process_gone, process_start, same_machine, this_machine, writers_gone

NAME = "lease.json"
EXPIRY_S = float(os.environ.get("SGDTHERMO_LEASE_S", "30"))


def _where(archive: str) -> tuple[Any, str]:
    fs, root = filesystem(archive)
    return fs, f"{root.rstrip('/')}/{NAME}"


def _local(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols


def read_lease(archive: str) -> dict[str, Any] | None:
    """The lease, with ``age_s`` (seconds since its heartbeat), ``gone`` and ``stale``.

    ``gone``: its owner ran on this machine and its process no longer runs. ``stale``: the
    heartbeat is older than the expiry, or the owner is gone. ``None`` if nobody holds it.
    """
    fs, key = _where(archive)
    try:
        with storage_errors(archive):
            lease = json.loads(fs.cat_file(key))
    except FileNotFoundError:
        return None
    except ValueError:  # written half by a killed driver: nobody holds it
        return {"owner": "?:?", "heartbeat": 0.0, "age_s": float("inf"), "stale": True,
                "gone": False}
    age = time.time() - float(lease.get("heartbeat", 0))
    gone = (same_machine(lease.get("machine")) and isinstance(lease.get("pid"), int)
            and process_gone(lease["pid"], lease.get("pid_start")))
    return {**lease, "age_s": age, "gone": gone,
            "stale": gone or age > float(lease.get("expiry_s", EXPIRY_S))}


@dataclass
class Lease:
    """A held lease; ``release`` ends it (idempotent)."""

    archive: str
    owner: str
    _stop: threading.Event
    _thread: threading.Thread | None = None
    lost: dict[str, Any] | None = None
    started: float = 0.0
    writers_local: bool = False  # every process that may write runs on this machine
    writers: WritersLock | None = None
    taken_from: dict[str, Any] | None = None  # the lease this one replaced
    _writing: threading.Lock = field(default_factory=threading.Lock)  # beat vs. driver thread

    def _write(self, started: float) -> None:
        with self._writing:  # one temporary file per lease: one writer at a time
            self._write_now(started)

    def _write_now(self, started: float) -> None:
        fs, key = _where(self.archive)
        data = json.dumps({"owner": self.owner, "started": started, "heartbeat": time.time(),
                           "expiry_s": EXPIRY_S, "machine": this_machine(), "pid": os.getpid(),
                           "pid_start": process_start(os.getpid()),
                           "writers_local": self.writers_local}).encode()
        if _local(fs):  # whole or not at all: a reader never sees half a lease
            tmp = f"{key}.{self.owner.rsplit(':', 1)[-1]}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, key)
        else:  # an object store's put is whole
            fs.pipe_file(key, data)

    def _beat(self, started: float) -> None:
        while not self._stop.wait(EXPIRY_S / 4):
            try:
                current = read_lease(self.archive)
                if current is None or current.get("owner") != self.owner:
                    self.lost = current or {"owner": "?:?", "age_s": 0.0}
                    return  # taken over (--force): stop beating; the driver stops at its check
                self._write(started)
            except OSError:  # a transient storage error: the next beat tries again
                pass

    def set_writers_local(self, local: bool) -> None:
        """Record whether every writer (the Ray cluster's every node) is on this machine."""
        if local != self.writers_local:
            self.writers_local = local
            self._write(self.started)

    def check(self) -> None:
        """Raise ``ArchiveError`` if another driver took the lease over (``--force``)."""
        if self.lost is not None:
            raise ArchiveError(f"{self.archive!r} was taken over by {describe(self.lost)}; "
                               f"this driver stops (committed blocks are safe)")

    def release(self) -> None:
        """Stop the heartbeat and remove the lease if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.writers is not None:
            self.writers.release()
        current = read_lease(self.archive)
        if current is not None and current.get("owner") == self.owner:
            fs, key = _where(self.archive)
            try:
                fs.rm_file(key)
            except FileNotFoundError:
                pass


def _who(lease: dict[str, Any]) -> str:
    """``host:pid`` of the lease's owner."""
    return str(lease.get("owner", "?")).rsplit(":", 1)[0]


def describe(lease: dict[str, Any]) -> str:
    """``host:pid (heartbeat 3 s ago)`` for messages (or ``(its process is gone)``)."""
    who = _who(lease)
    if lease.get("gone"):
        return f"{who} (its process is gone from this machine)"
    return f"{who} (heartbeat {lease['age_s']:.0f} s ago)"


def takeover_line(archive: str, previous: dict[str, Any] | None) -> str | None:
    """The one line that says a driver took ``archive`` over, or ``None`` (it was free)."""
    if previous is None:
        return None
    return f"taking over {archive!r} from {describe(previous)}"


def refuse_if_held(archive: str, force: bool = False,
                   name: str | None = None) -> dict[str, Any] | None:
    """The current lease; raises ``ArchiveError`` if a live driver holds it (unless ``force``).

    A lease whose owner is gone from this machine is free once every writer it started has
    stopped (its actors die a few seconds after it: waited for up to the expiry); if a writer
    may run on another machine, the heartbeat's expiry decides. ``name`` is how the message
    calls the archive (default: its path).
    """
    current = read_lease(archive)
    if current is None or force:
        return current
    name = name or repr(archive)
    if current["gone"] and current["age_s"] <= float(current.get("expiry_s", EXPIRY_S)):
        who = _who(current)
        if not current.get("writers_local"):
            raise ArchiveError(f"{name} was being written by {who}, whose process is gone, but "
                               f"its Ray actors may run on other machines; its lease expires "
                               f"{current['expiry_s'] - current['age_s']:.0f} s from now (or "
                               f"pass --force)")
        if not writers_gone(archive, EXPIRY_S):
            raise ArchiveError(f"{name}: the driver {who} is gone but a process it started "
                               f"still holds the archive; wait for it, or pass --force")
        return current
    if not current["stale"]:
        raise ArchiveError(f"{name} is being written by {describe(current)}; "
                           f"wait for it, or pass --force if that driver is gone")
    return current


def acquire(archive: str, force: bool = False) -> Lease:
    """Take the archive's lease, or raise ``ArchiveError`` if another driver holds it.

    The lease's ``taken_from`` is the lease it replaced (``None``: it was free).

    Args:
        archive: The archive's path or URL.
        force: Take it over even from a driver whose heartbeat is fresh.
    """
    current = refuse_if_held(archive, force)
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    lease = Lease(archive, owner, threading.Event(), started=time.time())
    lease.taken_from = current
    fs, key = _where(archive)
    if current is None and _local(fs):
        try:  # the first claim on a local disk is atomic
            fd = os.open(key, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.close(fd)
        except FileExistsError:
            raise ArchiveError(f"{archive!r}: another driver took it just now; "
                               f"see `sgdthermo status`") from None
    lease.writers = WritersLock(archive)
    lease._write(lease.started)
    time.sleep(0.2 if _local(fs) else 0.5)  # read our claim back: two takeovers of a stale
    back = read_lease(archive)  # lease (or two first claims on a store) leave one owner
    if back is None or back.get("owner") != owner:
        lease.writers.release()
        raise ArchiveError(f"{archive!r}: another driver took it just now; "
                           f"see `sgdthermo status`")
    lease._thread = threading.Thread(target=lease._beat, args=(lease.started,), daemon=True)
    lease._thread.start()
    return lease
