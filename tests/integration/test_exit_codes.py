"""Every command exits with a code from one table: the rows that need a database (0 ok, 1 problems, 2 critical, 3 not confirmed).

The rows that need none (64 usage, 69 cannot connect, 78 configuration) are in tests/unit/test_exit_codes.py.
"""

from __future__ import annotations

import json

import pytest

from cronkit import db as cdb
from cronkit.errors import ExitCode
from tests.jobs_support import Project, database_without_pg_cron, output, project  # noqa: F401  (fixtures)

Conn = cdb.Conn


def _manifest(p: Project, schedule: str = "*/5 * * * *") -> str:
    return str(p.write(p.data({"name": p.job("a"), "schedule": schedule, "sql": "select 1"})))


def _expect(p: Project, code: int, *args: str, input: str | None = None) -> str:
    result = p.cli(*args, "--dsn", p.dsn, input=input)
    text = output(result)
    assert result.returncode == code, f"cronkit {' '.join(args)} exited {result.returncode}, not {code}:\n{text}"
    assert "Traceback" not in text
    return text


def test_plan_and_apply_exit_0_when_clean_1_with_problems_and_3_when_not_confirmed(project: Project) -> None:
    good = _manifest(project)
    _expect(project, ExitCode.NOT_CONFIRMED, "apply", good)
    _expect(project, ExitCode.OK, "plan", good)
    _expect(project, ExitCode.OK, "apply", good, "--yes")
    broken = _manifest(project, schedule="61 * * * *")
    _expect(project, ExitCode.PROBLEMS, "plan", broken)
    _expect(project, ExitCode.PROBLEMS, "apply", broken, "--yes")


def test_apply_json_without_yes_prints_the_plan_it_did_not_apply_and_exits_3(project: Project) -> None:
    good = _manifest(project)
    result = project.cli("apply", good, "--json", "--dsn", project.dsn)
    assert result.returncode == ExitCode.NOT_CONFIRMED, output(result)
    shown = json.loads(result.stdout)
    assert shown["applied"] is False and shown["summary"]["create"] == 1
    assert "--yes" in result.stderr


def test_job_commands_exit_0_on_a_managed_job_and_1_on_an_unknown_one(project: Project) -> None:
    manifest = _manifest(project)
    _expect(project, ExitCode.OK, "apply", manifest, "--yes")
    for verb in ("pause", "resume", "run-now"):
        _expect(project, ExitCode.OK, verb, project.job("a"))
        _expect(project, ExitCode.PROBLEMS, verb, project.job("nope"))
    _expect(project, ExitCode.OK, "status")
    with cdb.connect(project.dsn, autocommit=True) as conn:
        conn.execute("select cron.schedule(%s, '0 0 1 1 *', 'select 1')", (project.job("by-hand"),))
    _expect(project, ExitCode.OK, "import", "--job", project.job("by-hand"))
    _expect(project, ExitCode.PROBLEMS, "import", "--job", project.job("nope"))
    _expect(project, ExitCode.NOT_CONFIRMED, "remove", project.job("a"))
    _expect(project, ExitCode.PROBLEMS, "remove", project.job("nope"), "--yes")
    _expect(project, ExitCode.OK, "remove", project.job("a"), "--yes")
    _expect(project, ExitCode.OK, "teardown", manifest)
    _expect(project, ExitCode.OK, "teardown", manifest, "--yes")


def test_secrets_exit_1_while_a_secret_is_missing_and_0_once_it_is_stored(project: Project) -> None:
    name = project.job("key")
    manifest = str(project.write(project.data({
        "name": project.job("a"), "schedule": "*/5 * * * *", "url": "http://127.0.0.1:9/functions/v1/fn",
        "headers": {"Authorization": "Bearer {secret:" + name + "}"},
    })))
    _expect(project, ExitCode.PROBLEMS, "secrets", "status", manifest)
    _expect(project, ExitCode.OK, "secrets", "set", name, "--backend", "vault", input="an-exit-code-test-value")
    _expect(project, ExitCode.OK, "secrets", "status", manifest)


def test_the_doctor_exits_2_on_a_critical_finding(project: Project, database_without_pg_cron: str) -> None:
    result = project.cli("doctor", "--dsn", database_without_pg_cron)
    assert result.returncode == ExitCode.CRITICAL, output(result)
    assert "PG_CRON_MISSING" in result.stdout


def test_sandbox_status_exits_0_while_it_runs(project: Project) -> None:
    from tests.conftest import TEST_STATE_DIR

    if project.target.external:
        pytest.skip("needs the local sandbox; CRONKIT_TEST_DSN is set")
    result = project.cli("sandbox", "--state-dir", str(TEST_STATE_DIR), "status")
    assert result.returncode == ExitCode.OK, output(result)
