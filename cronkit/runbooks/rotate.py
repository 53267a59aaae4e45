"""The rotate-secret runbook's steps: who reads the secret, store the new value, run its jobs, verify.

Guide 003 "Key rotation" and guide 000's key re-sync. Storing is
:mod:`cronkit.runbooks.secret_store`; runs and outcomes :mod:`cronkit.runbooks.job_checks`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import marimo as mo
import polars as pl

from cronkit import monitor
from cronkit.outcomes import Outcome
from cronkit.runbooks.context import RunbookContext, scrubber, secret_statuses
from cronkit.runbooks.job_checks import (
    NO_REQUEST,
    failed_calls,
    guard_states,
    http_since,
    last_outcomes,
    next_run,
    outcome_text,
    pg_cron_version,
    run_once,
    window_start,
)
from cronkit.runbooks.runtime import Gate, NotApplied, esc, say
from cronkit.runbooks.secret_store import (
    SecretChange,
    secrets_frame,
    store_secret,
    users_of,
)

#: how far back to look for calls after a rotation when the backend keeps no ``updated_at`` (app.settings)
UNDATED_LOOKBACK = timedelta(minutes=15)
#: pg_cron starts a run within this long after its minute; a run due later than the wait minus this is not waited for
START_SLACK = timedelta(seconds=15)


@dataclass(frozen=True)
class Rotation:
    secret: str
    change: SecretChange
    runs: tuple[tuple[str, str], ...]  # (job, manual run result)

    def view(self) -> mo.Html:
        first = self.change.view()  # already rendered: stacked, never pasted into markdown as text
        if not self.change.stored and self.change.outcome != "unchanged":
            return first
        lines = []
        if self.change.outcome == "unchanged":
            lines.append("The stored value already was this one: no job was run again.")
        lines += [f"- manual run of **{esc(job)}**: {esc(result)}" for job, result in self.runs]
        return mo.vstack([first, say("\n".join(lines))]) if lines else first


def rotate(ctx: RunbookContext, name: str | None, value: str | None, ok: bool | Gate) -> Rotation | NotApplied:
    """Store the new value (one transaction), then run every HTTP job that reads it once now
    (guide 003: "verify behaviour by manually invoking the job")."""
    if not ok:
        return NotApplied.of(ok, "Rotate")
    change = store_secret(ctx, name, value, True)
    assert isinstance(change, SecretChange)
    if not change.stored:
        return Rotation(change.name, change, ())
    runs = tuple((spec.name, run_once(ctx, spec.name)) for spec in users_of(ctx, change.name) if spec.kind == "http")
    return Rotation(change.name, change, runs)


ROTATION_SCHEMA: dict[str, Any] = {
    "job": pl.String, "since": pl.Datetime("us", "UTC"), "manual_check": pl.String, "http": pl.String,
    "scheduled_runs": pl.Int64, "next_scheduled": pl.String, "next_run": pl.Datetime("us", "UTC"),
}


def manual_check(kind: str, last: str, work: str | None, counts: dict[str, Any] | None) -> str:
    """ok / failed / waiting / skipped of a job's calls since the rotation."""
    if kind != "http":
        return "sql job: verified by its scheduled run"
    if last == NO_REQUEST and work == "nothing to do":
        return "skipped: its guard finds nothing to do now, so it calls nothing yet"
    if last == NO_REQUEST:
        return "waiting: no request since the rotation"
    if last == Outcome.PENDING:
        return "waiting: request sent, no answer yet"
    if last == Outcome.OK:
        return "ok" if not failed_calls(counts) else "ok (an earlier call after the rotation failed)"
    if last == Outcome.CLIENT_ERROR:
        return "failed: the endpoint rejected the call (a 401 means it does not accept this key)"
    return f"failed: the last call ended {last}"


