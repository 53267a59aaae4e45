"""The test database's pg_cron, as Supabase's: seconds schedules fire, `$` is accepted, cron.timezone exists.

Every test gates on the server's own version, so the same file passes on the sandbox's PostgreSQL 17
engine (pg_cron 1.6), on any Supabase-like database (``CRONKIT_TEST_DSN``) and, for the ``compat``
tests, on bookworm's PostgreSQL 15 with pg_cron 1.4.2.
"""

from __future__ import annotations

import json
import time
from typing import Any

import psycopg
import pytest

from tests.conftest import TEST_POSTGRES, TEST_STATE_DIR
from tests.jobs_support import Project, project  # noqa: F401 - fixture

Conn = psycopg.Connection[dict[str, Any]]


def needs(pg_cron_version: Any, feature: str) -> None:
    if not getattr(pg_cron_version, feature):
        pytest.skip(f"pg_cron {pg_cron_version} lacks it ({feature}); the compat tests below cover that")


def test_the_sandbox_names_its_engine_and_versions(sandbox_only: Any, project: Project) -> None:
    result = project.cli("sandbox", "--state-dir", str(TEST_STATE_DIR), "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["engine"]["postgres"] == TEST_POSTGRES
    assert status["versions"]["postgresql"].startswith(f"{TEST_POSTGRES}.")
    assert status["versions"]["pg_cron"].startswith("1.6" if TEST_POSTGRES == 17 else "1.")
    text = project.cli("sandbox", "--state-dir", str(TEST_STATE_DIR), "status").stdout
    assert f"engine      {status['engine']['kind']}: PostgreSQL {TEST_POSTGRES}" in text
    assert f"pg_cron     {status['versions']['pg_cron']}" in text


def test_a_sandbox_keeps_its_engine(sandbox_only: Any, project: Project) -> None:
    other = 15 if TEST_POSTGRES == 17 else 17
    result = project.cli("sandbox", "--state-dir", str(TEST_STATE_DIR), "up", "--postgres", str(other))
    assert result.returncode == 1 and result.stdout == ""
    assert f"runs PostgreSQL {TEST_POSTGRES}, not {other}" in result.stderr
    assert "cronkit sandbox down --reset" in result.stderr and "Traceback" not in result.stderr


def test_a_2_seconds_job_scheduled_by_the_app_role_runs_at_least_3_times_within_10_s(
    db: Conn, job_prefix: str, pg_cron_version: Any
) -> None:
    needs(pg_cron_version, "supports_seconds")
    assert db.execute("select rolsuper from pg_roles where rolname = current_user").fetchone()["rolsuper"] is False
    jobid = db.execute("select cron.schedule(%s, '2 seconds', 'select 1') as id", (job_prefix + "two",)).fetchone()["id"]
    scheduled = time.monotonic()

    def runs() -> int:
        row = db.execute("select count(*) as n from cron.job_run_details where jobid = %s and status = 'succeeded'",
                         (jobid,)).fetchone()
        return int(row["n"])

    while runs() < 3 and time.monotonic() - scheduled < 10:
        time.sleep(0.25)
    assert runs() >= 3, f"{runs()} runs within 10 s of scheduling a '2 seconds' job"


def test_the_last_day_of_the_month_is_accepted(db: Conn, job_prefix: str, pg_cron_version: Any) -> None:
    needs(pg_cron_version, "supports_last_day")
    db.execute("select cron.schedule(%s, '0 12 $ * *', 'select 1')", (job_prefix + "last",))
    row = db.execute("select schedule from cron.job where jobname = %s", (job_prefix + "last",)).fetchone()
    assert row["schedule"] == "0 12 $ * *"


def test_cron_timezone_is_readable_by_a_superuser(su: Conn, pg_cron_version: Any) -> None:
    needs(pg_cron_version, "supports_seconds")  # cron.timezone came with 1.5
    assert su.execute("show cron.timezone").fetchone()["cron.timezone"] in ("GMT", "UTC")


@pytest.mark.compat
def test_pg_cron_1_4_refuses_seconds_and_last_day_and_has_no_cron_timezone(su: Conn, job_prefix: str) -> None:
    for schedule in ("30 seconds", "0 12 $ * *"):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="invalid schedule"):
            su.execute("select cron.schedule(%s, %s, 'select 1')", (job_prefix + "x", schedule))
    with pytest.raises(psycopg.errors.UndefinedObject, match="cron.timezone"):
        su.execute("show cron.timezone")
