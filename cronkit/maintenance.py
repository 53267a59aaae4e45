"""cronkit's own maintenance jobs, declared by a manifest's ``[monitoring]`` table.

A ``[monitoring]`` table turns on these pg_cron jobs, which plan/apply create like any other job
(``kind = "sql"``; the wrapper runs the statement). The manifest loader cannot tell an empty
table from a missing one, so write at least one key; ``enabled = true`` takes every default.
Without ``[monitoring]``, a manifest that declares ``[[queues]]`` still gets the queue snapshot
job (the queue charts have nothing to draw without it); ``[monitoring]`` with
``queue_snapshots = false`` or ``enabled = false`` turns it off:

=======================  =====================  =====================================================
key                      default                job / meaning
=======================  =====================  =====================================================
``enabled``              ``true``               ``false`` turns all of them off
``harvest``              ``"* * * * *"``        ``cronkit-harvest:<project>``: copy pg_net responses of
                                                cronkit's requests to ``cronkit.http_responses``
                                                before ``pg_net.ttl`` (6 h) deletes them
``rollups``              ``"* * * * *"``        ``cronkit-rollups:<project>``: fold new runs and
                                                responses into the hourly rollups
``retention``            ``"7 days"``           ``cronkit-retention:<project>``: delete run history,
                                                ledger and responses older than this (>= 1 day)
``retention_schedule``   ``"0 3 * * *"``        when the retention job runs
``rollup_retention``     ``"400 days"``         rollups and queue snapshots are kept this long
``queue_snapshots``      ``"*/5 * * * *"``      ``cronkit-queues:<project>``: snapshot every
                         (when ``[[queues]]``)  ``[[queues]]`` table and pgmq queue
``stuck_after``          ``"15 minutes"``       a queue item in a processing status longer than this
                                                counts as stuck
``recent_window``        ``"15 minutes"``       done items updated within this give the drain rate
=======================  =====================  =====================================================

Each job key also takes ``false`` to leave that job out.

Apart from ``[monitoring]`` (and not turned off by ``enabled = false``, because it keeps jobs
running at the right time rather than watching them): a manifest with a job declared by ``at`` +
``timezone`` (a zone with DST) and no ``schedule`` gets ``cronkit-dst:<project>``, hourly, which reissues those jobs'
GMT schedules at each daylight saving time change (:mod:`cronkit.local_time`); a manifest with a job
that has ``retry`` gets ``cronkit-retries:<project>``, every minute (:mod:`cronkit.retries`). Several projects in one database may
each declare ``[monitoring]``: the functions are global and serialize on one advisory lock, so
extra jobs only repeat work; the shortest ``retention`` wins.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from psycopg import sql

from cronkit.errors import CronkitError, ManifestError
from cronkit.manifest import MAX_JOBNAME_BYTES, JobSpec, Manifest

DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "harvest": "* * * * *",
    "rollups": "* * * * *",
    "retention": "7 days",
    "retention_schedule": "0 3 * * *",
    "rollup_retention": "400 days",
    "queue_snapshots": None,  # "*/5 * * * *" when the manifest declares queues
    "stuck_after": "15 minutes",
    "recent_window": "15 minutes",
}
QUEUE_SNAPSHOTS_DEFAULT = "*/5 * * * *"
_SCHEDULE_KEYS = ("harvest", "rollups", "retention_schedule", "queue_snapshots")
_INTERVAL_KEYS = ("retention", "rollup_retention", "stuck_after", "recent_window")
_UNITS = {
    "second": 1, "seconds": 1, "minute": 60, "minutes": 60, "hour": 3600, "hours": 3600,
    "day": 86400, "days": 86400, "week": 604800, "weeks": 604800,
    "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800,
}
_INTERVAL = re.compile(r"\s*(\d+)\s*([a-z]+)\s*")


def parse_interval(text: str) -> timedelta:
    """``"7 days"``, ``"15 minutes"``, ``"1 week"``, ``"30s"``, ``"5m"`` -> timedelta; ValueError otherwise."""
    match = _INTERVAL.fullmatch(text.lower())
    if not match or match.group(2) not in _UNITS:
        raise ValueError(f"expected '<number> <unit>' with unit one of seconds/minutes/hours/days/weeks, got {text!r}")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def monitoring_settings(manifest: Manifest) -> dict[str, Any]:
    """The validated ``[monitoring]`` table with defaults filled in: schedules as strings (or None
    when turned off), intervals as timedelta (``retention`` None when turned off)."""
    raw: Mapping[str, Any] = manifest.monitoring
    where = f"{manifest.path}: monitoring"

    def fail(key: str, problem: str, remedy: str | None = None) -> ManifestError:
        return ManifestError(f"{where}.{key}: {problem}", remedy=remedy)

    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise fail(unknown[0], "unknown key", f"Known keys here: {', '.join(sorted(DEFAULTS))}.")
    settings: dict[str, Any] = {"enabled": raw.get("enabled", True)}
    if not isinstance(settings["enabled"], bool):
        raise fail("enabled", f"expected true or false, got {settings['enabled']!r}")
    for key in _SCHEDULE_KEYS:
        value = raw.get(key, DEFAULTS[key])
        if key == "queue_snapshots" and key not in raw:
            value = QUEUE_SNAPSHOTS_DEFAULT if manifest.queues else None
        if value is False and key != "retention_schedule":
            value = None
        if value is not None and not isinstance(value, str):
            raise fail(key, f"expected a schedule string or false, got {type(value).__name__} {value!r}",
                       'e.g. "* * * * *" (every minute) or false to leave the job out')
        if value is not None:
            from cronkit.schedules import parse_schedule

            try:
                schedule = parse_schedule(value)
            except CronkitError as exc:
                raise fail(key, exc.message, exc.remedy) from None
            if schedule.kind == "reboot" or schedule.never_runs:
                raise fail(key, f"{value!r} does not run regularly", 'Use a recurring schedule, e.g. "*/5 * * * *".')
        settings[key] = value
    for key in _INTERVAL_KEYS:
        value = raw.get(key, DEFAULTS[key])
        if key == "retention" and value is False:
            settings[key] = None
            continue
        if not isinstance(value, str):
            raise fail(key, f"expected an interval string such as \"7 days\", got {type(value).__name__} {value!r}")
        try:
            settings[key] = parse_interval(value)
        except ValueError as exc:
            raise fail(key, str(exc)) from None
    if settings["retention"] is not None and settings["retention"] < timedelta(days=1):
        raise fail("retention", f"{raw['retention']!r} is shorter than 1 day",
                   "Keep at least a day: the ledger must outlive pg_net.ttl (6 hours) to attribute outcomes.")
    if settings["retention"] is not None and settings["rollup_retention"] < settings["retention"]:
        raise fail("rollup_retention", "is shorter than retention", "Rollups are the long-term history; keep them longer.")
    for key in ("stuck_after", "recent_window"):
        if settings[key] <= timedelta(0):
            raise fail(key, "must be positive")
    return settings


class MaintenanceKind(StrEnum):
    """What a maintenance job does; its name is ``cronkit-<kind>:<project>``."""

    HARVEST = "harvest"
    ROLLUPS = "rollups"
    RETENTION = "retention"
    QUEUES = "queues"
    #: evaluates ``[alerts]`` (cronkit/alerts.py); declared by ``[alerts]``, not ``[monitoring]``
    ALERTS = "alerts"
    #: reissues local-time jobs' UTC schedules at DST transitions (cronkit/local_time.py)
    DST = "dst"
    #: sends failed calls of jobs with ``retry`` again, files exhausted ones as dead letters (cronkit/retries.py)
    RETRIES = "retries"


_MAINTENANCE_NAME = re.compile(r"cronkit-(" + "|".join(MaintenanceKind) + r"):.+")


def maintenance_kind(jobname: str) -> MaintenanceKind | None:
    """The kind of maintenance job ``jobname`` names, or None for a job of the project's own."""
    match = _MAINTENANCE_NAME.fullmatch(jobname)
    return MaintenanceKind(match.group(1)) if match else None


