"""``cronkit sandbox up|down|status|env``: a local Supabase-like database for development and tests.

What ``up`` gives you (idempotent; state survives ``down``/``up`` unless ``--reset``):

- PostgreSQL 17 or 15 with the real pg_cron (``engines``: the newest this machine can have, or the
  one asked for), Supabase-like roles and grants (``bootstrap.sql``);
- the pg_net stand-in's delivery worker (``networker``) sending queued requests after commit;
- a local Edge Functions server (``edge``) at ``SUPABASE_URL/functions/v1/<name>``.

Everything lives in the state directory (``CRONKIT_SANDBOX_DIR``, default ``.cronkit/sandbox``):
``state.json`` (ports, generated passwords and keys; mode 0600), ``logs/``, ``run/`` (pidfiles).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from psycopg import sql

from cronkit import db
from cronkit.errors import CronkitError, SandboxError
from cronkit.facts import server_facts
from cronkit_sandbox import cluster as pgcluster
from cronkit_sandbox import engines
from cronkit_sandbox.daemons import Daemon

SUPERUSER = "supabase_admin"
APP_ROLE = "postgres"
DATABASE = "postgres"
STATE_VERSION = 1
BOOTSTRAP_SQL = Path(__file__).with_name("bootstrap.sql")
NETWORKER_APPNAME = "pg_net 0.20.0"

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class State:
    """What a sandbox needs to be found and used again. Secrets in here never leave via repr."""

    port: int
    edge_port: int
    os_user: str
    pg_home: str
    superuser_password: str
    app_password: str
    jwt_secret: str
    anon_key: str
    service_key: str
    bootstrapped: bool = False
    version: int = STATE_VERSION
    #: the engine the data directory was made with (sandboxes from before engines: the host's 15)
    engine: str = engines.EngineKind.HOST.value
    postgres: int = 15

    def __repr__(self) -> str:
        return f"State(port={self.port}, edge_port={self.edge_port}, pg_home={self.pg_home!r})"


@dataclass(frozen=True)
class SandboxEnv:
    """The connection facts ``up`` prints as ``KEY=value`` lines."""

    database_url: str
    superuser_url: str
    supabase_url: str
    service_key: str
    anon_key: str

    def as_dict(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "SANDBOX_SUPERUSER_URL": self.superuser_url,
            "SUPABASE_URL": self.supabase_url,
            "SUPABASE_SERVICE_ROLE_KEY": self.service_key,
            "SUPABASE_ANON_KEY": self.anon_key,
        }

    def __repr__(self) -> str:
        return f"SandboxEnv(database_url={db.redact_dsn(self.database_url)!r}, supabase_url={self.supabase_url!r})"


#: where a sandbox lives, relative to the directory it was started in
DEFAULT_DIR = Path(".cronkit/sandbox")


def default_state_dir(environ: dict[str, str] | None = None, cwd: Path | None = None) -> Path:
    """``CRONKIT_SANDBOX_DIR``; else the nearest ``.cronkit/sandbox`` holding a sandbox in this directory
    or one above it (as git finds ``.git``: commands work from any subdirectory of the project);
    else ``.cronkit/sandbox`` here, for a new one."""
    environ = dict(os.environ if environ is None else environ)
    if "CRONKIT_SANDBOX_DIR" in environ:
        return Path(environ["CRONKIT_SANDBOX_DIR"]).absolute()
    here = (cwd or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        if (folder / DEFAULT_DIR / "state.json").is_file():
            return folder / DEFAULT_DIR
    return here / DEFAULT_DIR


class Sandbox:
    def __init__(self, state_dir: Path | None = None, environ: dict[str, str] | None = None) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.state_dir = (state_dir or default_state_dir(self.environ)).absolute()
        self.state_file = self.state_dir / "state.json"

    # -- state ---------------------------------------------------------------------------------

    def load_state(self) -> State | None:
        if not self.state_file.exists():
            return None
        try:
            raw = json.loads(self.state_file.read_text(encoding="utf-8"))
            state = State(**raw)
        except (ValueError, TypeError) as exc:
            raise SandboxError(
                f"The sandbox state in {self.state_file} is corrupt ({type(exc).__name__}).",
                remedy="`cronkit sandbox down --reset` removes the sandbox so the next `up` creates a new one.",
            ) from None
        if state.version != STATE_VERSION:
            raise SandboxError(
                f"The sandbox in {self.state_dir} was made by another cronkit version.",
                remedy="`cronkit sandbox down --reset`, then `cronkit sandbox up`.",
            )
        return state

    def _save_state(self, state: State) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(state), out, indent=2)
        os.replace(tmp, self.state_file)

    def _new_state(self, user: pgcluster.OsUser, engine: engines.Engine) -> State:
        from cronkit_sandbox.keys import make_jwt

        jwt_secret = secrets.token_urlsafe(32)
        port = int(self.environ.get("CRONKIT_SANDBOX_PORT") or pgcluster.free_port())
        edge_port = int(self.environ.get("CRONKIT_SANDBOX_EDGE_PORT") or pgcluster.free_port())
        return State(
            port=port,
            edge_port=edge_port,
            os_user=user.name,
            pg_home=str(pgcluster.pg_home_for(self.state_dir, user, engine)),
            superuser_password=secrets.token_urlsafe(18),
            app_password=secrets.token_urlsafe(18),
            jwt_secret=jwt_secret,
            anon_key=make_jwt(jwt_secret, "anon"),
            service_key=make_jwt(jwt_secret, "service_role"),
            engine=engine.kind.value,
            postgres=engine.major,
        )

    # -- pieces ---------------------------------------------------------------------------------

    def engine(self, state: State) -> engines.Engine:
        return engines.recorded(state.engine, state.postgres, self.environ)

    def _cluster(self, state: State, binaries: pgcluster.Binaries | None = None) -> pgcluster.Cluster:
        engine = self.engine(state)
        return pgcluster.Cluster(
            binaries=binaries or pgcluster.find_binaries(engine, self.environ),
            user=pgcluster.os_user(engine, self.environ),
            home=Path(state.pg_home),
            port=state.port,
        )

    def _engine_for(self, state: State | None, postgres: int | None) -> engines.Engine:
        """An existing sandbox keeps its engine; a new one gets the one asked for, else the newest."""
        major = engines.requested_major(self.environ, postgres)
        if state is None:
            return engines.choose(self.environ, major)
        if major is not None and major != state.postgres:
            raise SandboxError(
                f"The sandbox in {self.state_dir} runs PostgreSQL {state.postgres}, not {major}.",
                remedy="`cronkit sandbox down --reset` removes it so `up` can make a new one, or give this "
                "engine its own --state-dir.",
            )
        return self.engine(state)

    def env(self, state: State | None = None) -> SandboxEnv:
        state = state or self.load_state()
        if state is None:
            raise SandboxError(f"No sandbox in {self.state_dir}.", remedy="Run `cronkit sandbox up` first.")
        url = "postgresql://{user}:{pw}@127.0.0.1:{port}/" + DATABASE
        return SandboxEnv(
            database_url=url.format(user=APP_ROLE, pw=state.app_password, port=state.port),
            superuser_url=url.format(user=SUPERUSER, pw=state.superuser_password, port=state.port),
            supabase_url=f"http://127.0.0.1:{state.edge_port}",
            service_key=state.service_key,
            anon_key=state.anon_key,
        )

    def _daemons(self, state: State) -> tuple[Daemon, Daemon]:
        env = self.env(state)
        logs, run = self.state_dir / "logs", self.state_dir / "run"
        networker = Daemon(
            name="pg_net delivery worker",
            module="cronkit_sandbox.networker",
            pidfile=run / "networker.pid",
            logfile=logs / "networker.log",
            env={"CRONKIT_NETWORKER_DSN": env.superuser_url},
        )
        edge = Daemon(
            name="Edge Functions server",
            module="cronkit_sandbox.edge",
            pidfile=run / "edge.pid",
            logfile=logs / "edge.log",
            args=("--host", "127.0.0.1", "--port", str(state.edge_port)),
            env={"CRONKIT_EDGE_JWT_SECRET": state.jwt_secret, "CRONKIT_EDGE_DB_URL": env.database_url},
        )
        return networker, edge

    # -- commands -------------------------------------------------------------------------------

    def up(self, progress: Progress = _quiet, postgres: int | None = None) -> SandboxEnv:
        """Create (first time) or start the sandbox and wait until every part answers."""
        state = self.load_state()
        engine = self._engine_for(state, postgres)
        engines.prepare(engine, self.environ, progress)
        binaries = pgcluster.find_binaries(engine, self.environ)
        user = pgcluster.os_user(engine, self.environ)
        fresh = state is None
        if state is None:
            state = self._new_state(user, engine)
        cluster = self._cluster(state, binaries)
        if not fresh and not cluster.is_initialized():
            raise SandboxError(
                f"The sandbox state in {self.state_dir} names a data directory that is missing or incomplete "
                f"({cluster.datadir}).",
                remedy="`cronkit sandbox down --reset` removes the sandbox so the next `up` creates a new one.",
            )
        started: list[Callable[[], None]] = []
        try:
            pgcluster.install_standins(binaries)
            if fresh:
                self._remove_orphan(cluster, progress)
                for daemon in self._daemons(state):  # the earlier sandbox's helpers, still running
                    if daemon.stop_strays():
                        progress(f"stopped a {daemon.name} left by an earlier sandbox of {self.state_dir}")
            if not cluster.is_running():
                if pgcluster.port_in_use(state.port):
                    raise SandboxError(
                        f"Port {state.port} on 127.0.0.1 is already taken by another program.",
                        remedy="Stop that program, or choose another port: `cronkit sandbox down --reset` and "
                        "`CRONKIT_SANDBOX_PORT=<free port> cronkit sandbox up`.",
                    )
                if fresh:
                    progress(f"creating a PostgreSQL {engine.major} cluster (initdb): {engine.describe()}")
                    self.state_dir.mkdir(parents=True, exist_ok=True)
                    cluster.initdb(SUPERUSER, state.superuser_password, state.app_password)
                    self._save_state(state)
                cluster.write_config()
                progress(f"starting PostgreSQL on 127.0.0.1:{state.port}")
                cluster.start()
                started.append(cluster.stop)
            if not state.bootstrapped:
                progress("creating roles, pg_cron, pg_net and Vault stand-ins")
                self._bootstrap(state)
                state.bootstrapped = True
                self._save_state(state)
            networker, edge = self._daemons(state)
            for daemon in (networker, edge):
                if daemon.pid() is None:
                    if daemon is edge and pgcluster.port_in_use(state.edge_port):
                        raise SandboxError(
                            f"Port {state.edge_port} (Edge Functions server) is already taken by another program.",
                            remedy="Stop that program, or `cronkit sandbox down --reset` and set "
                            "CRONKIT_SANDBOX_EDGE_PORT to a free port.",
                        )
                    progress(f"starting the {daemon.name}")
                    started.append(daemon.stop)
                    daemon.start()
            self._wait_ready(state, networker, edge)
            versions = self.versions(state)
            progress(f"sandbox ready: PostgreSQL {versions['postgresql']}, pg_cron {versions['pg_cron']} "
                     f"({engine.kind} engine: {engine.describe()})")
        except BaseException:
            # Leave nothing running that this call started.
            for stop in reversed(started):
                try:
                    stop()
                except Exception:  # noqa: BLE001 - best effort cleanup; the original error matters
                    pass
            raise
        return self.env(state)

    @staticmethod
    def _remove_orphan(cluster: pgcluster.Cluster, progress: Progress) -> None:
        """The cluster home of a new sandbox is derived from its state directory's path; when it
        already exists, it belongs to an earlier sandbox of that path whose state was deleted by
        hand (its keys are gone with it): stop what still runs there and remove it."""
        if not cluster.home.exists():
            return
        progress(f"removing {cluster.home}: left by an earlier sandbox of {cluster.home.name} whose state is gone")
        if cluster.is_running():
            cluster.stop()
        shutil.rmtree(cluster.home)

    def _bootstrap(self, state: State) -> None:
        env = self.env(state)
        with db.connect(env.superuser_url, autocommit=False) as conn:
            with db.translated("bootstrap the sandbox database"):
                conn.execute(BOOTSTRAP_SQL.read_text(encoding="utf-8"))  # type: ignore[arg-type]
                # Send a SCRAM verifier, not the password, so no query text or log ever holds it.
                verifier = conn.pgconn.encrypt_password(
                    state.app_password.encode(), APP_ROLE.encode(), b"scram-sha-256"
                ).decode()
                conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(APP_ROLE), sql.Literal(verifier))
                )
            conn.commit()

    def _wait_ready(self, state: State, networker: Daemon, edge: Daemon, timeout: float = 20.0) -> None:
        env = self.env(state)
        deadline = time.monotonic() + timeout
        worker_up = edge_up = False
        while time.monotonic() < deadline:
            for daemon in (networker, edge):
                if daemon.exited_early():
                    raise SandboxError(f"The {daemon.name} exited at start:\n{daemon.log_tail()}",
                                       remedy=f"Read {daemon.logfile}.")
            if not worker_up:
                worker_up = self._networker_connected(env.superuser_url)
            if not edge_up:
                edge_up = _http_ok(f"{env.supabase_url}/_sandbox/health")
            if worker_up and edge_up:
                return
            time.sleep(0.05)
        missing = [d.name for d, ok in ((networker, worker_up), (edge, edge_up)) if not ok]
        raise SandboxError(f"Timed out waiting for: {', '.join(missing)}.", remedy=f"Read the logs in {self.state_dir / 'logs'}.")

    @staticmethod
    def _networker_connected(superuser_url: str) -> bool:
        try:
            with db.connect(superuser_url, autocommit=True, connect_timeout=2) as conn:
                row = conn.execute(
                    "select count(*) as n from pg_stat_activity where application_name = %s", (NETWORKER_APPNAME,)
                ).fetchone()
                return bool(row and row["n"])
        except CronkitError:
            return False

    def down(self, reset: bool = False, progress: Progress = _quiet) -> None:
        """Stop every process the sandbox started; with ``reset``, also delete all its state."""
        try:
            state = self.load_state()
        except SandboxError:
            if not reset:
                raise
            state = None
        if state is not None:
            for daemon in self._daemons(state):
                if daemon.pid():
                    progress(f"stopping the {daemon.name}")
                daemon.stop()
            try:
                cluster = self._cluster(state)
            except SandboxError:
                cluster = None
            if cluster is not None and cluster.is_running():
                progress("stopping PostgreSQL")
                cluster.stop()
        if reset:
            if state is not None and Path(state.pg_home).exists():
                shutil.rmtree(state.pg_home, ignore_errors=True)
            if self.state_dir.exists():
                progress(f"removing {self.state_dir}")
                shutil.rmtree(self.state_dir, ignore_errors=True)

    def status(self) -> dict[str, Any]:
        """A JSON-ready description: what exists, what runs, and the extension versions."""
        state = self.load_state()
        if state is None:
            return {"state_dir": str(self.state_dir), "exists": False, "running": False}
        cluster = self._cluster(state)
        networker, edge = self._daemons(state)
        info: dict[str, Any] = {
            "state_dir": str(self.state_dir),
            "exists": True,
            "data_dir": str(cluster.datadir),
            "engine": self.engine(state).as_dict(),
            "os_user": state.os_user,
            "postgres": {"port": state.port, "running": cluster.is_running(), "log": str(cluster.logfile)},
            "networker": {"pid": networker.pid(), "log": str(networker.logfile)},
            "edge": {"pid": edge.pid(), "port": state.edge_port, "log": str(edge.logfile)},
        }
        info["running"] = bool(info["postgres"]["running"] and networker.pid() and edge.pid())
        if info["postgres"]["running"]:
            info["versions"] = self.versions(state)
        return info

    def versions(self, state: State) -> dict[str, str | None]:
        """PostgreSQL, pg_cron, pg_net and Vault versions, as the running server reports them."""
        with db.connect(self.env(state).database_url, autocommit=True) as conn:
            return server_facts(conn).versions


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback URL we built
            return bool(response.status == 200)
    except OSError:
        return False
