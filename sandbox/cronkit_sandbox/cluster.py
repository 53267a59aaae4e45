"""A throwaway PostgreSQL cluster with pg_cron preloaded, run as an unprivileged OS user.

PostgreSQL refuses to run as root, and CI runs as root: when cronkit is root, the cluster runs as
the OS user ``postgres`` that Debian's postgresql-common creates (``CRONKIT_SANDBOX_OS_USER``
overrides). The files that user must own (data directory, password file, server log) live in
``pg_home``: inside the project's state directory when that user can reach it, otherwise under
``/var/lib/postgresql/cronkit/`` (a project under ``/root`` is not traversable by others).

On a ``root`` engine (``engines``) every server command runs through ``chroot`` as the root's own
``postgres`` user, and ``pg_home`` is inside that root: paths are kept as the server sees them and
mapped with ``Engine.on_host`` where this process reads or writes them.

No Unix socket is used: clients and pg_cron's own job connections go over 127.0.0.1 with
scram passwords; pg_cron finds its password through ``PGPASSFILE`` inherited from the postmaster.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cronkit.errors import SandboxError
from cronkit_sandbox.engines import Engine, EngineKind, chroot, root_user

STANDINS = Path(__file__).parent / "standins"


@dataclass(frozen=True)
class Binaries:
    """Server binaries and directories, as the server sees its filesystem."""

    engine: Engine
    bindir: Path
    sharedir: Path
    pkglibdir: Path

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


def find_binaries(engine: Engine, environ: dict[str, str] | None = None) -> Binaries:
    """Locate the engine's server binaries and check that pg_cron is installed for them."""
    environ = dict(os.environ if environ is None else environ)
    bindir = engine.bindir
    if engine.kind is EngineKind.HOST and environ.get("CRONKIT_PG_BINDIR"):
        bindir = Path(environ["CRONKIT_PG_BINDIR"])
    install = f"apt-get install postgresql-{engine.major} postgresql-{engine.major}-cron (./dev does this)"
    missing = [n for n in ("initdb", "pg_ctl", "postgres", "pg_config") if not engine.on_host(bindir / n).is_file()]
    if missing:
        raise SandboxError(
            f"PostgreSQL server binaries not found in {engine.on_host(bindir)} (missing: {', '.join(missing)}).",
            remedy=install + (", or set CRONKIT_PG_BINDIR." if engine.kind is EngineKind.HOST else "."),
        )

    def config(flag: str) -> Path:
        command = [str(bindir / "pg_config"), flag]
        if engine.root is not None:
            command = chroot(engine.root, *command)
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        return Path(out.stdout.strip())

    binaries = Binaries(engine, bindir=bindir, sharedir=config("--sharedir"), pkglibdir=config("--pkglibdir"))
    if not engine.on_host(binaries.pkglibdir / "pg_cron.so").is_file() or not engine.on_host(
        binaries.sharedir / "extension" / "pg_cron.control"
    ).is_file():
        raise SandboxError(
            f"pg_cron is not installed for the PostgreSQL in {engine.on_host(bindir)}.",
            remedy=f"apt-get install postgresql-{engine.major}-cron (./dev does this).",
        )
    return binaries


def install_standins(binaries: Binaries) -> None:
    """Copy the pg_net and supabase_vault stand-in extensions into PostgreSQL's extension dir.

    Needs write access there (root) the first time and after an upgrade of the stand-ins;
    otherwise it only compares files.
    """
    target = binaries.engine.on_host(binaries.sharedir / "extension")
    for source in sorted(STANDINS.glob("*")):
        if source.suffix not in (".control", ".sql"):
            continue
        dest = target / source.name
        if dest.is_file() and dest.read_bytes() == source.read_bytes():
            continue
        try:
            shutil.copyfile(source, dest)
        except PermissionError:
            raise SandboxError(
                f"The sandbox's pg_net/Vault stand-ins are not installed in {target}.",
                remedy="Run `cronkit sandbox up` once as root (or with sudo) so they can be installed.",
            ) from None


@dataclass(frozen=True)
class OsUser:
    name: str
    uid: int
    gid: int
    home: str

    @property
    def is_self(self) -> bool:
        return self.uid == os.geteuid()

    def popen_kwargs(self) -> dict[str, object]:
        if self.is_self:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def os_user(engine: Engine, environ: dict[str, str] | None = None) -> OsUser:
    """The OS user that runs the cluster: ourselves, or ``postgres`` when we are root.

    On a root engine that is the root's own ``postgres`` (its uid, from the root's /etc/passwd).
    """
    environ = dict(os.environ if environ is None else environ)
    if engine.root is not None:
        uid, gid, home = root_user(engine.root)
        return OsUser("postgres", uid, gid, home)
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
    else:
        name = environ.get("CRONKIT_SANDBOX_OS_USER", "postgres")
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise SandboxError(
                f"PostgreSQL refuses to run as root, and the OS user {name!r} to run it as does not exist.",
                remedy="apt-get install postgresql-15 (creates the 'postgres' user), or set CRONKIT_SANDBOX_OS_USER.",
            ) from None
        if entry.pw_uid == 0:
            raise SandboxError("CRONKIT_SANDBOX_OS_USER must not be root.", remedy="Name an unprivileged user.")
    return OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def traversable_by(path: Path, user: OsUser) -> bool:
    """Whether ``user`` can reach ``path`` (execute permission on every existing ancestor)."""
    groups = {user.gid} | {g.gr_gid for g in grp.getgrall() if user.name in g.gr_mem}
    for directory in [path, *path.parents]:
        if not directory.exists():
            continue
        st = directory.stat()
        if st.st_uid == user.uid:
            bit = 0o100
        elif st.st_gid in groups:
            bit = 0o010
        else:
            bit = 0o001
        if not st.st_mode & bit:
            return False
    return True


