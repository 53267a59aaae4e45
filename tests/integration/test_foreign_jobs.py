"""Foreign jobs by identity: cronkit changes only the pg_cron jobs it scheduled, not whatever has their name.

The registry records each managed job's jobid and owner. A job re-created by hand under a managed
name is foreign until ``apply --adopt``; pause, resume, run-now and remove refuse foreign jobs unless
told ``--foreign``; ``teardown --secrets`` keeps a secret another job still reads; a key written
literally into a foreign command is never printed.
"""

from __future__ import annotations

import html
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import fake_jwt, wait_for
from tests.jobs_support import (  # noqa: F401 - fixture
    Project,
    cli_env,
    frequent_schedule,
    job_row,
    output,
    project,
    registry_row,
)

ROOT = Path(__file__).resolve().parents[2]

Conn = psycopg.Connection[dict[str, Any]]
YEARLY = "0 0 1 1 *"


def sql_job(name: str, sql: str = "select 1") -> dict[str, Any]:
    return {"name": name, "schedule": YEARLY, "sql": sql}


def test_a_job_re_created_by_hand_under_a_managed_name_is_foreign_until_adopted(project: Project, db: Conn) -> None:
    name = project.job("a")
    data = project.data(sql_job(name))
    project.apply(data)
    ours = job_row(db, name)
    assert registry_row(db, name)["jobid"] == ours["jobid"]  # type: ignore[index]
    db.execute("select cron.unschedule(%s::bigint)", (ours["jobid"],))  # type: ignore[index]
    by_hand = db.execute("select cron.schedule(%s, '*/7 * * * *', 'select 42') as id", (name,)).fetchone()["id"]

    plan, text, _ = project.plan(data)
    assert [p for p in plan.problems if "re-created outside cronkit" in p and f"jobid {by_hand}" in p]
    assert not plan.changes
    path = project.write(data)
    refused = project.cli("apply", str(path), "--yes", "--dsn", project.dsn)
    assert refused.returncode == 1, output(refused)
    assert job_row(db, name)["command"] == "select 42"  # type: ignore[index]  # left alone
    status = json.loads(project.cli("status", "--json", "--dsn", project.dsn).stdout)
    assert next(j for j in status if j["jobname"] == name)["managed_by"] is None

    adopted = project.cli("apply", str(path), "--yes", "--adopt", "--dsn", project.dsn)
    assert adopted.returncode == 0, output(adopted)
    row = job_row(db, name)
    assert row["jobid"] == by_hand and row["schedule"] == YEARLY  # type: ignore[index]
    assert registry_row(db, name)["jobid"] == by_hand  # type: ignore[index]
    assert project.plan(data)[0].changes == []


@pytest.mark.parametrize("action", ["pause", "resume", "run-now", "remove"])
def test_job_commands_refuse_a_foreign_job_unless_told(project: Project, db: Conn, action: str) -> None:
    name = project.job("hand")
    jobid = db.execute("select cron.schedule(%s, %s, 'select 1') as id", (name, YEARLY)).fetchone()["id"]
    before = job_row(db, name)
    extra = ["--yes"] if action == "remove" else []

    refused = project.cli(action, name, *extra, "--dsn", project.dsn)
    assert refused.returncode == 1, output(refused)
    assert "was not created by cronkit" in refused.stderr and "--foreign" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert job_row(db, name) == before

    done = project.cli(action, name, *extra, "--foreign", "--dsn", project.dsn)
    assert done.returncode == 0, output(done)
    after = job_row(db, name)
    expected = {"pause": {"active": False}, "resume": {"active": True}, "run-now": {"active": True}}
    if action == "remove":
        assert after is None
    else:
        assert after is not None and after["jobid"] == jobid
        assert {k: after[k] for k in expected[action]} == expected[action]


