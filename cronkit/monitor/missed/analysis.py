"""The pure missed-run analysis: pg_cron's model of slots and runs, applied to a run history (no database)."""

from __future__ import annotations

from bisect import bisect_right
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
    #: the zone the cron schedules were read in (``cron_zone``: what a view showing them must use too)
    zone: str = "GMT"


@dataclass
class _Collector:
    slots: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    #: runs of on-time slots found in one piece (:func:`_prepare`): columns of SLOTS_SCHEMA, never missed
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
    # per active cron job: where it begins and its slots (a list for the walk, a column for _prepare)
    plans: dict[int, tuple[datetime, tuple[datetime, ...], pl.Series]] = {}
    for job in jobs:
        schedule = parse_schedule(job.schedule, version)
        if job.active and schedule.kind == "cron":
            timed = parts.get(job.jobid)
            last_at = timed.get_column("at").max() if timed is not None else None
            end = max(horizon, last_at or horizon) + _EARLY  # type: ignore[type-var]
            plans[job.jobid] = (_begin(job, since), *_slots(schedule, _begin(job, since), end, tz))
    prepared = _prepare(jobs, plans, timed_all, late_after)
    for job in jobs:
        if not job.active:
            continue
        schedule = parse_schedule(job.schedule, version)
        timed = parts.get(job.jobid, timed_all.clear())
        if schedule.kind == "cron":
            _cron_job(job, plans[job.jobid][1], timed, prepared.get(job.jobid, _Prepared()), horizon, grace,
                      late_after, chain_tolerance, collector)
        elif schedule.kind == "interval":
            _interval_job(job, schedule, _runs(timed), _begin(job, since), horizon, grace, late_after, chain_tolerance,
                          collector)

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
    events_frame = _frame(events, EVENTS_SCHEMA).sort("jobid", "start_time", maintain_order=True)
    last_starts = {r["jobid"]: r["last_start"] for r in frame.filter(pl.col("start_time") < until)
                   .group_by("jobid").agg(last_start=pl.col("start_time").max()).iter_rows(named=True)}
    summary = _summary(jobs, slots_frame, events_frame, last_starts)
    down = _frame([{"start": a, "end": b, "reason": r} for a, b, r in intervals if b >= since and a < until],
                  DOWNTIME_SCHEMA)
    return MissedReport(slots_frame, events_frame, summary, down, tz)


def _begin(job: JobInfo, since: datetime) -> datetime:
    """No slot of ``job`` is looked for before this: the read context before the window, or its anchor."""
    return max(since - CONTEXT, job.anchor) if job.anchor else since - CONTEXT


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


@dataclass
class _Prepared:
    """What the column pass found for one cron job: how many of its runs precede its begin, the
    on-time slots of its first stretch (as rows), and its overrun events (run row, slots passed)."""

    first: int = 0
    aligned: pl.DataFrame | None = None
    overruns: list[tuple[dict[str, Any], int]] = field(default_factory=list)