def pg_home_for(state_dir: Path, user: OsUser, engine: Engine) -> Path:
    """Where the files owned by the cluster's OS user live for this state directory (host path)."""
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
    if engine.root is not None:
        return engine.on_host(Path("/var/lib/cronkit") / digest)
    if user.is_self or traversable_by(state_dir, user):
        return state_dir / "pg"
    return Path("/var/lib/postgresql/cronkit") / digest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Cluster:
    """One data directory and how to run it."""

    binaries: Binaries
    user: OsUser
    home: Path
    port: int

    @property
    def datadir(self) -> Path:
        return self.home / "data"

    @property
    def logfile(self) -> Path:
        return self.home / "postgres.log"

    @property
    def passfile(self) -> Path:
        return self.home / "pgpass"

    def inner(self, path: Path) -> str:
        """A host path inside the cluster's files, as the server sees it."""
        root = self.binaries.engine.root
        return "/" + str(path.relative_to(root)) if root is not None else str(path)

    def _run(self, args: list[str], *, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        base_env = {
            "PATH": "/usr/bin:/bin",
            "HOME": self.inner(self.home),
            "LC_ALL": "C.UTF-8",
            "PGPASSFILE": self.inner(self.passfile),
        }
        root = self.binaries.engine.root
        user_kwargs: dict[str, object] = self.user.popen_kwargs()
        if root is not None:
            # chroot switches to the root's own postgres user after entering it.
            args = chroot(root, *args, user=(self.user.uid, self.user.gid))
            user_kwargs = {}
        # pg_ctl's own output goes to a file, never to our pipes: the postmaster it spawns must not
        # inherit them (a daemon holding CI's stdout open makes the run hang).
        with open(os.devnull, "rb") as devnull:
            return subprocess.run(
                args,
                stdin=devnull,
                capture_output=True,
                text=True,
                env={**base_env, **(env or {})},
                cwd=self.home,
                timeout=timeout,
                **user_kwargs,  # type: ignore[arg-type]
            )

    def prepare_home(self) -> None:
        self.home.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.home, 0o700)
        if not self.user.is_self:
            for path in [self.home, *self.home.rglob("*")]:
                os.lchown(path, self.user.uid, self.user.gid)

    def is_initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").is_file()

    def initdb(self, superuser: str, superuser_password: str, app_password: str) -> None:
        self.prepare_home()
        pwfile = self.home / "initdb.pw"
        self._write_owned(pwfile, superuser_password + "\n")
        try:
            result = self._run(
                [
                    self.binaries.tool("initdb"),
                    "-D", self.inner(self.datadir),
                    "-U", superuser,
                    f"--pwfile={self.inner(pwfile)}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "-E", "UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ],
                timeout=120,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise SandboxError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")
        self._write_owned(
            self.passfile,
            f"127.0.0.1:{self.port}:*:{superuser}:{superuser_password}\n"
            f"127.0.0.1:{self.port}:*:postgres:{app_password}\n",
        )
        self._write_owned(
            self.datadir / "pg_hba.conf",
            "# cronkit sandbox: TCP on loopback only, passwords required (pg_cron reads PGPASSFILE)\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
            "host all all ::1/128 scram-sha-256\n",
        )
        with open(self.datadir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\ninclude = 'cronkit.conf'\n")

    def write_config(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": "''",
            "shared_preload_libraries": "'pg_cron'",
            "cron.database_name": "'postgres'",
            "cron.host": "'127.0.0.1'",
            "max_connections": "60",
            "timezone": "'UTC'",
            "log_timezone": "'UTC'",
            # Placeholders read by the pg_net stand-in's delivery worker, as pg_net's own GUCs.
            "pg_net.ttl": "'6 hours'",
            "pg_net.batch_size": "200",
            # A sandbox favours speed over durability of the last few transactions.
            "synchronous_commit": "off",
            "log_min_messages": "warning",
        }
        body = "# Written by cronkit sandbox on every start; edit postgresql.auto.conf instead.\n"
        body += "".join(f"{key} = {value}\n" for key, value in settings.items())
        self._write_owned(self.datadir / "cronkit.conf", body)

    def _write_owned(self, path: Path, text: str) -> None:
        path.write_text(text, encoding="utf-8")
        os.chmod(path, 0o600)
        if not self.user.is_self:
            os.chown(path, self.user.uid, self.user.gid)

    def is_running(self) -> bool:
        if not self.is_initialized():
            return False
        return self._run([self.binaries.tool("pg_ctl"), "status", "-D", self.inner(self.datadir)]).returncode == 0

    def start(self) -> None:
        result = self._run(
            [
                self.binaries.tool("pg_ctl"), "start", "-w", "-t", "60",
                "-D", self.inner(self.datadir), "-l", self.inner(self.logfile),
            ],
            timeout=90,
        )
        if result.returncode != 0:
            raise SandboxError(
                "PostgreSQL did not start:\n" + self.log_tail(),
                remedy=f"Read {self.logfile}; `cronkit sandbox down --reset` starts from scratch.",
            )

    def stop(self) -> None:
        if self.is_running():
            self._run([self.binaries.tool("pg_ctl"), "stop", "-w", "-m", "fast", "-D", self.inner(self.datadir)], timeout=90)

    def log_tail(self, lines: int = 12) -> str:
        try:
            text = self.logfile.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join("  " + line for line in text.strip().splitlines()[-lines:])