def rotation_check(ctx: RunbookContext, name: str | None, wait_seconds: float = 0.0, *, poll: float = 0.5) -> pl.DataFrame:
    """For each job reading ``name``: HTTP outcomes and scheduled runs since the secret was last
    stored. ``manual_check`` is ok / failed / waiting; ``next_scheduled`` says whether a scheduled
    run after the rotation succeeded. Waits up to ``wait_seconds`` (bounded) for pending answers
    and for the first scheduled run."""
    if not name:
        return pl.DataFrame(schema=ROTATION_SCHEMA)
    users = users_of(ctx, name)
    started = datetime.now(UTC)
    deadline = time.monotonic() + max(0.0, float(wait_seconds))
    version = pg_cron_version(ctx)
    upcoming = {s.name: next_run(s.schedule, version, started) for s in users}
    # Wait for a scheduled run only when one is due (plus pg_cron's start-up slack) within the wait.
    horizon = started + timedelta(seconds=max(0.0, float(wait_seconds))) - START_SLACK
    while True:
        now = datetime.now(UTC)
        status = secret_statuses(ctx, [name])[0]
        since = status.updated_at or now - UNDATED_LOOKBACK
        http = http_since(ctx, {s.name: since for s in users if s.kind == "http"})
        with ctx.read() as conn:
            frame = monitor.run_summary(conn, window_start(since, now), now + timedelta(seconds=1),
                                        jobs=[s.name for s in users], use_rollups=False)
        runs = {r["jobname"]: r for r in frame.to_dicts() if r["jobname"]}
        due = [s for s in users if not runs.get(s.name, {}).get("runs") and (upcoming[s.name] or horizon) < horizon]
        if not (any(v.get(Outcome.PENDING) for v in http.values()) or due) or time.monotonic() >= deadline:
            break
        time.sleep(poll)
    work = guard_states(ctx)
    clean = scrubber(ctx)
    latest = last_outcomes(ctx, {s.name: since for s in users if s.kind == "http"})
    rows = []
    for spec in users:
        counts = http.get(spec.name)
        run = runs.get(spec.name, {})
        manual = manual_check(spec.kind, latest.get(spec.name, NO_REQUEST), work.get(spec.name), counts)
        if run.get("runs"):
            good = run.get("last_status") == "succeeded" and (spec.kind != "http" or manual.startswith("ok"))
            scheduled = "succeeded" if good else f"failed: {clean.text(run.get('last_failure_message')) or run.get('last_status')}"
        else:
            scheduled = "waiting for the next scheduled run"
        rows.append({"job": spec.name, "since": since, "manual_check": manual,
                     "http": outcome_text(counts) if spec.kind == "http" else "(sql job)",
                     "scheduled_runs": run.get("runs", 0), "next_scheduled": scheduled,
                     "next_run": next_run(spec.schedule, version, now)})
    return pl.DataFrame(rows, schema=ROTATION_SCHEMA)


def secret_usage(ctx: RunbookContext, name: str | None) -> pl.DataFrame:
    """The secret's state, who reads it, and whether its source variable (if any) holds the same value."""
    return secrets_frame(ctx).filter(pl.col("secret") == (name or "")).select("secret", "state", "used_by", "source", "source_state")


def usage_view(ctx: RunbookContext, name: str | None) -> mo.Html:
    if not name:
        return mo.md("The jobs read no secret: nothing to rotate.")
    row = secrets_frame(ctx).filter(pl.col("secret") == name).to_dicts()[0]
    lines = [(f"Secret **{esc(name)}** ({ctx.manifest.secrets.backend}) is {row['state']}: `{row['stored']}`, "
              f"read by {esc(row['used_by'])} when they fire.")]
    if row["source"]:
        lines.append(f"Its source `{esc(row['source'])}`: {esc(row['source_state'])}. A key that differs from its source "
                     "is stale (guide 000: the local CLI makes a new key on every `supabase start`): re-sync it with "
                     f"`--secret-from-env {esc(row['source'].split(',')[0])}`.")
    return mo.md("\n\n".join(lines))


def rotation_view(check: pl.DataFrame, name: str | None) -> mo.Html:
    if not name:
        return mo.md("The jobs read no secret: nothing to rotate.")
    if check.is_empty():
        return mo.md(f"No job reads **{name}**.")
    failed = check.filter(pl.col("manual_check").str.starts_with("failed") | pl.col("next_scheduled").str.starts_with("failed"))
    waiting = check.filter(pl.col("manual_check").str.starts_with("waiting") | pl.col("next_scheduled").str.starts_with("waiting"))
    # a guarded job with nothing to do made no call: the value is not verified for it
    unverified = check.filter(pl.col("manual_check").str.starts_with("skipped")).get_column("job").to_list()
    since = check.get_column("since").min()
    stored = f"the value stored at {since:%Y-%m-%d %H:%M} UTC" if since is not None else "the stored value"
    if not failed.is_empty():
        verdict = (f"❌ A job fails with {stored}. Put the previous value back (rotate again with it) or fix the key, "
                   "and do **not** revoke the old key at the provider yet.")
    elif not waiting.is_empty():
        verdict = ("⏳ So far so good; waiting for "
                   + ", ".join(f"{r['job']} ({r['next_scheduled'] if r['manual_check'] == 'ok' else r['manual_check']})"
                               for r in waiting.iter_rows(named=True))
                   + ". Re-run this cell after the next scheduled run.")
    elif len(unverified) == check.height:
        verdict = (f"— Not verified: no job that reads **{esc(name)}** has called out with {stored} (their guards find "
                   "nothing to do). Keep the old key until one has.")
    else:
        verdict = (f"✅ Every job that called out since works with {stored}, manually and on schedule. If that was "
                   "your rotation, revoke the old key at the provider now (guide 003 step 5).")
        if unverified:
            verdict += f" Not verified yet: {esc(', '.join(unverified))} (nothing to do, so no call)."
    return mo.vstack([say(verdict), check])
