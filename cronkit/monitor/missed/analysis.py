"""The pure missed-run analysis: pg_cron's model of slots and runs, applied to a run history (no database)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
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
    #: runs of on-time slots found in one piece (:func:`_aligned`): columns of SLOTS_SCHEMA, never missed
    frames: list[pl.DataFrame] = field(default_factory=list)

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
    frame = runs.sort("runid").with_columns(at=pl.coalesce("start_time", "end_time"))
    # each job's runs with a time, in the order the walk takes them: one sort and one split for all jobs
    timed_all = frame.filter(pl.col("at").is_not_null()).sort("jobid", "at", "runid", maintain_order=True)
    parts = {key[0]: part for key, part in timed_all.partition_by("jobid", as_dict=True, maintain_order=True).items()}
    restarted_rows = frame.filter((pl.col("status") == "failed")
                                  & (pl.col("return_message").str.strip_chars() == "server restarted"))

    collector = _Collector()
    for job in jobs:
        if not job.active:
            continue
        schedule = parse_schedule(job.schedule, version)
        timed = parts.get(job.jobid, timed_all.clear())
        begin = max(since - CONTEXT, job.anchor) if job.anchor else since - CONTEXT
        if schedule.kind == "cron":
            _cron_job(job, schedule, timed, begin, horizon, tz, grace, late_after, chain_tolerance, collector)
        elif schedule.kind == "interval":
            _interval_job(job, schedule, _runs(timed), begin, horizon, grace, late_after, chain_tolerance, collector)

    # every start and end of every job, sorted: where downtime is looked for
    activity = pl.concat([frame["start_time"], frame["end_time"]]).drop_nulls().sort()
    intervals = [(a, b, "given") for a, b in downtime]
    restarted = [(row["jobid"], _run(row)) for row in restarted_rows.iter_rows(named=True)]
    intervals += _restart_downtime(restarts, restarted, parts, activity)
    if infer_downtime:
        intervals += _inferred_downtime(collector.slots, activity, since, horizon, min_gap)
    intervals = _merge(intervals)
    for slot in collector.slots:
        if slot["kind"] == "missed" and any(a <= slot["_due"] <= b for a, b, _ in intervals):
            slot["kind"] = "downtime"

    reported = [s for s in collector.slots if since <= s["slot"] < until]
    events = [e for e in collector.events if e["start_time"] is None or since <= e["start_time"] < until]
    aligned = pl.concat(collector.frames, how="vertical") if collector.frames else pl.DataFrame(schema=SLOTS_SCHEMA)
    slots_frame = pl.concat([_frame(reported, SLOTS_SCHEMA),
                             aligned.filter((pl.col("slot") >= since) & (pl.col("slot") < until))],
                            how="vertical").sort("jobid", "slot", maintain_order=True)
    events_frame = _frame(events, EVENTS_SCHEMA).sort("jobid", "start_time")
    last_starts = {r["jobid"]: r["last_start"] for r in frame.filter(pl.col("start_time") < until)
                   .group_by("jobid").agg(last_start=pl.col("start_time").max()).iter_rows(named=True)}
    summary = _summary(jobs, slots_frame, events_frame, last_starts)
    down = _frame([{"start": a, "end": b, "reason": r} for a, b, r in intervals if b >= since and a < until],
                  DOWNTIME_SCHEMA)
    return MissedReport(slots_frame, events_frame, summary, down)


def _run(row: Mapping[str, Any]) -> Run:
    return Run(row["runid"], row["status"], row["start_time"], row["end_time"], row.get("return_message"))


def _runs(part: pl.DataFrame) -> list[Run]:
    return [_run(row) for row in part.iter_rows(named=True)]


def _slots(schedule: Schedule, begin: datetime, end: datetime, tz: str) -> tuple[tuple[datetime, ...], pl.Series]:
    """A cron schedule's slots in ``[begin, end)``, as a list and a column; jobs that share a
    schedule (most do) share one generation. Cron slots are whole minutes, so both bounds are
    rounded up to one: the same slots, and one key for every job's window."""
    return _slots_of(schedule.expr, schedule.version, _minute_up(begin), _minute_up(end), tz)


def _minute_up(at: datetime) -> datetime:
    floor = at.replace(second=0, microsecond=0)
    return floor if floor == at else floor + timedelta(minutes=1)


@lru_cache(maxsize=256)
def _slots_of(expr: str, version: PgCronVersion, begin: datetime, end: datetime,
              tz: str) -> tuple[tuple[datetime, ...], pl.Series]:
    found = tuple(parse_schedule(expr, version).expected_slots(begin, end, tz)) if end > begin else ()
    return found, pl.Series("slot", found, dtype=_TS)


