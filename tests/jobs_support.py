"""Shared helpers of the jobs-as-code acceptance tests (``tests/integration/test_jobs_*.py``, ``tests/acceptance/test_jobs_examples.py``).

The test database is shared with other engineers' sessions, so everything a test creates is
named with its ``job_prefix``: the manifest's ``project``, its job names, secret names, tables,
Edge functions. :class:`Project` writes manifests, runs the CLI against the test database and,
when the test ends, removes everything carrying its prefix (jobs, wrappers, registry rows,
secrets, tables, settings, Edge function behaviours) — and nothing else.

"The database is unchanged" is checked with :func:`snapshot`, which reads ``cron.job``,
``cronkit.managed_jobs``, the functions in schema ``cronkit``, Vault secret names, tables and
``app.*`` settings — restricted to the prefix, because other sessions change the rest at any
time. Every input a test feeds cronkit carries the prefix, so anything it could create would too.
"""

from __future__ import annotations

from contextlib import contextmanager

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cronkit import db as cdb
from cronkit.manifest import Manifest, parse_manifest
from cronkit.plan import Plan, apply, make_plan

ROOT = Path(__file__).resolve().parent.parent
Conn = psycopg.Connection[dict[str, Any]]

# -- TOML -----------------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def toml_text(data: Mapping[str, Any]) -> str:
    """TOML for a manifest-shaped dict: scalars first, then tables, then arrays of tables.

    Nested tables inside ``[[jobs]]`` become inline tables, so any value a test wants to feed
    cronkit (wrong types included) can be written.
    """
    lines: list[str] = []
    tables: list[tuple[str, Any]] = []
    for key, value in data.items():
        is_table_array = isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
        if isinstance(value, dict) or is_table_array:
            tables.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in tables:
        if isinstance(value, dict):
            lines += ["", f"[{_key(key)}]", *(f"{_key(k)} = {_value(v)}" for k, v in value.items())]
        else:
            for item in value:
                lines += ["", f"[[{_key(key)}]]", *(f"{_key(k)} = {_value(v)}" for k, v in item.items())]
    return "\n".join(lines) + "\n"


# -- the CLI --------------------------------------------------------------------------------------


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a cronkit process: none of the caller's database or cronkit variables."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("PG", "CRONKIT_", "SUPABASE_")) and k != "DATABASE_URL"}
    return {**base, "PYTHONPATH": str(ROOT), **(extra or {})}


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cronkit.cli", *args]


