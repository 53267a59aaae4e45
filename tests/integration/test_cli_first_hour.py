"""The command line in a new user's first hour: each rough edge met there, as a specification.

plan shows what changes job by job and `plan --sql` is a script psql runs; a closed pipe, an ended
prompt and a database without pg_cron end in a sentence, not a traceback; options a command would
ignore are refused; a deliberate pause is not a missed run.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pglast
import pytest

from cronkit import db as cdb
from cronkit.errors import ExitCode
from tests.jobs_support import (  # noqa: F401  (fixtures)
    Project,
    cli_command,
    cli_env,
    database_without_pg_cron,
    output,
    project,
)

SECRET_VALUE = "first-hour-secret-value-8c1e"


def _jobs(p: Project, key: str | None = None) -> str:
    headers = {"Authorization": "Bearer {secret:" + key + "}"} if key else {}
    return str(p.write(p.data(
        {"name": p.job("http"), "schedule": "*/5 * * * *", "url": "http://127.0.0.1:9/functions/v1/" + p.job("fn"),
         "headers": headers, "guard": "select true"},
        {"name": p.job("sql"), "schedule": "0 3 * * *", "sql": "select 1;\nselect 2"},
    )))


def test_plan_lists_what_each_job_would_run_without_pages_of_sql(project: Project) -> None:
    result = project.cli("plan", _jobs(project), "--dsn", project.dsn)

    assert result.returncode == ExitCode.OK, output(result)
    text = result.stdout
    assert f"calls POST http://127.0.0.1:9/functions/v1/{project.job('fn')} (timeout 5000 ms)" in text
    assert "only when: select true" in text
    assert "runs SQL: select 1; … (2 lines)" in text
    assert "CREATE OR REPLACE FUNCTION" not in text and "cron.schedule(" not in text
    assert len(text.splitlines()) < 20
    assert "cronkit plan --sql" in text


def test_an_update_shows_the_changed_lines_of_the_wrapper(project: Project) -> None:
    first = _jobs(project)
    assert project.cli("apply", first, "--yes", "--dsn", project.dsn).returncode == ExitCode.OK
    project.write(Path(first).read_text(encoding="utf-8").replace("select 2", "select 3"))

    text = project.cli("plan", first, "--dsn", project.dsn).stdout

    assert f"~ update    {project.job('sql')}  wrapper" in text, text
    changed = [line.strip() for line in text.splitlines()]
    assert any(line.startswith("-select 2") for line in changed) and any(line.startswith("+select 3") for line in changed)


def test_plan_sql_is_a_script_psql_runs_and_then_nothing_is_left_to_change(project: Project) -> None:
    key = project.job("key")
    stored = project.cli("secrets", "set", key, "--backend", "vault", "--dsn", project.dsn, input=SECRET_VALUE)
    assert stored.returncode == ExitCode.OK, output(stored)
    manifest = _jobs(project, key)

    result = project.cli("plan", manifest, "--sql", "--dsn", project.dsn)

    assert result.returncode == ExitCode.OK, output(result)
    script = result.stdout
    assert SECRET_VALUE not in script
    statements = pglast.split(script)  # PostgreSQL's own parser: every statement is complete
    assert statements[0] == "BEGIN" and statements[-1] == "COMMIT"
    assert script.rstrip().endswith("COMMIT;")
    with psycopg.connect(project.dsn, autocommit=True) as conn:
        psycopg.ClientCursor(conn).execute(script)  # as psql sends it: one script, simple protocol
    after = project.cli("plan", manifest, "--dsn", project.dsn)
    assert after.returncode == ExitCode.OK, output(after)
    assert "0 to create, 0 to update, 0 to remove, 2 unchanged" in after.stdout


def test_a_closed_pipe_ends_the_output_quietly(project: Project) -> None:
    command = " ".join(f"'{a}'" for a in cli_command("plan", _jobs(project), "--sql", "--dsn", project.dsn))
    result = subprocess.run(["bash", "-c", f"{command} | head -n 1"], capture_output=True, text=True,
                            cwd=project.dir, env=cli_env(), timeout=60, check=False)

    assert result.stdout.strip().startswith("-- cronkit plan")
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr


def test_ctrl_d_at_the_hidden_prompt_stores_nothing_and_says_how_to_answer(project: Project) -> None:
    key = project.job("eof")
    main, terminal = os.openpty()  # a terminal, so the value is asked for at a hidden prompt
    try:
        process = subprocess.Popen(cli_command("secrets", "set", key, "--backend", "vault", "--dsn", project.dsn),
                                   stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   cwd=project.dir, env=cli_env(), start_new_session=True)
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            os.write(main, b"\x04")  # Ctrl-D at the start of a line: end of input (again, once the prompt
            time.sleep(0.3)           # flushed what was typed before it)
        _out, err = process.communicate(timeout=10)
    finally:
        os.close(main)
        os.close(terminal)

    assert process.returncode == ExitCode.NOT_CONFIRMED, err
    assert "Traceback" not in err and "input ended" in err
    status = project.cli("secrets", "status", _jobs(project, key), "--dsn", project.dsn)
    assert "missing" in status.stdout


@pytest.mark.parametrize("command", [("status",), ("pause", "x"), ("import",), ("plan", "MANIFEST")])
def test_a_database_without_pg_cron_says_where_pg_cron_runs(project: Project, database_without_pg_cron: str,
                                                            command: tuple[str, ...]) -> None:
    args = [_jobs(project) if a == "MANIFEST" else a for a in command]
    result = project.cli(*args, "--dsn", database_without_pg_cron)

    assert result.returncode != ExitCode.OK and "Traceback" not in output(result)
    assert "WRONG_CRON_DATABASE" in result.stderr and "runs in database" in result.stderr
    assert "Point DATABASE_URL" in result.stderr


def test_teardown_refuses_options_it_would_ignore(project: Project) -> None:
    for option in ("--adopt", "--env=cloud"):
        result = project.cli("teardown", _jobs(project), option, "--dsn", project.dsn)
        assert result.returncode == ExitCode.USAGE, output(result)
        assert "unrecognized arguments" in result.stderr


def _updated_at(p: Project, name: str) -> Any:
    with cdb.connect(p.dsn, autocommit=True) as conn:
        row = conn.execute("select updated_at from cronkit.managed_jobs where jobname = %s", (name,)).fetchone()
    assert row is not None
    return row["updated_at"]


def test_resuming_a_job_moves_where_missed_run_detection_starts(project: Project) -> None:
    assert project.cli("apply", _jobs(project), "--yes", "--dsn", project.dsn).returncode == ExitCode.OK
    name = project.job("sql")
    applied = _updated_at(project, name)

    assert project.cli("pause", name, "--dsn", project.dsn).returncode == ExitCode.OK
    assert _updated_at(project, name) == applied  # pausing keeps the anchor: misses before it still count
    assert project.cli("resume", name, "--dsn", project.dsn).returncode == ExitCode.OK

    resumed = _updated_at(project, name)
    assert resumed > applied  # slots while it was paused are not expected: a deliberate pause is no missed run


def test_secrets_set_stores_into_a_named_secrets_table(project: Project) -> None:
    table = f"public.{project.prefix}secrets"
    with cdb.connect(project.dsn, autocommit=True) as conn:
        conn.execute(f"create table {table} (key text primary key, value text not null)")  # type: ignore[arg-type]
    try:
        stored = project.cli("secrets", "set", "k1", "--table", table, "--dsn", project.dsn, input=SECRET_VALUE)
        assert stored.returncode == ExitCode.OK, output(stored)
        assert f"(table {table})" in stored.stdout and SECRET_VALUE not in output(stored)
        with cdb.connect(project.dsn, autocommit=True) as conn:
            row = conn.execute(f"select value from {table} where key = 'k1'").fetchone()  # type: ignore[arg-type]
        assert row == {"value": SECRET_VALUE}
        clash = project.cli("secrets", "set", "k1", "--table", table, "--backend", "vault", "--dsn", project.dsn,
                            input=SECRET_VALUE)
        assert clash.returncode == ExitCode.CONFIG and "--table names a secrets table" in clash.stderr
    finally:
        with cdb.connect(project.dsn, autocommit=True) as conn:
            conn.execute(f"drop table if exists {table}")  # type: ignore[arg-type]


def test_import_with_nothing_to_import_says_so_instead_of_printing_an_empty_manifest(project: Project) -> None:
    result = project.cli("import", "--match", f"^{project.prefix}nothing-matches-this$", "--dsn", project.dsn)

    assert result.returncode == ExitCode.PROBLEMS and result.stdout == ""
    assert "There is no job to import" in result.stderr and "cronkit status" in result.stderr
