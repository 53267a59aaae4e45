"""Dead letters: calls of jobs with ``retry`` that failed every attempt, and what an operator does with them.

The retry policy itself (manifest ``retry``) runs in the database: each job's wrapper sends
``Idempotency-Key: <job>:<slot>`` and ledgers every attempt; ``cronkit-retries:<project>`` calls
``cronkit.retry_calls`` (``sql/schema_retries.sql``), which sends the next attempt or, when none is
left, files the chain in ``cronkit.dead_letters`` with its evidence. Here: read them, replay one (the
call is sent again through the job's wrapper as attempt 1 of a new chain with the same key, so the
endpoint can still tell it is the same work), or drop one — each change in one transaction with its
entry in the change record. Nothing here reads or shows a request header (they carry keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cronkit import audit
from cronkit.audit import AuditAction
from cronkit.db import Conn, translated
from cronkit.errors import CronkitError, DeadLetterNotFound
from cronkit.queries import query, text


class DeadLetterState(StrEnum):
    """Where a dead letter stands."""

    OPEN = "open"
    #: sent again (a new chain, same key); ``replay_request_id`` is its first call
    REPLAYED = "replayed"
    #: dismissed by an operator; the evidence stays
    DROPPED = "dropped"


@dataclass(frozen=True)
class DeadLetter:
    id: int
    project: str
    jobname: str
    idempotency_key: str
    first_request_id: int
    last_request_id: int
    attempts: int
    outcome: str
    status_code: int | None
    error_msg: str | None
    excerpt: str | None
    #: every attempt: attempt, request_id, sent_at, outcome, status_code, error_msg, answered_at
    evidence: list[dict[str, Any]]
    created_at: datetime
    state: DeadLetterState
    resolved_at: datetime | None
    replay_request_id: int | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> DeadLetter:
        return cls(**{**row, "state": DeadLetterState(row["state"]), "evidence": list(row["evidence"] or [])})

    @property
    def answer(self) -> str:
        """The last attempt's answer in a few words: ``503``, ``timeout``, ``transport_error: …``."""
        if self.status_code is not None:
            return str(self.status_code)
        return self.outcome + (f": {self.error_msg}" if self.error_msg else "")

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "state": str(self.state), "created_at": self.created_at.isoformat(),
                "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None}

    def line(self) -> str:
        resolved = f" -> request {self.replay_request_id}" if self.replay_request_id else ""
        return (f"#{self.id} {self.created_at:%Y-%m-%d %H:%M:%S} {self.state:<8} {self.jobname} key={self.idempotency_key} "
                f"{self.attempts} attempt(s), last answer {self.answer} (request {self.last_request_id}){resolved}")


def has_dead_letters(conn: Conn) -> bool:
    """Whether the database has the dead letter table (before ``cronkit apply``: no)."""
    row = conn.execute(query("dead_letters/present")).fetchone()
    return bool(row and row["present"])


def list_dead_letters(conn: Conn, *, project: str | None = None, state: DeadLetterState | None = DeadLetterState.OPEN,
                      limit: int = 100) -> list[DeadLetter]:
    """Newest first; ``state=None``: every state. Empty before the schema exists."""
    if not has_dead_letters(conn):
        return []
    with translated("read the dead letters"):
        rows = conn.execute(query("dead_letters/list"), {"project": project, "state": state, "limit": limit}).fetchall()
    return [DeadLetter.from_row(r) for r in rows]


def _open_letter(conn: Conn, letter_id: int) -> DeadLetter:
    """The dead letter, locked for this transaction; it must still be open."""
    row = conn.execute(query("dead_letters/one"), {"id": letter_id}).fetchone() if has_dead_letters(conn) else None
    if row is None:
        raise DeadLetterNotFound(f"No dead letter #{letter_id}.")
    letter = DeadLetter.from_row(row)
    if letter.state is not DeadLetterState.OPEN:
        raise CronkitError(f"Dead letter #{letter_id} is already {letter.state}.",
                           remedy="Only an open dead letter can be replayed or dropped; see `cronkit dead-letter list --all`.")
    return letter


def replay_preview(letter: DeadLetter) -> str:
    """What a replay would do, and the statement it runs, for the operator to read before confirming."""
    return (f"would send job {letter.jobname!r} again through its wrapper: attempt 1 of a new chain with "
            f"Idempotency-Key {letter.idempotency_key!r} (its retry policy covers the new chain), and mark dead "
            f"letter #{letter.id} replayed\n"
            f"  {text('dead_letters/send')}  -- job={letter.jobname!r}, key={letter.idempotency_key!r}")


def find_dead_letter(conn: Conn, letter_id: int) -> DeadLetter:
    """One dead letter in any state (read only)."""
    row = conn.execute(query("dead_letters/get"), {"id": letter_id}).fetchone() if has_dead_letters(conn) else None
    if row is None:
        raise DeadLetterNotFound(f"No dead letter #{letter_id}.")
    return DeadLetter.from_row(row)


def replay(conn: Conn, letter_id: int) -> DeadLetter:
    """Send the call again and mark the dead letter replayed, with its change-record entry; one transaction."""
    with translated(f"replay dead letter #{letter_id}"), conn.transaction():
        letter = _open_letter(conn, letter_id)
        row = conn.execute(query("dead_letters/send"), {"job": letter.jobname, "key": letter.idempotency_key}).fetchone()
        request_id = int(row["request_id"]) if row and row["request_id"] is not None else None
        conn.execute(query("dead_letters/resolve"), {"id": letter.id, "state": DeadLetterState.REPLAYED,
                                                     "request_id": request_id})
        audit.record(conn, AuditAction.DEAD_LETTER_REPLAY,
                     f"replayed dead letter #{letter.id} of job {letter.jobname!r} (key {letter.idempotency_key}): "
                     f"request {request_id}", project=letter.project, target=letter.jobname,
                     details={"dead_letter": letter.id, "idempotency_key": letter.idempotency_key,
                              "request_id": request_id, "attempts": letter.attempts, "last_answer": letter.answer})
    return find_dead_letter(conn, letter_id)


def drop(conn: Conn, letter_id: int) -> DeadLetter:
    """Mark the dead letter dropped (its evidence stays), with its change-record entry; one transaction."""
    with translated(f"drop dead letter #{letter_id}"), conn.transaction():
        letter = _open_letter(conn, letter_id)
        conn.execute(query("dead_letters/resolve"), {"id": letter.id, "state": DeadLetterState.DROPPED, "request_id": None})
        audit.record(conn, AuditAction.DEAD_LETTER_DROP,
                     f"dropped dead letter #{letter.id} of job {letter.jobname!r} (key {letter.idempotency_key})",
                     project=letter.project, target=letter.jobname,
                     details={"dead_letter": letter.id, "idempotency_key": letter.idempotency_key,
                              "attempts": letter.attempts, "last_answer": letter.answer})
    return find_dead_letter(conn, letter_id)