def _job_name(kind: MaintenanceKind, project: str, manifest: Manifest) -> str:
    name = f"cronkit-{kind}:{project}"
    if len(name.encode()) > MAX_JOBNAME_BYTES:
        raise ManifestError(
            f"{manifest.path}: monitoring: job name {name!r} is longer than {MAX_JOBNAME_BYTES} bytes",
            remedy="Use a shorter `project` name (pg_cron < 1.5 truncates job names).",
        )
    return name


def _interval_literal(delta: timedelta) -> sql.Composable:
    return sql.SQL("{}::interval").format(sql.Literal(f"{int(delta.total_seconds())} seconds"))


def maintenance_jobs(manifest: Manifest) -> list[JobSpec]:
    """The SQL jobs that keep monitoring data: every one ``[monitoring]`` asks for; without it,
    only the queue snapshots of declared ``[[queues]]``. Plus the DST job of local-time jobs and the
    ``[alerts]`` evaluation job."""
    return _monitoring_jobs(manifest) + _dst_jobs(manifest) + _alerts_jobs(manifest) + _retries_jobs(manifest)


#: how often ``cronkit-retries:<project>`` evaluates: every minute runs on every pg_cron, so a backoff
#: is a minimum wait and a retry goes out within a minute after it has elapsed
RETRIES_SCHEDULE = "* * * * *"


