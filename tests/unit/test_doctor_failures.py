"""CONSECUTIVE_FAILURES at the doctor's default thresholds, on run rows built here (no database).

The monitor shows a job as failing from its first failed run; the doctor reports it once the
failures repeat: two in a row are a finding, one is not yet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cronkit.doctor import CATALOGUE, DEFAULTS, Finding
from cronkit.doctor.context import Context
from cronkit.facts import ServerFacts

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
MISSING = 'ERROR:  relation "public.import_queue" does not exist\nLINE 1: select count(*) from public.import_queue'


def _facts() -> ServerFacts:
    return ServerFacts(postgresql="17", database="postgres", role="postgres", superuser=True, bypassrls=True,
                       pg_cron="1.6", pg_net=None, vault=None, pgmq=None, cron_database=None, cron_timezone=None,
                       preload="pg_cron", scheduler_databases=["postgres"])


def _runs(statuses: list[str]) -> list[dict[str, Any]]:
    """Finished runs of job 1, newest first, one a minute."""
    rows = []
    for age, status in enumerate(statuses):
        start = NOW - timedelta(minutes=age + 1)
        rows.append({"runid": 100 - age, "jobid": 1, "status": status, "start_time": start,
                     "end_time": start + timedelta(seconds=1),
                     "return_message": MISSING if status == "failed" else "1 row"})
    return rows


def _diagnose(statuses: list[str]) -> list[Finding]:
    ctx = Context(conn=None, facts=_facts(), manifest=None, environment=None, environ=None,  # type: ignore[arg-type]
                  now=NOW, window=timedelta(hours=6), limits=DEFAULTS)
    ctx.preload(jobs=[{"jobid": 1, "jobname": "import-sync", "active": True}], runs=_runs(statuses))
    return list(CATALOGUE["CONSECUTIVE_FAILURES"].run(ctx))


def test_two_failed_runs_in_a_row_are_a_finding_at_the_default_threshold() -> None:
    [finding] = _diagnose(["failed", "failed", "succeeded"])
    assert (finding.code, finding.job, finding.severity) == ("CONSECUTIVE_FAILURES", "import-sync", "critical")
    assert finding.evidence["failed_in_a_row"] == 2
    assert 'relation "public.import_queue" does not exist' in finding.message
    assert "an object the command uses does not exist" in finding.message


@pytest.mark.parametrize("statuses", [["failed", "succeeded", "failed"], ["succeeded", "failed", "failed"]],
                         ids=["one failure after a success", "failures the job recovered from"])
def test_a_single_latest_failure_or_a_recovered_job_is_no_finding(statuses: list[str]) -> None:
    assert _diagnose(statuses) == []
