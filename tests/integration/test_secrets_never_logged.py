"""No secret value reaches the server log or pg_stat_statements, whatever the server logs.

A private sandbox logs everything (``log_statement = 'all'``, ``log_min_duration_statement = 0``,
full bind parameters) and keeps pg_stat_statements with ``track = all``. For each backend (Vault,
the secrets table, ``app.settings.*``) a value is stored by ``apply``, replaced by ``secrets set``,
rotated by the rotate runbook, and removed by ``teardown --secrets``; none of the three values may
appear in the server log, in pg_stat_statements, or in any output.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cronkit import db as cdb
from cronkit.manifest import load_manifest
from cronkit.runbooks import rotate
from cronkit.runbooks.context import RunbookContext
from cronkit.secrets import backend_for
from cronkit_sandbox.manager import Sandbox, SandboxEnv
from tests.jobs_support import cli, output, private_sandbox, toml_text

LOG_EVERYTHING = {
    "shared_preload_libraries": "'pg_cron', 'pg_stat_statements'",
    "log_statement": "'all'",
    "log_min_duration_statement": "0",
    "log_parameter_max_length": "-1",
    "log_min_error_statement": "'info'",
    "pg_stat_statements.track": "'all'",
    "pg_stat_statements.track_utility": "on",
}


@dataclass
class Logged:
    sandbox: Sandbox
    env: SandboxEnv
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def statements(self) -> str:
        with cdb.connect(self.env.superuser_url, autocommit=True) as su:
            return "\n".join(r["query"] for r in su.execute("select query from pg_stat_statements").fetchall())


@pytest.fixture(scope="module")
def logged(sandbox_only: Any) -> Iterator[Logged]:
    with private_sandbox("logged") as lab:
        with cdb.connect(lab.env.superuser_url, autocommit=True) as su:
            for name, value in LOG_EVERYTHING.items():
                su.execute(f"ALTER SYSTEM SET {name} = {value}")  # type: ignore[arg-type]  # test constants
        lab.sandbox.down()
        env = lab.sandbox.up()
        with cdb.connect(env.superuser_url, autocommit=True) as su:
            su.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        yield Logged(lab.sandbox, env, lab.log)


def manifest_text(backend: str, key: str) -> dict[str, Any]:
    return {
        "project": f"logged-{backend}",
        "secrets": {"backend": backend, "sources": {key: "env:CK_LOGGED_KEY"}},
        "jobs": [{"name": f"logged-{backend}-call", "schedule": "0 0 1 1 *", "url": "http://127.0.0.1:9/x",
                  "headers": {"Authorization": f"Bearer {{secret:{key}}}"}}],
    }


@pytest.mark.parametrize("backend", ["vault", "table", "guc"])
def test_store_replace_rotate_and_delete_leave_no_value_in_logs_or_statistics(
    logged: Logged, backend: str, tmp_path: Path
) -> None:
    key = f"logged_{backend}_key"
    values = [f"{step}-{backend}-{uuid.uuid4().hex}" for step in ("applied", "replaced", "rotated")]
    # Supabase's postgres may store Vault and table secrets; app.settings.* need a superuser.
    dsn = logged.env.superuser_url if backend == "guc" else logged.env.database_url
    path = tmp_path / "cronkit.toml"
    path.write_text(toml_text(manifest_text(backend, key)), encoding="utf-8")
    outputs = []

    applied = cli("apply", str(path), "--yes", "--dsn", dsn, cwd=tmp_path, env={"CK_LOGGED_KEY": values[0]})
    assert applied.returncode == 0, output(applied)
    replaced = cli("secrets", "set", key, "--manifest", str(path), "--dsn", dsn, cwd=tmp_path, input=values[1])
    assert replaced.returncode == 0, output(replaced)
    ctx = RunbookContext(dsn=dsn, manifest=load_manifest(path), environment="default")
    rotation = rotate.rotate(ctx, key, values[2], True)
    assert getattr(rotation, "change").stored  # noqa: B009
    with cdb.connect(logged.env.superuser_url, autocommit=True) as su:
        stored = backend_for(ctx.manifest.secrets).values(su, [key])
    assert stored == {key: values[2]}, "the rotation stored the last value"
    torn = cli("teardown", str(path), "--secrets", "--yes", "--dsn", dsn, cwd=tmp_path)
    assert torn.returncode == 0, output(torn)
    outputs += [output(r) for r in (applied, replaced, torn)] + [repr(rotation)]

    log, statements = logged.log_text(), logged.statements()
    assert "statement:" in log and key in log, "the server logs every statement"
    assert key in statements, "pg_stat_statements tracks what cronkit ran"
    for value in values:
        assert value not in log, f"{value[:8]}… reached the server log"
        assert value not in statements, f"{value[:8]}… reached pg_stat_statements"
        assert all(value not in text for text in outputs), f"{value[:8]}… reached an output"


@pytest.mark.parametrize("refusal", [
    "owner text NOT NULL",  # a column the operator's own table needs and cronkit does not fill
    "CHECK (length(value) < 20)",  # a rule the value breaks
])
def test_a_refused_write_quotes_no_row_in_the_log_the_error_or_the_verbose_traceback(
    logged: Logged, refusal: str, tmp_path: Path
) -> None:
    table = f"hand_secrets_{uuid.uuid4().hex[:6]}"
    value = f"refused-{uuid.uuid4().hex}"
    with cdb.connect(logged.env.database_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE public.{table} (key text PRIMARY KEY, value text NOT NULL, {refusal})")  # type: ignore[arg-type]
    path = tmp_path / "cronkit.toml"
    path.write_text(toml_text({"project": "refused", "secrets": {"backend": "table", "table": f"public.{table}"}}),
                    encoding="utf-8")

    result = cli("-v", "secrets", "set", "refused_key", "--manifest", str(path), "--dsn", logged.env.database_url,
                 cwd=tmp_path, input=value)
    assert result.returncode == 1, output(result)
    assert "Could not store secret 'refused_key'" in result.stderr
    assert "Traceback (most recent call last)" in result.stderr, "-v shows the chain"
    assert value not in output(result)
    log = logged.log_text()
    assert table in log and "ERROR:" in log, "the refusal itself is logged"
    assert value not in log, "the refused row reached the server log"


def test_a_hand_made_table_without_the_named_columns_says_which_keys_to_set(logged: Logged, tmp_path: Path) -> None:
    table = f"hand_secrets_{uuid.uuid4().hex[:6]}"
    with cdb.connect(logged.env.database_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE public.{table} (secret_name text PRIMARY KEY, secret text NOT NULL)")  # type: ignore[arg-type]
    path = tmp_path / "cronkit.toml"
    path.write_text(toml_text({"project": "columns", "secrets": {"backend": "table", "table": f"public.{table}"}}),
                    encoding="utf-8")
    result = cli("secrets", "set", "k", "--manifest", str(path), "--dsn", logged.env.database_url, cwd=tmp_path,
                 input="columns-value-1")
    assert result.returncode == 1, output(result)
    assert "has no column 'key', 'value' (it has secret, secret_name)" in result.stderr
    assert "key_column = " in result.stderr and "Traceback" not in result.stderr
