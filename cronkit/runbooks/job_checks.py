"""Did the jobs work since they were (re)applied or their secret rotated: runs, HTTP outcomes, guards, manual runs.

Shared by the setup and rotate-secret runbooks. Outcome classes come from :mod:`cronkit.outcomes`
(only 2xx is a success; a 3xx pg_net could not follow is a failure).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import marimo as mo
import polars as pl
from psycopg import sql

from cronkit import db, jobs, monitor, schedules
from cronkit.errors import CronkitError
from cronkit.facts import server_facts
from cronkit.outcomes import FAILED, OUTCOMES, Outcome
from cronkit.queries import query
from cronkit.registry import ManagedJob
from cronkit.runbooks.context import RunbookContext, registered_jobs, scrubber, specs
from cronkit.runbooks.runtime import Gate, NotApplied, esc, say

#: the longest look-back a verification uses (monitor windows are capped at 400 days)
MAX_LOOKBACK = timedelta(days=399)
#: what :func:`last_outcomes` says for a job that made no request in the window
NO_REQUEST = "none"


def window_start(moment: datetime | None, now: datetime) -> datetime:
    """``moment``, but never further back than :data:`MAX_LOOKBACK`."""
    floor = now - MAX_LOOKBACK
    return max(moment, floor) if moment else floor


def http_since(ctx: RunbookContext, since: Mapping[str, datetime | None]) -> dict[str, dict[str, Any]]:
    """Per job, the HTTP outcome counts of its requests since the given moment (cronkit.monitor)."""
    out: dict[str, dict[str, Any]] = {}
    if not since:
        return out
    now = datetime.now(UTC)
    with ctx.read() as conn:
        if not monitor.has_monitoring_schema(conn):
            return out
        for name, moment in sorted(since.items()):
            frame = monitor.http_outcomes(conn, window_start(moment, now), now + timedelta(seconds=1), jobs=[name])
            rows = frame.filter(pl.col("jobname") == name).to_dicts()
            if rows:
                out[name] = rows[0]
    return out


def outcome_text(counts: Mapping[str, Any] | None) -> str:
    """``2xx ×1`` style text of one job's outcome counts; ``no request yet`` when there are none."""
    if not counts or not counts.get("requests"):
        return "no request yet"
    return ", ".join(f"{o} ×{counts[o]}" for o in OUTCOMES if counts.get(o))


def failed_calls(counts: Mapping[str, Any] | None) -> int:
    """How many of the counted calls failed (every class of :data:`cronkit.outcomes.FAILED`)."""
    return sum((counts or {}).get(o, 0) or 0 for o in FAILED)


def last_outcomes(ctx: RunbookContext, since: Mapping[str, datetime | None]) -> dict[str, str]:
    """Per job, the outcome class of its newest request since the given moment: an :class:`Outcome`
    value (``pending``: no answer yet), or :data:`NO_REQUEST`."""
    out = {name: NO_REQUEST for name in since}
    if not since:
        return out
    now = datetime.now(UTC)
    names = sorted(since)
    with ctx.read() as conn:
        ready = conn.execute(query("runbooks/monitoring_ready")).fetchone()
        if not ready or not ready["monitoring"]:
            return out
        statement = query("runbooks/last_outcome" if ready["net"] else "runbooks/last_outcome_without_pg_net")
        rows = conn.execute(statement, {"names": names, "since": [window_start(since[n], now) for n in names]}).fetchall()
    out.update({r["jobname"]: r["outcome"] or NO_REQUEST for r in rows})
    return out


def guard_states(ctx: RunbookContext) -> dict[str, str]:
    """Per guarded job: ``work waiting`` when its guard is true now, ``nothing to do`` when false."""
    out: dict[str, str] = {}
    with ctx.read() as conn:
        for spec in specs(ctx):
            if not spec.guard:
                continue
            try:
                with conn.transaction():  # a savepoint: one failing guard must not end the read
                    row = conn.execute(query("runbooks/guard_open").format(guard=sql.SQL(spec.guard))).fetchone()
                out[spec.name] = "work waiting" if row and row["open"] else "nothing to do"
            except db.DatabaseError as exc:
                out[spec.name] = f"guard fails: {exc.diag.message_primary or exc}"
    return out


