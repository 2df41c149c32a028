"""Progress off a terminal (a file, a pipe, a Ray job log): whole labels, rates and ETAs."""

from __future__ import annotations

import io

from rich.console import Console
from sgdthermo.cluster import progress
from sgdthermo.cluster.driver import ShardProgress

LABEL = ("rule=preconditioned(power=0.5), run.batch_size=16, rule.lr=0.0125, "
         "model.hessian=spectrum(d=64, first=0.01, last=1.0)")


def test_off_a_terminal_each_run_is_a_whole_line_with_rate_and_eta(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=False)
    steps = [1000 * (i + 1) for i in range(10)]  # 10 blocks of 1000 steps, 4 chains
    with progress.RunBars({0: LABEL, 1: "rule=sgd"}, console=console) as bars:
        for k, t in ((0, 100.0), (2, 105.0), (4, 111.0), (10, 120.0)):
            clock[0] = t
            bars.update([ShardProgress(0, 0, 4, steps, k), ShardProgress(1, 0, 4, steps, k)])
    text = out.getvalue()
    assert f"run 0: {LABEL}" in text  # the whole label, once
    lines = [line for line in text.splitlines() if line.startswith("run 0:") and "/s" in line]
    assert len(lines) == 3  # t = 100 (first), 111 (10 s later), 120 (done); 105 is too soon
    first, later, done = lines
    assert "ETA -" in first and " -/s" in first  # no rate before any progress
    assert " 40.0% of 40,000 chain-steps, 1,455/s, ETA 0:00:17" in later  # 16 000 in 11 s
    assert "100.0% of 40,000 chain-steps" in done and "ETA 0:00:00" in done
    assert all(len(line) <= 80 for line in lines)


def test_disabled_prints_nothing():
    out = io.StringIO()
    with progress.RunBars({0: "x"}, enabled=False,
                          console=Console(file=out, force_terminal=False)) as bars:
        bars.update([ShardProgress(0, 0, 1, [10], 1)])
    assert out.getvalue() == ""