def _aligned(job: JobInfo, runs: pl.DataFrame, slots: pl.Series, prev_end: datetime | None, has_prev: bool,
             late_after: timedelta) -> pl.DataFrame:
    """The longest first stretch of ``runs`` (all at or after the job's begin, in order) in which run
    ``i`` is simply on time for slot ``i``, as slot rows — what the slot-by-slot walk of
    :func:`_cron_job` concludes for them, found with column operations.

    Run ``i`` qualifies when it has a start, exactly ``i + 1`` slots are due by its start (so slot
    ``i`` is the only pending one), it started within ``late_after`` of slot ``i``, and the run
    before it had ended by slot ``i`` (so nothing was queued and nothing overlapped)."""
    k = min(runs.height, slots.len())
    if k == 0:
        return pl.DataFrame(schema=SLOTS_SCHEMA)
    head = runs.head(k)
    slot = slots.head(k)
    floor = datetime.min.replace(tzinfo=UTC) if not has_prev else prev_end
    prev_ends = head.get_column("end_time").shift(1, fill_value=floor) if floor is not None else \
        head.get_column("end_time").shift(1)
    due = slots.search_sorted(head.get_column("at") + _EARLY, side="right")
    ok = (
        head.get_column("start_time").is_not_null()
        & (due == pl.int_range(1, k + 1, eager=True, dtype=due.dtype))
        & ((head.get_column("at") - slot) <= late_after)
        & (prev_ends <= slot)
    ).fill_null(False)
    bad = (~ok).arg_true()
    m = int(bad[0]) if bad.len() else k
    if m == 0:
        return pl.DataFrame(schema=SLOTS_SCHEMA)
    taken = head.head(m).with_columns(slot=slot.head(m))
    # delay_s exactly as the walk's timedelta.total_seconds(): microseconds divided by 1e6 in Python
    # (polars multiplies by the reciprocal, which can differ in the last bit)
    micros = taken.select((pl.col("start_time") - pl.col("slot")).dt.total_microseconds()).to_series().to_list()
    return taken.select(
        pl.lit(job.jobid, pl.Int64()).alias("jobid"), pl.lit(job.jobname, pl.String()).alias("jobname"),
        pl.col("slot"), pl.lit("on_time", pl.String()).alias("kind"), pl.col("runid").cast(pl.Int64()),
        pl.col("start_time").cast(_TS),
    ).with_columns(delay_s=pl.Series([us / 1_000_000 for us in micros], dtype=pl.Float64()))


def _cron_job(job: JobInfo, schedule: Schedule, timed: pl.DataFrame, begin: datetime, horizon: datetime, tz: str,
              grace: timedelta, late_after: timedelta, chain: timedelta, out: _Collector) -> None:
    """Walk the job's runs (with a time, in order) against its slots; the first stretch of simply
    on-time runs is taken in one piece (:func:`_aligned`), the rest slot by slot."""
    last_at = timed.get_column("at").max() if timed.height else None
    end = max(horizon, last_at or horizon) + _EARLY  # type: ignore[type-var]
    slots, column = _slots(schedule, begin, end, tz)
    first = int(timed.get_column("at").search_sorted(begin, side="left")) if timed.height else 0  # runs before begin
    prev_row = timed.row(first - 1, named=True) if first else None
    aligned = _aligned(job, timed.slice(first), column, prev_row["end_time"] if prev_row else None,
                       prev_row is not None, late_after)
    m = aligned.height
    if m:
        out.frames.append(aligned)
        prev_row = timed.row(first + m - 1, named=True)
    queue: deque[datetime] = deque()
    next_slot = m
    prev: Run | None = _run(prev_row) if prev_row else None
    runs = _runs(timed.slice(first + m))
    for run in runs:
        assert run.at is not None
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
    _overruns(job, timed, column, out)
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


def _overruns(job: JobInfo, timed: pl.DataFrame, slots: pl.Series, out: _Collector) -> None:
    """An overrun event for each run during which slots fell (the one it ran for excluded): they
    were queued. Counted for every run at once (two sorted searches), events only for those."""
    done = timed.filter(pl.col("start_time").is_not_null() & pl.col("end_time").is_not_null())
    if not done.height or not slots.len():
        return
    inside = (slots.search_sorted(done.get_column("end_time"), side="left").cast(pl.Int64())
              - slots.search_sorted(done.get_column("start_time") + _EARLY, side="right").cast(pl.Int64()))
    for row, count in zip(done.filter(inside > 0).iter_rows(named=True), inside.filter(inside > 0), strict=True):
        run = _run(row)
        assert run.start is not None and run.end is not None
        took = (run.end - run.start).total_seconds()
        out.event(job, "overrun", run, f"ran {took:.0f}s; {count} slot(s) fell while it ran and were queued")


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