def next_run(expr: str, version: schedules.PgCronVersion | None, after: datetime) -> datetime | None:
    """The next time pg_cron starts a cron-syntax schedule (GMT), or None ('N seconds', @reboot, invalid)."""
    try:
        schedule = schedules.parse_schedule(expr, version)
    except CronkitError:
        return None
    if schedule.kind != "cron":
        return None
    upcoming = schedule.next_runs(after, 1)
    return upcoming[0] if upcoming else None


def pg_cron_version(ctx: RunbookContext) -> schedules.PgCronVersion | None:
    """The installed pg_cron's version, parsed (None when it is not installed)."""
    with ctx.read() as conn:
        version = server_facts(conn).pg_cron
    return schedules.parse_pg_cron_version(version) if version else None


def run_once(ctx: RunbookContext, job: str) -> str:
    """Run one job now (``cronkit run-now``) and say what happened; an error's text is scrubbed."""
    try:
        with ctx.write() as conn:
            ran = jobs.run_job_now(conn, job)
    except CronkitError as exc:
        return f"failed: {scrubber(ctx).text(exc.message)}"
    if ran.request_id is not None:
        return f"queued HTTP request {ran.request_id}"
    if ran.skipped:
        return f"ran; {ran.skipped} (no HTTP call)"
    return "ran its SQL (no HTTP request of its own)"


# -- the manual test run (guide 002 step 12) -----------------------------------------------------


@dataclass(frozen=True)
class ManualRun:
    rows: tuple[tuple[str, str], ...]  # (job, result)

    def view(self) -> mo.Html:
        if not self.rows:
            return say("No HTTP job to test.")
        return say("Manual test run (guide 002 step 12, `cronkit run-now`):\n\n"
                   + "\n".join(f"- **{esc(job)}**: {esc(result)}" for job, result in self.rows))


def _untested(ctx: RunbookContext) -> tuple[list[ManagedJob], dict[str, str]]:
    """HTTP jobs of the project, and for each: why it needs no test run (absent: it needs one)."""
    managed = [m for m in registered_jobs(ctx) if m.kind == "http" and m.jobid is not None]
    latest = last_outcomes(ctx, {m.jobname: m.updated_at for m in managed})
    work = guard_states(ctx)
    skip = {}
    for m in managed:
        if latest.get(m.jobname) == Outcome.OK:
            skip[m.jobname] = "already verified: its last call since it was applied was answered 2xx (not run again)"
        elif work.get(m.jobname) == "nothing to do":
            skip[m.jobname] = "not run: its guard finds nothing to do now, so it would call nothing"
    return managed, skip


def manual_run_needed(ctx: RunbookContext) -> bool:
    """True when an HTTP job of the project has no 2xx answer to its last call since it was
    (re)applied and its guard (if any) has work for it."""
    managed, skip = _untested(ctx)
    return any(m.jobname not in skip for m in managed)


def manual_run_idle(ctx: RunbookContext) -> str:
    """Why there is nothing to run, as it is: nothing applied yet, or every HTTP job verified or idle."""
    managed, skip = _untested(ctx)
    if not managed:
        return "Nothing to run yet: no HTTP job of this project is in the database (apply the plan first)."
    idle = [m.jobname for m in managed if skip.get(m.jobname, "").startswith("not run")]
    if idle:
        return (f"Nothing to run: {', '.join(idle)} find(s) nothing to do (guard), so a run would call nothing; "
                "the others already got a 2xx since they were applied.")
    return "Nothing to run: every HTTP job already got a 2xx answer since it was applied."