def _prepare(jobs: Sequence[JobInfo], plans: Mapping[int, tuple[datetime, tuple[datetime, ...], pl.Series]],
             timed: pl.DataFrame, late_after: timedelta) -> dict[int, _Prepared]:
    """For every cron job at once, with column operations: its runs before its begin, the longest
    first stretch of runs that are simply on time for their slot, and the slots that fell while
    each run ran — what the slot-by-slot walk of :func:`_cron_job` would conclude for them.

    Run ``i`` (counted from the job's begin) is simply on time when it has a start, exactly
    ``i + 1`` slots are due by its start (slot ``i`` is the only one pending), it started within
    ``late_after`` of slot ``i``, and the run before it had ended by slot ``i`` (nothing was queued,
    nothing overlapped)."""
    if not plans or not timed.height:
        return {}
    names = {job.jobid: job.jobname for job in jobs}
    # every job's slots with their index; jobs that share a slot list (most) share one frame, crossed
    # with their ids
    sharing: dict[int, tuple[pl.Series, list[int]]] = {}
    for jobid, (_start, _listed, column) in plans.items():
        if column.len():
            sharing.setdefault(id(column), (column, []))[1].append(jobid)
    slots = pl.concat([pl.DataFrame({"jobid": ids}, schema={"jobid": pl.Int64()}).join(
                           pl.DataFrame({"slot": column, "idx": range(column.len())},
                                        schema={"slot": _TS, "idx": pl.Int64()}), how="cross")
                       for column, ids in sharing.values()], how="vertical") if sharing else None
    begins = pl.DataFrame({"jobid": list(plans), "begin": [plan[0] for plan in plans.values()]},
                          schema={"jobid": pl.Int64(), "begin": _TS})
    runs = (timed.join(begins, on="jobid", how="inner", maintain_order="left")
            .with_columns(before=pl.col("at") < pl.col("begin")))
    firsts = {r["jobid"]: r["n"] for r in runs.group_by("jobid").agg(n=pl.col("before").sum()).iter_rows(named=True)}
    prepared = {jobid: _Prepared(first=n) for jobid, n in firsts.items()}
    if slots is None:
        return prepared
    floor = datetime.min.replace(tzinfo=UTC)
    walked = (runs.with_columns(
                  prev_end=pl.col("end_time").shift(1).over("jobid"),
                  prev_before=pl.col("before").shift(1).over("jobid"),
                  idx=(pl.int_range(pl.len(), dtype=pl.Int64()) - pl.col("before").sum().cast(pl.Int64())).over("jobid"))
              .filter(~pl.col("before"))
              # the first run after begin: the run before it (if any) is the last before begin
              .with_columns(prev_end=pl.when(pl.col("prev_before").is_null()).then(pl.lit(floor, _TS))
                            .otherwise(pl.col("prev_end")))
              .join(slots, on=["jobid", "idx"], how="left", maintain_order="left")
              .with_columns(due_by=pl.col("at") + _EARLY))
    due = (walked.select("jobid", "idx", "due_by").sort("due_by")
           .join_asof(slots.rename({"idx": "due_idx"}).sort("slot"), left_on="due_by", right_on="slot",
                      by="jobid", strategy="backward", check_sortedness=False)
           .select("jobid", "idx", "due_idx"))
    walked = walked.join(due, on=["jobid", "idx"], how="left", maintain_order="left")
    ok = (pl.col("start_time").is_not_null() & pl.col("slot").is_not_null() & (pl.col("due_idx") == pl.col("idx"))
          & ((pl.col("at") - pl.col("slot")) <= late_after) & (pl.col("prev_end") <= pl.col("slot"))).fill_null(False)
    walked = walked.with_columns(ok=ok)
    stops = {r["jobid"]: r["m"] for r in walked.filter(~pl.col("ok")).group_by("jobid").agg(m=pl.col("idx").min())
             .iter_rows(named=True)}
    taken = walked.filter(pl.col("idx") < pl.col("jobid").replace_strict(stops, default=2**62, return_dtype=pl.Int64()))
    # delay_s exactly as the walk's timedelta.total_seconds(): microseconds divided by 1e6 in Python
    # (polars multiplies by the reciprocal, which can differ in the last bit)
    micros = taken.select((pl.col("start_time") - pl.col("slot")).dt.total_microseconds()).to_series().to_list()
    rows = taken.select(
        pl.col("jobid").cast(pl.Int64()), pl.col("jobid").replace_strict(names, return_dtype=pl.String()).alias("jobname"),
        pl.col("slot"), pl.lit("on_time", pl.String()).alias("kind"), pl.col("runid").cast(pl.Int64()),
        pl.col("start_time").cast(_TS),
    ).with_columns(delay_s=pl.Series([us / 1_000_000 for us in micros], dtype=pl.Float64()))
    for (jobid,), part in rows.partition_by("jobid", as_dict=True, maintain_order=True).items():
        prepared[jobid].aligned = part
    # overruns: slots in (start + 1 s, end) — all runs, those before begin too
    done = runs.filter(pl.col("start_time").is_not_null() & pl.col("end_time").is_not_null()).with_row_index("row")
    counted = (done.select("row", "jobid", after=pl.col("start_time") + _EARLY, until=pl.col("end_time")))
    upto = (counted.sort("after").join_asof(slots.sort("slot"), left_on="after", right_on="slot", by="jobid",
                                            strategy="backward", check_sortedness=False)
            .select("row", n_after=pl.col("idx") + 1))
    below = (counted.sort("until").join_asof(slots.sort("slot"), left_on="until", right_on="slot", by="jobid",
                                             strategy="backward", allow_exact_matches=False, check_sortedness=False)
             .select("row", n_until=pl.col("idx") + 1))
    inside = (done.join(upto, on="row").join(below, on="row")
              .with_columns(inside=pl.col("n_until").fill_null(0) - pl.col("n_after").fill_null(0))
              .filter(pl.col("inside") > 0).sort("row"))
    for row in inside.iter_rows(named=True):
        prepared[row["jobid"]].overruns.append((row, row["inside"]))
    return prepared


