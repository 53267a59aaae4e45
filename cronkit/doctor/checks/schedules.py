"""Checks of schedules: forms this pg_cron cannot run, local times that drift with daylight saving time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

from cronkit import schedules
from cronkit.doctor.catalogue import check
from cronkit.doctor.context import Context
from cronkit.doctor.model import Finding, Severity, Skip
from cronkit.errors import CronkitError

_SECONDS = re.compile(r"^\s*\d+\s+seconds?\s*$", re.IGNORECASE)


@check(
    "SECONDS_UNSUPPORTED", Severity.CRITICAL,
    "A schedule uses 'N seconds', which needs pg_cron 1.5 or later; this server's pg_cron refuses (or, for a restored row, skips) it.",
    "Upgrade pg_cron to ≥ 1.5 (on Supabase: upgrade the project's Postgres), or give this environment its own cron "
    "schedule in the manifest, e.g. [environments.<env>.jobs.<name>] schedule = \"* * * * *\".",
)
def _seconds_unsupported(ctx: Context) -> Iterator[Finding]:
    version = ctx.version
    if version is None:
        raise Skip("pg_cron is not installed here, so its version is unknown")
    if version.supports_seconds:
        return
    seen: set[str] = set()
    for spec in ctx.specs():
        if _SECONDS.match(spec.schedule):
            seen.add(spec.name)
            message = (f"Manifest job {spec.name!r} is scheduled {spec.schedule!r} for environment {ctx.environment!r}, "
                       f"but pg_cron here is {version} (extversion {ctx.facts.pg_cron}): cron.schedule refuses it with "
                       f"'invalid schedule: {spec.schedule}', so the job cannot be applied.")
            yield ctx.found("SECONDS_UNSUPPORTED", job=spec.name, message=message,
                            evidence={"schedule": spec.schedule, "source": "manifest", "environment": ctx.environment,
                                      "pg_cron": str(version), "extversion": ctx.facts.pg_cron, "needs": "1.5.0"})
    for job in ctx.jobs():
        label = job["jobname"] or f"jobid {job['jobid']}"
        if label in seen or not _SECONDS.match(job["schedule"]):
            continue
        message = (f"Job {label!r} is scheduled {job['schedule']!r}, which pg_cron {version} cannot read (a row restored "
                   "from a newer server): the scheduler skips it.")
        yield ctx.found("SECONDS_UNSUPPORTED", job=label, message=message,
                        evidence={"jobid": job["jobid"], "schedule": job["schedule"], "source": "cron.job",
                                  "pg_cron": str(version), "needs": "1.5.0"})


@check(
    "DST_DRIFT", Severity.WARNING,
    "A job meant for a local time (manifest `at` + `timezone`) runs on a GMT schedule, so daylight saving time shifts it by an hour for part of the year.",
    "Choose the GMT expression for the season that matters (the evidence lists both), switch between them at each DST "
    "change, or — pg_cron ≥ 1.5, self-hosted — set cron.timezone to the zone and write the schedule in local time.",
)
def _dst_drift(ctx: Context) -> Iterator[Finding]:
    if ctx.manifest is None:
        raise Skip("needs a manifest: only the manifest says which local time a job is meant for")
    tz = ctx.cron_tz
    if tz not in ("GMT", "UTC", "Etc/UTC", "Etc/GMT", "UCT", "Zulu"):
        raise Skip(f"cron.timezone is {tz!r}: schedules are not evaluated in GMT here")
    live = {j["jobname"]: j for j in ctx.jobs()} if ctx.facts.pg_cron else {}
    for spec in ctx.specs():
        if spec.intended_local is None or spec.schedule_from_local:
            continue  # no local time, or one that cronkit-dst:<project> reissues at each DST change
        at, zone = spec.intended_local
        schedule = live[spec.name]["schedule"] if spec.name in live else spec.schedule
        hour, minute = (int(p) for p in at.split(":"))
        try:
            report = schedules.dst_report(schedule, datetime.min.time().replace(hour=hour, minute=minute), zone,
                                          ctx.now.year, ctx.version)
        except CronkitError:
            continue  # runs several times a day (e.g. a sandbox override): not a time of day
        if not report.warning:
            continue
        evidence = {
            "schedule": schedule, "intended": f"{at} {zone}", "year": report.year,
            "wrong_periods": [{"from": p.first, "to": p.last, "local_time": p.local_time.strftime("%H:%M"),
                               "abbreviation": p.abbreviation} for p in report.mismatches],
            "options": [{"schedule": o.expr, "abbreviation": o.abbreviation} for o in report.options],
        }
        yield ctx.found("DST_DRIFT", job=spec.name, message=f"Job {spec.name!r}: {report.warning}", evidence=evidence)
