"""cronkit's own objects: which pg_cron jobs it manages, and the statements that pause or remove them.

``cronkit.managed_jobs`` is the ownership marker: a job is cronkit's only when it is listed
there. Every module that asks "is this job ours?", "which jobs does this project have?" or "who
reads this secret?" asks here; every removal or pause, whether applied or previewed in a runbook,
is built by :func:`removal_statements` / :func:`active_statements`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import sql

from cronkit.db import Conn
from cronkit.queries import query
from cronkit.redact import scrub
from cronkit.statement import Statement


@dataclass(frozen=True)
class ManagedJob:
    """One row of ``cronkit.managed_jobs`` with its live ``cron.job`` row (``jobid`` None: gone)."""

    jobname: str
    project: str
    wrapper: str
    spec: dict[str, Any]
    spec_hash: str
    created_at: datetime
    updated_at: datetime
    wrapper_exists: bool
    #: the cron.job row cronkit scheduled, as recorded at apply (None: registered before jobids were kept)
    recorded_jobid: int | None
    #: the live row that is cronkit's job (None: gone, or replaced by a job cronkit did not create)
    jobid: int | None
    schedule: str | None
    command: str | None
    active: bool | None

    @property
    def kind(self) -> str | None:
        return self.spec.get("kind")

    @property
    def secret_names(self) -> tuple[str, ...]:
        return tuple(self.spec.get("secrets") or ())


@dataclass(frozen=True)
class CronJob:
    """One job of ``cron.job`` as the connected role sees it; ``managed_by`` None means foreign."""

    jobid: int
    jobname: str
    schedule: str
    command: str
    active: bool
    username: str
    managed_by: str | None
    #: False when the role cannot read cronkit's registry: then managed_by None means "unknown", not foreign
    ownership_known: bool = True

    def as_dict(self) -> dict[str, Any]:
        """For output: a key written literally into a (foreign) command is masked, never shown."""
        return {**self.__dict__, "command": scrub(self.command)}


def has_registry(conn: Conn) -> bool:
    """True when ``cronkit.managed_jobs`` exists (cronkit has applied something here)."""
    return bool(conn.execute(query("registry/exists")).fetchone()["ok"])  # type: ignore[index]


def managed_jobs(conn: Conn, project: str | None = None) -> list[ManagedJob]:
    """cronkit's jobs, of one project or of all; empty when cronkit never applied here."""
    if not has_registry(conn):
        return []
    rows = conn.execute(query("registry/managed_jobs"), {"project": project}).fetchall()
    return [ManagedJob(**row) for row in rows]  # type: ignore[arg-type]


def managed_by_name(conn: Conn, project: str | None = None) -> dict[str, ManagedJob]:
    return {job.jobname: job for job in managed_jobs(conn, project)}


def live_jobs(conn: Conn) -> dict[str, dict[str, Any]]:
    """Every named ``cron.job`` row the role sees, by name."""
    return {row["jobname"]: row for row in conn.execute(query("registry/live_jobs")).fetchall()}  # type: ignore[index]


def all_jobs(conn: Conn, *, ownership: bool = True) -> list[CronJob]:
    """Every job in ``cron.job`` with the project that manages it (``None``: foreign).

    Ownership is by identity (:func:`managed_jobs`): a job re-created by hand under a managed name is
    foreign. ``ownership=False`` (a role that cannot read the registry): every owner is unknown.
    """
    owners = {job.jobid: job.project for job in managed_jobs(conn) if job.jobid is not None} if ownership else {}
    rows = conn.execute(query("registry/all_jobs")).fetchall()
    return [CronJob(**row, managed_by=owners.get(row["jobid"]), ownership_known=ownership)  # type: ignore[arg-type, index]
            for row in rows]


def secret_readers(conn: Conn) -> dict[str, list[tuple[str, str]]]:
    """``{secret name: [(jobname, project), ...]}`` over every managed job of every project."""
    if not has_registry(conn):
        return {}
    out: dict[str, list[tuple[str, str]]] = {}
    for row in conn.execute(query("registry/secret_readers")).fetchall():
        out.setdefault(row["name"], []).append((row["jobname"], row["project"]))  # type: ignore[index]
    return out


