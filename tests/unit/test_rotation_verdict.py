"""rotate_secret's verdict claims no more than the calls it saw: a guarded job that called nothing
did not verify the key, and the verdict names the value by when it was stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl

from cronkit.runbooks.rotate import ROTATION_SCHEMA, rotation_view

SINCE = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _row(job: str, manual: str, scheduled: str = "succeeded") -> dict[str, Any]:
    return {"job": job, "since": SINCE, "manual_check": manual, "http": "", "scheduled_runs": 1,
            "next_scheduled": scheduled, "next_run": None}


def _verdict(*rows: dict[str, Any]) -> str:
    view = rotation_view(pl.DataFrame(list(rows), schema=ROTATION_SCHEMA), "key")
    return view.text


def test_jobs_that_called_nothing_leave_the_key_unverified() -> None:
    text = _verdict(_row("guarded", "skipped: its guard finds nothing to do now, so it calls nothing yet"))
    assert "Not verified" in text and "Keep the old key" in text and "✅" not in text


def test_a_verified_rotation_names_the_value_by_when_it_was_stored_and_the_jobs_not_yet_verified() -> None:
    text = _verdict(_row("health", "ok"), _row("guarded", "skipped: its guard finds nothing to do now"))
    assert "✅" in text and "the value stored at 2026-03-02 09:30 UTC" in text
    assert "Not verified yet: guarded" in text


def test_a_failing_job_says_not_to_revoke_the_old_key() -> None:
    text = _verdict(_row("health", "failed: the endpoint rejected the call"))
    assert "❌ A job fails with the value stored at 2026-03-02 09:30 UTC" in text
    assert "do <strong>not</strong> revoke the old key" in text