def cli(*args: str, cwd: Path, env: Mapping[str, str] | None = None, input: str | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``cronkit ARGS`` as a user would: a new process, no terminal, only the given variables.

    ``cwd`` should be a test's own directory, so no ``.env`` of the working tree is read.
    """
    return subprocess.run(
        cli_command(*args), capture_output=True, text=True, cwd=cwd, timeout=timeout, env=cli_env(env),
        input=input, stdin=None if input is not None else subprocess.DEVNULL,
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def dsn_for_database(dsn: str, dbname: str) -> str:
    return make_conninfo(dsn, dbname=dbname)


@pytest.fixture
def database_without_pg_cron(project: Project, su: psycopg.Connection[Any]) -> Iterator[str]:
    """A database of the test cluster without pg_cron (its scheduler serves another one)."""
    from psycopg import sql

    name = project.prefix + "db"
    su.execute(sql.SQL("CREATE DATABASE {} OWNER postgres").format(sql.Identifier(name)))
    yield dsn_for_database(project.dsn, name)
    su.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def password_of(dsn: str) -> str:
    """The DSN's password when a leak check can look for it: not empty and not the role's or the
    database's name (a database whose password is ``postgres`` prints "postgres" for other reasons)."""
    parts = conninfo_to_dict(dsn)
    password = str(parts.get("password") or "")
    if password in ("", parts.get("user"), parts.get("dbname"), "postgres"):
        return ""
    return password


# -- reading the database -------------------------------------------------------------------------


def like(prefix: str) -> str:
    """A LIKE pattern matching names that start with ``prefix`` (its ``_`` taken literally)."""
    return prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"


def slug(prefix: str) -> str:
    """How a wrapper's name starts for jobs named with ``prefix`` (see cronkit.wrappers.wrapper_name)."""
    return "job_" + re.sub(r"[^a-z0-9]+", "_", prefix.lower()).strip("_")


def registry_exists(conn: Conn) -> bool:
    return bool(conn.execute("select to_regclass('cronkit.managed_jobs') is not null as ok").fetchone()["ok"])


def snapshot(conn: Conn, prefix: str) -> dict[str, Any]:
    """Everything cronkit could have created for inputs named with ``prefix``."""
    pattern = like(prefix)
    state: dict[str, Any] = {
        "cron.job": conn.execute(
            "select jobid, jobname, schedule, command, active, username, database from cron.job "
            "where jobname like %s or command like %s order by jobid",
            (pattern, "%" + pattern),
        ).fetchall(),
        "schema cronkit": conn.execute("select to_regnamespace('cronkit') is not null as exists").fetchone(),
        "vault": conn.execute("select name, md5(secret) as secret from vault.secrets where name like %s order by name",
                              (pattern,)).fetchall(),
        "tables": conn.execute("select relnamespace::regnamespace::text as schema, relname from pg_class "
                               "where relname like %s order by 1, 2", (pattern,)).fetchall(),
        "settings": conn.execute(
            "select cfg from pg_db_role_setting s, unnest(s.setconfig) cfg where cfg like %s order by cfg",
            ("%" + pattern,),
        ).fetchall(),
        "managed_jobs": [],
        "functions": [],
    }
    if registry_exists(conn):
        state["managed_jobs"] = conn.execute(
            "select jobname, project, wrapper, spec, spec_hash from cronkit.managed_jobs "
            "where project like %s or jobname like %s order by jobname", (pattern, pattern),
        ).fetchall()
        state["functions"] = conn.execute(
            "select proname, md5(prosrc) as source from pg_proc where pronamespace = 'cronkit'::regnamespace "
            "and (proname like %s or prosrc like %s) order by proname",
            (like(slug(prefix)), "%" + pattern),
        ).fetchall()
    return state


def job_row(conn: Conn, name: str) -> dict[str, Any] | None:
    return conn.execute("select jobid, jobname, schedule, command, active, username from cron.job where jobname = %s",
                        (name,)).fetchone()


def registry_row(conn: Conn, name: str) -> dict[str, Any] | None:
    return conn.execute("select jobname, project, wrapper, spec, spec_hash, jobid, username from cronkit.managed_jobs where jobname = %s",
                        (name,)).fetchone()


def wrapper_source(conn: Conn, regprocedure: str) -> str | None:
    row = conn.execute("select prosrc from pg_proc where oid = to_regprocedure(%s)", (regprocedure,)).fetchone()
    return row["prosrc"] if row else None


def db_now(conn: Conn) -> Any:
    return conn.execute("select clock_timestamp() as now").fetchone()["now"]


def away_from_minute_boundary(conn: Conn, *, after: float = 3.0, before: float = 52.0) -> None:
    """Sleep until the clock is between ``after`` and ``before`` seconds past a minute.

    pg_cron 1.4.2 starts every-minute jobs at second 0: a change made in this window is
    committed well before the next run starts, so "the next run" sees it.
    """
    second = float(conn.execute("select extract(second from clock_timestamp()) as s").fetchone()["s"])
    if second < after:
        time.sleep(after - second)
    elif second > before:
        time.sleep(60 - second + after)


def frequent_schedule(version: Any) -> str:
    """The most frequent schedule this pg_cron runs: a few seconds on 1.5+, every minute on 1.4.2."""
    return "3 seconds" if version.supports_seconds else "* * * * *"


@contextmanager
def between_runs(conn: Conn, jobnames: list[str], version: Any) -> Iterator[None]:
    """Make a change that "the next run" of ``jobnames`` must see, with no run in flight meanwhile.

    Seconds schedules: the jobs are paused, in-flight calls delivered, and resumed afterwards.
    pg_cron 1.4.2: wait until well away from a minute boundary (its runs start at second 0).
    """
    if not version.supports_seconds:
        away_from_minute_boundary(conn)
        yield
        return
    ids = [r["jobid"] for r in conn.execute("select jobid from cron.job where jobname = any(%s)", (jobnames,))]
    for jobid in ids:
        conn.execute("select cron.alter_job(%s, active := false)", (jobid,))
    time.sleep(1.5)  # a run that started just before the pause has its request delivered by now
    try:
        yield
    finally:
        for jobid in ids:
            conn.execute("select cron.alter_job(%s, active := true)", (jobid,))


def last_invocation_id(edge: Any) -> int:
    records = edge.invocations()
    return max((r["id"] for r in records), default=0)


# -- a test's project -----------------------------------------------------------------------------


class Project:
    """A manifest project named after a test's job prefix, and everything that belongs to it."""

    def __init__(self, prefix: str, target: Any, directory: Path) -> None:
        self.prefix = prefix
        self.name = prefix
        self.target = target
        self.dir = directory
        self.dsn = target.database_url
        self._functions: list[str] = []

    def __repr__(self) -> str:
        return f"Project({self.prefix!r})"

    def job(self, suffix: str) -> str:
        return self.prefix + suffix

    def data(self, *jobs: Mapping[str, Any], **top: Any) -> dict[str, Any]:
        """A manifest dict for this project."""
        return {"project": self.name, **top, "jobs": [dict(j) for j in jobs]}

    def write(self, content: Mapping[str, Any] | str, filename: str = "cronkit.toml") -> Path:
        path = self.dir / filename
        path.write_text(content if isinstance(content, str) else toml_text(content), encoding="utf-8")
        return path

    def manifest(self, data: Mapping[str, Any]) -> Manifest:
        return parse_manifest(data, self.dir / "cronkit.toml")

    def function(self, suffix: str = "fn", **behaviour: Any) -> str:
        """An Edge function of this test (reset afterwards); answers 200 unless configured otherwise."""
        name = self.prefix + suffix
        self.target.edge.configure(name, **behaviour)
        self._functions.append(name)
        return name

    def cli(self, *args: str, env: Mapping[str, str] | None = None, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return cli(*args, cwd=self.dir, env=env, input=input, timeout=timeout)

    def plan(self, data: Mapping[str, Any], environ: Mapping[str, str] | None = None, **kwargs: Any) -> tuple[Plan, str, dict[str, Any]]:
        """(plan, its text — what `cronkit plan` shows, then the script `cronkit plan --sql` prints —, its
        JSON form), read in a transaction that is rolled back."""
        with cdb.connect(self.dsn) as conn:
            plan = make_plan(conn, self.manifest(data), environ=environ or {}, **kwargs)
            text = plan.render() + "\n" + plan.script(conn)
            as_json = json.loads(json.dumps(plan.as_dict(conn), default=str))
            conn.rollback()
        return plan, text, as_json

    def apply(self, data: Mapping[str, Any], environ: Mapping[str, str] | None = None, **kwargs: Any) -> Plan:
        with cdb.connect(self.dsn) as conn:
            return apply(conn, self.manifest(data), environ=environ or {}, **kwargs).plan

    def cleanup(self) -> None:
        pattern = like(self.prefix)
        with cdb.connect(self.dsn, autocommit=True) as conn:
            if registry_exists(conn):
                for row in conn.execute(
                    "select m.jobname, m.wrapper, j.jobid from cronkit.managed_jobs m "
                    "left join cron.job j on j.jobname = m.jobname and j.username = current_user "
                    "where m.project = %s or m.jobname like %s", (self.name, pattern),
                ).fetchall():
                    if row["jobid"] is not None:
                        conn.execute("select cron.unschedule(%s::bigint)", (row["jobid"],))
                    conn.execute("delete from cronkit.managed_jobs where jobname = %s", (row["jobname"],))
                for row in conn.execute(
                    "select oid::regprocedure::text as fn from pg_proc "
                    "where pronamespace = 'cronkit'::regnamespace and proname like %s", (like(slug(self.prefix)),),
                ).fetchall():
                    conn.execute(f"drop function if exists {row['fn']}")  # type: ignore[arg-type]
            for row in conn.execute("select jobid from cron.job where jobname like %s and username = current_user",
                                    (pattern,)).fetchall():
                conn.execute("select cron.unschedule(%s::bigint)", (row["jobid"],))
            conn.execute("delete from vault.secrets where name like %s", (pattern,))
            for row in conn.execute(
                "select format('%%I.%%I', relnamespace::regnamespace, relname) as tbl from pg_class "
                "where relname like %s and relkind = 'r'", (pattern,),
            ).fetchall():
                conn.execute(f"drop table if exists {row['tbl']}")  # type: ignore[arg-type]
        if self.target.superuser_url:
            with cdb.connect(self.target.superuser_url, autocommit=True) as su:
                for row in su.execute(
                    "select split_part(cfg, '=', 1) as name from pg_db_role_setting s, unnest(s.setconfig) cfg "
                    "where s.setdatabase = (select oid from pg_database where datname = current_database()) "
                    "and s.setrole = 0 and cfg like %s", ("%" + pattern,),
                ).fetchall():
                    su.execute(f'alter database {su.info.dbname} reset "{row["name"]}"')  # type: ignore[arg-type]
        for name in self._functions:
            self.target.edge.reset(name)


@pytest.fixture
def project(sandbox: Any, job_prefix: str, tmp_path: Path) -> Iterator[Project]:
    """A project named after the test's job prefix; everything it created is removed afterwards."""
    created = Project(job_prefix, sandbox, tmp_path)
    yield created
    created.cleanup()


@pytest.fixture(scope="session")
def cronkit_schema(sandbox: Any) -> None:
    """Schema cronkit exists (an apply of an empty manifest creates it when no one has yet)."""
    with cdb.connect(sandbox.database_url) as conn:
        apply(conn, parse_manifest({"project": "cronkit-tests-schema"}), environ={})


def sandbox_log_files() -> list[Path]:
    """The test sandbox's logs: its daemons' (``logs/*.log``) and PostgreSQL's server log."""
    from cronkit_sandbox.manager import Sandbox

    state_dir = next(Path(m.TEST_STATE_DIR) for m in list(sys.modules.values())
                     if Path(getattr(m, "__file__", None) or "").name == "conftest.py" and hasattr(m, "TEST_STATE_DIR"))
    state = Sandbox(state_dir).load_state()
    assert state is not None, f"no sandbox in {state_dir}"
    return sorted((state_dir / "logs").glob("*.log")) + [Path(state.pg_home) / "postgres.log"]


@dataclass
class PrivateSandbox:
    """A sandbox of a test module's own, for what must not touch the shared one (server settings,
    the guides' fixed names)."""

    sandbox: Any
    env: Any
    log: Path


@contextmanager
def private_sandbox(prefix: str) -> Iterator[PrivateSandbox]:
    """A fresh sandbox (the test engine's PostgreSQL) in a temporary directory, removed afterwards."""
    from cronkit_sandbox.manager import Sandbox

    from tests.conftest import TEST_POSTGRES

    base = Path(tempfile.mkdtemp(prefix=f"cronkit-{prefix}-", dir="/tmp"))
    os.chmod(base, 0o755)  # the cluster's OS user must reach its data directory
    sandbox = Sandbox(base / "lab")
    try:
        env = sandbox.up(postgres=TEST_POSTGRES)
        state = sandbox.load_state()
        assert state is not None
        yield PrivateSandbox(sandbox, env, sandbox._cluster(state).logfile)
    finally:
        sandbox.down(reset=True)
        shutil.rmtree(base, ignore_errors=True)
