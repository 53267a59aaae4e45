"""Operations on single jobs and on everything a project created: status, pause, resume,
run-now, remove and teardown (import of hand-made jobs: :mod:`cronkit.importer`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cronkit import audit, registry
from cronkit.audit import AuditAction
from cronkit.db import Conn, Rollback, notices, translated
from cronkit.errors import CronkitError, JobNotFound
from cronkit.manifest import Manifest
from cronkit.registry import CronJob, active_statements, removal_statements
from cronkit.secrets import backend_for, delete_secret


def list_jobs(conn: Conn, *, ownership: bool = True) -> list[CronJob]:
    """All jobs the role can see, with the cronkit project that owns each (if any; ``ownership=False``: unknown)."""
    return registry.all_jobs(conn, ownership=ownership)


def find_job(conn: Conn, name: str) -> CronJob:
    for job in list_jobs(conn):
        if job.jobname == name:
            return job
    raise JobNotFound(f"No job named {name!r} in cron.job (as seen by role {conn.info.user!r}).")


def _ours_or_told(job: CronJob, action: str, foreign: bool) -> None:
    """cronkit changes only its own jobs (by identity), unless the caller says ``--foreign``."""
    if job.managed_by is None and not foreign:
        raise CronkitError(
            f"Job {job.jobname!r} (jobid {job.jobid}, owner {job.username}) was not created by cronkit; "
            f"cronkit does not {action} it.",
            remedy=f"If you really mean it, re-run with --foreign (`cronkit {action} {job.jobname} --foreign`).",
        )


def set_active(conn: Conn, name: str, active: bool, *, foreign: bool = False) -> CronJob:
    """Pause or resume one job with ``cron.alter_job`` (history and jobid are kept)."""
    job = find_job(conn, name)
    _ours_or_told(job, "resume" if active else "pause", foreign)
    with translated(f"{'resume' if active else 'pause'} job {name!r}"), conn.transaction():
        for statement in active_statements(job.jobid, job.jobname, active, managed=job.managed_by is not None):
            statement.execute(conn)
        if job.active != active:
            audit.record(conn, AuditAction.RESUME if active else AuditAction.PAUSE,
                         f"{'resumed' if active else 'paused'} job {name!r}", project=job.managed_by, target=name,
                         details={"jobid": job.jobid, "foreign": job.managed_by is None})
    return find_job(conn, name)


@dataclass(frozen=True)
class RunNow:
    """What one run-now did: the request its wrapper queued, or why it called nothing."""

    job: str
    request_id: int | None
    #: the wrapper's own word when it called nothing (its guard found no work)
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"job": self.job, "request_id": self.request_id, "called": self.request_id is not None,
                "skipped": self.skipped}

    def line(self) -> str:
        if self.request_id is not None:
            return f"job={self.job}, request_id={self.request_id}"
        if self.skipped:
            return f"job={self.job}: {self.skipped}; nothing was called"
        return f"job={self.job}: ran its SQL (no request of its own to report)"


def run_job_now(conn: Conn, name: str, *, foreign: bool = False, slot: datetime | None = None) -> RunNow:
    """Run a job's command once, now, in this session, and commit — on the record.

    pg_cron has no run-now; this executes the same command the scheduler would, so a wrapper
    records its request in the ledger like a scheduled run, and a guard with no work says so
    (its NOTICE) instead of passing for a success. The run is kept in ``cronkit.manual_runs``
    with its change-record entry (``slot``: the scheduled start a backfill stands in for); a run
    that fails is recorded after its rollback, then raised.
    """
    job = find_job(conn, name)
    _ours_or_told(job, "run-now", foreign)
    started = datetime.now(UTC)
    for_slot = f" for the run due {slot:%Y-%m-%d %H:%M:%S} UTC" if slot else ""
    try:
        with translated(f"run job {name!r}"), notices(conn) as said:
            cursor = conn.execute(job.command)  # type: ignore[arg-type]
            row = cursor.fetchone() if cursor.description else None
            value = next(iter(row.values())) if row else None
            request_id = int(value) if isinstance(value, int) else None
            skipped = next((m.split(" skipped: ", 1)[1] for m in said if m.startswith("cronkit: job ") and " skipped: " in m),
                           None)
            ran = RunNow(name, request_id, skipped)
            status = "called" if request_id is not None else "skipped" if skipped else "succeeded"
            said_why = f" (request {request_id})" if request_id is not None else f" ({skipped})" if skipped else ""
            _record_run(conn, job, started, slot, status, request_id, skipped,
                        f"ran job {name!r} by hand{for_slot}: {status}{said_why}")
            conn.commit()
    except CronkitError as exc:
        conn.rollback()
        with conn.transaction():
            _record_run(conn, job, started, slot, "failed", None, exc.message,
                        f"ran job {name!r} by hand{for_slot}: it failed")
        conn.commit()
        raise
    return ran


def _record_run(conn: Conn, job: CronJob, started: datetime, slot: datetime | None, status: str,
                request_id: int | None, message: str | None, summary: str) -> None:
    entry = audit.record(conn, AuditAction.RUN_NOW, summary, project=job.managed_by, target=job.jobname,
                         details={"status": status, "request_id": request_id, "slot": slot})
    audit.record_manual_run(conn, job.jobname, started_at=started, status=status, slot=slot, request_id=request_id,
                            message=message, audit_id=entry)


def remove_job(conn: Conn, name: str, *, foreign: bool = False) -> None:
    """Unschedule one cronkit job and drop its wrapper, in one transaction (``foreign``: only unschedule
    a job cronkit did not create, touching nothing else)."""
    job = find_job(conn, name)
    _ours_or_told(job, "remove", foreign)
    with conn.transaction(), translated(f"remove job {name!r}"):
        if job.managed_by is None:
            removal_statements(name, job.jobid, None)[0].execute(conn)
        else:
            wrapper = registry.managed_by_name(conn)[name].wrapper
            for statement in removal_statements(name, job.jobid, wrapper):
                statement.execute(conn)
        audit.record(conn, AuditAction.REMOVE, f"removed job {name!r}" + ("" if job.managed_by else " (unscheduled only)"),
                     project=job.managed_by, target=name, details={"jobid": job.jobid})


def teardown(conn: Conn, manifest: Manifest, *, secrets: bool = False, dry_run: bool = True) -> list[str]:
    """Everything the manifest's project created: its jobs and wrappers, optionally its secrets.

    Returns what was (or, with ``dry_run``, would be) removed. One transaction.
    """
    done: list[str] = []
    with conn.transaction(), translated(f"tear down project {manifest.project!r}"):
        for job in registry.managed_jobs(conn, manifest.project):
            done.append(f"remove job {job.jobname!r} and its wrapper {job.wrapper}")
            if not dry_run:
                for statement in removal_statements(job.jobname, job.jobid, job.wrapper):
                    statement.execute(conn)
        if secrets:
            backend = backend_for(manifest.secrets)
            names = sorted({n for spec in manifest.resolve(None, {**_dummy_env(manifest)}) for n in spec.secret_names})
            readers = _other_readers(conn, manifest.project, names)
            for name in names:
                if readers.get(name):
                    done.append(f"keep secret {name!r} ({backend.kind}): still read by {', '.join(readers[name])}")
                    continue
                done.append(f"delete secret {name!r} ({backend.kind})")
                if not dry_run:
                    delete_secret(conn, backend, name, project=manifest.project)
        if dry_run:
            # Leave the block (and only the block) rolled back: a caller's own transaction is not ours to end.
            raise Rollback()
        if done:
            audit.record(conn, AuditAction.TEARDOWN, f"tore down project {manifest.project!r}: {len(done)} step(s)",
                         project=manifest.project, details={"steps": done})
    return done


def _other_readers(conn: Conn, project: str, names: list[str]) -> dict[str, list[str]]:
    """Who else reads each of ``names``: another project's managed jobs (their registered secret
    names) and jobs cronkit did not create whose command names the secret."""
    registered = registry.secret_readers(conn)
    foreign = [job for job in registry.all_jobs(conn) if job.managed_by is None]
    readers: dict[str, list[str]] = {}
    for name in names:
        pattern = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")
        readers[name] = [f"job {job!r} (project {owner!r})" for job, owner in registered.get(name, []) if owner != project]
        readers[name] += [f"job {job.jobname!r} (not cronkit's)" for job in foreign if pattern.search(job.command)]
    return readers


def _dummy_env(manifest: Manifest) -> dict[str, str]:
    """Teardown needs secret names only; fill {env:...} so resolving cannot fail on unset variables."""
    names: set[str] = set()
    for env in manifest.environments.values():
        names.update(re.findall(r"\{env:([A-Za-z_][A-Za-z0-9_]*)\}", str(env)))
    for job in manifest.raw_jobs:
        names.update(re.findall(r"\{env:([A-Za-z_][A-Za-z0-9_]*)\}", str(job)))
    return {name: "http://unused" for name in names}
