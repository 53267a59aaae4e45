"""Checks of the scheduler and the extensions: pg_cron and pg_net installed, preloaded, running, in this database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from cronkit.doctor.catalogue import check
from cronkit.doctor.context import Context, session
from cronkit.facts import SCHEDULER_APPNAME
from cronkit.doctor.model import Finding, Severity, Skip

_HTTP_CALL = re.compile(r"\bnet\s*\.\s*http_(?:post|get|delete)\s*\(", re.IGNORECASE)


@check(
    "PG_CRON_MISSING", Severity.CRITICAL,
    "pg_cron is not installed in the database cronkit connects to (and runs nowhere else either).",
    "On Supabase: Dashboard → Integrations → Cron (or Database → Extensions → pg_cron). Elsewhere, as a "
    "superuser in the database named by cron.database_name: CREATE EXTENSION pg_cron;",
)
def _pg_cron_missing(ctx: Context) -> Iterator[Finding]:
    if ctx.facts.pg_cron:
        return
    elsewhere = _cron_databases(ctx) - {ctx.database}
    if elsewhere:
        return  # WRONG_CRON_DATABASE says where it is
    available = ctx.rows("doctor/available_pg_cron")
    preloaded, preload_evidence = ctx.cron_preloaded()
    evidence = {
        "database": ctx.database,
        "pg_extension": "no row for pg_cron",
        "available_extension": available[0] if available else None,
        "scheduler_sessions": [session(a) for a in ctx.scheduler_rows()],
        **preload_evidence,
    }
    if not available:
        message = (f"pg_cron is not installed in {ctx.database!r}, and the server has no pg_cron package "
                   "(pg_available_extensions has no row for it).")
        fix = ("Install the package for this PostgreSQL (Debian: apt-get install postgresql-15-cron), add pg_cron to "
               "shared_preload_libraries, restart, then CREATE EXTENSION pg_cron. On Supabase, enable it in the dashboard.")
        yield ctx.found("PG_CRON_MISSING", job=None, message=message, evidence=evidence, fix=fix)
        return
    message = f"pg_cron is not installed in database {ctx.database!r}: there are no cron.job / cron.job_run_details tables, so no job can exist."
    if preloaded and ctx.scheduler_rows():
        message += " Its scheduler is running and waits for the extension to be created here."
    yield ctx.found("PG_CRON_MISSING", job=None, message=message, evidence=evidence)


@check(
    "PG_CRON_NOT_PRELOADED", Severity.CRITICAL,
    "pg_cron's library is not in shared_preload_libraries, so no scheduler runs and no job fires.",
    "Add pg_cron to shared_preload_libraries (ALTER SYSTEM SET shared_preload_libraries = '..., pg_cron' as a "
    "superuser, keeping the existing entries) and restart PostgreSQL. On Supabase it is always preloaded: restart "
    "the project (Settings → General → Restart) or contact support.",
)
def _pg_cron_not_preloaded(ctx: Context) -> Iterator[Finding]:
    preloaded, evidence = ctx.cron_preloaded()
    if preloaded is not False:
        return
    installed = f"pg_cron {ctx.facts.pg_cron} is installed in {ctx.database!r} but" if ctx.facts.pg_cron else "pg_cron"
    message = (f"{installed} its library is not in shared_preload_libraries: the scheduler (launcher) is never "
               "started, so no job runs — and pg_cron's functions refuse to load.")
    yield ctx.found("PG_CRON_NOT_PRELOADED", job=None, message=message,
                    evidence={**evidence, "scheduler_sessions": [session(a) for a in ctx.scheduler_rows()]})


@check(
    "WRONG_CRON_DATABASE", Severity.CRITICAL,
    "pg_cron's scheduler serves another database than the one cronkit connects to (cron.database_name).",
    "Point DATABASE_URL at the database pg_cron runs in (on Supabase always `postgres`) and run jobs for other "
    "databases with cron.schedule_in_database(...); or, self-hosted, set cron.database_name to this database and restart.",
)
def _wrong_cron_database(ctx: Context) -> Iterator[Finding]:
    elsewhere = sorted(_cron_databases(ctx) - {ctx.database})
    if not elsewhere:
        return
    evidence = {
        "database": ctx.database,
        "cron.database_name": ctx.facts.cron_database or "not visible to this role",
        "scheduler_sessions": [session(a) for a in ctx.scheduler_rows()],
        "pg_cron_installed_here": ctx.facts.pg_cron,
    }
    if ctx.facts.pg_cron:
        message = (f"pg_cron {ctx.facts.pg_cron} is installed in {ctx.database!r}, but its scheduler runs in "
                   f"{', '.join(map(repr, elsewhere))}: jobs defined here never fire (a restore into a renamed "
                   "database does this, supabase#42413).")
    else:
        message = (f"pg_cron runs in database {', '.join(map(repr, elsewhere))}, not in {ctx.database!r} where "
                   "cronkit is connected: jobs cannot be created or seen from here.")
    yield ctx.found("WRONG_CRON_DATABASE", job=None, message=message, evidence=evidence)


def _cron_databases(ctx: Context) -> set[str]:
    return {a["datname"] for a in ctx.scheduler_rows() if a["datname"]} | ctx.facts.cron_databases


@check(
    "SCHEDULER_DOWN", Severity.CRITICAL,
    "No `pg_cron scheduler` session in pg_stat_activity: pg_cron is installed but nothing starts jobs.",
    "Restart the database (Supabase: Settings → General → Restart project, a fast reboot). pg_cron < 1.6.1 does not "
    "restart a terminated scheduler; if it keeps exiting, fix JOB_OWNER_MISSING / RUNID_SEQ_BEHIND first and read "
    "the server log for 'pg_cron scheduler'.",
)
def _scheduler_down(ctx: Context) -> Iterator[Finding]:
    ctx.require_cron()
    if ctx.scheduler_rows():
        return
    preloaded, _ = ctx.cron_preloaded()
    if preloaded is False:
        return  # PG_CRON_NOT_PRELOADED is the cause
    evidence: dict[str, Any] = {
        "pg_stat_activity": f"no session with application_name = '{SCHEDULER_APPNAME}'",
        "pg_cron": ctx.facts.pg_cron,
        "server_started_at": ctx.postmaster_start(),
        "in_recovery": ctx.in_recovery(),
    }
    if ctx.in_recovery():
        message = ("This server is a hot standby: pg_cron runs no jobs until it is promoted. Connect cronkit to the primary.")
        yield ctx.found("SCHEDULER_DOWN", job=None, message=message, evidence=evidence, severity=Severity.INFO,
                        fix="Connect cronkit to the primary server; on a standby no job runs by design.")
        return
    causes = []
    owners = ctx.missing_owner_jobs()
    if owners:
        causes.append(f"jobs owned by dropped roles ({', '.join(j['label'] for j in owners)}) make the scheduler exit at start (pg_cron#399)")
    behind = ctx.runid_seq()
    if behind and behind["behind"]:
        causes.append("cron.runid_seq is behind max(runid): every run insert fails with a duplicate key")
    evidence["likely_causes"] = causes
    message = "pg_cron is installed but its scheduler is not running: no job starts."
    if causes:
        message += " Likely cause: " + "; ".join(causes) + "."
    elif ctx.version is not None and ctx.version < (1, 6, 0):
        message += f" pg_cron {ctx.version} does not restart a scheduler that was terminated (fixed in 1.6.1)."
    elif ctx.version is not None and ctx.version < (1, 6, 1):
        # extversion says only "1.6": 1.6.0 keeps a terminated scheduler down, 1.6.1 and later restart it.
        message += (f" pg_cron {ctx.facts.pg_cron} restarts a terminated scheduler within seconds from 1.6.1 on "
                    "(1.6.0 does not): if it stays away, it exits at start: read the server log.")
    yield ctx.found("SCHEDULER_DOWN", job=None, message=message, evidence=evidence)


@check(
    "PG_NET_MISSING", Severity.CRITICAL,
    "Jobs call net.http_post/get/delete, but pg_net is not installed in this database.",
    "On Supabase: Dashboard → Database → Extensions → pg_net (schema extensions). Elsewhere, as a superuser: "
    "CREATE EXTENSION pg_net; (pg_net must also be in shared_preload_libraries).",
)
def _pg_net_missing(ctx: Context) -> Iterator[Finding]:
    if ctx.facts.pg_net:
        return
    needing = _http_jobs(ctx)
    if not needing:
        return
    message = f"pg_net is not installed in {ctx.database!r}, but {len(needing)} job(s) make HTTP calls through it: {', '.join(needing[:10])}."
    yield ctx.found("PG_NET_MISSING", job=needing[0] if len(needing) == 1 else None, message=message,
                    evidence={"database": ctx.database, "http_jobs": needing})


def _http_jobs(ctx: Context) -> list[str]:
    names: list[str] = []
    try:
        names += [s.name for s in ctx.specs() if s.kind == "http"]
    except Skip:
        pass
    if ctx.facts.pg_cron:
        for job in ctx.jobs_matching(_HTTP_CALL, active_only=False):
            label = job["jobname"] or f"jobid {job['jobid']}"
            if label not in names:
                names.append(label)
        for name, managed in ctx.managed().items():
            if managed.kind == "http" and name not in names:
                names.append(name)
    return names


@check(
    "PG_NET_WORKER_DOWN", Severity.CRITICAL,
    "pg_net is installed but its background worker is not running here: queued requests are never sent.",
    "SELECT net.worker_restart(); then check again. If the worker stays away: pg_net must be in "
    "shared_preload_libraries and pg_net.database_name must name this database; restart the database (Supabase: fast reboot).",
)
def _pg_net_worker_down(ctx: Context) -> Iterator[Finding]:
    if not ctx.facts.pg_net:
        return
    workers = ctx.pg_net_workers()
    here = [w for w in workers if w["datname"] in (None, ctx.database)]
    if here:
        return
    queue = ctx.optional("doctor/pg_net_queue")
    evidence: dict[str, Any] = {
        "pg_stat_activity": "no session with backend_type like '%pg_net%' or application_name like 'pg_net %' in this database",
        "pg_net": ctx.facts.pg_net,
        "workers_in_other_databases": [session(w) for w in workers],
        "queued_requests": queue[0]["queued"] if queue else "not readable",
    }
    if ctx.ledger_readable():
        waiting = ctx.optional("doctor/unanswered_requests", {"since": ctx.window_start})
        if waiting:
            evidence["unanswered_requests"] = waiting[0]
    if workers:
        message = (f"pg_net's worker serves database {workers[0]['datname']!r}, not {ctx.database!r}: requests queued "
                   "here are never sent (pg_net.database_name).")
    else:
        message = "pg_net is installed but its background worker is not running: every queued HTTP request waits forever."
    severity = Severity.CRITICAL if _http_jobs(ctx) else Severity.WARNING
    yield ctx.found("PG_NET_WORKER_DOWN", job=None, message=message, evidence=evidence, severity=severity)
