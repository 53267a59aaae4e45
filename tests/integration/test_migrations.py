"""An exported migration, applied with psql, leaves the database exactly as ``cronkit apply`` does.

Both run in the shared test database, one after the other, under the same project name: pg_cron
schedules jobs of one database per cluster (``cron.database_name``), so a second database would
hold no jobs, and a second cluster for each test costs more than it proves. Each test applies
the manifest, reads the normalized state (``cron.job`` rows without their jobid, wrapper sources,
registry rows), removes the project's jobs (``cronkit teardown``), runs the migration with psql
and reads the state again.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.jobs_support import (
    Project,
    cronkit_schema,  # noqa: F401 - fixture
    output,
    project,  # noqa: F401 - fixture
    snapshot,
)

Conn = psycopg.Connection[dict[str, Any]]
pytestmark = pytest.mark.usefixtures("cronkit_schema")
STAMP = "20261206120000"


def manifest(project: Project, *, old: bool = False) -> dict[str, Any]:
    """Several kinds of job: an Edge Function call with Vault secrets, an sql job, a guarded job, a
    paused job. ``old``: an earlier version (another schedule, a job since removed, the paused one active)."""
    url, key = project.job("url"), project.job("key")
    jobs: list[dict[str, Any]] = [
        {"name": project.job("fn"), "schedule": "0 0 1 1 *" if not old else "0 0 2 1 *", "function": "hello",
         "headers": {"Authorization": "Bearer {secret:" + key + "}"}, "body": {"from": "cron"}},
        # a backslash in the SQL and the guard: literals render the same with or without a connection
        {"name": project.job("sql"), "schedule": "*/30 * * * *", "sql": r"select regexp_replace('a1', '\d', 'x')"},
        {"name": project.job("guarded"), "schedule": "0 4 * * *", "sql": "select 2",
         "guard": r"exists (select 1 where 'x' ~ '\w')"},
        {"name": project.job("paused"), "schedule": "0 5 * * *", "sql": "select 3", "active": old},
    ]
    if old:
        jobs.append({"name": project.job("gone"), "schedule": "0 6 * * *", "sql": "select 4"})
    return project.data(
        *jobs,
        environments={"prod": {"base_url": "{secret:" + url + "}"}},
        default_environment="prod",
        secrets={"sources": {url: "env:CK_URL", key: "env:CK_KEY"}},
    )


ENVIRON = {"CK_URL": "http://127.0.0.1:9", "CK_KEY": "k-migration-test-value"}


def normalized(state: dict[str, Any]) -> dict[str, Any]:
    """A snapshot without what differs between two equal creations: the jobid pg_cron assigns."""
    return {**state, "cron.job": [{k: v for k, v in row.items() if k != "jobid"} for row in state["cron.job"]]}


def export(project: Project, data: dict[str, Any], stamp: str = STAMP) -> Path:
    path = project.write(data)
    result = project.cli("export", "migration", str(path), "--env", "prod", "--timestamp", stamp,
                         "--dir", str(project.dir / "supabase" / "migrations"), "--force")
    assert result.returncode == 0, output(result)
    [file] = (project.dir / "supabase" / "migrations").glob(f"{stamp}_cronkit_*.sql")
    return file


def psql(project: Project, file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d", project.dsn, "-f", str(file)],
                          capture_output=True, text=True, timeout=60)


def teardown(project: Project, data: dict[str, Any]) -> None:
    """Remove the project's jobs, wrappers and registry rows (its secrets stay)."""
    result = project.cli("teardown", str(project.write(data)), "--yes", env={"DATABASE_URL": project.dsn})
    assert result.returncode == 0, output(result)


def test_a_migration_applied_with_psql_equals_apply_and_running_it_again_changes_nothing(project: Project, db: Conn) -> None:
    data = manifest(project)
    applied = project.apply(data, ENVIRON)
    assert applied.problems == [] and applied.summary["create"] == 4
    by_apply = snapshot(db, project.prefix)
    file = export(project, data)
    teardown(project, data)
    assert snapshot(db, project.prefix)["cron.job"] == []

    first = psql(project, file)

    assert first.returncode == 0, first.stderr
    by_migration = snapshot(db, project.prefix)
    assert normalized(by_migration) == normalized(by_apply)
    assert [row["active"] for row in by_migration["cron.job"]] == [True, True, True, False]
    plan, text, _ = project.plan(data, ENVIRON)
    assert plan.problems == [] and plan.changes == [], text  # apply finds nothing left to do

    second = psql(project, file)

    assert second.returncode == 0, second.stderr
    assert snapshot(db, project.prefix) == by_migration  # the same jobids too: schedule upserts by name
    runs = db.execute("select summary, details from cronkit.audit_log where project = %s and action = 'migration' "
                      "order by id", (project.name,)).fetchall()
    assert len(runs) == 2 and all(r["details"]["jobs"] == sorted(s["name"] for s in data["jobs"]) for r in runs)


def test_a_migration_converges_a_database_that_holds_an_older_version_of_the_manifest(project: Project, db: Conn) -> None:
    old, new = manifest(project, old=True), manifest(project)
    project.apply(new, ENVIRON)
    by_apply = normalized(snapshot(db, project.prefix))
    teardown(project, new)
    project.apply(old, ENVIRON)
    assert project.job("gone") in {row["jobname"] for row in snapshot(db, project.prefix)["cron.job"]}

    result = psql(project, export(project, new))

    assert result.returncode == 0, result.stderr
    assert normalized(snapshot(db, project.prefix)) == by_apply  # changed, paused, and the dropped job removed
    plan, text, _ = project.plan(new, ENVIRON)
    assert plan.changes == [], text


def test_a_migration_stops_on_a_job_of_its_names_that_cronkit_did_not_create_and_changes_nothing(
        project: Project, db: Conn) -> None:
    data = manifest(project)
    db.execute("select cron.schedule(%s, '*/9 * * * *', 'select 42')", (project.job("sql"),))
    before = snapshot(db, project.prefix)

    result = psql(project, export(project, data))

    assert result.returncode != 0
    assert "not project" in result.stderr and project.job("sql") in result.stderr
    assert "cronkit apply MANIFEST --adopt" in result.stderr
    assert snapshot(db, project.prefix) == before


def test_plan_and_doctor_warn_when_declarative_schemas_beside_the_manifest_do_not_mention_the_jobs(
        project: Project, db: Conn) -> None:
    data = manifest(project)
    schemas = project.dir / "supabase" / "schemas"
    schemas.mkdir(parents=True)
    (schemas / "010_tables.sql").write_text("create table public.t (id bigint);\n", encoding="utf-8")
    env = {"DATABASE_URL": project.dsn, **ENVIRON}

    plan = project.cli("plan", str(project.write(data)), "--env", "prod", env=env)
    doctor = project.cli("doctor", "cronkit.toml", "--env", "prod", "--json", env=env, timeout=180)

    assert "supabase/schemas (Supabase declarative schemas) does not mention" in plan.stdout, output(plan)
    found = [f for f in json.loads(doctor.stdout)["findings"] if f["code"] == "JOBS_UNDECLARED_IN_SCHEMAS"]
    assert len(found) == 1 and project.job("fn") in found[0]["evidence"]["undeclared"]

    (schemas / "020_cron.sql").write_text("".join(f"-- cronkit job: {job['name']}\n" for job in data["jobs"]),
                                          encoding="utf-8")
    plan = project.cli("plan", "cronkit.toml", "--env", "prod", env=env)
    assert "declarative schemas" not in plan.stdout, output(plan)