# -- the statements that change cronkit's jobs (applied by plan/jobs, previewed by runbooks) ------


def removal_statements(jobname: str, jobid: int | None, wrapper: str | None) -> tuple[Statement, ...]:
    """Remove one cronkit job: unschedule it (when it is still in cron.job), drop its wrapper
    (``wrapper`` is the regprocedure text cronkit itself stored), forget it in the registry.
    Without a wrapper (a foreign job removed with --foreign) only the unschedule."""
    statements = [Statement(sql.SQL("SELECT cron.unschedule(%s::bigint)"), (jobid,))] if jobid is not None else []
    if wrapper is None:
        return tuple(statements)
    statements.append(Statement(sql.SQL("DROP FUNCTION IF EXISTS {}").format(sql.SQL(wrapper))))  # type: ignore[arg-type]
    statements.append(Statement(sql.SQL("DELETE FROM cronkit.managed_jobs WHERE jobname = %s"), (jobname,)))
    return tuple(statements)


def prune_statements(project: str, keep: list[str]) -> tuple[Statement, ...]:
    """:func:`removal_statements` for every job of ``project`` not named in ``keep``, decided by the
    server when they run — for an exported migration, written before the database it meets is known.
    The same rule: only cronkit's own ``cron.job`` row (its recorded jobid; by name for a row from
    before jobids were kept) is unscheduled, then its wrapper dropped and its registry row forgotten.
    Runs after schema cronkit is created or upgraded (the ``jobid`` column exists)."""
    mine = sql.SQL("m.project = {} AND m.jobname <> ALL({}::text[])").format(sql.Literal(project), sql.Literal(keep))
    return (
        Statement(sql.SQL(
            "SELECT cron.unschedule(j.jobid) FROM cronkit.managed_jobs m JOIN cron.job j "
            "ON CASE WHEN m.jobid IS NULL THEN j.jobname = m.jobname ELSE j.jobid = m.jobid END WHERE {}"
        ).format(mine)),
        Statement(sql.SQL(
            "DO $cronkit$ DECLARE r record; BEGIN\n"
            "  FOR r IN SELECT to_regprocedure(m.wrapper) AS fn FROM cronkit.managed_jobs m\n"
            "            WHERE {} AND to_regprocedure(m.wrapper) IS NOT NULL LOOP\n"
            "    EXECUTE format('DROP FUNCTION IF EXISTS %s', r.fn);\n"
            "  END LOOP;\nEND $cronkit$"
        ).format(mine)),
        Statement(sql.SQL("DELETE FROM cronkit.managed_jobs m WHERE {}").format(mine)),
    )


def active_statements(jobid: int, jobname: str, active: bool, *, managed: bool) -> tuple[Statement, ...]:
    """Pause or resume a job; history and jobid are kept. Resuming one of cronkit's jobs also records
    it as (re)scheduled now: missed-run detection expects slots from when cronkit last scheduled a
    job, so the minutes of a deliberate pause are not missed runs."""
    alter = Statement(sql.SQL("SELECT cron.alter_job(%s::bigint, active := %s)"), (jobid, active))
    if not (active and managed):
        return (alter,)
    return (alter, Statement(sql.SQL("UPDATE cronkit.managed_jobs SET updated_at = now() WHERE jobname = %s"), (jobname,)))


def register_statement(jobname: str, project: str, wrapper: str, spec_json: str, digest: str) -> Statement:
    """Record (or update) cronkit's ownership of one job: the cron.job row just scheduled, by jobid and owner."""
    return Statement(
        sql.SQL(
            "INSERT INTO cronkit.managed_jobs (jobname, project, wrapper, spec, spec_hash, jobid, username) "
            "VALUES (%s, %s, %s, %s::jsonb, %s, "
            "(SELECT jobid FROM cron.job WHERE jobname = %s AND username = current_user), current_user) "
            "ON CONFLICT (jobname) DO UPDATE SET project = excluded.project, wrapper = excluded.wrapper, "
            "spec = excluded.spec, spec_hash = excluded.spec_hash, jobid = excluded.jobid, "
            "username = excluded.username, updated_at = now()"
        ),
        (jobname, project, wrapper, spec_json, digest, jobname),
    )
