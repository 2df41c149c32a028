"""SIGTERM as Ctrl-C: the driver unwinds, says "terminated (SIGTERM)" and exits 143.

Standard library only, so that the CLI installs the handler before it imports anything heavy:
a scheduler's SIGTERM during start-up is then answered like one during a block. ``ray.init``
installs its own handler (``sys.exit(15)``); ``driver.init_ray`` turns that into ``Terminated``
and puts ours back. Inside a blocking ``ray.wait``/``ray.get`` Ray catches the ``Terminated``
our handler raises and raises a plain ``KeyboardInterrupt`` instead, so whether SIGTERM came is
read from a flag the handler sets (``was_terminated``), not from the exception's type.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

_SIGTERM = threading.Event()


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the driver's main thread so it unwinds exactly as Ctrl-C does."""


def on_sigterm(signum: int, frame: object) -> None:
    """The handler: note the signal, then unwind as Ctrl-C does."""
    _SIGTERM.set()
    raise Terminated()


def note_sigterm() -> None:
    """Record a SIGTERM that reached us through someone else's handler (``ray.init``'s)."""
    _SIGTERM.set()


def was_terminated(err: BaseException) -> bool:
    """Whether an interrupt came from SIGTERM (its type, or our handler having run)."""
    return isinstance(err, Terminated) or _SIGTERM.is_set()


def ours() -> bool:
    """Whether our handler is the process's SIGTERM handler (main thread only)."""
    return (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) is on_sigterm)


def reinstall() -> None:
    """Put our handler back (after ``ray.init`` replaced it)."""
    signal.signal(signal.SIGTERM, on_sigterm)


def handle_sigterm() -> Callable[[], None]:
    """Make SIGTERM interrupt like Ctrl-C; returns what restores the previous handler.

    Main thread only (elsewhere it does nothing).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    _SIGTERM.clear()
    previous = signal.signal(signal.SIGTERM, on_sigterm)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)
    return restore
