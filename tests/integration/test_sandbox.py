"""The local sandbox: real pg_cron as a non-superuser, HTTP through the pg_net stand-in, lifecycle
and the clear errors `cronkit sandbox up` gives on a broken machine."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cronkit import db as cdb
from cronkit.redact import fingerprint, mask
from cronkit_sandbox import engines
from cronkit_sandbox.manager import Sandbox
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
#: the host engine the broken-machine tests fake (CRONKIT_PG_BINDIR applies to host engines only)
HOST_MAJOR = next((major for major in (15, 17) if engines.host_has(major)), None)
needs_host_engine = pytest.mark.skipif(HOST_MAJOR is None, reason="no PostgreSQL with pg_cron from this machine's packages")


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cronkit.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def sandbox_processes(state_dir: Path) -> list[int]:
    """Pids of every process that belongs to the sandbox in ``state_dir`` (postmaster + daemons)."""
    marks = [str(state_dir)]
    try:
        pg_home = json.loads((state_dir / "state.json").read_text())["pg_home"]
    except (OSError, ValueError, KeyError):
        pg_home = None
    if pg_home:
        marks.append(pg_home)
        if "/var/lib/cronkit/" in pg_home:  # a root engine's server sees its home inside the root
            marks.append(pg_home[pg_home.index("/var/lib/cronkit/"):])
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        environ = _environ_of(proc)
        if any(mark in cmdline or mark in environ for mark in marks):
            pids.append(int(proc.name))
    return pids


def _environ_of(proc: Path) -> str:
    try:
        return (proc / "environ").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A state dir for a sandbox of its own; whatever a test starts there is stopped and deleted."""
    state_dir = tmp_path_factory.mktemp("sandbox") / "state"
    yield state_dir
    Sandbox(state_dir).down(reset=True)


# -- pg_cron and pg_net, end to end -----------------------------------------------------------------


@pytest.mark.slow
def test_a_job_scheduled_by_the_app_role_runs_and_its_http_call_arrives(
    sandbox_only: Any, db: Any, job_prefix: str, pg_cron_version: Any
) -> None:
    facts = db.execute("select rolsuper, rolbypassrls from pg_roles where rolname = current_user").fetchone()
    assert facts == {"rolsuper": False, "rolbypassrls": True}, "the app role must be Supabase-like: no superuser"
    edge = sandbox_only.edge
    # A throwaway bearer (gate off): the sandbox's real key must not land in cron.job.command.
    edge.configure("sandbox-probe", body={"answered": job_prefix}, verify_jwt=False)
    token = f"probe-{job_prefix}"
    start_id = max([i["id"] for i in edge.invocations()] or [0])
    command = (
        "select net.http_post(url := %s, body := jsonb_build_object('probe', %s), "
        "headers := jsonb_build_object('Authorization', 'Bearer ' || %s, 'x-probe', 'yes'))"
    )
    rendered = psycopg.ClientCursor(db).mogrify(
        command, (f"{sandbox_only.supabase_url}/functions/v1/sandbox-probe", job_prefix, token)
    )
    schedule = "5 seconds" if pg_cron_version.supports_seconds else "* * * * *"  # 1.4.2: the next minute
    jobid = db.execute("select cron.schedule(%s, %s, %s) as id", (job_prefix + "http", schedule, rendered)).fetchone()["id"]

    run = wait_for(
        lambda: db.execute(
            "select status, return_message, job_pid from cron.job_run_details where jobid = %s and status in ('succeeded','failed')",
            (jobid,),
        ).fetchone(),
        timeout=75,
        message="the first pg_cron run of the job",
    )
    assert run["status"] == "succeeded" and run["return_message"] == "1 row"

    calls = edge.wait_for_invocations("sandbox-probe", 1, timeout=20, after_id=start_id)
    call = calls[0]
    assert call["body"] == {"probe": job_prefix}
    assert call["headers"]["x-probe"] == mask("yes"), "custom headers are masked: any may carry a key"
    assert call["headers"]["content-type"] == "application/json"
    assert call["auth_fingerprint"] == fingerprint(token)
    assert call["status"] == 200

    response = wait_for(
        lambda: db.execute(
            "select status_code, timed_out, error_msg from net._http_response where content like %s",
            (f"%{job_prefix}%",),
        ).fetchone(),
        timeout=20,
        message="the net._http_response row",
    )
    assert response["status_code"] == 200 and response["timed_out"] is False and response["error_msg"] is None


