"""The monitor runbook's data and views: run history, HTTP outcomes, missed runs and queue health, with charts.

Guide 000 "Monitor Execution", guide 002 step 11, guide 003 "View job history". Every number comes
from :mod:`cronkit.monitor`; outcome classes from :mod:`cronkit.outcomes`. Read-only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import marimo as mo
import polars as pl

from cronkit import monitor
from cronkit.audit import AuditEntry, read_log
from cronkit.errors import ConfigError, CronkitError
from cronkit import privileges
from cronkit.monitor import charts, missed, queues
from cronkit.privileges import Section
from cronkit.outcomes import FAILED, OUTCOMES, Outcome
from cronkit.runbooks.context import RunbookContext, registered_jobs, scrubber, specs
from cronkit.runbooks.job_checks import failed_calls
from cronkit.runbooks.runtime import esc, say
from cronkit.schedules import parse_schedule
from cronkit.text import ago, human_duration

#: windows up to this long chart every run; longer ones chart hourly percentiles
PER_RUN_WINDOW = timedelta(hours=48)
#: ...as long as the runs fit the chart: more points than this chart hourly percentiles (a chart's
#: data is bounded by its pixels; 100 every-minute jobs make 144k runs a day)
MAX_RUN_POINTS = 2_000
#: statement_timeout of the monitor's reads (rollup reads over long windows take longer than a step's)
MONITOR_TIMEOUT_MS = 60_000
REFRESH_OPTIONS = ("10s", "30s", "1m", "5m")
#: entries of the change record the monitor shows
CHANGES_SHOWN = 20


class Part(StrEnum):
    """The monitor's parts that are read (and can fail) on their own."""

    RUNS = "run history"  # run summary and runs: the board, the run table, the duration chart
    HTTP = "HTTP outcomes"
    MISSED = "missed runs"
    QUEUES = "queues"
    CHANGES = "change record"  # cronkit.audit_log and the runs started by hand


@dataclass(frozen=True)
class MonitorData:
    """Every frame the monitor runbook shows, read in one go for one window."""

    since: datetime
    until: datetime
    jobs: tuple[str, ...] | None  # None: every job in cron.job
    summary: pl.DataFrame  # cronkit.monitor.run_summary
    runs: pl.DataFrame  # run_timeline (long windows) or recent_runs (per run)
    http: pl.DataFrame  # http_outcomes
    http_timeline: pl.DataFrame
    missed: pl.DataFrame  # cronkit.monitor.missed: summary per job
    slots: pl.DataFrame  # cronkit.monitor.missed: every expected slot
    queues: pl.DataFrame  # cronkit.monitor.queues.queue_health
    trend: pl.DataFrame  # cronkit.monitor.queues.queue_trend
    notes: tuple[str, ...] = ()
    #: the zone pg_cron reads cron schedules in (cronkit.monitor.missed.cron_zone)
    zone: str = "GMT"
    #: the sections that could not be read, and why (each view shows its own in place)
    errors: Mapping[Part, CronkitError] = field(default_factory=dict)
    #: runs started by hand in the window (cronkit.monitor.manual_runs)
    manual: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=monitor.MANUAL_RUNS_SCHEMA))
    #: the change record of the window, newest first (cronkit.audit.read_log)
    changes: tuple[AuditEntry, ...] = ()
    #: runs skipped under overlap = "skip", per job and heatmap bucket (cronkit.monitor.overlap_skips)
    skips: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=monitor.SKIPS_SCHEMA))

    @functools.cached_property
    def board(self) -> pl.DataFrame:
        """:func:`health_board` of this window, computed once for the board, its pick and the drill-down."""
        return health_board(self)


def monitor_scope(ctx: RunbookContext, job: str | None = None) -> tuple[str, ...] | None:
    """The jobs to look at: ``job``; else the manifest's jobs (and cronkit's maintenance jobs of
    the project); else None (every job)."""
    if job:
        return (job,)
    if not ctx.has_manifest:
        return None
    names = {s.name for s in specs(ctx)}
    names.update(m.jobname for m in registered_jobs(ctx))
    return tuple(sorted(names))


