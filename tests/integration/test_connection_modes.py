"""cronkit works the same whichever way it reaches PostgreSQL: directly, through a session pooler,
through a transaction pooler, and over TLS that verifies the server.

The mode is decided from the DSN in one place (``cronkit.db.connection_mode``); plan and doctor say
which one they see. Through PgBouncer in transaction mode with a pool of two server connections
(Supavisor on port 6543 behaves alike) consecutive transactions land on different server sessions,
so the four commands an operator runs — plan, apply, status, doctor — pass only if cronkit relies on
no session state and prepares no statement on the server. Over TLS they run with
``sslmode=verify-full`` against a private lab serving a certificate from the test's own CA; with the
wrong CA, the command fails with the fix and exit 69, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import make_conninfo

from cronkit import db as cdb
from cronkit.db import ConnectionMode, connection_mode
from cronkit.errors import ConfigError, ExitCode
from tests.jobs_support import Project, cli, output, password_of, project  # noqa: F401  (fixtures)
from tests.labs import Lab, lab_directory, start_lab, stop_labs
from tests.pooler_support import PGBOUNCER, Bouncer, LabCA, make_ca, pgbouncer, serve_tls

REF = "abcdefghijklmnopqrst"


# -- the mode, from the DSN -----------------------------------------------------------------------

@pytest.mark.parametrize(("dsn", "environ", "mode"), [
    (f"postgresql://postgres:pw@db.{REF}.supabase.co:5432/postgres", {}, ConnectionMode.DIRECT),
    (f"postgresql://postgres.{REF}:pw@aws-0-eu-central-1.pooler.supabase.com:5432/postgres", {},
     ConnectionMode.SESSION_POOLER),
    (f"postgresql://postgres.{REF}:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres", {},
     ConnectionMode.TRANSACTION_POOLER),
    (f"host=AWS-0-us-east-1.Pooler.Supabase.com. port=6543 user=postgres.{REF}", {}, ConnectionMode.TRANSACTION_POOLER),
    ("postgresql://postgres@127.0.0.1:54322/postgres", {}, ConnectionMode.DIRECT),
    ("", {"PGHOST": "aws-0-eu-west-2.pooler.supabase.com", "PGPORT": "6543"}, ConnectionMode.TRANSACTION_POOLER),
    ("postgresql://app@10.0.0.5:6432/app", {"CRONKIT_POOL_MODE": "transaction"}, ConnectionMode.TRANSACTION_POOLER),
    ("postgresql://app@10.0.0.5:6432/app", {"CRONKIT_POOL_MODE": "Session"}, ConnectionMode.SESSION_POOLER),
    (f"postgresql://p.{REF}:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres", {"CRONKIT_POOL_MODE": "direct"},
     ConnectionMode.DIRECT),
])
def test_the_mode_comes_from_the_host_and_port_or_the_variable(dsn: str, environ: dict[str, str],
                                                               mode: ConnectionMode) -> None:
    assert connection_mode(dsn, environ) is mode


def test_a_mode_cronkit_does_not_know_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError) as caught:
        connection_mode("postgresql://app@10.0.0.5:6432/app", {"CRONKIT_POOL_MODE": "statement"})
    assert caught.value.exit_code == ExitCode.CONFIG
    assert "transaction, session or direct" in str(caught.value)


def test_each_mode_says_what_it_limits() -> None:
    assert ConnectionMode.TRANSACTION_POOLER.describe() == "transaction pooler (no session state; prepared statements off)"
    assert ConnectionMode.DIRECT.describe() == "direct (no limits)"


# -- the four commands, through a transaction pooler and over TLS ----------------------------------

def _manifest(p: Project) -> str:
    return str(p.write(p.data({"name": p.job("tick"), "schedule": "17 3 * * *", "sql": "select 1"})))


def _four_commands(manifest: str, env: dict[str, str], cwd: Path, job: str, mode: ConnectionMode) -> None:
    """plan, apply --yes, status and doctor, as an operator runs them: each succeeds and plan and
    doctor name the connection mode."""
    def run(*args: str) -> Any:
        return cli(*args, cwd=cwd, env=env, timeout=90)

    says = mode.describe()

    plan = run("plan", manifest)
    assert plan.returncode == ExitCode.OK, output(plan)
    assert f"connection: {says}" in plan.stdout
    planned = run("plan", manifest, "--json")
    assert planned.returncode == ExitCode.OK, output(planned)
    assert json.loads(planned.stdout)["connection"] == {"mode": str(mode), "limits": mode.limits}

    applied = run("apply", manifest, "--yes")
    assert applied.returncode == ExitCode.OK, output(applied)
    assert "0 change(s) left" in applied.stdout

    again = run("plan", manifest, "--json")  # a new process, new server sessions: the change is there
    assert again.returncode == ExitCode.OK and json.loads(again.stdout)["summary"]["create"] == 0, output(again)

    status = run("status")
    assert status.returncode == ExitCode.OK, output(status)
    assert job in status.stdout and "(cronkit:" in status.stdout

    doctor = run("doctor", manifest, "--json")
    report = json.loads(doctor.stdout)
    # the exit status is the report's: the shared test database may hold other tests' failing jobs
    assert doctor.returncode == report["exit_code"], output(doctor)
    assert not [f for f in report["findings"] if f["job"] == job and f["severity"] == "critical"], output(doctor)
    assert report["connection"]["mode"] == str(mode)
    # a check that fails on the connection (a lost prepared statement, a setting gone) lands in "skipped"
    assert not [s for s in report["skipped"] if "prepared statement" in s["reason"] or "does not exist" in s["reason"]]
    text = run("doctor", manifest)
    assert f"connection: {says}" in text.stdout, output(text)
    for result in (plan, planned, applied, again, status, doctor, text):
        assert "Traceback" not in output(result)


@pytest.fixture(scope="module")
def bouncer(sandbox: Any) -> Iterator[Bouncer]:
    if sandbox.external:
        pytest.skip("PgBouncer is started in front of the sandbox; CRONKIT_TEST_DSN is another database")
    if not PGBOUNCER.exists():
        pytest.skip(f"{PGBOUNCER} is missing: ./dev setup installs Debian's pgbouncer")
    with pgbouncer(sandbox.database_url, pool_size=2) as running:
        yield running


def test_the_pooler_lends_each_transaction_any_of_its_server_sessions(bouncer: Bouncer) -> None:
    """The stand-in is what it claims: a session setting does not follow the client to its next transaction."""
    with cdb.connect(bouncer.dsn, autocommit=True, environ={"CRONKIT_POOL_MODE": "transaction"}) as first, \
            cdb.connect(bouncer.dsn, autocommit=True, environ={"CRONKIT_POOL_MODE": "transaction"}) as second:
        assert cdb.mode_of(first) is ConnectionMode.TRANSACTION_POOLER
        assert first.prepare_threshold is None
        pids = set()
        for _ in range(6):  # two clients taking turns on a pool of two
            pids.add(first.execute("select pg_backend_pid() as pid").fetchone()["pid"])
            with second.transaction():
                second.execute("select 1")
                pids.add(first.execute("select pg_backend_pid() as pid").fetchone()["pid"])
        assert len(pids) == 2, bouncer.log_tail()


def test_plan_apply_status_and_doctor_work_through_a_transaction_pooler(project: Project, bouncer: Bouncer) -> None:
    env = {"DATABASE_URL": bouncer.dsn, "CRONKIT_POOL_MODE": "transaction"}
    _four_commands(_manifest(project), env, project.dir, project.job("tick"), ConnectionMode.TRANSACTION_POOLER)


def test_plan_apply_status_and_doctor_work_through_a_session_pooler(project: Project, sandbox: Any) -> None:
    if sandbox.external or not PGBOUNCER.exists():
        pytest.skip("PgBouncer is started in front of the test sandbox by ./dev setup's pgbouncer")
    with pgbouncer(sandbox.database_url, pool_size=2, pool_mode="session") as session:
        env = {"DATABASE_URL": session.dsn, "CRONKIT_POOL_MODE": "session"}
        _four_commands(_manifest(project), env, project.dir, project.job("tick"), ConnectionMode.SESSION_POOLER)


@pytest.fixture(scope="module")
def tls_lab(sandbox: Any) -> Iterator[tuple[Lab, LabCA, Path]]:
    if sandbox.external:
        pytest.skip("TLS is set up on a private sandbox of the test engine; CRONKIT_TEST_DSN is another database")
    with lab_directory("cronkit-tls-") as base:
        labs: list[Lab] = []
        try:
            lab = start_lab(base, "tls")
            labs.append(lab)
            ca = make_ca(base / "ca")
            with lab.su() as su:
                serve_tls(lab.sandbox, su, ca)
            yield lab, ca, base
        finally:
            stop_labs(labs)


def _tls_dsn(lab: Lab, **options: str) -> str:
    return make_conninfo(lab.env.database_url, host="localhost", **options)


def test_plan_apply_status_and_doctor_work_over_tls_that_verifies_the_server(
        tls_lab: tuple[Lab, LabCA, Path], tmp_path: Path) -> None:
    lab, ca, _ = tls_lab
    dsn = _tls_dsn(lab, sslmode="verify-full", sslrootcert=str(ca.ca_cert))
    with cdb.connect(dsn) as conn:
        assert conn.pgconn.ssl_in_use
    p = Project("t_tls_", lab.env, tmp_path)
    _four_commands(_manifest(p), {"DATABASE_URL": dsn}, tmp_path, p.job("tick"), ConnectionMode.DIRECT)
    required = cli("status", cwd=tmp_path, env={"DATABASE_URL": _tls_dsn(lab, sslmode="require")})
    assert required.returncode == ExitCode.OK and p.job("tick") in required.stdout, output(required)


def test_a_server_certificate_from_another_ca_is_refused_with_the_fix(
        tls_lab: tuple[Lab, LabCA, Path], tmp_path: Path) -> None:
    lab, _, base = tls_lab
    stranger = make_ca(base / "other-ca", name="some other CA")
    dsn = _tls_dsn(lab, sslmode="verify-full", sslrootcert=str(stranger.ca_cert))
    result = cli("status", cwd=tmp_path, env={"DATABASE_URL": dsn})
    text = output(result)
    assert result.returncode == ExitCode.UNAVAILABLE, text
    assert "certificate verify failed" in text
    assert "fix: The server's certificate is not signed by the CA in sslrootcert" in text
    assert "Traceback" not in text
    assert password_of(lab.env.database_url) not in text  # the password never shows