def test_the_app_role_has_supabases_grants_on_cron(db: Any, sandbox_only: Any) -> None:
    privileges = db.execute(
        """
        select has_table_privilege('cron.job', 'SELECT') as job_select,
               has_table_privilege('cron.job', 'INSERT') as job_insert,
               has_table_privilege('cron.job', 'UPDATE') as job_update,
               has_table_privilege('cron.job_run_details', 'DELETE') as details_delete,
               has_table_privilege('cron.job_run_details', 'TRIGGER') as details_trigger,
               has_function_privilege('cron.alter_job(bigint,text,text,text,text,boolean)', 'EXECUTE') as alter_job
        """
    ).fetchone()
    assert privileges == {
        "job_select": True, "job_insert": False, "job_update": False,
        "details_delete": True, "details_trigger": False, "alter_job": True,
    }


def test_the_app_role_may_not_set_app_settings(db: Any, sandbox_only: Any) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied to set parameter"):
        db.execute("alter database postgres set app.settings.probe = 'x'")


# -- lifecycle ----------------------------------------------------------------------------------------


def test_up_is_idempotent_and_down_stops_everything_it_started(scratch: Path) -> None:
    first = cli("sandbox", "--state-dir", str(scratch), "up")
    assert first.returncode == 0, first.stderr
    lines = dict(line.split("=", 1) for line in first.stdout.strip().splitlines())
    assert set(lines) == {"DATABASE_URL", "SANDBOX_SUPERUSER_URL", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_ANON_KEY"}
    running = sandbox_processes(scratch)
    assert len(running) >= 3, "postmaster, delivery worker and Edge server"

    second = cli("sandbox", "--state-dir", str(scratch), "up")
    assert second.returncode == 0 and second.stdout == first.stdout
    assert "starting" not in second.stderr, "a second up starts nothing"

    status = cli("sandbox", "--state-dir", str(scratch), "status", "--json")
    info = json.loads(status.stdout)
    pg_cron = "1.6" if info["engine"]["postgres"] == 17 else "1.4"
    assert info["running"] is True and info["versions"]["pg_cron"].startswith(pg_cron)
    assert info["versions"]["pg_net"] and info["versions"]["vault"]
    env_out = cli("sandbox", "--state-dir", str(scratch), "env")
    assert env_out.stdout == first.stdout

    down = cli("sandbox", "--state-dir", str(scratch), "down")
    assert down.returncode == 0, down.stderr
    wait_for(lambda: not [p for p in running if Path(f"/proc/{p}").exists() and _state(p) != "Z"],
             timeout=10, message="every sandbox process to exit")
    assert cli("sandbox", "--state-dir", str(scratch), "status").returncode == 1


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_state_survives_down_and_up_but_not_reset(scratch: Path) -> None:
    sandbox = Sandbox(scratch)
    env = sandbox.up()
    with cdb.connect(env.database_url, autocommit=True) as conn:
        conn.execute("create table kept (x int)")
    sandbox.down()
    again = sandbox.up()
    assert again.database_url == env.database_url
    with cdb.connect(again.database_url, autocommit=True) as conn:
        assert conn.execute("select to_regclass('public.kept') is not null as ok").fetchone()["ok"]
    sandbox.down(reset=True)
    assert not scratch.exists()


# -- bad input: one clear message, non-zero exit, nothing left running ----------------------------------


@needs_host_engine
def test_missing_postgres_binaries_are_named_with_the_fix(scratch: Path) -> None:
    result = cli("sandbox", "--state-dir", str(scratch), "up", "--postgres", str(HOST_MAJOR),
                 env={"CRONKIT_PG_BINDIR": "/nonexistent/bin"})
    assert result.returncode == 1
    assert "PostgreSQL server binaries not found in /nonexistent/bin" in result.stderr
    assert f"apt-get install postgresql-{HOST_MAJOR} postgresql-{HOST_MAJOR}-cron" in result.stderr
    assert "Traceback" not in result.stderr
    assert sandbox_processes(scratch) == []


@needs_host_engine
def test_missing_pg_cron_is_named_with_the_fix(scratch: Path, tmp_path: Path) -> None:
    bindir, real = tmp_path / "bin", f"/usr/lib/postgresql/{HOST_MAJOR}/bin"
    bindir.mkdir()
    for tool in ("initdb", "pg_ctl", "postgres"):
        (bindir / tool).symlink_to(f"{real}/{tool}")
    (bindir / "pg_config").write_text(
        "#!/bin/sh\ncase \"$1\" in --pkglibdir) echo %s;; *) %s/pg_config \"$1\";; esac\n" % (tmp_path, real)
    )
    (bindir / "pg_config").chmod(0o755)
    result = cli("sandbox", "--state-dir", str(scratch), "up", "--postgres", str(HOST_MAJOR),
                 env={"CRONKIT_PG_BINDIR": str(bindir)})
    assert result.returncode == 1
    assert "pg_cron is not installed" in result.stderr and f"postgresql-{HOST_MAJOR}-cron" in result.stderr
    assert sandbox_processes(scratch) == []


def test_a_taken_port_is_named_and_nothing_is_left_running(scratch: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        result = cli("sandbox", "--state-dir", str(scratch), "up", env={"CRONKIT_SANDBOX_PORT": str(port)})
    assert result.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already taken" in result.stderr
    assert "CRONKIT_SANDBOX_PORT" in result.stderr
    assert sandbox_processes(scratch) == []


def test_a_corrupt_state_dir_is_named_with_the_fix(scratch: Path) -> None:
    scratch.mkdir(parents=True)
    (scratch / "state.json").write_text("{not json")
    result = cli("sandbox", "--state-dir", str(scratch), "up")
    assert result.returncode == 1
    assert "is corrupt" in result.stderr and "cronkit sandbox down --reset" in result.stderr
    assert sandbox_processes(scratch) == []
    assert cli("sandbox", "--state-dir", str(scratch), "down", "--reset").returncode == 0
    assert not scratch.exists()


def test_a_missing_data_directory_is_named_with_the_fix(scratch: Path) -> None:
    sandbox = Sandbox(scratch)
    sandbox.up()
    sandbox.down()
    state = json.loads((scratch / "state.json").read_text())
    (Path(state["pg_home"]) / "data" / "PG_VERSION").unlink()
    result = cli("sandbox", "--state-dir", str(scratch), "up")
    assert result.returncode == 1
    assert "missing or incomplete" in result.stderr and "--reset" in result.stderr
    assert sandbox_processes(scratch) == []


def test_a_new_sandbox_where_a_deleted_one_left_its_cluster_starts_clean(scratch: Path) -> None:
    # The cluster's files live outside the state directory when its OS user cannot reach it, or in
    # the engine's root: deleting the state by hand (rm -rf, a fresh clone at the same path) leaves
    # them, still running. A new sandbox of that path stops and replaces them.
    first = Sandbox(scratch)
    first.up()
    state = first.load_state()
    assert state is not None
    shutil.rmtree(scratch)  # by hand: the cluster keeps running
    again = Sandbox(scratch)
    env = again.up()
    with cdb.connect(env.database_url, autocommit=True) as conn:
        assert conn.execute("select 1 as ok").fetchone()["ok"] == 1
    new = again.load_state()
    assert new is not None and new.app_password != state.app_password  # a new sandbox, new keys
    helpers = [pid for pid in sandbox_processes(scratch)
               if b"cronkit_sandbox." in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(helpers) == 2, "the first sandbox's worker and Edge server were stopped, not left running"
