"""Live progress: one bar per run on a terminal, a plain line per run elsewhere.

On a terminal, rich bars (the run's number; its full label is printed once above them). Off a
terminal (a file, a pipe, a Ray job log), a line per run every ``LOG_EVERY_S`` seconds and at
the end, nothing cut: progress, chain-steps/s since the start, ETA and diverged chains. Rates
and ETAs are measured from the driver's wall clock, so they exist from the second update on.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from .shards import ShardProgress

LOG_EVERY_S = 10.0


def _clock(seconds: float) -> str:
    s = math.ceil(seconds)  # an ETA rounds up
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class RunBars:
    """Context manager whose ``update(table)`` shows each run's progress."""

    def __init__(self, labels: dict[int, str], enabled: bool = True,
                 console: Console | None = None) -> None:
        self.labels, self.enabled = labels, enabled
        self.console = console or Console(stderr=True)
        self.live = enabled and self.console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[rate]} chain-steps/s"), TextColumn("ETA {task.fields[eta]}"),
            TextColumn("div {task.fields[diverged]}"),
            console=self.console, disable=not self.live, transient=False)
        self.tasks: dict[int, Any] = {}
        self.start = time.monotonic()
        self.first: dict[int, int] = {}
        self.last_log = float("-inf")

    def __enter__(self) -> RunBars:
        if self.enabled:
            for run, label in sorted(self.labels.items()):
                self.console.print(f"run {run}: {label}", highlight=False, soft_wrap=True)
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def rows(self, table: list[ShardProgress]) -> list[dict[str, Any]]:
        """Per run: ``run``, ``done``, ``total``, ``diverged``, ``rate`` (or None), ``eta_s``."""
        done: dict[int, int] = defaultdict(int)
        total: dict[int, int] = defaultdict(int)
        div: dict[int, int] = defaultdict(int)
        for sp in table:
            done[sp.run] += sp.chain_steps
            total[sp.run] += sp.chains * sp.steps[-1]
            div[sp.run] += sp.diverged
        elapsed = time.monotonic() - self.start
        out = []
        for run in sorted(total):
            first = self.first.setdefault(run, done[run])  # steps already done on resume
            rate = (done[run] - first) / elapsed if elapsed > 0 and done[run] > first else None
            eta = (total[run] - done[run]) / rate if rate else None
            out.append({"run": run, "done": done[run], "total": total[run],
                        "diverged": div[run], "rate": rate, "eta_s": eta})
        return out

    def update(self, table: list[ShardProgress]) -> None:
        """Redraw the bars, or log a line per run (at most every ``LOG_EVERY_S``, and at 100 %)."""
        rows = self.rows(table)
        if not self.enabled:
            return
        if self.live:
            for r in rows:
                if r["run"] not in self.tasks:
                    self.tasks[r["run"]] = self.progress.add_task(
                        f"run {r['run']}", total=r["total"], completed=r["done"], rate="-",
                        eta="-", diverged=0)
                self.progress.update(
                    self.tasks[r["run"]], completed=r["done"], diverged=r["diverged"],
                    rate="-" if r["rate"] is None else f"{r['rate']:,.0f}",
                    eta="-" if r["eta_s"] is None else _clock(r["eta_s"]))
            return
        now = time.monotonic()
        finished = all(r["done"] == r["total"] for r in rows)
        if now - self.last_log < LOG_EVERY_S and not finished:
            return
        self.last_log = now
        for r in rows:
            rate = "-" if r["rate"] is None else f"{r['rate']:,.0f}"
            eta = "-" if r["eta_s"] is None else _clock(r["eta_s"])
            self.console.print(
                f"run {r['run']}: {100 * r['done'] / max(r['total'], 1):5.1f}% of "
                f"{r['total']:,} chain-steps, {rate}/s, ETA {eta}, {r['diverged']} diverged",
                highlight=False, soft_wrap=True)
