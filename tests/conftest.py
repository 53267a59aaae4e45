"""Test harness: one sandbox per session (or an external database), jobs isolated by name prefix.

Layers: ``tests/unit`` (no database), ``tests/integration`` (the sandbox), ``tests/acceptance``
(the seed systems end to end). The database starts only when a test asks for a database fixture,
so ``pytest tests/unit`` runs on a machine without PostgreSQL; if it cannot be started the
session ends once, with one message. In-process tests never see the caller's ``DATABASE_URL``,
``PG*``, ``CRONKIT_*`` (but ``CRONKIT_TEST_*``) or ``.env``.

By default the suite starts its own sandbox in ``.cronkit/test-sandbox-pg<major>`` (one per
pytest-xdist worker: ``-gw0``, ``-gw1``) on the newest
engine this machine can have (PostgreSQL 17 + pg_cron 1.6; ``CRONKIT_TEST_POSTGRES=15`` picks the
host's 15 + pg_cron 1.4.2) and stops every process it started when the session ends. Tests marked
``compat`` check what only an older pg_cron does (seconds and ``$`` refused, no ``cron.timezone``):
they skip, with the reason, on a pg_cron that has the feature, and ``./dev test`` runs them again
as the compatibility lane (``CRONKIT_TEST_POSTGRES=15 pytest -m compat``). To run the same suite
against another Supabase-like database
(e.g. `supabase start`), set ``CRONKIT_TEST_DSN`` (app role) and optionally
``CRONKIT_TEST_SUPERUSER_DSN``, ``CRONKIT_TEST_SUPABASE_URL`` and ``CRONKIT_TEST_SERVICE_KEY``;
tests that need the sandbox's Edge Functions server or superuser are skipped then, with the reason.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cronkit import db as cdb
from cronkit.errors import CronkitError

ROOT = Path(__file__).resolve().parent.parent


def _test_postgres() -> int | None:
    """The sandbox engine's PostgreSQL major for this session (None: no engine on this machine)."""
    try:
        from cronkit_sandbox import engines

        major = engines.requested_major({"CRONKIT_SANDBOX_POSTGRES": os.environ.get("CRONKIT_TEST_POSTGRES", "")})
        return major or engines.choose(dict(os.environ), None).major
    except (ImportError, CronkitError):
        return None


TEST_POSTGRES = _test_postgres()
#: under pytest-xdist (``./dev test`` runs files on 2 workers) each worker has its own sandbox
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
TEST_STATE_DIR = ROOT / ".cronkit" / f"test-sandbox-pg{TEST_POSTGRES or 'none'}{'-' + _WORKER if _WORKER else ''}"


@dataclass
class TestTarget:
    database_url: str
    superuser_url: str | None
    supabase_url: str | None
    service_key: str | None
    anon_key: str | None
    edge: Any | None  # cronkit_sandbox.edge.EdgeAdmin when the sandbox runs
    external: bool

    def __repr__(self) -> str:
        return f"TestTarget(external={self.external}, database_url={cdb.redact_dsn(self.database_url)!r})"


_SANDBOX_KEY = pytest.StashKey[Any]()
_TARGET_KEY = pytest.StashKey[Any]()


def _start_target(config: pytest.Config) -> TestTarget | Exception:
    if config.stash.get(_TARGET_KEY, None) is not None:
        return config.stash[_TARGET_KEY]
    try:
        given = os.environ  # CRONKIT_TEST_* survive the scrubbing below
        dsn = given.get("CRONKIT_TEST_DSN")
        if dsn:
            target: TestTarget | Exception = TestTarget(
                database_url=dsn,
                superuser_url=given.get("CRONKIT_TEST_SUPERUSER_DSN"),
                supabase_url=given.get("CRONKIT_TEST_SUPABASE_URL"),
                service_key=given.get("CRONKIT_TEST_SERVICE_KEY"),
                anon_key=given.get("CRONKIT_TEST_ANON_KEY"),
                edge=None,
                external=True,
            )
        else:
            from cronkit_sandbox.edge import EdgeAdmin
            from cronkit_sandbox.manager import Sandbox

            sandbox = Sandbox(TEST_STATE_DIR)
            # Stop it at the end only if this session started it: another session may be using it.
            if not sandbox.load_state() or not sandbox.status()["running"]:
                config.stash[_SANDBOX_KEY] = sandbox
            env = sandbox.up(postgres=TEST_POSTGRES)
            target = TestTarget(
                database_url=env.database_url,
                superuser_url=env.superuser_url,
                supabase_url=env.supabase_url,
                service_key=env.service_key,
                anon_key=env.anon_key,
                edge=EdgeAdmin(env.supabase_url, env.service_key),
                external=False,
            )
    except CronkitError as exc:
        target = exc
    config.stash[_TARGET_KEY] = target
    return target


#: what an in-process test must not inherit from the shell that runs the suite
_SCRUBBED_PREFIXES = ("CRONKIT_", "PG", "SUPABASE_")
_SCRUBBED = {"DATABASE_URL", "SANDBOX_SUPERUSER_URL"}


