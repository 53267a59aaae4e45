"""The change record: every state-changing command leaves one entry — who, what, when — in the same
transaction as its change, and never a secret value; runs started by hand are kept beside pg_cron's.

Each command runs as a user runs it (`cronkit ...` in a new process); the record is read back with
`cronkit log --json`.
"""

from __future__ import annotations

import getpass
import json
import socket
import uuid
from typing import Any

import pytest

from cronkit import db as cdb
from cronkit.audit import AuditAction
from cronkit.runbooks import context
from cronkit.runbooks.monitor import changes_view, monitor_data
from tests.jobs_support import (  # noqa: F401 - fixtures
    Project,
    cronkit_schema,
    output,
    project,
)

pytestmark = pytest.mark.usefixtures("cronkit_schema")


def log(p: Project, *args: str) -> list[dict[str, Any]]:
    shown = p.cli("log", "--project", p.name, "--limit", "100", "--json", "--dsn", p.dsn, *args)
    assert shown.returncode == 0, output(shown)
    return list(json.loads(shown.stdout)["entries"])


def actions(entries: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(e["action"], e["target"]) for e in reversed(entries)]  # oldest first


def test_every_state_changing_command_leaves_one_entry_and_no_secret_value(project: Project) -> None:
    p = project
    canary = f"canary-{uuid.uuid4().hex}-value"
    key, job = p.job("key"), p.job("call")
    fn = p.function()
    data = p.data({"name": job, "schedule": "0 0 1 1 *", "url": f"{p.target.supabase_url}/functions/v1/{fn}",
                   "headers": {"Authorization": "Bearer {secret:" + key + "}"}},
                  {"name": p.job("other"), "schedule": "0 0 1 1 *", "sql": "select 1"},
                  secrets={"sources": {key: "env:CK_CANARY"}})
    manifest = p.write(data)

    steps = [
        ("apply", str(manifest), "--yes"),
        ("pause", job), ("pause", job),  # the second pause changes nothing: no entry
        ("resume", job),
        ("run-now", job, "--for", "2026-12-06T03:00"),
        ("secrets", "set", key, "--manifest", str(manifest)),
        ("remove", job, "--yes"),
        ("teardown", str(manifest), "--yes"),  # the other job; the key stays (no --secrets)
    ]
    for step in steps:
        done = p.cli(*step, "--dsn", p.dsn, env={"CK_CANARY": canary}, input=canary + "-2\n")
        assert done.returncode == 0, (step, output(done))
        assert canary not in output(done)

    entries = log(p)
    assert actions(entries) == [
        (AuditAction.SECRET_SET, key), (AuditAction.APPLY, None),  # apply stores the key first, then records itself
        (AuditAction.PAUSE, job), (AuditAction.RESUME, job), (AuditAction.RUN_NOW, job),
        (AuditAction.SECRET_SET, key), (AuditAction.REMOVE, job), (AuditAction.TEARDOWN, None),
    ]
    apply_entry = next(e for e in entries if e["action"] == AuditAction.APPLY)
    assert apply_entry["details"]["jobs"] == sorted([job, p.job("other")]) and "environment default" in apply_entry["summary"]
    for entry in entries:
        assert entry["os_user"] == getpass.getuser() and entry["host"] == socket.gethostname()
        assert entry["db_role"] and entry["application"] == "cronkit"
    run = next(e for e in entries if e["action"] == AuditAction.RUN_NOW)
    assert run["details"]["slot"].startswith("2026-12-06 03:00:00") and run["details"]["status"] == "called"
    assert "for the run due 2026-12-06 03:00:00 UTC" in run["summary"]
    with cdb.connect(p.dsn) as conn:
        every_column = conn.execute("select a::text as row from cronkit.audit_log a where project = %s "
                                    "union all select m::text from cronkit.manual_runs m where jobname = %s",
                                    (p.name, job)).fetchall()
        manual = conn.execute("select status, request_id, slot from cronkit.manual_runs where jobname = %s",
                              (job,)).fetchall()
    assert not [r for r in every_column if canary in r["row"]]
    assert [(m["status"], m["request_id"] is not None) for m in manual] == [("called", True)]

    shown = p.cli("log", "--project", p.name, "--dsn", p.dsn)
    assert shown.returncode == 0 and f"run-now       [{p.name}] {job}: ran job" in shown.stdout

    # the monitor tells the run by hand from pg_cron's, and shows the changes with who made them
    data = monitor_data(context.resolve({"manifest": str(manifest), "dsn": p.dsn}, environ={}), hours=1, job=job)
    assert data.manual.select("jobname", "status").rows() == [(job, "called")]
    assert [e.action for e in data.changes][:2] == [AuditAction.TEARDOWN, AuditAction.REMOVE]  # newest first
    assert changes_view(data).get_column("by").to_list()[0] == f"{getpass.getuser()}@{socket.gethostname()}"


def test_a_change_that_rolls_back_leaves_no_entry_and_a_failed_run_now_is_recorded_as_failed(project: Project) -> None:
    p = project
    job, key = p.job("broken"), p.job("missing-key")
    data = p.data({"name": job, "schedule": "0 0 1 1 *", "url": "http://127.0.0.1:9/x",
                   "headers": {"Authorization": "Bearer {secret:" + key + "}"}})
    # the key is in no backend: apply refuses before changing anything, and nothing is recorded
    refused = p.cli("apply", str(p.write(data)), "--yes", "--dsn", p.dsn)
    assert refused.returncode != 0 and log(p) == []

    # apply with the job's key absent from the plan's problems: a sql job has no secret to miss
    sql_job = p.job("sql")
    p.apply(p.data({"name": sql_job, "schedule": "0 0 1 1 *", "sql": "select 1/0"}))
    failed = p.cli("run-now", sql_job, "--dsn", p.dsn)
    assert failed.returncode != 0 and "division by zero" in output(failed)
    entries = log(p, "--job", sql_job)
    assert actions(entries) == [(AuditAction.RUN_NOW, sql_job)]
    assert entries[0]["details"]["status"] == "failed" and "it failed" in entries[0]["summary"]
