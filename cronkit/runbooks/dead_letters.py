"""The dead-letter runbook's steps: list the calls that failed every attempt, with their evidence, and
replay or drop one behind the gate (:mod:`cronkit.retries` does the work, on the change record)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import marimo as mo
import polars as pl

from cronkit import retries
from cronkit.errors import CronkitError
from cronkit.retries import DeadLetter
from cronkit.runbooks.context import RunbookContext
from cronkit.runbooks.runtime import Gate, NotApplied, esc, say

NONE_CHOSEN = "—"


class DeadLetterAction(StrEnum):
    """What the runbook can do with one dead letter."""

    REPLAY = "replay"
    DROP = "drop"


def action_value(wanted: str | None) -> str:
    """The dropdown's value for a parameter: replay unless it names another action (shared parameter
    files may name other runbooks' actions)."""
    return wanted if wanted in tuple(DeadLetterAction) else str(DeadLetterAction.REPLAY)


def _project(ctx: RunbookContext) -> str | None:
    return ctx.project if ctx.has_manifest else None


def open_letters(ctx: RunbookContext) -> list[DeadLetter]:
    with ctx.read() as conn:
        return retries.list_dead_letters(conn, project=_project(ctx))


def letters_frame(letters: list[DeadLetter]) -> pl.DataFrame:
    """One row per open dead letter: its key, attempts, last answer and each attempt's evidence."""
    return pl.DataFrame(
        [{"id": d.id, "job": d.jobname, "idempotency key": d.idempotency_key, "attempts": d.attempts,
          "last answer": d.answer, "filed": d.created_at.strftime("%Y-%m-%d %H:%M:%S"),
          "evidence": "; ".join(f"#{e['attempt']} request {e['request_id']}: {e.get('status_code') or e.get('outcome')}"
                                for e in d.evidence),
          "last response": (d.excerpt or "")[:200]} for d in letters],
        schema={"id": pl.Int64, "job": pl.String, "idempotency key": pl.String, "attempts": pl.Int64,
                "last answer": pl.String, "filed": pl.String, "evidence": pl.String, "last response": pl.String},
    )


def letter_choices(letters: list[DeadLetter]) -> dict[str, str]:
    """Dropdown options: label -> id of each open dead letter (a headless run names one with ``letter``)."""
    options = {NONE_CHOSEN: ""}
    options.update({f"#{d.id} {d.jobname} ({d.idempotency_key})": str(d.id) for d in letters})
    return options


def chosen(value: str | None, wanted: int | None) -> int | None:
    if value:
        return int(value)
    return wanted


def preview(letters: list[DeadLetter], action: str, letter_id: int | None) -> mo.Html:
    letter = next((d for d in letters if d.id == letter_id), None)
    if letter is None:
        return say("Choose an open dead letter above." if letter_id is None else f"No open dead letter #{letter_id}.")
    if action == DeadLetterAction.REPLAY:
        return say(f"```\n{retries.replay_preview(letter)}\n```")
    return say(f"Would mark dead letter #{letter.id} of job `{esc(letter.jobname)}` dropped; its evidence stays.")


@dataclass(frozen=True)
class DeadLetterOutcome:
    action: str
    letter: DeadLetter | None = None
    error: str | None = None

    def view(self) -> mo.Html:
        if self.error or self.letter is None:
            return say(f"❌ Nothing was changed:\n\n```\n{self.error}\n```")
        sent = f": request {self.letter.replay_request_id}" if self.letter.replay_request_id else ""
        return say(f"Done: dead letter #{self.letter.id} is {self.letter.state}{sent} (on the change record).")


def carry_out(ctx: RunbookContext, action: str, letter_id: int | None, ok: bool | Gate) -> DeadLetterOutcome | NotApplied:
    """Replay or drop the dead letter when confirmed (one transaction, with its change-record entry)."""
    if not ok:
        return NotApplied.of(ok, f"{action.capitalize()} dead letter")
    if letter_id is None:
        return DeadLetterOutcome(action, error="No dead letter was chosen.")
    try:
        with ctx.write() as conn:
            done = retries.replay(conn, letter_id) if action == DeadLetterAction.REPLAY else retries.drop(conn, letter_id)
            conn.commit()
    except CronkitError as exc:  # nothing was committed
        return DeadLetterOutcome(action, error=str(exc))
    return DeadLetterOutcome(action, done)