def _scrubbed(name: str) -> bool:
    return (name in _SCRUBBED or name.startswith(_SCRUBBED_PREFIXES)) and not name.startswith("CRONKIT_TEST_")


@pytest.fixture(scope="session", autouse=True)
def _scrubbed_environment() -> Iterator[None]:
    """No DATABASE_URL, PG*, CRONKIT_* or .env of the developer's shell reaches cronkit in-process."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if _scrubbed(n)]:
            patch.delenv(name)
        patch.setattr("cronkit.config.dotenv_path", lambda: "")
        yield


def pytest_report_header(config: pytest.Config) -> list[str]:
    if os.environ.get("CRONKIT_TEST_DSN"):
        return [f"cronkit test database: external (CRONKIT_TEST_DSN) {cdb.redact_dsn(os.environ['CRONKIT_TEST_DSN'])}, "
                "started on first use"]
    return [f"cronkit test database: sandbox {TEST_STATE_DIR}, started when a test first needs it"]


_VERSIONS_KEY = pytest.StashKey[list[str]]()


def _versions_line(config: pytest.Config) -> str | None:
    """Which database this session's tests ran on, with its versions (None when none was started)."""
    target = config.stash.get(_TARGET_KEY, None)
    if target is None or isinstance(target, Exception):
        return None
    from cronkit.facts import server_facts

    try:
        with cdb.connect(target.database_url, autocommit=True) as conn:
            facts = server_facts(conn)
    except CronkitError:
        return None
    where = "external (CRONKIT_TEST_DSN)" if target.external else f"sandbox {TEST_STATE_DIR}"
    return (f"cronkit test database: {where}, role {facts.role}; PostgreSQL {facts.postgresql}, pg_cron {facts.pg_cron}, "
            f"pg_net {facts.pg_net}, Vault {facts.vault}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller prints it
        workeroutput["cronkit_versions"] = _versions_line(session.config)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    line = getattr(node, "workeroutput", {}).get("cronkit_versions")
    if line:
        node.config.stash.setdefault(_VERSIONS_KEY, []).append(line)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(_VERSIONS_KEY, []) or [_versions_line(config)]
    for line in sorted(filter(None, lines)):
        terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    sandbox = config.stash.get(_SANDBOX_KEY, None)
    if sandbox is not None:
        sandbox.down()


@pytest.fixture(scope="session")
def sandbox(pytestconfig: pytest.Config) -> TestTarget:
    target = _start_target(pytestconfig)
    if isinstance(target, Exception):
        message = f"the test database could not be started, so no database test can run:\n{target}"
        if _WORKER:  # an xdist worker cannot end the session: each database test errors with the message
            pytest.fail(message, pytrace=False)
        # One message for the whole session, not one error per test.
        pytest.exit(message, returncode=1)
    return target


@pytest.fixture(scope="session")
def sandbox_only(sandbox: TestTarget) -> TestTarget:
    """For tests that create faults through the sandbox's superuser or Edge Functions server."""
    if sandbox.external or sandbox.edge is None or sandbox.superuser_url is None:
        pytest.skip("needs the local sandbox (superuser and Edge Functions server); CRONKIT_TEST_DSN is set")
    return sandbox


@pytest.fixture
def db(sandbox: TestTarget) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """An autocommit connection as the app role (Supabase's non-superuser `postgres`)."""
    with cdb.connect(sandbox.database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def su(sandbox_only: TestTarget) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """An autocommit connection as the extension-owning superuser, for creating faults."""
    assert sandbox_only.superuser_url
    with cdb.connect(sandbox_only.superuser_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def pg_cron_version(sandbox: TestTarget) -> Any:
    from cronkit.facts import server_facts
    from cronkit.schedules import parse_pg_cron_version

    with cdb.connect(sandbox.database_url, autocommit=True) as conn:
        version = server_facts(conn).pg_cron
    assert version, "pg_cron is not installed in the test database"
    return parse_pg_cron_version(version)


@pytest.fixture(autouse=True)
def _compat_lane(request: pytest.FixtureRequest) -> None:
    """``compat`` tests need a pg_cron without seconds schedules (1.4.2); elsewhere they skip, saying why."""
    if request.node.get_closest_marker("compat") is None:
        return
    version = request.getfixturevalue("pg_cron_version")
    if version.supports_seconds:
        pytest.skip(f"checks pg_cron before 1.5; this database has {version} (the compatibility lane runs it: "
                    "CRONKIT_TEST_POSTGRES=15 pytest -m compat)")


@pytest.fixture
def job_prefix(request: pytest.FixtureRequest, sandbox: TestTarget) -> Iterator[str]:
    """A unique job-name prefix; every job whose name starts with it is unscheduled afterwards."""
    stem = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:24].strip("_")
    prefix = f"t_{stem}_{uuid.uuid4().hex[:6]}_"
    yield prefix
    with cdb.connect(sandbox.superuser_url or sandbox.database_url, autocommit=True) as conn:
        jobs = conn.execute(
            "select jobid from cron.job where jobname like %s", (prefix.replace("_", r"\_") + "%",)
        ).fetchall()
        for job in jobs:
            conn.execute("select cron.unschedule(%s::bigint)", (job["jobid"],))
