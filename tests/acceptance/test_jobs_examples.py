"""The five seed systems, end to end: plan → apply → pg_cron fires → the Edge Functions server answers.

The examples' job names are fixed, so they are applied once per session: the module fixture
prepares all five (tables, rows, what the platform provides), plans and applies them for the
``sandbox`` environment as ``cronkit demo`` does, and every test below reads what happened. On
pg_cron 1.6 the jobs run their sandbox schedules as written (instagram: the guide's ``10 seconds``;
the others every 5 s), so the first test that waits for requests waits seconds; on 1.4.2 the
demo runs them every minute and that test waits up to a minute.
Afterwards the five projects are torn down (jobs, wrappers, registry rows, their secrets).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from cronkit import db as cdb
from cronkit_sandbox.demo import CUSTOM_AUTH, Example, demo_environ, examples, prepare_example, sandbox_manifest
from cronkit.jobs import teardown
from cronkit.manifest import Manifest
from cronkit.maintenance import maintenance_jobs
from cronkit.plan import Plan, apply, make_plan
from cronkit.redact import fingerprint, mask
from cronkit.secrets import GucBackend
from cronkit.wrappers import wrapper_name
from tests.jobs_support import db_now, job_row, last_invocation_id, registry_row

Conn = psycopg.Connection[dict[str, Any]]

# The jobs of each seed system and their schedules in the `sandbox` environment (pg_cron 1.5+;
# on 1.4.2 the demo runs every one of them every minute).
JOBS = {
    "auto-sync": {"auto-sync-cron-job": "5 seconds"},
    "bubble-sync": {"bubble-sync-processor": "5 seconds", "bubble-sync-retry": "5 seconds"},
    "instagram-sync": {"process-instagram-imports": "10 seconds"},
    "scheduled-workflows": {
        "generate-t5-invoices": "5 seconds", "run-escalation-orchestration": "5 seconds",
        "schedule-create-zoom": "5 seconds", "generate-monthly-invoices": "5 seconds",
        "escalate-overdue-bookings": "5 seconds", "notification-worker": "5 seconds",
    },
    "tasty-mangoes": {
        "scheduled_ingest_daily": "5 seconds", "scheduled_ingest_weekly": "5 seconds",
        "daily_refresh_enqueue": "5 seconds", "refresh_worker": "5 seconds",
    },
}
#: pending Instagram imports at apply: the function drains 5 per call, so the 10-second job has work
#: (and calls its function) for at least 3 runs
INSTAGRAM_BACKLOG = 20


def sandbox_schedule(schedule: str, version: Any) -> str:
    return schedule if version.supports_seconds else "* * * * *"


# The requests the Edge Functions server must receive: (function, JSON body, how it authenticates).
#   service        Authorization: Bearer <service_role key>, checked by the JWT gate
#   service+apikey the same, plus an `apikey` header with the key
#   cron_secret    Authorization: Bearer <CRON_SECRET>, checked by the function (verify_jwt off)
#   scheduler      Bearer <service_role key> + x-scheduler-token: <SCHEDULER_SECRET_TOKEN>
REQUESTS = {
    "auto-sync": [("auto-sync-cron", {}, "service")],
    "bubble-sync": [
        ("bubble_sync", {"action": "process_queue_data_api", "payload": {"limit": 10, "batch_size": 5}}, "service"),
        ("bubble_sync", {"action": "retry_failed", "payload": {}}, "service"),
    ],
    "instagram-sync": [("process-instagram-imports", {}, "service")],
    "scheduled-workflows": [
        ("generate-t5-invoices", {}, "service+apikey"),
        ("run-escalation-orchestration", {"force": False}, "cron_secret"),
        ("schedule-create-zoom", {"force_invoke": False}, "scheduler"),
        ("generate-monthly-invoices", {}, "service"),
        ("escalate-overdue-bookings", {}, "service"),
        ("notification-worker", {"limit": 5, "runs": 1}, "service+apikey"),
    ],
    "tasty-mangoes": [
        ("scheduled-ingest", {"source": "mixed_daily", "max_movies": 30, "trigger_type": "scheduled"}, "service"),
        ("scheduled-ingest", {"source": "mixed_weekly", "max_movies": 80, "trigger_type": "scheduled"}, "service"),
        ("daily-refresh", {}, "service"),
        ("refresh-worker", {}, "service"),
    ],
}
NAMES = sorted(JOBS)
FIRE_TIMEOUT = 80.0  # the next minute on 1.4.2 (5-10 s on 1.6), plus the run and the delivery


@dataclass
class Applied:
    examples: dict[str, Example]
    manifests: dict[str, Manifest]  # as the demo applies them on this pg_cron
    environ: dict[str, str]
    first_plans: dict[str, tuple[Plan, str]]
    since: Any  # database time before the first apply
    mark: int  # last Edge invocation id before the first apply
    applied_at: float  # time.monotonic()


def _remove(conn: Conn, chosen: list[Example], superuser_url: str, *, secrets: bool) -> None:
    for example in chosen:
        manifest = example.manifest()
        guc = manifest.secrets.backend == "guc"
        teardown(conn, manifest, secrets=secrets and not guc, dry_run=False)
        if secrets and guc:
            with cdb.connect(superuser_url, autocommit=True) as su:
                for name in ("supabase_url", "service_role_key"):
                    GucBackend(manifest.secrets).delete(su, name)


@pytest.fixture(scope="module")
def applied(sandbox_only: Any, pg_cron_version: Any) -> Iterator[Applied]:
    edge = sandbox_only.edge
    environ = demo_environ(sandbox_only)
    chosen = examples()
    assert [e.name for e in chosen] == NAMES
    with cdb.connect(sandbox_only.database_url, autocommit=True) as conn:
        _remove(conn, chosen, sandbox_only.superuser_url, secrets=False)  # leftovers of an interrupted session
    try:
        first_plans: dict[str, tuple[Plan, str]] = {}
        for example in chosen:
            prepare_example(example, sandbox_only, environ, edge)
        with cdb.connect(sandbox_only.database_url, autocommit=True) as conn:
            # Work for the guarded jobs: they only call their function when their queue has some.
            tag = uuid.uuid4().hex[:8]
            conn.execute("insert into public.sync_queue (table_name, record_id, operation, status) "
                         "values ('user', %s, 'INSERT', 'pending'), ('user', %s, 'UPDATE', 'failed')",
                         (f"cronkit-test-{tag}-1", f"cronkit-test-{tag}-2"))
            conn.execute("insert into public.instagram_imports (instagram_url) "
                         "select 'https://www.instagram.com/p/cronkit-test-' || %s || '-' || n || '/' "
                         "from generate_series(1, %s) n", (tag, INSTAGRAM_BACKLOG))
            since, mark = db_now(conn), last_invocation_id(edge)
        manifests = {e.name: sandbox_manifest(e, pg_cron_version)[0] for e in chosen}
        for example in chosen:
            with cdb.connect(sandbox_only.database_url) as conn:
                plan = make_plan(conn, manifests[example.name], "sandbox", environ=environ)
                first_plans[example.name] = (plan, plan.render())
                conn.rollback()
                apply(conn, manifests[example.name], "sandbox", environ=environ)
        yield Applied({e.name: e for e in chosen}, manifests, environ, first_plans, since, mark, time.monotonic())
    finally:
        with cdb.connect(sandbox_only.database_url, autocommit=True) as conn:
            _remove(conn, chosen, sandbox_only.superuser_url, secrets=True)
        for function in CUSTOM_AUTH:
            edge.reset(function)


def _maintenance(applied: Applied, name: str) -> set[str]:
    return {job.name for job in maintenance_jobs(applied.manifests[name])}


@pytest.mark.parametrize("name", NAMES)
def test_the_first_plan_creates_every_job_of_the_example_without_problems(applied: Applied, name: str) -> None:
    plan, text = applied.first_plans[name]
    assert plan.problems == []
    # the guide's jobs, and the queue snapshot job of an example that declares [[queues]]
    assert {s.job for s in plan.steps if s.action == "create"} == set(JOBS[name]) | _maintenance(applied, name)
    assert not [s for s in plan.steps if s.action in ("update", "remove")]
    for value in applied.environ.values():
        if len(value) > 20:  # keys and tokens; the URL is configuration
            assert value not in text


@pytest.mark.parametrize("name", NAMES)
def test_after_apply_every_job_is_active_with_its_sandbox_schedule(applied: Applied, db: Conn, name: str,
                                                                   pg_cron_version: Any) -> None:
    project = applied.examples[name].manifest().project
    for job, schedule in JOBS[name].items():
        row = job_row(db, job)
        assert row is not None, f"{job} is not in cron.job"
        assert (row["schedule"], row["active"]) == (sandbox_schedule(schedule, pg_cron_version), True)
        assert row["command"] == f'SELECT "cronkit"."{wrapper_name(job)}"()'
        assert registry_row(db, job)["project"] == project  # type: ignore[index]


def _matching(calls: list[dict[str, Any]], function: str, body: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in calls if c["function"] == function and c["body"] == body), None)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_pg_cron_fires_every_wrapper_and_the_edge_function_gets_its_request_with_the_right_auth(
    applied: Applied, sandbox_only: Any, db: Conn, name: str
) -> None:
    edge = sandbox_only.edge
    deadline = applied.applied_at + FIRE_TIMEOUT
    expected = REQUESTS[name]
    while True:
        calls = edge.invocations(after_id=applied.mark)
        found = [_matching(calls, function, body) for function, body, _auth in expected]
        if all(found) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    missing = [(f, b) for (f, b, _a), call in zip(expected, found, strict=True) if call is None]
    assert missing == [], f"no request within {FIRE_TIMEOUT:.0f}s of apply for {missing}"

    service_key = sandbox_only.service_key
    for (function, _body, auth), call in zip(expected, found, strict=True):
        assert call is not None and call["status"] == 200, call
        if auth.startswith("service"):
            assert (call["auth"], call["auth_role"]) == ("ok", "service_role"), function
            assert call["auth_fingerprint"] == fingerprint(service_key), function
        if auth == "service+apikey":
            assert call["headers"]["apikey"] == mask(service_key), function
        if auth == "cron_secret":
            assert call["auth"] == "custom_ok"
            assert call["auth_fingerprint"] == fingerprint(applied.environ["CRON_SECRET"])
        if auth == "scheduler":
            assert call["auth"] == "custom_ok"
            assert call["auth_fingerprint"] == fingerprint(service_key)
            assert call["headers"]["x-scheduler-token"] == mask(applied.environ["SCHEDULER_SECRET_TOKEN"])

    # pg_cron's side: every job ran since the apply, succeeded, and its wrapper recorded its request
    for job in JOBS[name]:
        runs = db.execute(
            "select d.status, d.return_message from cron.job_run_details d join cron.job j on j.jobid = d.jobid "
            "where j.jobname = %s and d.start_time >= %s and d.status in ('succeeded', 'failed')",
            (job, applied.since)).fetchall()
        assert runs and all(r["status"] == "succeeded" for r in runs), (job, runs)
        ledger = db.execute("select count(*) as n from cronkit.request_ledger where jobname = %s and created_at >= %s",
                            (job, applied.since)).fetchone()
        assert ledger["n"] >= 1, job


@pytest.mark.parametrize("name", NAMES)
def test_a_second_plan_shows_no_changes(applied: Applied, sandbox_only: Any, name: str) -> None:
    with cdb.connect(sandbox_only.database_url) as conn:
        plan = make_plan(conn, applied.manifests[name], "sandbox", environ=applied.environ)
        conn.rollback()
    assert plan.problems == []
    assert plan.changes == []
    assert plan.summary["unchanged"] == len(JOBS[name]) + len(_maintenance(applied, name))


@pytest.mark.slow
def test_the_instagram_job_runs_every_10_seconds_as_its_guide_says(applied: Applied, db: Conn,
                                                                     pg_cron_version: Any) -> None:
    if not pg_cron_version.supports_seconds:
        pytest.skip(f"pg_cron {pg_cron_version} has no seconds schedules; the demo runs it every minute there")

    def answered() -> list[dict[str, Any]]:
        return db.execute(
            "select l.request_id, r.status_code from cronkit.request_ledger l "
            "join net._http_response r on r.id = l.request_id "
            "where l.jobname = 'process-instagram-imports' and l.created_at >= %s and r.status_code = 200",
            (applied.since,)).fetchall()

    deadline = applied.applied_at + 40
    while len(answered()) < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(answered()) >= 3, "fewer than 3 runs answered with HTTP 200 within 40 s of apply"
    starts = [r["start_time"] for r in db.execute(
        "select d.start_time from cron.job_run_details d join cron.job j using (jobid) "
        "where j.jobname = 'process-instagram-imports' and d.start_time >= %s order by d.start_time",
        (applied.since,)).fetchall()]
    gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:])]
    assert gaps and all(9 <= gap <= 12 for gap in gaps), f"runs were {gaps} s apart, not about 10"