def _overrun(job: JobInfo, run: Run, out: _Collector, *, step: timedelta) -> None:
    if run.start is None or run.end is None:
        return
    took = (run.end - run.start).total_seconds()
    if run.end - run.start > step:
        out.event(job, "overrun", run, f"ran {took:.0f}s, longer than its {step.total_seconds():.0f}s interval")


def _restart_downtime(restarts: Iterable[datetime], restarted: list[tuple[int, Run]],
                      parts: Mapping[int, pl.DataFrame], activity: pl.Series) -> list[tuple[datetime, datetime, str]]:
    """Downtime around server starts and runs failed with 'server restarted'; ``activity``: every
    start and end of every job, sorted."""
    found: list[tuple[datetime, datetime, str]] = []
    for moment in restarts:
        i = int(activity.search_sorted(moment, side="left"))
        start = activity[i - 1] if i > 0 else moment - timedelta(minutes=1)
        found.append((start, moment + timedelta(minutes=1), "server start"))
    for jobid, run in restarted:
        assert run.at is not None
        later = parts[jobid].filter(pl.col("at") > run.at).get_column("at").min() if jobid in parts else None
        bound = later or (activity[-1] if activity.len() else run.at)
        # the restart happened somewhere between the interrupted run's start and the next run of
        # the same job: take the longest silence of all jobs in between
        lo, hi = int(activity.search_sorted(run.at, side="right")), int(activity.search_sorted(bound, side="left"))
        points = [run.at, *activity.slice(lo, max(0, hi - lo)).to_list(), bound]
        gaps = [(b - a, a, b) for a, b in pairwise(points)]
        if gaps:
            _, a, b = max(gaps)
            found.append((a, b, "server restarted"))
    return found


def _inferred_downtime(slots: list[dict[str, Any]], activity: pl.Series, since: datetime,
                       horizon: datetime, min_gap: timedelta) -> list[tuple[datetime, datetime, str]]:
    """Silences of every job longer than ``min_gap`` in which two or more jobs missed slots."""
    missed = sorted((s["_due"], s["jobid"]) for s in slots if s["kind"] == "missed")
    if not missed:
        return []
    points = pl.concat([pl.Series([since - CONTEXT], dtype=_TS), activity.cast(_TS), pl.Series([horizon], dtype=_TS)])
    wide = (points.diff() > min_gap).fill_null(False).arg_true().to_list()  # only the long silences
    found = []
    for i in wide:
        a, b = points[i - 1], points[i]
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


def _summary(jobs: Sequence[JobInfo], slots: pl.DataFrame, events: pl.DataFrame,
             last_starts: Mapping[int, datetime]) -> pl.DataFrame:
    # one pass over the slots and events per measure (grouped), not a filter per job
    per_job = {r["jobid"]: r for r in slots.group_by("jobid").agg(
        kinds=pl.col("kind"), slots=pl.col("slot"),
        max_delay_s=pl.col("delay_s").filter(pl.col("kind").is_in(["on_time", "late", "queued"])).max(),
    ).iter_rows(named=True)}
    counts: dict[tuple[int, str], int] = {
        (r["jobid"], r["kind"]): r["len"] for r in slots.group_by("jobid", "kind").len().iter_rows(named=True)}
    event_counts: dict[tuple[int, str], int] = {
        (r["jobid"], r["kind"]): r["len"] for r in events.group_by("jobid", "kind").len().iter_rows(named=True)}
    rows = []
    for job in jobs:
        mine = per_job.get(job.jobid, {"kinds": [], "slots": [], "max_delay_s": None})
        kinds: list[str] = mine["kinds"]
        kind_counts = {kind: counts.get((job.jobid, kind), 0) for kind in SLOT_KINDS}
        trailing = 0
        for kind in reversed(kinds):
            if kind != "missed":
                break
            trailing += 1
        schedule = parse_schedule(job.schedule)
        overruns = event_counts.get((job.jobid, "overrun"), 0)
        if not job.active:
            status = "inactive"
        elif schedule.kind == "reboot" or not kinds:
            status = "unscheduled" if schedule.kind == "reboot" else "ok"
        elif trailing:
            status = "stopped"
        elif kind_counts["missed"]:
            status = "missed"
        elif kind_counts["late"]:
            status = "late"
        elif overruns:
            status = "overrun"
        else:
            status = "ok"
        rows.append({
            "jobid": job.jobid, "jobname": job.jobname, "schedule": job.schedule, "active": job.active,
            "status": status, "expected": len(kinds), **kind_counts,
            "overruns": overruns,
            "overlaps": event_counts.get((job.jobid, "overlap"), 0),
            "unexpected": event_counts.get((job.jobid, "unexpected"), 0),
            "max_delay_s": mine["max_delay_s"],
            "last_start": last_starts.get(job.jobid),
            "silent_since": mine["slots"][len(kinds) - trailing] if trailing else None,
        })
    return _frame(rows, SUMMARY_SCHEMA)
