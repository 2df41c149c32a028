"""Keep freed large blocks in the process (glibc): no page faults for the engine's step buffers.

glibc serves an allocation above its mmap threshold (128 KiB, rising to at most 32 MiB as
blocks are freed) with a fresh ``mmap`` and returns it to the system on ``free``; every step of a
network with 10⁵–10⁶ parameters allocates and frees several ``[C, D]`` gradients and
temporaries of tens of MiB, so each step page-faults them in again (measured: 30–40 % of a
step of a 3·10⁵-parameter MLP at C = 16; ``benchmarks/RESULTS.md``). A sampler is a long-lived
process whose working set is steady, so its actors raise the mmap threshold to 1 GiB and the
trim threshold to 2 GiB: freed blocks are reused, never faulted in again. Memory is still
bounded by the peak working set; nothing changes on systems without glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


@functools.cache
def reuse_large_blocks() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; whether it applied."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS): their allocators decide
    return bool(mallopt(M_MMAP_THRESHOLD, 1 << 30)) and bool(mallopt(M_TRIM_THRESHOLD, 1 << 31))