def _retries_jobs(manifest: Manifest) -> list[JobSpec]:
    """``cronkit-retries:<project>`` when a job has ``retry``: its command carries every job's policy."""
    from cronkit.manifest import retry_policy

    config = {raw["name"]: retry_policy(raw["retry"]).as_config() for raw in manifest.raw_jobs if "retry" in raw}
    if not config:
        return []
    statement = sql.SQL("SELECT cronkit.retry_calls({}, {}::jsonb)").format(
        sql.Literal(manifest.project), sql.Literal(json.dumps(config, sort_keys=True)))
    return [JobSpec(
        name=_job_name(MaintenanceKind.RETRIES, manifest.project, manifest), schedule=RETRIES_SCHEDULE, kind="sql",
        sql=statement.as_string(None),
        description="cronkit: send failed calls of jobs with `retry` again; file exhausted ones as dead letters",
    )]


def _alerts_jobs(manifest: Manifest) -> list[JobSpec]:
    from cronkit.alerts import alerts_job

    job = alerts_job(manifest, _job_name(MaintenanceKind.ALERTS, manifest.project, manifest))
    return [job] if job else []


def _monitoring_jobs(manifest: Manifest) -> list[JobSpec]:
    settings = monitoring_settings(manifest)
    if not settings["enabled"]:
        return []
    project = manifest.project
    jobs: list[JobSpec] = []
    if not manifest.monitoring:
        settings = {**settings, "harvest": None, "rollups": None, "retention": None}
    if settings["harvest"]:
        jobs.append(JobSpec(
            name=_job_name(MaintenanceKind.HARVEST, project, manifest), schedule=settings["harvest"], kind="sql",
            sql="SELECT cronkit.harvest_responses()",
            description="cronkit: copy pg_net responses of cronkit's requests before pg_net.ttl",
        ))
    if settings["rollups"]:
        jobs.append(JobSpec(
            name=_job_name(MaintenanceKind.ROLLUPS, project, manifest), schedule=settings["rollups"], kind="sql",
            sql="SELECT cronkit.refresh_rollups()",
            description="cronkit: keep the hourly run and outcome rollups current",
        ))
    if settings["retention"] is not None:
        statement = sql.SQL("SELECT cronkit.apply_retention({}, {})").format(
            _interval_literal(settings["retention"]), _interval_literal(settings["rollup_retention"]))
        jobs.append(JobSpec(
            name=_job_name(MaintenanceKind.RETENTION, project, manifest), schedule=settings["retention_schedule"], kind="sql",
            sql=statement.as_string(None),
            description="cronkit: delete run history and responses older than the retention horizon",
        ))
    if settings["queue_snapshots"]:
        from cronkit.monitor.queues import snapshot_statement

        jobs.append(JobSpec(
            name=_job_name(MaintenanceKind.QUEUES, project, manifest), schedule=settings["queue_snapshots"], kind="sql",
            sql=snapshot_statement(manifest.queues, project, stuck_after=settings["stuck_after"],
                                   recent_window=settings["recent_window"]).as_string(None),
            description="cronkit: snapshot queue health for trend charts",
        ))
    return jobs


# -- local times across daylight saving time -------------------------------------------------------


def _dst_jobs(manifest: Manifest) -> list[JobSpec]:
    """``cronkit-dst:<project>`` when a job is declared by ``at`` + a ``timezone`` with DST, without ``schedule``
    (in any environment)."""
    from cronkit.schedules import DST_REISSUE_SCHEDULE, local_options

    year = datetime.now(UTC).year
    overrides = [env.get("jobs", {}) for env in manifest.environments.values()]
    variants = [job for raw in manifest.raw_jobs
                for job in (raw, *({**raw, **o[raw["name"]]} for o in overrides if raw["name"] in o))]
    if not any("at" in job and "schedule" not in job
               and len(local_options(job["at"], job.get("timezone", "UTC"), job.get("days", "*"), year)) > 1
               for job in variants):
        return []

    return [JobSpec(
        name=_job_name(MaintenanceKind.DST, manifest.project, manifest), schedule=DST_REISSUE_SCHEDULE, kind="sql",
        sql=sql.SQL("SELECT cronkit.reissue_local_schedules({})").format(sql.Literal(manifest.project)).as_string(None),
        description="cronkit: reissue local-time jobs' GMT schedules at each daylight saving time change",
    )]
