"""The monitor runbook's data and views: run history, HTTP outcomes, missed runs and queue health, with charts.

Guide 000 "Monitor Execution", guide 002 step 11, guide 003 "View job history". Every number comes
from :mod:`cronkit.monitor`; outcome classes from :mod:`cronkit.outcomes`. Read-only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import marimo as mo
import polars as pl

from cronkit import monitor
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


def monitor_data(ctx: RunbookContext, hours: float = 24.0, job: str | None = None) -> MonitorData:
    """Run history, HTTP outcomes, missed runs and queue health of the scope over the last ``hours``.

    Parts that need cronkit's monitoring schema (outcomes, queue trend) come back empty with a
    note when it is absent, instead of failing the whole view. One READ ONLY transaction.
    """
    until = datetime.now(UTC) + timedelta(seconds=1)
    since = until - timedelta(hours=float(hours))
    scope = monitor_scope(ctx, job)
    names = list(scope) if scope is not None else None
    notes: list[str] = []
    with ctx.read(MONITOR_TIMEOUT_MS) as conn:
        lacking = privileges.missing(conn)
        # A section the role may not read is skipped with one line naming the GRANT (cronkit.privileges).
        notes += [gap.line() for gap in lacking.values()]
        has_schema = monitor.has_monitoring_schema(conn)
        history = Section.JOBS not in lacking and Section.RUNS not in lacking
        if not history:
            long_window = until - since > PER_RUN_WINDOW and has_schema
            summary = _empty(monitor.SUMMARY_SCHEMA)
            runs = _empty(monitor.TIMELINE_SCHEMA if long_window else monitor.RUNS_SCHEMA)
        else:
            summary = monitor.run_summary(conn, since, until, jobs=names)
            crowded = int(summary.get_column("runs").sum() or 0) > MAX_RUN_POINTS
            if (until - since > PER_RUN_WINDOW or crowded) and has_schema:
                runs = monitor.run_timeline(conn, since, until, jobs=names)
            else:
                runs = monitor.recent_runs(conn, since, until, jobs=names)
        if Section.HTTP in lacking:
            http, http_timeline = _empty(monitor.HTTP_SCHEMA), _empty(monitor.HTTP_TIMELINE_SCHEMA)
            trend = _empty(queues.TREND_SCHEMA)
        elif has_schema:
            http = monitor.http_outcomes(conn, since, until, jobs=names)
            http_timeline = monitor.http_timeline(conn, since, until, jobs=names)
            trend = queues.queue_trend(conn, since, until, project=ctx.project if ctx.has_manifest else None)
        else:
            notes.append("cronkit's monitoring tables are not in this database yet (run the setup runbook / "
                         "`cronkit apply`), or this role may not read them: HTTP outcomes and queue trends are empty.")
            http, http_timeline = _empty(monitor.HTTP_SCHEMA), _empty(monitor.HTTP_TIMELINE_SCHEMA)
            trend = _empty(queues.TREND_SCHEMA)
        if history:
            report = missed.detect_missed(conn, max(since, until - timedelta(days=31)), until, jobs=names)
        else:
            report = missed.MissedReport(*(_empty(schema) for schema in (
                missed.SLOTS_SCHEMA, missed.EVENTS_SCHEMA, missed.SUMMARY_SCHEMA, missed.DOWNTIME_SCHEMA)))
        try:
            with conn.transaction():  # a savepoint: an unreadable queue table must not end the read
                health = queues.queue_health(conn, list(ctx.manifest.queues))
        except CronkitError as exc:
            notes.append(f"queue health could not be read: {exc.message}")
            health = _empty(queues.HEALTH_SCHEMA)
    clean = scrubber(ctx)
    summary, runs, http = clean.frame(summary), clean.frame(runs), clean.frame(http)
    if trend.is_empty() and ctx.manifest.queues:
        notes.append("No queue snapshots in the window: add `[monitoring]` to the manifest so the "
                     "`cronkit-queues` job records depth and age every few minutes.")
    return MonitorData(since, until, scope, summary, runs, http, http_timeline,
                       clean.frame(report.summary), report.slots, health, trend, tuple(notes), report.zone)


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
    NEVER_RAN = "never ran"  # no run in the window, and none was due
    PAUSED = "paused"  # inactive in cron.job: deliberate, so below every problem
    OK = "ok"

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


def health_board(data: MonitorData, now: datetime | None = None) -> pl.DataFrame:
    """One row per job, most trouble first: state, schedule in words, last and next run, runs and
    failures in the window, HTTP answers (2xx / failed / pending) and the last error, p95."""
    now = now or data.until
    http = {r["jobname"]: r for r in data.http.iter_rows(named=True)}
    status = {r["jobid"]: r["status"] for r in data.missed.iter_rows(named=True)}
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
            "runs": run["runs"], "failed": run["failed"],
            "HTTP 2xx": int(calls.get(Outcome.OK) or 0) if calls else None,
            "HTTP failed": failed_calls(calls) if calls else None,
            "pending": int(calls.get(Outcome.PENDING) or 0) if calls else None,
            "last error": ((calls.get("last_error") or "").strip()[:120] or None) if calls and calls.get("last_error_at")
            else ((run["last_failure_message"] or "").strip()[:120] or None),
            "p95 ms": round(run["p95_ms"], 1) if run["p95_ms"] is not None else None,
        })
    frame = pl.DataFrame(rows, schema=BOARD_SCHEMA | {"_rank": pl.Int64()}) if rows else \
        pl.DataFrame(schema=BOARD_SCHEMA | {"_rank": pl.Int64()})
    return frame.sort("_rank", "job").drop("_rank")


BOARD_SCHEMA: dict[str, pl.DataType] = {
    "state": pl.String(), "job": pl.String(), "schedule": pl.String(), "last run": pl.String(),
    "next run": pl.String(), "runs": pl.Int64(), "failed": pl.Int64(), "HTTP 2xx": pl.Int64(),
    "HTTP failed": pl.Int64(), "pending": pl.Int64(), "last error": pl.String(), "p95 ms": pl.Float64(),
}


def run_table(data: MonitorData) -> pl.DataFrame:
    """Runs per job: counts, failures, p50/p95/max duration (ms), last failure and its message."""
    return data.summary.select(
        "jobname", "active", "schedule", "runs", "succeeded", "failed", "running",
        pl.col("p50_ms").round(1), pl.col("p95_ms").round(1), pl.col("max_ms").round(1),
        "last_start", "last_status", "last_failure_at", "last_failure_message",
    ).sort("jobname", nulls_last=True)


def http_table(data: MonitorData) -> pl.DataFrame:
    """HTTP outcomes of each job's calls, every outcome class a column (a zero says it did not
    happen; a hidden column would not), the jobs with failed calls first, and the last error."""
    outcomes = [str(o) for o in OUTCOMES]
    # An answer is an error only with an error time (monitor may fill last_error from a 2xx body).
    error = pl.when(pl.col("last_error_at").is_not_null()).then(pl.col("last_error")).otherwise(None)
    failed = pl.sum_horizontal([pl.col(str(o)) for o in FAILED]).alias("failed")
    return (data.http.select("jobname", "requests", *outcomes, "last_error_at", error.alias("last_error"))
            .with_columns(failed).sort(["failed", "jobname"], descending=[True, False]).drop("failed"))


def missed_table(data: MonitorData) -> pl.DataFrame:
    """Expected versus actual runs per job: on time, late, queued, missed, downtime; silent jobs."""
    return data.missed.select(
        "jobname", "schedule", "active", "status", "expected", "on_time", "late", "queued", "missed", "downtime",
        "pending", "overruns", pl.col("max_delay_s").round(1), "silent_since",
    ).sort("jobname", nulls_last=True)


def queue_table(data: MonitorData) -> pl.DataFrame:
    return data.queues.select(
        "queue", "kind", "pending", "processing", "failed", "done", pl.col("oldest_pending_age_s").round(1),
        "stuck_processing", "exhausted", "retries", pl.col("drain_per_min").round(2),
    ).sort("queue")


def health_view(data: MonitorData) -> mo.Html:
    """One line per problem the frames show, most urgent first (details: the incident runbook)."""
    lines = []
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


def duration_chart(data: MonitorData) -> Any:
    return charts.duration_chart(data.runs, title="Run duration")


def outcome_chart(data: MonitorData) -> Any:
    return charts.outcome_chart(data.http_timeline, title="HTTP outcomes per hour")


def missed_chart(data: MonitorData) -> Any:
    return charts.missed_chart(data.slots, title="Expected runs: on time, late, missed")


def queue_chart(data: MonitorData) -> Any:
    """Depth and oldest pending age over time; where there is no snapshot yet, why, instead of empty axes."""
    if not data.trend.is_empty():
        return charts.queue_chart(data.trend, title="Queues")
    if data.queues.is_empty():
        return say("No queue is declared: add `[[queues]]` to the manifest to chart a queue table's depth "
                   "and oldest pending item.")
    return say("No queue snapshot in this window yet, so there is no trend to draw (the table above is read now). "
               "Add `[monitoring]` to the manifest and apply it: its `cronkit-queues` job records depth and age "
               "every 5 minutes.")
