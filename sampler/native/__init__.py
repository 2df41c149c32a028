"""Native kernels: C source compiled on first use by the system's C compiler, loaded by ctypes.

The shared library is cached under ``$SGDTHERMO_CACHE_DIR`` (default ``~/.cache/sgdthermo``)
by a hash of the sources (``*.c``, ``common.h``), the flags and the compiler, written to a
temporary name and renamed, so concurrent actors on one host never load a half-written file.
No torch headers, no ninja: one ``cc`` call of well under a second.

Flags: ``-O3 -ffp-contract=off -fno-math-errno``: no fused multiply-adds and no reassociation,
so every x86-64 code path that ``target_clones`` picks (AVX-512, AVX2, SSE2) gives the same bits.

``SGDTHERMO_NATIVE=0`` turns the native path off for new runs; ``CC`` names the compiler.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCES = {name: Path(__file__).with_name(f"{name}.c")
           for name in ("diagonal", "regression", "lean")}
FLAGS = ("-O3", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared")
COMPILE_TIMEOUT_S = 120


class NativeUnavailable(RuntimeError):
    """The native kernel cannot be built or loaded here (the message says why, in one line)."""


def cache_dir() -> Path:
    """Where compiled libraries are kept (created if missing)."""
    root = os.environ.get("SGDTHERMO_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sgdthermo")
    path = Path(root)
    try:
        path.mkdir(parents=True, exist_ok=True)
        if os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    fallback = Path(tempfile.gettempdir()) / f"sgdthermo-{os.getuid()}"
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def _compiler() -> str:
    cc = os.environ.get("CC") or "cc"
    found = shutil.which(cc)
    if found is None:
        raise NativeUnavailable(f"no C compiler ({cc!r} not found; set CC or install gcc)")
    return found


def compile_library(name: str, extra_flags: tuple[str, ...] = ()) -> Path:
    """Compile ``SOURCES[name]`` (cached) and return the shared library's path.

    Raises:
        NativeUnavailable: No compiler, or it failed (the first line of its error is kept).
    """
    source = SOURCES[name]
    cc = _compiler()
    flags = FLAGS + extra_flags
    text = b"".join(p.read_bytes() for p in sorted(source.parent.glob("*.[ch]")))
    key = hashlib.sha256(text + repr((name, flags, cc, platform.machine())).encode())
    target = cache_dir() / f"{name}-{key.hexdigest()[:16]}.so"
    if target.exists():
        return target
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        done = subprocess.run([cc, *flags, str(source), "-o", tmp], capture_output=True,
                              text=True, timeout=COMPILE_TIMEOUT_S)
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["(no message)"])[0]
            raise NativeUnavailable(f"{Path(cc).name} failed on {source.name}: {first}")
        os.replace(tmp, target)
    except subprocess.TimeoutExpired:
        raise NativeUnavailable(f"{Path(cc).name} took over {COMPILE_TIMEOUT_S} s") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def library(name: str = "diagonal") -> ctypes.CDLL:
    """The loaded native library (compiled on first use).

    Raises:
        NativeUnavailable: Switched off by ``SGDTHERMO_NATIVE=0``, or it cannot be built.
    """
    if os.environ.get("SGDTHERMO_NATIVE", "1") == "0":
        raise NativeUnavailable("switched off by SGDTHERMO_NATIVE=0")
    return _load(name)


@functools.cache
def _load(name: str) -> ctypes.CDLL:
    try:
        return ctypes.CDLL(str(compile_library(name)))
    except OSError as err:
        raise NativeUnavailable(f"cannot load the {name} kernel: {err}") from None


def unavailable_reason(name: str = "diagonal") -> str | None:
    """``None`` if the native library loads, else why not (one line)."""
    try:
        library(name)
    except NativeUnavailable as err:
        return str(err)
    return None
