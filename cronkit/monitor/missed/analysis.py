"""The pure missed-run analysis: pg_cron's model of slots and runs, applied to a run history (no database)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import polars as pl

from cronkit.monitor.window import _frame
from cronkit.schedules import PgCronVersion, Schedule, parse_schedule

GRACE = timedelta(seconds=60)
LATE_AFTER = timedelta(seconds=15)
CHAIN_TOLERANCE = timedelta(seconds=10)
CONTEXT = timedelta(hours=1)
#: a slot may precede its run's recorded start by a little (start_time is set after connecting)
_EARLY = timedelta(seconds=1)
_FINAL = ("succeeded", "failed")
_TS = pl.Datetime("us", "UTC")

SLOT_KINDS = ("on_time", "late", "queued", "missed", "downtime", "pending")
EVENT_KINDS = ("overrun", "overlap", "unexpected")
SLOTS_SCHEMA: dict[str, pl.DataType] = {
    "jobid": pl.Int64(), "jobname": pl.String(), "slot": _TS, "kind": pl.String(),
    "runid": pl.Int64(), "start_time": _TS, "delay_s": pl.Float64(),
}
EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "jobid": pl.Int64(), "jobname": pl.String(), "kind": pl.String(), "runid": pl.Int64(),
    "start_time": _TS, "end_time": _TS, "detail": pl.String(),
}
SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "jobid": pl.Int64(), "jobname": pl.String(), "schedule": pl.String(), "active": pl.Boolean(),
    "status": pl.String(), "expected": pl.Int64(),
    **{kind: pl.Int64() for kind in SLOT_KINDS},
    "overruns": pl.Int64(), "overlaps": pl.Int64(), "unexpected": pl.Int64(),
    "max_delay_s": pl.Float64(), "last_start": _TS, "silent_since": _TS,
}
DOWNTIME_SCHEMA: dict[str, pl.DataType] = {"start": _TS, "end": _TS, "reason": pl.String()}


@dataclass(frozen=True)
class JobInfo:
    """What the analysis needs of a ``cron.job`` row; ``anchor``: no slots are expected before it
    (e.g. when cronkit created or last changed the job)."""

    jobid: int
    jobname: str | None
    schedule: str
    active: bool = True
    anchor: datetime | None = None


@dataclass(frozen=True)
class Run:
    runid: int
    status: str | None
    start: datetime | None
    end: datetime | None
    message: str | None = None

    @property
    def at(self) -> datetime | None:
        return self.start or self.end

    @property
    def final(self) -> bool:
        return self.status in _FINAL


@dataclass(frozen=True)
class MissedReport:
    slots: pl.DataFrame
    events: pl.DataFrame
    summary: pl.DataFrame
    downtime: pl.DataFrame


@dataclass
class _Collector:
    slots: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def slot(self, job: JobInfo, slot: datetime, kind: str, run: Run | None = None, due: datetime | None = None) -> None:
        delay = (run.start - slot).total_seconds() if run is not None and run.start is not None else None
        self.slots.append({
            "jobid": job.jobid, "jobname": job.jobname, "slot": slot, "kind": kind,
            "runid": run.runid if run else None, "start_time": run.start if run else None,
            "delay_s": delay, "_due": due or slot,
        })

    def event(self, job: JobInfo, kind: str, run: Run, detail: str) -> None:
        self.events.append({
            "jobid": job.jobid, "jobname": job.jobname, "kind": kind, "runid": run.runid,
            "start_time": run.start, "end_time": run.end, "detail": detail,
        })


def analyze(
    jobs: Sequence[JobInfo],
    runs: pl.DataFrame,
    since: datetime,
    until: datetime,
    *,
    now: datetime | None = None,
    grace: timedelta = GRACE,
    late_after: timedelta = LATE_AFTER,
    chain_tolerance: timedelta = CHAIN_TOLERANCE,
    tz: str = "GMT",
    version: PgCronVersion | None = None,
    downtime: Iterable[tuple[datetime, datetime]] = (),
    restarts: Iterable[datetime] = (),
    infer_downtime: bool = True,
    min_gap: timedelta = timedelta(minutes=5),
) -> MissedReport:
    """Compare expected slots with ``runs`` (columns jobid, runid, status, start_time, end_time,
    return_message; runs of *all* jobs, for downtime inference) over ``[since, until)``.

    Pure: no database. ``runs`` should start ``CONTEXT`` before ``since`` so a queue or an interval
    anchor that began earlier is known. Slots later than ``now - grace`` are not due yet.
    """
    now = now or datetime.now(UTC)
    horizon = min(until, now - grace)
    by_job: dict[int, list[Run]] = {}
    activity: list[datetime] = []
    restarted: list[tuple[int, Run]] = []
    for row in runs.sort("runid").iter_rows(named=True):
        run = Run(row["runid"], row["status"], row["start_time"], row["end_time"], row.get("return_message"))
        by_job.setdefault(row["jobid"], []).append(run)
        activity.extend(t for t in (run.start, run.end) if t is not None)
        if run.status == "failed" and (run.message or "").strip() == "server restarted":
            restarted.append((row["jobid"], run))
    activity.sort()

    collector = _Collector()
    for job in jobs:
        if not job.active:
            continue
        schedule = parse_schedule(job.schedule, version)
        job_runs = sorted((r for r in by_job.get(job.jobid, []) if r.at is not None), key=lambda r: (r.at, r.runid))
        begin = max(since - CONTEXT, job.anchor) if job.anchor else since - CONTEXT
        if schedule.kind == "cron":
            _cron_job(job, schedule, job_runs, begin, horizon, tz, grace, late_after, chain_tolerance, collector)
        elif schedule.kind == "interval":
            _interval_job(job, schedule, job_runs, begin, horizon, grace, late_after, chain_tolerance, collector)

    intervals = [(a, b, "given") for a, b in downtime]
    intervals += _restart_downtime(restarts, restarted, by_job, activity)
    if infer_downtime:
        intervals += _inferred_downtime(collector.slots, activity, since, horizon, min_gap)
    intervals = _merge(intervals)
    for slot in collector.slots:
        if slot["kind"] == "missed" and any(a <= slot["_due"] <= b for a, b, _ in intervals):
            slot["kind"] = "downtime"

    reported = [s for s in collector.slots if since <= s["slot"] < until]
    events = [e for e in collector.events if e["start_time"] is None or since <= e["start_time"] < until]
    slots_frame = _frame(reported, SLOTS_SCHEMA).sort("jobid", "slot")
    events_frame = _frame(events, EVENTS_SCHEMA).sort("jobid", "start_time")
    summary = _summary(jobs, slots_frame, events_frame, by_job, since, until)
    down = _frame([{"start": a, "end": b, "reason": r} for a, b, r in intervals if b >= since and a < until],
                  DOWNTIME_SCHEMA)
    return MissedReport(slots_frame, events_frame, summary, down)


def _cron_job(job: JobInfo, schedule: Schedule, runs: list[Run], begin: datetime, horizon: datetime, tz: str,
              grace: timedelta, late_after: timedelta, chain: timedelta, out: _Collector) -> None:
    end = max(horizon, max((r.at for r in runs if r.at), default=horizon)) + _EARLY
    slots = list(schedule.expected_slots(begin, end, tz)) if end > begin else []
    queue: deque[datetime] = deque()
    next_slot = 0
    prev: Run | None = None
    for run in runs:
        assert run.at is not None
        if run.at < begin:
            prev = run
            continue
        while next_slot < len(slots) and slots[next_slot] <= run.at + _EARLY:
            queue.append(slots[next_slot])
            next_slot += 1
        idle_from = _idle_from(prev, run)
        if prev is not None:
            _overlap(job, prev, run, out)
        # Drop slots the scheduler evidently never started: a queued slot must start within
        # `chain` of the job becoming idle, an idle one within `grace` of its time. The last idle
        # slot is kept: the run is then late for it rather than an unexplained extra run.
        while queue:
            slot = queue[0]
            was_busy = slot < idle_from
            due = max(slot, idle_from)
            if run.at - due > (chain if was_busy else grace) and (was_busy or len(queue) > 1):
                out.slot(job, queue.popleft(), "missed", due=due)
            else:
                break
        if not queue:
            out.event(job, "unexpected", run, "no expected slot was pending when it started")
        else:
            slot = queue.popleft()
            if slot < idle_from and run.at - idle_from <= chain:
                out.slot(job, slot, "queued", run)
            else:
                out.slot(job, slot, "on_time" if run.at - slot <= late_after else "late", run)
        prev = run
    for run in runs:
        _overrun(job, run, out, slots=slots)
    while next_slot < len(slots) and slots[next_slot] <= horizon:
        queue.append(slots[next_slot])
        next_slot += 1
    if prev is not None and not prev.final:
        for slot in queue:
            out.slot(job, slot, "pending")
        return
    idle_from = _idle_from(prev, None)
    for slot in queue:
        due = max(slot, idle_from)
        if due <= horizon:
            out.slot(job, slot, "missed", due=due)


def _interval_job(job: JobInfo, schedule: Schedule, runs: list[Run], begin: datetime, horizon: datetime,
                  grace: timedelta, late_after: timedelta, chain: timedelta, out: _Collector) -> None:
    assert schedule.interval_seconds is not None
    step = timedelta(seconds=schedule.interval_seconds)
    prev: Run | None = None
    for run in runs:
        assert run.at is not None
        if prev is None or run.at < begin:
            # the first run seen anchors the cadence: pg_cron starts counting when it first sees a job
            if prev is not None:
                _overlap(job, prev, run, out)
            prev = run
            continue
        _overlap(job, prev, run, out)
        due, queued = _interval_due(prev, step)
        # the slots this run could be for: due, due + N, ... up to its start
        slots = list(schedule.expected_slots(due, run.at + _EARLY)) or [due]
        for slot in slots[:-1]:
            out.slot(job, slot, "missed")
        slot = slots[-1]
        if queued and len(slots) == 1 and run.at - slot <= chain:
            out.slot(job, slot, "queued", run)
        else:
            out.slot(job, slot, "on_time" if run.at - slot <= late_after else "late", run)
        prev = run
    if prev is None:
        return
    for run in runs:
        _overrun(job, run, out, step=step)
    due, _ = _interval_due(prev, step)
    if not prev.final:
        if due <= horizon:
            out.slot(job, due, "pending")
        return
    for slot in schedule.expected_slots(due, horizon + _EARLY):
        if slot <= horizon:
            out.slot(job, slot, "missed")


def _interval_due(prev: Run, step: timedelta) -> tuple[datetime, bool]:
    """When the next run of an interval job is due after ``prev``, and whether it is a catch-up."""
    assert prev.at is not None
    due = (prev.start or prev.at) + step
    if prev.end is not None and prev.end > due:
        return prev.end, True
    return due, False


def _idle_from(prev: Run | None, run: Run | None) -> datetime:
    """When the job became free to start its next run."""
    if prev is None:
        return datetime.min.replace(tzinfo=UTC)
    if prev.end is not None:
        return prev.end
    if prev.final or run is None:
        return prev.at or datetime.min.replace(tzinfo=UTC)
    return run.at or prev.at or datetime.min.replace(tzinfo=UTC)  # still "running": overlap


def _overlap(job: JobInfo, prev: Run, run: Run, out: _Collector) -> None:
    assert run.at is not None and prev.at is not None
    busy_until = prev.end if prev.end is not None else (None if not prev.final else prev.at)
    if busy_until is None or busy_until > run.at + _EARLY:
        out.event(job, "overlap", run, f"started while run {prev.runid} was still running")


def _overrun(job: JobInfo, run: Run, out: _Collector, *, slots: list[datetime] | None = None,
             step: timedelta | None = None) -> None:
    if run.start is None or run.end is None:
        return
    took = (run.end - run.start).total_seconds()
    if step is not None:
        if run.end - run.start > step:
            out.event(job, "overrun", run, f"ran {took:.0f}s, longer than its {step.total_seconds():.0f}s interval")
        return
    # slots that fell while it was running (the one it ran for excluded) were queued
    inside = bisect_left(slots or [], run.end) - bisect_right(slots or [], run.start + _EARLY)
    if inside > 0:
        out.event(job, "overrun", run, f"ran {took:.0f}s; {inside} slot(s) fell while it ran and were queued")


def _restart_downtime(restarts: Iterable[datetime], restarted: list[tuple[int, Run]],
                      by_job: Mapping[int, list[Run]], activity: list[datetime]) -> list[tuple[datetime, datetime, str]]:
    found: list[tuple[datetime, datetime, str]] = []
    for moment in restarts:
        i = bisect_left(activity, moment)
        start = activity[i - 1] if i > 0 else moment - timedelta(minutes=1)
        found.append((start, moment + timedelta(minutes=1), "server start"))
    for jobid, run in restarted:
        assert run.at is not None
        later = [r.at for r in by_job.get(jobid, []) if r.at is not None and r.at > run.at]
        bound = min(later) if later else (activity[-1] if activity else run.at)
        # the restart happened somewhere between the interrupted run's start and the next run of
        # the same job: take the longest silence of all jobs in between
        points = [run.at] + [t for t in activity if run.at < t < bound] + [bound]
        gaps = [(b - a, a, b) for a, b in pairwise(points)]
        if gaps:
            _, a, b = max(gaps)
            found.append((a, b, "server restarted"))
    return found


def _inferred_downtime(slots: list[dict[str, Any]], activity: list[datetime], since: datetime,
                       horizon: datetime, min_gap: timedelta) -> list[tuple[datetime, datetime, str]]:
    """Silences of every job longer than ``min_gap`` in which two or more jobs missed slots."""
    missed = sorted((s["_due"], s["jobid"]) for s in slots if s["kind"] == "missed")
    if not missed:
        return []
    points = [since - CONTEXT, *activity, horizon]
    found = []
    for a, b in pairwise(points):
        if b - a <= min_gap:
            continue
        inside = {jobid for t, jobid in missed[bisect_right(missed, (a, -(2**63))):] if t < b}
        if len(inside) >= 2:
            found.append((a, b, "no job ran"))
    return found


def _merge(intervals: list[tuple[datetime, datetime, str]]) -> list[tuple[datetime, datetime, str]]:
    merged: list[tuple[datetime, datetime, str]] = []
    for a, b, reason in sorted(intervals):
        if merged and a <= merged[-1][1]:
            pa, pb, pr = merged[-1]
            merged[-1] = (pa, max(pb, b), pr if reason in pr else f"{pr}; {reason}")
        else:
            merged.append((a, b, reason))
    return merged


def _summary(jobs: Sequence[JobInfo], slots: pl.DataFrame, events: pl.DataFrame, by_job: Mapping[int, list[Run]],
             since: datetime, until: datetime) -> pl.DataFrame:
    rows = []
    for job in jobs:
        mine = slots.filter(pl.col("jobid") == job.jobid)
        counts = {kind: mine.filter(pl.col("kind") == kind).height for kind in SLOT_KINDS}
        ev = events.filter(pl.col("jobid") == job.jobid)
        kinds = mine.get_column("kind").to_list()
        trailing = 0
        for kind in reversed(kinds):
            if kind != "missed":
                break
            trailing += 1
        starts = [r.start for r in by_job.get(job.jobid, []) if r.start is not None and r.start < until]
        delays = mine.filter(pl.col("kind").is_in(["on_time", "late", "queued"])).get_column("delay_s")
        schedule = parse_schedule(job.schedule)
        if not job.active:
            status = "inactive"
        elif schedule.kind == "reboot" or not kinds:
            status = "unscheduled" if schedule.kind == "reboot" else "ok"
        elif trailing:
            status = "stopped"
        elif counts["missed"]:
            status = "missed"
        elif counts["late"]:
            status = "late"
        elif ev.filter(pl.col("kind") == "overrun").height:
            status = "overrun"
        else:
            status = "ok"
        rows.append({
            "jobid": job.jobid, "jobname": job.jobname, "schedule": job.schedule, "active": job.active,
            "status": status, "expected": len(kinds), **counts,
            "overruns": ev.filter(pl.col("kind") == "overrun").height,
            "overlaps": ev.filter(pl.col("kind") == "overlap").height,
            "unexpected": ev.filter(pl.col("kind") == "unexpected").height,
            "max_delay_s": delays.max() if delays.len() else None,
            "last_start": max(starts) if starts else None,
            "silent_since": mine.get_column("slot")[len(kinds) - trailing] if trailing else None,
        })
    return _frame(rows, SUMMARY_SCHEMA)
