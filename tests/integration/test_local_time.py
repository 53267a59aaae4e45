"""A local time survives DST on the sandbox: apply registers it, SQL applies the same rule as
Python, and a reissue switches the GMT schedule and records it in one transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cronkit import db as cdb
from cronkit.schedules import local_options, local_schedule, next_transition, schedule_for_local
from tests.jobs_support import Project, job_row, project, registry_row  # noqa: F401  (fixtures)

LA = "America/Los_Angeles"


def _local_job(project: Project, at: str = "03:00", zone: str = LA) -> dict[str, Any]:
    return project.data({"name": project.job("nightly"), "at": at, "timezone": zone, "sql": "select 1"})


def test_apply_registers_the_local_time_and_the_dst_job_and_plan_shows_the_next_switch(project: Project) -> None:
    data = _local_job(project)
    with cdb.connect(project.dsn, autocommit=True) as conn:
        now = conn.execute("SELECT now() AS now").fetchone()["now"]
    _, text, _ = project.plan(data)
    switch = next_transition("03:00", LA, "*", now)
    assert switch is not None and switch.expr in ("0 10 * * *", "0 11 * * *")
    assert f"next DST transition {switch.local_date} → schedule becomes '{switch.expr}'" in text
    project.apply(data)
    with cdb.connect(project.dsn, autocommit=True) as conn:
        row = job_row(conn, project.job("nightly"))
        spec = registry_row(conn, project.job("nightly"))["spec"]
        dst = job_row(conn, f"cronkit-dst:{project.name}")
    assert row is not None and row["schedule"] == schedule_for_local("03:00", LA, "*", now)
    assert {row["schedule"], switch.expr} == {"0 11 * * *", "0 10 * * *"}
    assert spec["local"] == {"at": "03:00", "zone": LA, "days": "*",
                             "schedules": {"-28800": "0 11 * * *", "-25200": "0 10 * * *"}}
    assert dst is not None and dst["schedule"] == "5 * * * *"
    _, again, _ = project.plan(data)
    assert "= unchanged" in again and "0 to update" in again


@pytest.mark.parametrize("zone", [LA, "Europe/Berlin"])
def test_the_sql_rule_agrees_with_the_python_rule_across_both_2026_transitions(db: Any, zone: str) -> None:
    days = {LA: ("2026-03-08", "2026-11-01"), "Europe/Berlin": ("2026-03-29", "2026-10-25")}[zone]
    cases = []
    for at in ("00:15", "01:30", "02:00", "02:30", "03:00", "23:30"):
        options = local_options(at, zone, "*", 2026)
        for day in days:
            start = datetime.fromisoformat(day).replace(tzinfo=UTC) - timedelta(days=2)
            for quarter in range(4 * 24 * 4):
                moment = start + timedelta(minutes=15 * quarter, seconds=2)
                for current in options.values():
                    cases.append((at, moment, current, local_schedule(options, at, zone, moment, current)))
    schedules = {at: {str(int(o.total_seconds())): e for o, e in local_options(at, zone, "*", 2026).items()}
                 for at in {c[0] for c in cases}}
    import json

    rows = db.execute(
        "SELECT cronkit.local_schedule(%s, c.at::time, (%s::jsonb) -> c.at, c.current, c.moment) AS got "
        "FROM unnest(%s::text[], %s::timestamptz[], %s::text[]) WITH ORDINALITY AS c(at, moment, current, n) ORDER BY n",
        (zone, json.dumps(schedules), [c[0] for c in cases], [c[1] for c in cases], [c[2] for c in cases]),
    ).fetchall()
    disagreements = [(c[0], c[1], c[2], c[3], r["got"]) for c, r in zip(cases, rows, strict=True) if r["got"] != c[3]]
    assert not disagreements, disagreements[:5]


def test_a_reissue_switches_the_schedule_and_records_it_in_one_transaction(project: Project) -> None:
    project.apply(_local_job(project))
    name = project.job("nightly")
    summer = datetime(2026, 7, 1, 12, 5, tzinfo=UTC)
    with cdb.connect(project.dsn, autocommit=True) as conn:
        # start from the standard-time expression, whatever the season of the test run
        conn.execute("SELECT cron.alter_job(jobid, schedule := '0 11 * * *') FROM cron.job WHERE jobname = %s", (name,))
    with cdb.connect(project.dsn) as conn:
        switched = conn.execute("SELECT cronkit.reissue_local_schedules(%s, %s) AS n", (project.name, summer)).fetchone()
        inside = job_row(conn, name)
        recorded = conn.execute("SELECT old_schedule, new_schedule, utc_offset FROM cronkit.schedule_reissues "
                                "WHERE jobname = %s", (name,)).fetchall()
        on_record = conn.execute("SELECT action, project, summary FROM cronkit.audit_log WHERE target = %s", (name,)).fetchall()
        conn.rollback()
        after_rollback = job_row(conn, name)
        left = conn.execute("SELECT count(*) AS n FROM cronkit.schedule_reissues WHERE jobname = %s", (name,)).fetchone()
        conn.rollback()
    assert switched["n"] == 1 and inside["schedule"] == "0 10 * * *"
    assert recorded == [{"old_schedule": "0 11 * * *", "new_schedule": "0 10 * * *", "utc_offset": timedelta(hours=-7)}]
    assert after_rollback["schedule"] == "0 11 * * *" and left["n"] == 0  # both or neither
    assert on_record == [{"action": "dst-reissue", "project": project.name,
                          "summary": f"reissued {name} for daylight saving time: 0 11 * * * -> 0 10 * * *"}]

    with cdb.connect(project.dsn, autocommit=True) as conn:
        conn.execute("SELECT cronkit.reissue_local_schedules(%s, %s)", (project.name, summer))
        assert job_row(conn, name)["schedule"] == "0 10 * * *"
        again = conn.execute("SELECT cronkit.reissue_local_schedules(%s, %s) AS n", (project.name, summer)).fetchone()
        assert again["n"] == 0  # nothing left to switch
        conn.execute("DELETE FROM cronkit.schedule_reissues WHERE jobname = %s", (name,))