def manual_run(ctx: RunbookContext, ok: bool | Gate) -> ManualRun | NotApplied:
    """Run each HTTP job of the project once now, unless it already had a 2xx answer since it was
    (re)applied: re-running the runbook does not call the functions again."""
    if not ok:
        return NotApplied.of(ok, "Run each job once now")
    managed, skip = _untested(ctx)
    return ManualRun(tuple((m.jobname, skip.get(m.jobname) or run_once(ctx, m.jobname)) for m in managed))


# -- verification (guide 002 step 9, guide 000 "Verify Setup") ----------------------------------

VERIFY_SCHEMA: dict[str, Any] = {
    "job": pl.String, "kind": pl.String, "schedule": pl.String, "active": pl.Boolean, "wrapper": pl.Boolean,
    "scheduled_runs": pl.Int64, "last_run": pl.String, "http": pl.String, "http_2xx": pl.Int64,
    "http_failed": pl.Int64, "http_pending": pl.Int64, "last_http": pl.String, "work": pl.String,
    "next_run": pl.Datetime("us", "UTC"),
}


def verify(ctx: RunbookContext, wait_seconds: float = 0.0, *, poll: float = 0.5) -> pl.DataFrame:
    """Per job of the project: scheduled and active, wrapper present, scheduled runs and HTTP
    outcomes since it was applied, next run time. Waits up to ``wait_seconds`` for HTTP requests
    that have no answer yet (bounded; pg_net answers asynchronously after commit)."""
    deadline = time.monotonic() + max(0.0, float(wait_seconds))
    while True:
        managed = registered_jobs(ctx)
        http = http_since(ctx, {m.jobname: m.updated_at for m in managed if m.kind == "http"})
        pending = any(v.get(Outcome.PENDING) for v in http.values())
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(poll)
    runs: dict[str, dict[str, Any]] = {}
    now = datetime.now(UTC)
    names = [m.jobname for m in managed if m.jobid is not None]
    if names:
        since = min(window_start(m.updated_at, now) for m in managed)
        with ctx.read() as conn:
            frame = monitor.run_summary(conn, since, now + timedelta(seconds=1), jobs=names, use_rollups=False)
        runs = {r["jobname"]: r for r in frame.to_dicts() if r["jobname"]}
    version = pg_cron_version(ctx)
    work = guard_states(ctx)
    latest = last_outcomes(ctx, {m.jobname: m.updated_at for m in managed if m.kind == "http"})
    rows = []
    for m in managed:
        run = runs.get(m.jobname, {})
        counts = http.get(m.jobname) or {}
        last = (f"{run.get('last_status')} at {run['last_start']:%Y-%m-%d %H:%M:%S}" if run.get("last_start")
                else "none yet")
        rows.append({
            "job": m.jobname, "kind": m.kind, "schedule": m.schedule, "active": m.active,
            "wrapper": m.wrapper_exists, "scheduled_runs": run.get("runs", 0), "last_run": last,
            "http": outcome_text(http.get(m.jobname)) if m.kind == "http" else "(sql job)",
            "http_2xx": counts.get(Outcome.OK, 0), "http_failed": failed_calls(counts),
            "http_pending": counts.get(Outcome.PENDING, 0), "last_http": latest.get(m.jobname, ""),
            "work": work.get(m.jobname, ""), "next_run": next_run(m.schedule, version, now) if m.schedule else None,
        })
    return pl.DataFrame(rows, schema=VERIFY_SCHEMA)


def verify_view(verification: pl.DataFrame) -> mo.Html:
    if verification.is_empty():
        return mo.md("No job of this project is in the database yet: apply the plan first.")
    return mo.vstack([
        mo.md("Each job as pg_cron has it, with what happened since it was (re)applied "
              "(guide 002 step 9, guide 000 *Verify Setup* and *Monitor Execution*):"),
        verification.drop("http_2xx", "http_failed", "http_pending"),
    ])
