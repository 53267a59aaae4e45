"""``overlap = "skip"``: an endpoint slower than its schedule gets one call at a time.

The sandbox's Edge Function answers after 3 seconds; the job fires every second. With "skip",
the runs in between call nothing and are recorded in ``cronkit.skipped_runs``, and the function
never serves two of the job's calls at once (its own record of when each call arrived and how
long it took). With "allow" (pg_cron's behaviour) the same job piles calls up: the check has teeth.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from cronkit import db as cdb
from cronkit.doctor import diagnose
from cronkit.jobs import run_job_now
from cronkit.monitor import run_summary
from tests.helpers import wait_for
from tests.jobs_support import Project, like, project  # noqa: F401  (fixtures)

LATENCY_MS = 3000


def _slow_job(project: Project, overlap: str) -> tuple[str, str]:
    function = project.function("slow", verify_jwt=False, latency_ms=LATENCY_MS)
    name = project.job("slow")
    project.apply(project.data({
        "name": name, "schedule": "1 seconds", "timeout_ms": 20000, "overlap": overlap,
        "url": f"{project.target.supabase_url}/functions/v1/{function}",
    }))
    return name, function


def _spans(edge: Any, function: str) -> list[tuple[datetime, datetime]]:
    spans = [(datetime.fromisoformat(r["received_at"]), timedelta(milliseconds=r["duration_ms"]))
             for r in edge.invocations(function)]
    return sorted((start, start + took) for start, took in spans)


def _overlapping(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    return [b for a, b in zip(spans, spans[1:]) if b[0] < a[1]]


@pytest.fixture(autouse=True)
def _forget_skips(project: Project) -> Any:
    """Other tests' doctor reports must not see this test's skips."""
    yield
    with cdb.connect(project.dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM cronkit.skipped_runs WHERE jobname LIKE %s", (like(project.prefix),))


@pytest.fixture
def seconds_schedules(pg_cron_version: Any) -> None:
    if not pg_cron_version.supports_seconds:
        pytest.skip("needs pg_cron >= 1.5 ('N seconds' schedules)")


@pytest.mark.usefixtures("seconds_schedules")
def test_a_slow_endpoint_gets_one_call_at_a_time_and_the_skipped_runs_are_recorded(project: Project) -> None:
    name, function = _slow_job(project, "skip")
    edge = project.target.edge
    edge.wait_for_invocations(function, 3, timeout=60)
    with cdb.connect(project.dsn, autocommit=True) as conn:
        def recorded() -> Any:
            row = conn.execute("SELECT count(*) AS n, count(blocking_request_id) AS by_request FROM cronkit.skipped_runs "
                               "WHERE jobname = %s AND reason = 'overlap'", (name,)).fetchone()
            return row if row["by_request"] >= 2 else None

        skips = wait_for(recorded, message="recorded skips")
        conn.execute("SELECT cron.alter_job(jobid, active := false) FROM cron.job WHERE jobname = %s", (name,))
        blocking = conn.execute(
            "SELECT count(*) AS n FROM cronkit.skipped_runs s JOIN cronkit.request_ledger l "
            "ON l.request_id = s.blocking_request_id WHERE s.jobname = %s AND l.jobname = %s", (name, name)).fetchone()
    assert skips["n"] >= skips["by_request"] >= 2, skips
    assert blocking["n"] == skips["by_request"]  # every skip names a request of the job itself
    wait_for(lambda: len(edge.invocations(function)) == _ledgered(project, name), timeout=30,
             message="every queued call answered")
    spans = _spans(edge, function)
    assert len(spans) >= 3 and not _overlapping(spans), spans


@pytest.mark.usefixtures("seconds_schedules")
def test_with_overlap_allowed_the_same_job_has_calls_in_flight_at_once(project: Project) -> None:
    name, function = _slow_job(project, "allow")
    edge = project.target.edge
    edge.wait_for_invocations(function, 3, timeout=60)
    with cdb.connect(project.dsn, autocommit=True) as conn:
        conn.execute("SELECT cron.alter_job(jobid, active := false) FROM cron.job WHERE jobname = %s", (name,))
        skipped = conn.execute("SELECT count(*) AS n FROM cronkit.skipped_runs WHERE jobname = %s", (name,)).fetchone()
    assert skipped["n"] == 0
    assert _overlapping(_spans(edge, function))


def test_run_now_says_the_run_was_skipped_while_the_previous_call_is_in_flight(project: Project) -> None:
    function = project.function("slow", verify_jwt=False, latency_ms=LATENCY_MS)
    name = project.job("manual")
    project.apply(project.data({
        "name": name, "schedule": "0 0 1 1 *", "timeout_ms": 20000, "overlap": "skip",
        "url": f"{project.target.supabase_url}/functions/v1/{function}",
    }))
    with cdb.connect(project.dsn) as conn:
        first = run_job_now(conn, name)
        second = run_job_now(conn, name)
    assert first.request_id is not None and first.skipped is None
    assert second.request_id is None
    assert second.skipped == f"overlap: its previous call has no response yet (request {first.request_id})"

    with cdb.connect(project.dsn) as conn:
        report = diagnose(conn, checks=["OVERLAP_SKIPS"])
        conn.rollback()
        summary = run_summary(conn, timedelta(hours=1), jobs=[name]).to_dicts()
        conn.rollback()
    assert [(r["jobname"], r["skipped_overlap"]) for r in summary] == [(name, 1)]  # the monitor's run table and board
    # ... and its heatmap, beside the call that was in flight
    from cronkit.runbooks import context
    from cronkit.runbooks.monitor import monitor_data, outcome_chart
    from cronkit.monitor import charts

    data = monitor_data(context.resolve({"dsn": project.dsn}, environ={}, manifest_required=False), hours=1, job=name)
    answers = [v["answers"] for v in charts.values(outcome_chart(data).to_dict())]
    assert len(answers) == 1 and "skipped (overlap) ×1" in answers[0]
    found = [f for f in report.findings if f.job == name]
    assert [(f.code, f.severity, f.evidence["skipped"], f.evidence["behind_a_call"]) for f in found] == [
        ("OVERLAP_SKIPS", "info", 1, 1)]


def _ledgered(project: Project, name: str) -> int:
    with cdb.connect(project.dsn, autocommit=True) as conn:
        return int(conn.execute("SELECT count(*) AS n FROM cronkit.request_ledger WHERE jobname = %s",
                                (name,)).fetchone()["n"])
