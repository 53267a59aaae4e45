"""Bad input through the CLI: a clear error, a non-zero exit status, and the database unchanged.

Each case writes a manifest (or none), runs the commands a user would, and checks every command's
exit status and message. Before and after, the test takes a :func:`snapshot` of ``cron.job``,
``cronkit.managed_jobs``, the functions of schema ``cronkit``, Vault secret names, tables and
settings named with the test's prefix — everything the case could have created — and they must
be equal. No output may contain a Python traceback, a password or a key.

Names and bodies with quotes, ``$$`` and ``;`` are not bad input: they are stored literally and
nothing is injected (see the last tests).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql

from cronkit import db as cdb
from cronkit.wrappers import wrapper_name
from tests.helpers import fake_jwt
from tests.jobs_support import (
    Project,
    cronkit_schema,  # noqa: F401 - fixture
    dsn_for_database,
    job_row,
    output,
    password_of,
    project,  # noqa: F401 - fixture
    registry_row,
    snapshot,
)

Conn = psycopg.Connection[dict[str, Any]]
pytestmark = pytest.mark.usefixtures("cronkit_schema")

JWT = fake_jwt()
UNREACHABLE = "postgresql://postgres:x@127.0.0.1:1/postgres"
SECRET_INPUT = "bad-input-secret-value-3f9c1e"

PLAN = ("plan", "{file}", "--dsn", "{dsn}")
APPLY = ("apply", "{file}", "--yes", "--dsn", "{dsn}")
NOTHING_APPLIED = "cronkit: nothing applied: fix the problems above first."

Manifest = Callable[[Project], dict[str, Any] | str | None]


@dataclass(frozen=True)
class Run:
    args: tuple[str, ...]
    exit: int
    says: tuple[str, ...]
    input: str | None = None


@dataclass(frozen=True)
class Bad:
    manifest: Manifest
    runs: tuple[Run, ...]
    env: dict[str, str] = field(default_factory=dict)
    setup: str | None = None  # "foreign job" | "database without pg_cron"


def job(p: Project, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": p.job("a"), "schedule": "*/5 * * * *", "sql": "select 1"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def http(p: Project, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"sql": None, "url": "http://127.0.0.1:9/functions/v1/fn",
                              "headers": {"Authorization": "Bearer {secret:" + p.job("key") + "}"}}
    return job(p, **{**fields, **changes})


def refused_by_plan(manifest: Manifest, *says: str, env: dict[str, str] | None = None, setup: str | None = None) -> Bad:
    """The manifest loads, but the plan has a problem: plan exits 1, and apply --yes applies nothing."""
    return Bad(manifest, (Run(PLAN, 1, ("PROBLEM: ", *says)), Run(APPLY, 1, ("PROBLEM: ", *says, NOTHING_APPLIED))),
               env or {}, setup)


def refused_on_load(manifest: Manifest, *says: str) -> Bad:
    """The manifest itself is invalid: every command says where, before connecting."""
    return Bad(manifest, (Run(PLAN, 78, ("cronkit: error: ", *says)), Run(APPLY, 78, ("cronkit: error: ", *says))))


def refused(*runs: Run, manifest: Manifest = lambda p: None, setup: str | None = None) -> Bad:
    return Bad(manifest, runs, {}, setup)


CASES = [
    # schedules the installed pg_cron refuses or misreads — refused at plan time, with the remedy (the
    # compat cases: what only pg_cron 1.4.2 refuses)
    pytest.param(refused_by_plan(lambda p: p.data(job(p, schedule="61 * * * *")),
                                 "invalid schedule '61 * * * *': minute 61 is out of range 0-59",
                                 "Use 5-field cron syntax"), id="malformed cron"),
    pytest.param(refused_by_plan(lambda p: p.data(job(p, schedule="60 seconds")),
                                 "60 seconds is out of range 1-59", "for a minute or longer use cron syntax"),
                 id="60 seconds"),
    pytest.param(refused_by_plan(lambda p: p.data(job(p, schedule="0 12 $ * *")),
                                 "uses '$' (last day of the month), which needs pg_cron 1.6 or later; this database has 1.4.2",
                                 "Upgrade pg_cron to 1.6 or later"), id="$ on pg_cron 1.4.2", marks=pytest.mark.compat),
    pytest.param(refused_by_plan(lambda p: p.data(job(p, schedule="10 seconds")),
                                 "'10 seconds' needs pg_cron 1.5 or later; this database has 1.4.2",
                                 "give this environment its own schedule, e.g. '* * * * *'"), id="10 seconds on pg_cron 1.4.2",
                 marks=pytest.mark.compat),
    # SQL the server cannot parse: found at plan time by the server itself, not on every run
    pytest.param(refused_by_plan(lambda p: p.data(job(p, sql="selec 1 from pg_class")),
                                 "sql: the server cannot parse it (syntax error at or near \"selec\")"),
                 id="sql with a syntax error"),
    pytest.param(refused_by_plan(lambda p: p.data(job(p, guard="exists (select from where)")),
                                 "guard: the server cannot parse it (syntax error at or near"),
                 id="guard with a syntax error"),
    pytest.param(refused_by_plan(lambda p: p.data(job(p, sql="select 1; selec 2;")),
                                 "sql: the server cannot parse it"), id="second statement with a syntax error"),
    # what pg_net or PostgreSQL would refuse on every run: refused when the manifest is read
    pytest.param(refused_on_load(lambda p: p.data(http(p, url="http://127.0.0.1:9/functions/v1/a b")),
                                 "jobs[0].url: contains a space", "%20"), id="url with a space"),
    pytest.param(refused_on_load(lambda p: p.data(http(p, headers={"Authorization": "Bearer {secret:my key}"})),
                                 "jobs[0].headers.Authorization: '{secret:my key}' is not a valid reference"),
                 id="secret reference with a space"),
    pytest.param(refused_on_load(lambda p: p.data(job(p), secrets={"backend": "table", "table": "public.My Secrets"}),
                                 "secrets.table: 'public.My Secrets' is not a plain lower-case SQL name"),
                 id="secrets table with a space and capitals"),
    pytest.param(refused_by_plan(lambda p: p.data(job(p, schedule="*/5 * * * * *")),
                                 "pg_cron ignores everything after the fifth field"), id="6-field expression"),
    # the manifest's shape
    pytest.param(refused_on_load(lambda p: {**p.data(job(p)), "jobz": []}, "cronkit.toml: jobz: unknown key",
                                 "fix: Known keys here"), id="unknown top-level key"),
    pytest.param(refused_on_load(lambda p: p.data(job(p, schedul="* * * * *")), "cronkit.toml: jobs[0].schedul: unknown key"),
                 id="unknown job key"),
    pytest.param(refused_on_load(lambda p: p.data(job(p), secrets={"backnd": "vault"}),
                                 "cronkit.toml: secrets.backnd: unknown key"), id="unknown secrets key"),
    pytest.param(refused_on_load(lambda p: p.data(job(p), environments={"sandbox": {"jobs": {p.job("a"): {"sql": "select 2"}}}}),
                                 "environments.sandbox.jobs.", ".sql: unknown key"), id="unknown environment override key"),
    pytest.param(refused_on_load(lambda p: p.data(job(p, timeout_ms="30s")),
                                 "cronkit.toml: jobs[0].timeout_ms: expected int, got str '30s'"), id="wrong type: timeout"),
    pytest.param(refused_on_load(lambda p: p.data(job(p, active="no")),
                                 "cronkit.toml: jobs[0].active: expected bool, got str 'no'"), id="wrong type: active"),
    pytest.param(refused_on_load(lambda p: p.data(job(p), environments={"sandbox": {"jobs": {p.job("a"): "* * * * *"}}}),
                                 "expected a table, got str '* * * * *'"), id="wrong type: environment override"),
    pytest.param(refused_on_load(lambda p: p.data(job(p), job(p)),
                                 "cronkit.toml: jobs[1].name: duplicate job name", "(also jobs[0])"), id="duplicate job names"),
    pytest.param(refused_on_load(lambda p: f'project = "{p.name}"\n[[jobs]]\nname = "a"\nschedule = "* * * * *\n',
                                 "cronkit.toml: not valid TOML"), id="TOML syntax error"),
    pytest.param(refused_on_load(lambda p: p.data(http(p, headers={"Authorization": f"Bearer {JWT}"})),
                                 "jobs[0].headers.Authorization: contains what looks like a literal key or JWT",
                                 "cronkit secrets set NAME"), id="literal JWT in a header"),
    pytest.param(refused_on_load(lambda p: p.data(http(p, headers={"Authorization": "Bearer {env:SUPABASE_SERVICE_ROLE_KEY}"})),
                                 "jobs[0].headers.Authorization: {env:...} is not allowed in headers", "{secret:NAME}"),
                 id="env template in a header"),
    pytest.param(refused_on_load(lambda p: p.data(job(p, sql="VACUUM")), "jobs[0].sql: VACUUM cannot run inside a function"),
                 id="sql that cannot run in a wrapper"),
    pytest.param(refused(Run(("plan", "{dir}/missing.toml", "--dsn", "{dsn}"), 78, ("missing.toml does not exist",))),
                 id="manifest file missing"),
    pytest.param(refused(Run(("plan", "{file}", "--env", "prod", "--dsn", "{dsn}"), 78,
                             ("environment 'prod' is not defined", "Use one of: sandbox")),
                         manifest=lambda p: p.data(job(p), environments={"sandbox": {}})), id="undefined environment"),
    pytest.param(refused(Run(PLAN, 78, ("url needs the environment variable CK_UNSET_URL, which is not set",)),
                         manifest=lambda p: p.data(http(p, url="{env:CK_UNSET_URL}/x"))), id="unset environment variable"),
    # secrets
    pytest.param(refused_by_plan(lambda p: p.data(http(p)),
                                 "is missing in vault: store it with `cronkit secrets set"), id="missing secret"),
    pytest.param(refused_by_plan(lambda p: p.data(http(p), secrets={"sources": {p.job("key"): "env:CK_UNSET"}}),
                                 "is missing in vault", "or set CK_UNSET"), id="missing secret, source unset"),
    pytest.param(refused_by_plan(lambda p: p.data(http(p), secrets={"sources": {p.job("key"): "env:CK_KEY"}}),
                                 "holds a placeholder, not a real value", env={"CK_KEY": "your-service-role-key"}),
                 id="placeholder secret"),
    pytest.param(refused_by_plan(lambda p: p.data(http(p), secrets={"backend": "guc", "sources": {p.job("key"): "env:CK_KEY"}}),
                                 "may not set app.* settings (GUC_SECRETS_UNSUPPORTED)", "Use Vault instead",
                                 env={"CK_KEY": SECRET_INPUT}), id="guc backend as non-superuser"),
    pytest.param(refused_by_plan(lambda p: p.data(http(p), secrets={"backend": "guc"}),
                                 "may not set app.* settings (GUC_SECRETS_UNSUPPORTED)", "Use Vault instead"),
                 id="guc secret missing as non-superuser"),
    pytest.param(refused(Run(("secrets", "set", "{prefix}key", "--backend", "guc", "--dsn", "{dsn}"), 1,
                             ("only a superuser may `ALTER DATABASE ... SET` custom settings", "Use Vault instead"),
                             input=SECRET_INPUT)), id="secrets set with guc as non-superuser"),
    pytest.param(refused(Run(("secrets", "set", "{prefix}key", "--from-env", "CK_UNSET", "--dsn", "{dsn}"), 78,
                             ("CK_UNSET is not set (in the environment or .env).",))), id="secrets set from an unset variable"),
    # the database
    pytest.param(refused(Run(("plan", "{file}", "--dsn", UNREACHABLE), 69,
                             ("Could not connect to", "host=127.0.0.1 port=1", "Connection refused", "fix: Check DATABASE_URL")),
                         Run(("status", "--dsn", UNREACHABLE), 69, ("host=127.0.0.1 port=1",)),
                         manifest=lambda p: p.data(job(p))), id="unreachable DSN"),
    # pg_cron's scheduler serves the cluster's main database: the error says where to connect
    pytest.param(refused(Run(("plan", "{file}", "--dsn", "{other_dsn}"), 1,
                             ("pg_cron runs in database", "(WRONG_CRON_DATABASE)", "Point DATABASE_URL")),
                         Run(("apply", "{file}", "--yes", "--dsn", "{other_dsn}"), 1, ("pg_cron runs in database",)),
                         manifest=lambda p: p.data(job(p)), setup="database without pg_cron"), id="missing extension"),
    pytest.param(refused_by_plan(lambda p: p.data(job(p)), "already exists (jobid", "was not created by cronkit",
                                 "re-run with --adopt", setup="foreign job"), id="foreign job name clash"),
    # jobs that do not exist
    pytest.param(refused(*(Run((verb, "{prefix}nope", "--dsn", "{dsn}"), 1, ("No job named '{prefix}nope'", "cronkit status")) for
                           verb in ("pause", "resume", "run-now"))), id="unknown job for pause, resume, run-now"),
    pytest.param(refused(Run(("remove", "{prefix}nope", "--yes", "--dsn", "{dsn}"), 1, ("No job named '{prefix}nope'",))),
                 id="unknown job for remove"),
    # confirmation
    pytest.param(refused(Run(("apply", "{file}", "--dsn", "{dsn}"), 3,
                             ("Nothing was changed: 1 change(s) planned but not confirmed", "re-run with --yes")),
                         manifest=lambda p: p.data(job(p))), id="apply without --yes and without a terminal"),
    pytest.param(refused(Run(("apply", "--yes", "--dsn", "{dsn}"), 64, ("the following arguments are required: manifest",))),
                 id="apply without a manifest"),
]


@pytest.fixture
def other_database(project: Project, su: Conn) -> Iterator[str]:
    """A database of the app role without any extension (pg_cron lives only in `postgres`)."""
    name = project.prefix + "db"
    su.execute(sql.SQL("CREATE DATABASE {} OWNER postgres").format(sql.Identifier(name)))
    yield dsn_for_database(project.dsn, name)
    su.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gets_a_clear_error_a_nonzero_exit_and_changes_nothing(
    case: Bad, project: Project, db: Conn, request: pytest.FixtureRequest
) -> None:
    fill = {"dsn": project.dsn, "prefix": project.prefix, "dir": str(project.dir), "other_dsn": ""}
    if case.setup == "foreign job":
        db.execute("select cron.schedule(%s, '*/9 * * * *', 'select 42')", (project.job("a"),))
    if case.setup == "database without pg_cron":
        fill["other_dsn"] = request.getfixturevalue("other_database")
    content = case.manifest(project)
    fill["file"] = str(project.write(content)) if content is not None else str(project.dir / "cronkit.toml")
    before = snapshot(db, project.prefix)

    for run in case.runs:
        args = [_fill(arg, fill) for arg in run.args]
        result = project.cli(*args, env=case.env, input=run.input)
        text = output(result)
        assert result.returncode == run.exit, f"{args}:\n{text}"
        for expected in run.says:
            assert _fill(expected, fill) in text, f"{args}: {expected!r} not in:\n{text}"
        assert "Traceback" not in text
        for secret in filter(None, (password_of(project.dsn), JWT, SECRET_INPUT, "postgres:x@", "password=x ")):
            assert secret not in text

    assert snapshot(db, project.prefix) == before
    if fill["other_dsn"]:
        with cdb.connect(fill["other_dsn"], autocommit=True) as other:
            assert other.execute("select to_regnamespace('cronkit') is null as untouched").fetchone()["untouched"]


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def test_there_are_at_least_twenty_bad_input_cases() -> None:
    assert len(CASES) >= 20


def test_adopt_takes_over_the_job_whose_name_clashed(project: Project, db: Conn) -> None:
    name = project.job("a")
    db.execute("select cron.schedule(%s, '*/9 * * * *', 'select 42')", (name,))
    jobid = job_row(db, name)["jobid"]  # type: ignore[index]
    path = project.write(project.data(job(project)))

    result = project.cli("apply", str(path), "--adopt", "--yes", "--dsn", project.dsn)

    assert result.returncode == 0, output(result)
    assert f"~ update    {name}  schedule '*/9 * * * *' → '*/5 * * * *', command, adopt a job cronkit did not create" in result.stdout
    assert job_row(db, name) == {"jobid": jobid, "jobname": name, "schedule": "*/5 * * * *",
                                 "command": f'SELECT "cronkit"."{wrapper_name(name)}"()', "active": True, "username": "postgres"}
    assert registry_row(db, name)["project"] == project.name  # type: ignore[index]


# -- valid input that looks dangerous ---------------------------------------------------------------


def test_names_and_sql_with_quotes_dollar_quotes_and_semicolons_are_stored_literally(project: Project, db: Conn) -> None:
    table = project.job("t")
    db.execute(sql.SQL("create table {} (v text)").format(sql.Identifier(table)))
    value = f"it's $$; drop table {table}; --"
    names = [project.job("""it's "q" $$; drop table x; --"""), project.job("$tag$ ';' 100%s done")]
    statement = sql.SQL("insert into {} (v) values ({})").format(sql.Identifier(table), sql.Literal(value)).as_string(db)
    data = project.data(*({"name": n, "schedule": "0 0 1 1 *", "sql": statement} for n in names))
    path = project.write(data)

    plan = project.cli("plan", str(path), "--sql", "--dsn", project.dsn)
    applied = project.cli("apply", str(path), "--yes", "--dsn", project.dsn)

    assert plan.returncode == 0 and applied.returncode == 0, output(plan) + output(applied)
    for name in names:
        # the plan's SQL shows what it runs, with the name as one literal
        assert f"SELECT cron.schedule({sql.Literal(name).as_string(db)}, '0 0 1 1 *', " in plan.stdout
        row, registered = job_row(db, name), registry_row(db, name)
        assert row is not None and row["jobname"] == name and row["command"] == f'SELECT "cronkit"."{wrapper_name(name)}"()'
        assert registered is not None and registered["jobname"] == name
        ran = project.cli("run-now", name, "--dsn", project.dsn)
        assert ran.returncode == 0, output(ran)
    rows = db.execute(sql.SQL("select v from {}").format(sql.Identifier(table))).fetchall()
    assert rows == [{"v": value}, {"v": value}]  # the table is still there, and holds the text as written
    again = project.cli("plan", str(path), "--json", "--dsn", project.dsn)
    assert json.loads(again.stdout)["summary"]["unchanged"] == 2


def test_a_json_body_with_quotes_dollar_quotes_and_semicolons_arrives_exactly(project: Project, sandbox_only: Any) -> None:
    function = project.function(verify_jwt=False)
    name = project.job("body")
    body = {"text": "it's \"quoted\" $$; drop table x; --", "tag": "$q$", "list": ["'", ";", "$$"]}
    path = project.write(project.data({"name": name, "schedule": "0 0 1 1 *", "body": body,
                                       "url": f"{sandbox_only.supabase_url}/functions/v1/{function}"}))
    assert project.cli("apply", str(path), "--yes", "--dsn", project.dsn).returncode == 0
    mark = max((r["id"] for r in sandbox_only.edge.invocations()), default=0)

    ran = project.cli("run-now", name, "--dsn", project.dsn)

    assert ran.returncode == 0, output(ran)
    (call,) = sandbox_only.edge.wait_for_invocations(function, 1, timeout=20, after_id=mark)
    assert call["body"] == body
