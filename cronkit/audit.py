"""The change record: every change cronkit makes, who made it and when, in ``cronkit.audit_log``.

An entry is written in the same transaction as the change it records, so a change that rolls back
leaves no entry and a committed change always has one. Who: the database role (``current_user``
and ``session_user``), the OS user and host of the process, the client address and application
name. What: an action from :class:`AuditAction`, the project and target (job or secret name), a
one-line summary and a few details — names and counts only, never a secret value (the summary is
also passed through :func:`cronkit.redact.scrub` as a second line of defence).

Runs started by hand are kept in ``cronkit.manual_runs`` (pg_cron's history never sees them): the
run, its outcome, the scheduled start a backfill stands in for, and its entry here.

Before ``cronkit apply`` has created the schema there is nowhere to write: :func:`record` then
returns None and the command says the change is not on the record.
"""

from __future__ import annotations

import getpass
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from psycopg import sql

from cronkit.db import Conn
from cronkit.queries import query
from cronkit.redact import scrub
from cronkit.statement import Statement


class AuditAction(StrEnum):
    """What a change was."""

    APPLY = "apply"
    PAUSE = "pause"
    RESUME = "resume"
    RUN_NOW = "run-now"
    REMOVE = "remove"
    TEARDOWN = "teardown"
    SECRET_SET = "secret-set"
    SECRET_DELETE = "secret-delete"
    MIGRATION = "migration"  # an exported migration ran (psql, supabase db push)
    ALERT_SILENCE = "alert-silence"
    ALERT_TEST = "alert-test"
    DST_REISSUE = "dst-reissue"  # written by cronkit.reissue_local_schedules (sql/schema_local_time.sql)
    DEAD_LETTER_REPLAY = "dead-letter-replay"  # a failed call sent again (cronkit/retries.py)
    DEAD_LETTER_DROP = "dead-letter-drop"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    action: str
    project: str | None
    target: str | None
    summary: str
    db_role: str
    session_role: str
    os_user: str | None
    host: str | None
    client_addr: str | None
    application: str | None
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "at": self.at.isoformat()}

    def line(self) -> str:
        who = f"{self.db_role}" + (f" ({self.os_user}@{self.host})" if self.os_user else "")
        scope = " ".join(part for part in (self.project and f"[{self.project}]", self.target) if part)
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action:<13} {scope}: {self.summary} — {who}"


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (containers)
        return None


def has_log(conn: Conn, *, writable: bool = True) -> bool:
    """Whether this database has the change record (and, ``writable``, this role may add to it)."""
    row = conn.execute(query("audit/has_log")).fetchone()
    return bool(row and row["writable" if writable else "present"])


def record_statement(action: AuditAction, summary: str, *, project: str | None = None, target: str | None = None,
                     details: Mapping[str, Any] | None = None, os_user: str | None = None,
                     host: str | None = None) -> Statement:
    """The INSERT of one entry, values as literals (names and counts; the summary scrubbed)."""
    values = {"action": str(action), "project": project, "target": target, "summary": scrub(summary),
              "os_user": os_user, "host": host, "details": json.dumps(dict(details or {}), default=str)}
    return Statement(query("audit/record").format(**{k: sql.Literal(v) for k, v in values.items()}))


def record(conn: Conn, action: AuditAction, summary: str, *, project: str | None = None, target: str | None = None,
           details: Mapping[str, Any] | None = None) -> int | None:
    """Write one entry in the caller's transaction; its id, or None when the database has no
    change record yet (before the first ``cronkit apply``)."""
    if not has_log(conn):
        return None
    entry = record_statement(action, summary, project=project, target=target, details=details,
                             os_user=_os_user(), host=socket.gethostname())
    row = conn.execute(sql.SQL("{} RETURNING id").format(entry.query)).fetchone()
    return int(row["id"]) if row else None


def record_manual_run(conn: Conn, job: str, *, started_at: datetime, status: str, slot: datetime | None,
                      request_id: int | None, message: str | None, audit_id: int | None) -> None:
    """Keep a run started by hand (in the caller's transaction) next to its change-record entry."""
    if audit_id is None:
        return
    conn.execute(query("audit/manual_run"), {
        "job": job, "slot": slot, "started_at": started_at, "status": status, "request_id": request_id,
        "message": scrub(message) if message else None, "audit_id": audit_id,
    })


def read_log(conn: Conn, *, project: str | None = None, target: str | None = None, since: datetime | None = None,
             limit: int = 50) -> list[AuditEntry]:
    """The newest entries first (none when the database has no change record)."""
    if not has_log(conn, writable=False):
        return []
    rows = conn.execute(query("audit/log"), {"project": project, "target": target, "since": since,
                                             "limit": limit}).fetchall()
    return [AuditEntry(**r) for r in rows]