def _empty(schema: Mapping[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(schema=dict(schema))


class _Reads:
    """Each section's read in a savepoint of the one READ ONLY transaction: a section that fails
    keeps its error and empty frames; the others are still read."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.errors: dict[Part, CronkitError] = {}

    def read(self, section: Part, reader: Any, *empty: pl.DataFrame) -> Any:
        try:
            with self.conn.transaction():
                return reader()
        except CronkitError as exc:
            self.errors[section] = exc
            return empty[0] if len(empty) == 1 else empty


def monitor_data(ctx: RunbookContext, hours: float = 24.0, job: str | None = None) -> MonitorData:
    """Run history, HTTP outcomes, missed runs and queue health of the scope over the last ``hours``.

    Parts that need cronkit's monitoring schema (outcomes, queue trend) come back empty with a
    note when it is absent; a part that cannot be read keeps its error (``errors``) and the others
    are still shown; a database that cannot be reached is every part's error. One READ ONLY
    transaction.
    """
    until = datetime.now(UTC) + timedelta(seconds=1)
    since = until - timedelta(hours=float(hours))
    scope = monitor_scope(ctx, job)
    names = list(scope) if scope is not None else None
    notes: list[str] = []
    empty_report = missed.MissedReport(*(_empty(schema) for schema in (
        missed.SLOTS_SCHEMA, missed.EVENTS_SCHEMA, missed.SUMMARY_SCHEMA, missed.DOWNTIME_SCHEMA)))
    no_runs = (_empty(monitor.SUMMARY_SCHEMA), _empty(monitor.RUNS_SCHEMA))
    no_http = (_empty(monitor.HTTP_SCHEMA), _empty(monitor.HTTP_TIMELINE_SCHEMA), _empty(monitor.SKIPS_SCHEMA))
    no_queues = (_empty(queues.HEALTH_SCHEMA), _empty(queues.TREND_SCHEMA))
    try:
        with ctx.read(MONITOR_TIMEOUT_MS) as conn:
            reads = _Reads(conn)
            lacking = privileges.missing(conn)
            # A section the role may not read is skipped with one line naming the GRANT (cronkit.privileges).
            notes += [gap.line() for gap in lacking.values()]
            has_schema = monitor.has_monitoring_schema(conn)
            history = Section.JOBS not in lacking and Section.RUNS not in lacking

            def read_history() -> tuple[pl.DataFrame, pl.DataFrame]:
                summary = monitor.run_summary(conn, since, until, jobs=names)
                crowded = int(summary.get_column("runs").sum() or 0) > MAX_RUN_POINTS
                if (until - since > PER_RUN_WINDOW or crowded) and has_schema:
                    return summary, monitor.run_timeline(conn, since, until, jobs=names)
                return summary, monitor.recent_runs(conn, since, until, jobs=names)

            def read_http() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
                skips = monitor.overlap_skips(conn, since, until, bucket=monitor.timeline_bucket(until - since))
                return (monitor.http_outcomes(conn, since, until, jobs=names),
                        monitor.http_timeline(conn, since, until, jobs=names),
                        skips.filter(pl.col("jobname").is_in(names)) if names is not None else skips)

            def read_queues() -> tuple[pl.DataFrame, pl.DataFrame]:
                health = queues.queue_health(conn, list(ctx.manifest.queues))
                if not has_schema or Section.HTTP in lacking:
                    return health, _empty(queues.TREND_SCHEMA)
                return health, queues.queue_trend(conn, since, until, project=ctx.project if ctx.has_manifest else None)

            summary, runs = reads.read(Part.RUNS, read_history, *no_runs) if history else no_runs
            if Section.HTTP in lacking:
                http, http_timeline, skips = no_http
            elif has_schema:
                http, http_timeline, skips = reads.read(Part.HTTP, read_http, *no_http)
            else:
                notes.append("cronkit's monitoring tables are not in this database yet (run the setup runbook / "
                             "`cronkit apply`), or this role may not read them: HTTP outcomes and queue trends are empty.")
                http, http_timeline, skips = no_http
            report = reads.read(Part.MISSED, lambda: missed.detect_missed(
                conn, max(since, until - timedelta(days=31)), until, jobs=names), empty_report) if history else empty_report
            health, trend = reads.read(Part.QUEUES, read_queues, *no_queues)
            manual, changes = reads.read(Part.CHANGES, lambda: (
                monitor.manual_runs(conn, since, until, jobs=names),
                tuple(read_log(conn, project=ctx.project if ctx.has_manifest else None, since=since, limit=CHANGES_SHOWN)),
            ), _empty(monitor.MANUAL_RUNS_SCHEMA), ())
            errors = reads.errors
    except CronkitError as exc:  # the database cannot be reached: every part says so in place
        (summary, runs), (http, http_timeline, skips), (health, trend) = no_runs, no_http, no_queues
        report, manual, changes = empty_report, _empty(monitor.MANUAL_RUNS_SCHEMA), ()
        errors = dict.fromkeys(Part, exc)
    clean = scrubber(ctx)
    summary, runs, http = clean.frame(summary), clean.frame(runs), clean.frame(http)
    return MonitorData(since, until, scope, summary, runs, http, http_timeline,
                       clean.frame(report.summary), report.slots, health, trend, tuple(notes), report.zone,
                       {section: _scrubbed_error(exc, clean) for section, exc in errors.items()},
                       clean.frame(manual), changes, skips)


def _scrubbed_error(exc: CronkitError, clean: Any) -> CronkitError:
    return CronkitError(clean.text(exc.message), remedy=clean.text(exc.remedy) if exc.remedy else None)


def problem(data: MonitorData, *sections: Part) -> mo.Html | None:
    """The error of the first of ``sections`` that could not be read, with its fix, to show in
    place of the view; None when they were all read."""
    failed = next((data.errors[s] for s in sections if s in data.errors), None)
    if failed is None:
        return None
    fix = f"\n\n**Fix:** {esc(failed.remedy)}" if failed.remedy else ""
    return say(f"❌ The {esc(next(s for s in sections if s in data.errors))} could not be read: "
               f"{esc(failed.message)}{fix}")


def panel(*sections: Part) -> Any:
    """A view of ``sections``: it shows their read error in its place, and an error of its own
    (a chart that cannot be drawn) too, so the other views still render."""
    def wrap(view: Any) -> Any:
        @functools.wraps(view)
        def shown(data: MonitorData, *args: Any, **kwargs: Any) -> Any:
            failed = problem(data, *sections)
            if failed is not None:
                return failed
            try:
                return view(data, *args, **kwargs)
            except CronkitError as exc:
                return say(f"❌ {esc(exc.message)}" + (f"\n\n**Fix:** {esc(exc.remedy)}" if exc.remedy else ""))
            except Exception as exc:  # noqa: BLE001 - one view failing must not blank the page
                return say(f"❌ This view could not be drawn ({type(exc).__name__}: {esc(str(exc)[:300])}). "
                           "The other views are unaffected; please report this with the runbook's parameters.")
        return shown
    return wrap


def refresh_options(wanted: str | None) -> list[str]:
    """The refresh control's intervals, with the one asked for (``--refresh 2m``) among them."""
    if wanted and not re.fullmatch(r"\d+(\.\d+)?(s|m|h|d)", wanted):
        raise ConfigError(f"--refresh {wanted!r} is not an interval.", remedy="Use e.g. 30s, 1m, 5m or 1h.")
    return [*REFRESH_OPTIONS, *([wanted] if wanted and wanted not in REFRESH_OPTIONS else [])]


def monitor_header(data: MonitorData) -> mo.Html:
    scope = "every job" if data.jobs is None else f"{len(data.jobs)} job(s): {', '.join(data.jobs)}"
    notes = "".join(f"\n\n⚠️ {esc(n)}" for n in data.notes)
    return say(f"Window: the last **{human_duration(data.until - data.since)}** (UTC), {esc(scope)}.{notes}")


class JobState(StrEnum):
    """A job's state on the health board, most trouble first (the board sorts by this order)."""

    STOPPED = "stopped"  # its last expected runs did not happen (missed-run engine: trailing misses)
    FAILING = "failing"  # its last run failed, or none of its HTTP calls in the window got a 2xx
    DEGRADED = "degraded"  # some runs or HTTP calls failed in the window, and some got through
    MISSED = "missed"  # runs the schedule expected did not start (not the last ones)
    LATE = "late"  # runs started late, or ran past the next start
    PAUSED = "paused"  # inactive in cron.job: deliberate, so below every problem
    OK = "ok"
    NEVER_RAN = "never ran"  # no run in the window, and none was due: nothing to look at yet

    @property
    def icon(self) -> str:
        return {"stopped": "🛑", "failing": "❌", "degraded": "🟠", "missed": "⚠️", "late": "🕒",
                "never ran": "⚪", "paused": "⏸️", "ok": "✅"}[self.value]


#: the board's state from the missed-run engine's status (cronkit.monitor.missed.analysis)
_MISSED_STATES = {"stopped": JobState.STOPPED, "missed": JobState.MISSED, "late": JobState.LATE,
                  "overrun": JobState.LATE}


def job_state(run: Mapping[str, Any], http: Mapping[str, Any] | None, missed_status: str | None) -> JobState:
    """One job's state from its run summary row, its HTTP outcome counts and its missed-run status:
    the one rule the board and its sort use."""
    http_failed = failed_calls(http)
    http_ok = int(http.get(Outcome.OK) or 0) if http else 0
    if run.get("active") is False:
        return JobState.PAUSED
    if missed_status == "stopped":
        return JobState.STOPPED
    if run.get("last_status") == "failed" or (http_failed and not http_ok):
        return JobState.FAILING
    if run.get("failed") or http_failed:
        return JobState.DEGRADED
    if missed_status in _MISSED_STATES:
        return _MISSED_STATES[missed_status]
    if not run.get("runs"):
        return JobState.NEVER_RAN
    return JobState.OK


#: a board strip's characters, best to worst: a bin where every run was on time and none failed,
#: one with a late (or queued) run, one with a failed or missed run; and a bin where nothing was due
STRIP = {"ok": "▁", "late": "▅", "bad": "✗"}
NOTHING_DUE = "·"
STRIP_BINS = 16
_SLOT_GRADE = {"on_time": 0, "late": 1, "queued": 1, "missed": 2, "downtime": 2}


def strips(data: MonitorData, bins: int = STRIP_BINS) -> dict[int, str]:
    """Per jobid, the window in ``bins`` characters, oldest first: each bin's worst moment — ▁ runs
    on time, ▅ late or queued, ✗ a failed run or a missed one — and · where nothing was due. From
    the missed-run engine's slots (every expected start) and the failed runs (each run, or the
    hourly failure counts on long windows)."""
    span = (data.until - data.since).total_seconds()

    def binned(frame: pl.DataFrame, moment: str, grade: pl.Expr) -> pl.DataFrame:
        return (frame.filter(pl.col("jobid").is_not_null() & pl.col(moment).is_not_null())
                .select("jobid", grade.cast(pl.Int64).alias("grade"),
                        ((pl.col(moment) - pl.lit(data.since)).dt.total_seconds() / span * bins)
                        .floor().cast(pl.Int64).clip(0, bins - 1).alias("bin")))

    graded = [binned(data.slots.filter(pl.col("kind").is_in(list(_SLOT_GRADE))), "slot",
                     pl.col("kind").replace_strict(_SLOT_GRADE, return_dtype=pl.Int64))]
    if "status" in data.runs.columns:
        graded.append(binned(data.runs, "start_time", pl.when(pl.col("status") == "failed").then(2).otherwise(0)))
    elif "failed" in data.runs.columns:
        graded.append(binned(data.runs, "bucket", pl.when(pl.col("failed") > 0).then(2).otherwise(0)))
    worst = pl.concat(graded).group_by("jobid", "bin").agg(pl.col("grade").max())
    marks = list(STRIP.values())
    lines: dict[int, str] = {}
    for (jobid,), rows in worst.group_by("jobid"):
        cells = [NOTHING_DUE] * bins
        for row in rows.iter_rows(named=True):
            cells[row["bin"]] = marks[row["grade"]]
        lines[int(jobid)] = "".join(cells)  # type: ignore[call-overload]
    return lines


def health_board(data: MonitorData, now: datetime | None = None) -> pl.DataFrame:
    """One row per job, most trouble first: state, schedule in words, last and next run, runs and
    failures in the window, HTTP answers (2xx / failed / pending) and the last error, p95, and the
    window as a strip (:func:`strips`)."""
    now = now or data.until
    http = {r["jobname"]: r for r in data.http.iter_rows(named=True)}
    status = {r["jobid"]: r["status"] for r in data.missed.iter_rows(named=True)}
    lines = strips(data)
    order = list(JobState)
    rows = []
    for run in data.summary.iter_rows(named=True):
        calls = http.get(run["jobname"])
        state = job_state(run, calls, status.get(run["jobid"]))
        words = next_run = None
        if run["schedule"]:
            try:
                schedule = parse_schedule(run["schedule"])
                words = schedule.explain(data.zone, brief=True)
                if run["active"]:
                    # an interval counts from the previous start; a cron schedule from the clock
                    after = (run["last_start"] or now) if schedule.interval_seconds else now
                    upcoming = schedule.next_runs(after, 1, data.zone)
                    next_run = (ago(upcoming[0], now) if upcoming[0] > now else "due now") if upcoming else None
            except CronkitError:
                words = run["schedule"]
        last = ago(run["last_start"], now)
        rows.append({
            "state": f"{state.icon} {state}", "_rank": order.index(state), "job": _job(run),
            "schedule": words, "last run": f"{last} ({run['last_status']})" if last else None, "next run": next_run,
            "runs": run["runs"], "failed": run["failed"], "skipped (overlap)": run.get("skipped_overlap") or 0,
            "HTTP 2xx": int(calls.get(Outcome.OK) or 0) if calls else None,
            "HTTP failed": failed_calls(calls) if calls else None,
            "pending": int(calls.get(Outcome.PENDING) or 0) if calls else None,
            "last error": ((calls.get("last_error") or "").strip()[:120] or None) if calls and calls.get("last_error_at")
            else ((run["last_failure_message"] or "").strip()[:120] or None),
            "p95 ms": round(run["p95_ms"], 1) if run["p95_ms"] is not None else None,
            "window, old → new": lines.get(run["jobid"]) if run["jobid"] is not None else None,
        })
    frame = pl.DataFrame(rows, schema=BOARD_SCHEMA | {"_rank": pl.Int64()}) if rows else \
        pl.DataFrame(schema=BOARD_SCHEMA | {"_rank": pl.Int64()})
    return frame.sort("_rank", "job").drop("_rank")


@panel(Part.RUNS)
def board_view(data: MonitorData) -> Any:
    """The health board as a table that shows every job on one page; pick a row to drill down."""
    board = data.board
    return mo.ui.table(board, selection="single", page_size=max(10, board.height), show_column_summaries=False,
                       label="Pick a job to see its runs, calls and expected starts below.")


#: runs of one job the drill-down lists
DETAIL_RUNS = 20


def chosen_job(data: MonitorData, board: Any) -> str | None:
    """The job picked on the board, else the board's first (most troubled) job; None without jobs."""
    picked = getattr(board, "value", None)
    if isinstance(picked, pl.DataFrame) and picked.height:
        return str(picked.item(0, "job"))
    first = data.board
    return str(first.item(0, "job")) if first.height else None


@panel(Part.RUNS)
def job_detail(data: MonitorData, job: str | None) -> mo.Html:
    """One job in depth: its board row, its newest runs (started by hand too) with their messages,
    what its HTTP calls got back, and its expected starts."""
    if job is None:
        return say("No job in this window to look at.")
    row = data.board.filter(pl.col("job") == job)
    runs = data.runs.filter(pl.col("jobname") == job)
    if "duration_ms" in runs.columns:
        runs = (runs.sort("start_time", descending=True).head(DETAIL_RUNS)
                .select("start_time", "status", pl.col("duration_ms").round(1),
                        pl.col("return_message").str.strip_chars().str.split("\n").list.first().alias("message")))
    manual = data.manual.filter(pl.col("jobname") == job).select(
        "started_at", "status", pl.col("duration_ms").round(1), "slot", "request_id", "os_user")
    http = data.http.filter(pl.col("jobname") == job)
    missed_row = data.missed.filter(pl.col("jobname") == job)
    parts: list[Any] = [mo.md(f"### {esc(job)}")]
    if row.height:
        state = row.row(0, named=True)
        parts.append(say(f"{esc(state['state'])} · {esc(state['schedule'] or '')} · last run {esc(state['last run'] or '—')}"
                         f" · next {esc(state['next run'] or '—')}"
                         + (f" · window `{esc(state['window, old → new'])}`" if state['window, old → new'] else "")))
    parts += [mo.md("**Newest runs**"), runs if runs.height else say("No run in the window.")]
    if manual.height:
        parts += [mo.md("**Started by hand**"), manual]
    if http.height:
        parts += [mo.md("**HTTP calls**"), http.drop("jobname")]
    if missed_row.height:
        parts += [mo.md("**Expected starts**"), missed_row.drop("jobname")]
    return mo.vstack(parts)


BOARD_SCHEMA: dict[str, pl.DataType] = {
    "state": pl.String(), "job": pl.String(), "schedule": pl.String(), "last run": pl.String(),
    "next run": pl.String(), "runs": pl.Int64(), "failed": pl.Int64(), "skipped (overlap)": pl.Int64(),
    "HTTP 2xx": pl.Int64(),
    "HTTP failed": pl.Int64(), "pending": pl.Int64(), "last error": pl.String(), "p95 ms": pl.Float64(),
    "window, old → new": pl.String(),
}


@panel(Part.RUNS)
def run_table(data: MonitorData) -> pl.DataFrame:
    """Runs per job: counts, failures, runs skipped under ``overlap = "skip"``, p50/p95/max duration
    (ms), last failure and its message."""
    return data.summary.select(
        "jobname", "active", "schedule", "runs", "succeeded", "failed", "running", "skipped_overlap",
        pl.col("p50_ms").round(1), pl.col("p95_ms").round(1), pl.col("max_ms").round(1),
        "last_start", "last_status", "last_failure_at", "last_failure_message",
    ).sort("jobname", nulls_last=True)


@panel(Part.HTTP)
def http_table(data: MonitorData) -> pl.DataFrame:
    """HTTP outcomes of each job's calls, every outcome class a column (a zero says it did not
    happen; a hidden column would not), the jobs with failed calls first, and the last error."""
    outcomes = [str(o) for o in OUTCOMES]
    # An answer is an error only with an error time (monitor may fill last_error from a 2xx body).
    error = pl.when(pl.col("last_error_at").is_not_null()).then(pl.col("last_error")).otherwise(None)
    failed = pl.sum_horizontal([pl.col(str(o)) for o in FAILED]).alias("failed")
    return (data.http.select("jobname", "requests", *outcomes, "last_error_at", error.alias("last_error"))
            .with_columns(failed).sort(["failed", "jobname"], descending=[True, False]).drop("failed"))


@panel(Part.MISSED)
def missed_table(data: MonitorData) -> pl.DataFrame:
    """Expected versus actual runs per job: on time, late, queued, missed, downtime; silent jobs."""
    return data.missed.select(
        "jobname", "schedule", "active", "status", "expected", "on_time", "late", "queued", "missed", "downtime",
        "pending", "overruns", pl.col("max_delay_s").round(1), "silent_since",
    ).sort("jobname", nulls_last=True)


@panel(Part.QUEUES)
def queue_table(data: MonitorData) -> pl.DataFrame | mo.Html:
    """Each declared queue (and pgmq queue) now; without any, why the table is empty."""
    if data.queues.is_empty():
        return say("No queue to read now: the queues are the manifest's `[[queues]]` (pass `--manifest`)"
                   + (". The charts below come from the snapshots cronkit's queue jobs took." if data.trend.height else "."))
    return data.queues.select(
        "queue", "kind", "pending", "processing", "failed", "done", pl.col("oldest_pending_age_s").round(1),
        "stuck_processing", "exhausted", "retries", pl.col("drain_per_min").round(2),
    ).sort("queue")


def health_view(data: MonitorData) -> mo.Html:
    """One line per problem the frames show, most urgent first (details: the incident runbook);
    never "all clear" when a part could not be read."""
    lines = []
    if data.errors:
        if len(set(map(id, data.errors.values()))) == 1 and len(data.errors) == len(Part):
            failed = next(iter(data.errors.values()))
            return say(f"❌ Nothing could be read: {esc(failed.message)}"
                       + (f"\n\n**Fix:** {esc(failed.remedy)}" if failed.remedy else ""))
        lines.append(f"⚠️ Not read: {', '.join(str(p) for p in data.errors)} (each section below says why).")
    for row in data.summary.iter_rows(named=True):
        if row["failed"]:
            lines.append(f"❌ **{esc(_job(row))}**: {row['failed']} of {row['runs']} run(s) failed; last: "
                         f"{esc((row['last_failure_message'] or '').strip()[:160])}")
    for row in data.http.iter_rows(named=True):
        bad = {str(o): row[o] for o in FAILED if row.get(o)}
        if bad:
            lines.append(f"❌ **{esc(_job(row))}**: HTTP {', '.join(f'{k} ×{v}' for k, v in bad.items())}; last: "
                         f"{esc((row['last_error'] or '').strip()[:160])}")
    for row in data.missed.iter_rows(named=True):
        if row["missed"] or row["status"] == "stopped":
            lines.append(f"⚠️ **{esc(_job(row))}**: {row['missed']} missed run(s), status {row['status']}")
    for row in data.queues.iter_rows(named=True):
        if row["stuck_processing"] or row["exhausted"]:
            lines.append(f"⚠️ queue **{esc(row['queue'])}**: {row['stuck_processing'] or 0} stuck, "
                         f"{row['exhausted'] or 0} out of retries")
    paused = [esc(_job(row)) for row in data.summary.iter_rows(named=True) if row["active"] is False]
    if not lines:
        calm = "✅ No failed runs, failed HTTP calls, missed runs or stuck queue items in the window."
        return say(calm + (f"\n\n⏸️ Paused: {', '.join(paused)}." if paused else ""))
    if paused:
        lines.append(f"⏸️ Paused: {', '.join(paused)}.")
    return say("\n\n".join(lines) + "\n\nWalk through causes and fixes with `runbooks/incident.py`.")


def _job(row: dict[str, Any]) -> str:
    """A row's job as people know it; runs of a job removed since then keep only its id."""
    if row.get("jobname"):
        return str(row["jobname"])
    return f"jobid {row['jobid']} (removed)" if row.get("jobid") is not None else "a removed job"


@panel(Part.RUNS)
def duration_chart(data: MonitorData) -> Any:
    if data.runs.is_empty():
        return say("No finished run in this window yet, so there is no duration to draw: pg_cron records a run "
                   "in `cron.job_run_details` when a job fires (widen the window with `--hours`).")
    return charts.duration_chart(data.runs, title="Run duration", span=(data.since, data.until), manual=data.manual)


@panel(Part.HTTP)
def outcome_chart(data: MonitorData) -> Any:
    """Job × time heatmap of what the HTTP calls got back, buckets sized to the window."""
    if data.http_timeline.is_empty() and data.skips.is_empty():
        return say("No HTTP call in this window yet: the heatmap fills in as the jobs call their endpoints.")
    return charts.outcome_heatmap(data.http_timeline, monitor.timeline_bucket(data.until - data.since),
                                  title="HTTP outcomes", span=(data.since, data.until), skips=data.skips)


@panel(Part.MISSED)
def missed_chart(data: MonitorData) -> Any:
    if data.slots.is_empty():
        return say("No run was due in this window, so there is nothing to compare with the schedules yet.")
    return charts.missed_chart(data.slots, title="Expected runs: on time, late, missed", span=(data.since, data.until))


@panel(Part.QUEUES)
def queue_chart(data: MonitorData) -> Any:
    """Depth and oldest pending age over time; where there is no snapshot yet, why, instead of empty axes."""
    if not data.trend.is_empty():
        return charts.queue_chart(data.trend, title="Queues", span=(data.since, data.until))
    if data.queues.is_empty():
        return say("No queue is declared: add `[[queues]]` to the manifest to chart a queue table's depth "
                   "and oldest pending item.")
    return say("No queue snapshot in this window yet, so there is no trend to draw (the table above is read now). "
               "Applying a manifest with `[[queues]]` creates its `cronkit-queues:<project>` job, which records "
               "depth and age every 5 minutes; `cronkit run-now cronkit-queues:<project>` takes one now.")


@panel(Part.CHANGES)
def changes_view(data: MonitorData) -> pl.DataFrame | mo.Html:
    """What cronkit changed in the window (newest first) and who: the change record."""
    if not data.changes:
        return say("No change on the record in this window (apply, pause/resume, run-now, secrets, removal are "
                   "recorded in `cronkit.audit_log`; `cronkit log` shows older ones).")
    return pl.DataFrame([{"at": e.at, "action": e.action, "target": e.target, "summary": e.summary,
                          "role": e.db_role, "by": f"{e.os_user}@{e.host}" if e.os_user else None}
                         for e in data.changes])


# -- alerts ---------------------------------------------------------------------------------------


def alerts_view(ctx: RunbookContext) -> mo.Html:
    """One line per open alert of the project (cronkit.alerts), or why there is nothing to show."""
    from cronkit.alerts import open_alerts

    if not ctx.has_manifest:
        return say("**Alerts**: give a manifest to see its project's open alerts.")
    try:
        with ctx.read(MONITOR_TIMEOUT_MS) as conn:
            found = open_alerts(conn, ctx.project)
    except CronkitError as exc:
        return say(f"**Alerts**: could not be read: {esc(exc.message)}")
    if not found:
        return say(f"**Alerts**: none open for project `{esc(ctx.project)}`.")
    lines = [f"- **DOWN** `{esc(a.subject)}` (rule {esc(a.rule)}) since {a.since:%Y-%m-%d %H:%M} UTC: {esc(a.detail or '')}"
             + ("" if a.notified else " — *not sent: silenced or awaiting evaluation*") for a in found]
    return say(f"**Alerts**: {len(found)} open for project `{esc(ctx.project)}`\n\n" + "\n".join(lines))
