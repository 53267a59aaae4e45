"""The missed-run engine's column pass concludes exactly what the slot-by-slot walk concludes.

:func:`cronkit.monitor.missed.analysis._prepare` finds, with column operations over every cron job
at once, the runs before each job's begin, the first stretch of runs that are simply on time for
their slot (the common case that made a day of 100 every-minute jobs take seconds) and the slots
that fell while each run ran. Here random histories — late, early, missing, overrunning,
overlapping, unfinished and failed runs, runs before the window — go through :func:`analyze` twice:
as it is, and with that pass replaced by a plain Python reference (bisection per run, no stretch:
every run walked). Every frame must be equal.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cronkit.monitor.missed import RUNS_SCHEMA, JobInfo, analyze
from cronkit.monitor.missed import analysis

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SCHEDULES = ("* * * * *", "*/5 * * * *", "*/2 * * * *", "0 * * * *")

fates = st.sampled_from(["on_time", "on_time", "on_time", "late", "skip", "long", "early", "ahead", "exact", "unfinished", "failed"])


@st.composite
def histories(draw: Any) -> tuple[list[JobInfo], pl.DataFrame]:
    jobs, rows, runid = [], [], 0
    for jobid in range(1, draw(st.integers(1, 3)) + 1):
        schedule = draw(st.sampled_from(SCHEDULES))
        step = {"* * * * *": 1, "*/5 * * * *": 5, "*/2 * * * *": 2, "0 * * * *": 60}[schedule]
        anchor = draw(st.sampled_from([None, T0 + timedelta(minutes=30)]))
        jobs.append(JobInfo(jobid, f"job-{jobid}", schedule, True, anchor))
        for k, fate in enumerate(draw(st.lists(fates, min_size=0, max_size=40))):
            slot = T0 + timedelta(minutes=step * k)
            if fate == "skip":
                continue
            delay = {"late": 40.0, "early": -0.5, "ahead": -5.0, "exact": 0.0}.get(fate, draw(st.floats(0, 3)))
            start = slot + timedelta(seconds=delay)
            took = {"long": timedelta(minutes=step * 2.5), "exact": timedelta(minutes=step * 2)}.get(
                fate, timedelta(seconds=draw(st.floats(0.01, 5))))  # "exact" ends on a slot
            runid += 1
            rows.append({"jobid": jobid, "runid": runid, "start_time": start,
                         "status": "running" if fate == "unfinished" else ("failed" if fate == "failed" else "succeeded"),
                         "end_time": None if fate == "unfinished" else start + took,
                         "return_message": "boom" if fate == "failed" else None})
    return jobs, pl.DataFrame([{k: r.get(k) for k in RUNS_SCHEMA} for r in rows], schema=RUNS_SCHEMA)


def _reference(jobs: Any, plans: Any, timed: pl.DataFrame, late_after: timedelta) -> dict[int, Any]:
    """What :func:`analysis._prepare` finds, the slow way: runs before begin counted one by one,
    overruns by bisection per run, and no on-time stretch (the walk takes every run)."""
    found = {}
    for jobid, (begin, slots, _column) in plans.items():
        rows = [r for r in timed.iter_rows(named=True) if r["jobid"] == jobid]
        prepared = analysis._Prepared(first=sum(1 for r in rows if r["at"] < begin))
        for r in rows:
            if r["start_time"] is not None and r["end_time"] is not None:
                inside = bisect_left(slots, r["end_time"]) - bisect_right(slots, r["start_time"] + timedelta(seconds=1))
                if inside > 0:
                    prepared.overruns.append((r, inside))
        found[jobid] = prepared
    return found


def _both(jobs: list[JobInfo], runs: pl.DataFrame, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    since, until, now = T0 + timedelta(minutes=20), T0 + timedelta(hours=4), T0 + timedelta(hours=5)
    fast = analyze(jobs, runs, since, until, now=now)
    with monkeypatch.context() as m:
        m.setattr(analysis, "_prepare", _reference)
        walked = analyze(jobs, runs, since, until, now=now)
    return fast, walked


@settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_the_one_piece_stretch_and_the_walk_agree_on_every_history(history: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, walked = _both(*history, monkeypatch)
    for name in ("slots", "events", "summary", "downtime"):
        left, right = getattr(fast, name), getattr(walked, name)
        assert left.equals(right), f"{name} differ:\n{left}\n{right}"


def test_a_day_of_on_time_runs_is_taken_in_one_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    job = JobInfo(1, "sync", "* * * * *")
    rows = [{"jobid": 1, "runid": i + 1, "status": "succeeded", "start_time": T0 + timedelta(minutes=i, seconds=1),
             "end_time": T0 + timedelta(minutes=i, seconds=2), "return_message": None} for i in range(300)]
    runs = pl.DataFrame(rows, schema=RUNS_SCHEMA)
    taken: list[int] = []
    real = analysis._prepare

    def spy(*args: Any) -> dict[int, Any]:
        found = real(*args)
        taken.extend(p.aligned.height for p in found.values() if p.aligned is not None)
        return found

    monkeypatch.setattr(analysis, "_prepare", spy)
    report = analyze([job], runs, T0 + timedelta(hours=1), T0 + timedelta(hours=5), now=T0 + timedelta(hours=5))
    assert taken == [300] and report.summary.row(0, named=True)["on_time"] == 240
