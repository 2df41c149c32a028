"""Live progress: one rich bar per run with chain-steps/s and ETA."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .driver import ShardProgress


class RunBars:
    """Context manager whose ``update(table)`` redraws one bar per run."""

    def __init__(self, labels: dict[int, str], enabled: bool = True,
                 console: Console | None = None) -> None:
        self.labels = labels
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
            MofNCompleteColumn(), TextColumn("{task.fields[rate]} chain-steps/s"),
            TextColumn("div {task.fields[diverged]}"), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(),
            console=console, disable=not enabled, transient=False)
        self.tasks: dict[int, Any] = {}

    def __enter__(self) -> RunBars:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def update(self, table: list[ShardProgress]) -> None:
        """Set each run's bar from the shard table."""
        done: dict[int, int] = defaultdict(int)
        total: dict[int, int] = defaultdict(int)
        div: dict[int, int] = defaultdict(int)
        for sp in table:
            done[sp.run] += sp.chain_steps
            total[sp.run] += sp.chains * sp.steps[-1]
            div[sp.run] += sp.diverged
        for run in sorted(total):
            if run not in self.tasks:
                label = f"run {run}: {self.labels.get(run, '')}"[:40]
                self.tasks[run] = self.progress.add_task(label, total=total[run],
                                                         completed=done[run], rate="-",
                                                         diverged=0)
            task_id = self.tasks[run]
            self.progress.update(task_id, completed=done[run], diverged=div[run])
            speed = self.progress.tasks[task_id].speed
            self.progress.update(task_id, rate=f"{speed:,.0f}" if speed else "-")
