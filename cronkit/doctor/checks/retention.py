"""Checks of the run history's size: bloat, and whether anything deletes old runs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from cronkit.doctor.catalogue import check
from cronkit.doctor.context import Context, parsed_schedule
from cronkit.doctor.model import Finding, Severity
from cronkit.errors import CronkitError

# a purge of the run history: by hand (Supabase's delete-job-run-details) or cronkit's retention job
_RETENTION = re.compile(
    r'\b(?:delete\s+from|truncate(?:\s+table)?)\s+(?:only\s+)?"?cron"?\s*\.\s*"?job_run_details"?'
    r'|\bcronkit\s*\.\s*apply_retention\s*\(', re.IGNORECASE)


def _history_size(ctx: Context) -> dict[str, Any]:
    def compute() -> dict[str, Any]:
        row = ctx.row("doctor/history_size")
        rows, method = row["estimate"], "pg_class.reltuples"
        if rows is None or rows < 0:  # never analyzed: count, but never more than the threshold needs
            limit = ctx.limits.history_rows + 1
            rows = ctx.row("doctor/history_count", {"n": limit})["n"]
            method = f"count (capped at {limit}; table never analyzed)"
        return {"rows": rows, "method": method, "size": row["size"], "bytes": row["bytes"],
                "last_analyze": row["last_analyze"] or row["last_autoanalyze"]}
    return ctx.memo("history_size", compute)


@check(
    "RUN_HISTORY_BLOAT", Severity.WARNING,
    "cron.job_run_details has grown past the threshold (default 200k rows, where Supabase's dashboard stops showing last runs).",
    "Delete old rows in batches (DELETE FROM cron.job_run_details WHERE end_time < now() - interval '7 days' — "
    "batch by runid ranges on big tables), VACUUM it, and schedule retention (see NO_RETENTION).",
)
def _run_history_bloat(ctx: Context) -> Iterator[Finding]:
    ctx.require_cron()
    size = _history_size(ctx)
    if size["rows"] < ctx.limits.history_rows:
        return
    message = (f"cron.job_run_details holds about {size['rows']:,} rows ({size['size']}), above {ctx.limits.history_rows:,}: "
               "history queries get slow (no index but the runid key, pg_cron#408) and every run writes WAL.")
    yield ctx.found("RUN_HISTORY_BLOAT", job=None, message=message, evidence={**size, "threshold": ctx.limits.history_rows})


#: NO_RETENTION warns once the history holds 1/N of the RUN_HISTORY_BLOAT threshold (info before)
RETENTION_WARN_FRACTION = 10


@check(
    "NO_RETENTION", Severity.WARNING,
    "No active job deletes old rows from cron.job_run_details: pg_cron keeps every run forever (info until the "
    "history holds a tenth of the RUN_HISTORY_BLOAT threshold).",
    "Schedule a purge: SELECT cron.schedule('delete-job-run-details', '0 12 * * *', $$DELETE FROM cron.job_run_details "
    "WHERE end_time < now() - interval '7 days'$$); (Supabase's own job name and schedule), or enable cronkit's "
    "monitoring ([monitoring] in the manifest: its cronkit-retention job keeps 7 days by default).",
)
def _no_retention(ctx: Context) -> Iterator[Finding]:
    ctx.require_cron()
    retention = ctx.jobs_matching(_RETENTION)
    if retention:
        return
    inactive = [j["jobname"] or f"jobid {j['jobid']}" for j in ctx.jobs_matching(_RETENTION, active_only=False)]
    size = _history_size(ctx)
    per_day = 0
    for job in ctx.jobs():
        schedule = parsed_schedule(ctx, job["schedule"]) if job["active"] else None
        if schedule is None or schedule.kind == "reboot":
            continue
        if schedule.interval_seconds:
            per_day += 86400 // schedule.interval_seconds
        else:
            try:
                per_day += sum(1 for _ in schedule.expected_slots(ctx.now, ctx.now + timedelta(days=1), ctx.cron_tz))
            except CronkitError:
                continue
    evidence = {"retention_jobs": [], "inactive_retention_jobs": inactive, "history_rows": size["rows"],
                "history_size": size["size"], "scheduled_runs_per_day": per_day}
    message = "No active job deletes from cron.job_run_details: every run adds a row that stays forever"
    if per_day:
        days = max(0, ctx.limits.history_rows - size["rows"]) / per_day
        evidence["days_until_threshold"] = round(days, 1)
        message += f" ({per_day:,} runs a day: {ctx.limits.history_rows:,} rows in about {days:.0f} days)"
    if inactive:
        message += f"; the retention job(s) {', '.join(inactive)} are paused"
    # Advice, not a warning, while the history is small (a freshly set-up project): it warns once
    # the table holds a tenth of the size RUN_HISTORY_BLOAT reports.
    grown = size["rows"] >= ctx.limits.history_rows // RETENTION_WARN_FRACTION
    evidence["warns_from_rows"] = ctx.limits.history_rows // RETENTION_WARN_FRACTION
    yield ctx.found("NO_RETENTION", job=None, message=message + ".", evidence=evidence,
                    severity=None if grown else Severity.INFO)
