"""Tables people can read: never a cut number, at any width, on a terminal or off it.

Rich folds or crops a cell when a table is wider than the console, so a number can come out as
"0.02…" or split over two lines. ``fit_tables`` keeps every column as wide as its widest cell and
splits a table that does not fit into several, each repeating the key column; off a terminal
(a file, a pipe, a Ray job log) the layout is a fixed ``WIDE`` columns unless ``COLUMNS`` is
set. Only rich is needed, so the CLI's light commands can use it.
"""

from __future__ import annotations

import os
import sys

from rich import box
from rich.console import Console
from rich.table import Table

WIDE = 160  # columns of the layout when the output is not a terminal (a file, a pipe, a log)


class PipeConsole(Console):
    """A console whose reader may go away (``| head``).

    Stdout goes to /dev/null and the ``BrokenPipeError`` reaches the caller (the CLI exits 141,
    as for SIGPIPE) instead of rich's ``SystemExit(1)``.
    """

    def on_broken_pipe(self) -> None:
        """Silence stdout for the rest of the process, then let the caller decide."""
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise BrokenPipeError


def output_console() -> Console:
    """The terminal's width on a terminal or as ``COLUMNS`` says; else a fixed wide layout."""
    probe = PipeConsole()
    return probe if probe.is_terminal or "COLUMNS" in os.environ else PipeConsole(width=WIDE)


def fit_tables(title: str, head: list[str], rows: list[list[str]], width: int) -> list[Table]:
    """``rows`` as tables no wider than ``width`` that never fold or cut a cell.

    Columns keep the width of their widest cell; when they do not fit side by side (as rich
    measures the table) they go into further tables, each repeating the first (key) column.
    A text column too wide for ``width`` even beside the key alone (a long sweep label) wraps
    at its spaces, left-aligned; no number is that wide.
    """
    wraps: set[int] = set()

    def table(cols: list[int], label: str) -> Table:
        t = Table(title=label, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for j in cols:
            t.add_column(head[j], justify="left" if j == 0 or j in wraps else "right",
                         no_wrap=j not in wraps)
        for r in rows:
            t.add_row(*(r[j] for j in cols))
        return t

    ruler = Console(width=10_000)
    groups: list[list[int]] = [[]]
    for j in range(1, len(head)):
        wide = ruler.measure(table([0, *groups[-1], j], "")).maximum > width
        if groups[-1] and wide:
            groups.append([])
        groups[-1].append(j)
    wraps.update(g[0] for g in groups
                 if len(g) == 1 and ruler.measure(table([0, g[0]], "")).maximum > width)
    if len(groups) == 1:
        return [table([0, *groups[0]], title)]
    return [table([0, *g], f"{title} ({n + 1}/{len(groups)})") for n, g in enumerate(groups)]