def _cron_job(job: JobInfo, slots: tuple[datetime, ...], timed: pl.DataFrame, prepared: _Prepared, horizon: datetime,
              grace: timedelta, late_after: timedelta, chain: timedelta, out: _Collector) -> None:
    """Walk the job's runs (with a time, in order) against its slots; the first stretch of simply
    on-time runs comes in one piece from :func:`_prepare`, the rest goes slot by slot."""
    first = prepared.first
    prev_row = timed.row(first - 1, named=True) if first else None
    m = prepared.aligned.height if prepared.aligned is not None else 0
    if m:
        out.frames.append(prepared.aligned)  # type: ignore[arg-type]
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
    for row, count in prepared.overruns:
        run = _run(row)
        assert run.start is not None and run.end is not None
        out.event(job, "overrun", run, f"ran {(run.end - run.start).total_seconds():.0f}s; {count} slot(s) fell while it "
                  "ran and were queued")
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
    position = pl.int_range(pl.len())
    last_started = position.filter(pl.col("kind") != "missed").max().fill_null(-1)  # the slots are in time order
    per_job = {r["jobid"]: r for r in slots.group_by("jobid").agg(
        expected=pl.len(), trailing=pl.len() - 1 - last_started,
        silent_since=pl.col("slot").filter(position > last_started).min(),
        max_delay_s=pl.col("delay_s").filter(pl.col("kind").is_in(["on_time", "late", "queued"])).max(),
    ).iter_rows(named=True)}
    counts: dict[tuple[int, str], int] = {
        (r["jobid"], r["kind"]): r["len"] for r in slots.group_by("jobid", "kind").len().iter_rows(named=True)}
    event_counts: dict[tuple[int, str], int] = {
        (r["jobid"], r["kind"]): r["len"] for r in events.group_by("jobid", "kind").len().iter_rows(named=True)}
    rows = []
    for job in jobs:
        mine = per_job.get(job.jobid, {"expected": 0, "trailing": 0, "silent_since": None, "max_delay_s": None})
        kind_counts = {kind: counts.get((job.jobid, kind), 0) for kind in SLOT_KINDS}
        trailing = mine["trailing"]
        schedule = parse_schedule(job.schedule)
        overruns = event_counts.get((job.jobid, "overrun"), 0)
        if not job.active:
            status = "inactive"
        elif schedule.kind == "reboot" or not mine["expected"]:
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
            "status": status, "expected": mine["expected"], **kind_counts,
            "overruns": overruns,
            "overlaps": event_counts.get((job.jobid, "overlap"), 0),
            "unexpected": event_counts.get((job.jobid, "unexpected"), 0),
            "max_delay_s": mine["max_delay_s"],
            "last_start": last_starts.get(job.jobid),
            "silent_since": mine["silent_since"] if trailing else None,
        })
    return _frame(rows, SUMMARY_SCHEMA)