def test_teardown_keeps_a_secret_another_job_still_reads(project: Project, db: Conn) -> None:
    shared, own, hand = project.job("shared_key"), project.job("own_key"), project.job("hand_key")
    sources = {"sources": {shared: "env:CK_SHARED", own: "env:CK_OWN", hand: "env:CK_HAND"}, "backend": "vault"}
    environ = {"CK_SHARED": "s-" + project.prefix, "CK_OWN": "o-" + project.prefix, "CK_HAND": "h-" + project.prefix}

    def http(suffix: str, *keys: str) -> dict[str, Any]:
        headers = {f"x-{i}": f"{{secret:{k}}}" for i, k in enumerate(keys)}
        return {"name": project.job(suffix), "schedule": YEARLY, "url": "http://127.0.0.1:9/x", "headers": headers}

    mine = project.data(http("a", shared, own, hand), secrets=sources)
    project.apply(mine, environ)
    other = {**project.data(http("b", shared), secrets=sources), "project": project.name + "_other"}
    project.apply(other, environ)
    db.execute("select cron.schedule(%s, %s, %s)", (project.job("c"), YEARLY,
               f"select decrypted_secret from vault.decrypted_secrets where name = '{hand}'"))

    path = project.write(mine)
    result = project.cli("teardown", str(path), "--secrets", "--yes", "--dsn", project.dsn)
    assert result.returncode == 0, output(result)
    assert f"keep secret {shared!r} (vault): still read by job {project.job('b')!r} (project {project.name + '_other'!r})" in result.stdout
    assert f"keep secret {hand!r} (vault): still read by job {project.job('c')!r} (not cronkit's)" in result.stdout
    assert f"delete secret {own!r}" in result.stdout
    left = {r["name"] for r in db.execute("select name from vault.secrets where name like %s", (project.prefix + "%",))}
    assert left == {shared, hand}


def test_a_key_written_literally_into_a_foreign_command_is_never_printed(
    project: Project, db: Conn, pg_cron_version: Any
) -> None:
    """The key sits in the command and, because the command fails, in every run's error message too."""
    key = fake_jwt()
    name = project.job("inline")
    # casting the header text to int fails with `invalid input syntax ... "Bearer <key>"`: the key
    # reaches cron.job_run_details.return_message, which the doctor and the runbooks show
    command = f"select ('Bearer {key}')::int, net.http_post('http://127.0.0.1:9/x')"
    jobid = db.execute("select cron.schedule(%s, %s, %s) as id", (name, frequent_schedule(pg_cron_version), command)).fetchone()["id"]
    wait_for(lambda: db.execute("select 1 from cron.job_run_details where jobid = %s and status = 'failed'", (jobid,)).fetchone(),
             timeout=90, message="a failed run of the foreign job")
    db.execute("select cron.alter_job(%s, active := false)", (jobid,))
    assert key in db.execute("select return_message from cron.job_run_details where jobid = %s and status = 'failed' limit 1",
                             (jobid,)).fetchone()["return_message"]  # the hostile case is real

    path = project.write(project.data(sql_job(project.job("mine"))))
    shown = {" ".join(args): project.cli(*args, "--dsn", project.dsn) for args in (
        ("status",), ("status", "--json"), ("doctor",), ("doctor", "--json"),
        ("plan", str(path)), ("plan", str(path), "--json"), ("import",), ("import", "--json"))}
    for runbook in ("monitor", "incident"):
        out = project.dir / f"{runbook}.html"
        shown[runbook] = subprocess.run(
            [sys.executable, "-m", "cronkit.runbooks", "report", str(ROOT / "runbooks" / f"{runbook}.py"), "-o", str(out),
             "--", "--dsn", project.dsn], capture_output=True, text=True, cwd=project.dir, env=cli_env(),
            timeout=180, stdin=subprocess.DEVNULL)
        assert shown[runbook].returncode == 0, output(shown[runbook])
        shown[runbook + " report"] = subprocess.CompletedProcess([], 0, html.unescape(out.read_text(encoding="utf-8")), "")
    assert name in shown["status"].stdout and name in shown["import"].stdout  # the job itself is shown
    for what, result in shown.items():
        assert "Traceback" not in result.stdout + result.stderr, what
        assert key[:40] not in result.stdout + result.stderr, what
