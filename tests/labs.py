"""Private sandboxes ("labs") for tests that need a cluster of their own, and the demo's data in one.

A lab is a whole sandbox (PostgreSQL with pg_cron, the pg_net and Vault stand-ins, the Edge
Functions server) in a temporary directory, on the session's engine. Cluster-wide faults and the
five seed examples live in labs, away from the shared test sandbox and from each other.

:func:`apply_demo_examples` sets a lab up as ``cronkit demo`` does (the same
:mod:`cronkit_sandbox.demo` functions, then the maintenance manifest); :func:`wait_demo_examples_answered` waits, bounded, until
every example job ran and its HTTP call was answered.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from cronkit import db as cdb
from cronkit import jobs
from cronkit.doctor import Report, diagnose
from cronkit.manifest import Manifest
from cronkit.plan import apply
from cronkit.schedules import PgCronVersion, parse_pg_cron_version
from cronkit_sandbox import demo
from cronkit_sandbox.edge import EdgeAdmin
from cronkit_sandbox.manager import Sandbox, SandboxEnv
from tests.conftest import TEST_POSTGRES
from tests.helpers import wait_for


@dataclass
class Lab:
    name: str
    sandbox: Sandbox
    env: SandboxEnv
    edge: EdgeAdmin

    def app(self, autocommit: bool = True) -> psycopg.Connection[dict[str, Any]]:
        return cdb.connect(self.env.database_url, autocommit=autocommit)

    def su(self) -> psycopg.Connection[dict[str, Any]]:
        return cdb.connect(self.env.superuser_url, autocommit=True)

    def sql(self, query: str, params: Any = None, *, superuser: bool = False) -> list[dict[str, Any]]:
        with (self.su() if superuser else self.app()) as conn:
            cur = conn.execute(query, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def diagnose(self, manifest: Manifest | None = None, **kwargs: Any) -> Report:
        with self.app(autocommit=False) as conn:
            return diagnose(conn, manifest, **kwargs)

    def apply(self, manifest: Manifest, environ: dict[str, str], environment: str | None = None) -> None:
        with self.app(autocommit=False) as conn:
            apply(conn, manifest, environment, environ=environ)

    def run_now(self, job: str) -> int | None:
        with self.app() as conn:
            return jobs.run_job_now(conn, job).request_id

    def wait_answered(self, request_ids: list[int], timeout: float = 30) -> None:
        def answered() -> bool:
            rows = self.sql("select count(*) as n from net._http_response where id = any(%s)", (request_ids,))
            return rows[0]["n"] == len(request_ids)

        wait_for(answered, timeout=timeout, message=f"pg_net responses to requests {request_ids}")

    def pg_cron_version(self) -> PgCronVersion:
        from cronkit.facts import server_facts

        with self.app() as conn:
            return parse_pg_cron_version(server_facts(conn).pg_cron or "")

    def networker(self) -> Any:
        state = self.sandbox.load_state()
        assert state is not None
        return self.sandbox._daemons(state)[0]


@contextmanager
def lab_directory(prefix: str) -> Iterator[Path]:
    """A directory for labs, removed afterwards (stop the labs in it first: :func:`stop_labs`)."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(base, 0o755)  # the cluster's OS user must reach its data directory
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def start_lab(base: Path, name: str) -> Lab:
    sandbox = Sandbox(base / name)
    env = sandbox.up(postgres=TEST_POSTGRES)  # the session's engine
    return Lab(name, sandbox, env, EdgeAdmin(env.supabase_url, env.service_key))


def stop_labs(labs: list[Lab]) -> None:
    for lab in reversed(labs):
        lab.sandbox.down(reset=True)


# -- the demo's data ------------------------------------------------------------------------------


def demo_projects() -> list[str]:
    return [e.manifest().project for e in demo.examples()]


def demo_job_count() -> int:
    return sum(len(e.manifest().raw_jobs) for e in demo.examples())


def apply_demo_examples(lab: Lab, version: PgCronVersion, *, maintenance: bool = True) -> datetime:
    """The five seed examples set up in ``lab`` by the demo's own step (then, unless
    ``maintenance=False``, cronkit's maintenance jobs, and a first queue snapshot); returns when it started."""
    since = datetime.now(UTC)
    demo.set_up_examples(lab.env, lab.edge, version, lambda _m: None, maintenance=maintenance)
    return since


def wait_demo_examples_answered(lab: Lab, since: datetime, timeout: float = 150) -> list[dict[str, Any]]:
    """The demo's report rows, once every example job ran after ``since`` and got its HTTP answer."""
    projects = demo_projects()

    def all_answered() -> list[dict[str, Any]] | None:
        rows = demo.collect(lab.env, projects, since)
        return rows if demo.all_answered(rows) else None

    return wait_for(all_answered, timeout=timeout, interval=2, message="every example job to run once and get its answer")
