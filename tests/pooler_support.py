"""What stands between cronkit and PostgreSQL in the connection-mode tests: a PgBouncer in transaction
mode (standing in for Supabase's transaction pooler, Supavisor on 6543) and a test CA for TLS.

:func:`pgbouncer` runs Debian's ``/usr/sbin/pgbouncer`` in front of a sandbox's PostgreSQL with a
pool of two server connections, so consecutive transactions of one client land on different server
sessions: whatever relies on session state (a ``SET``, a prepared statement, a temporary table kept
across transactions) breaks through it. It runs as an unprivileged OS user (PgBouncer refuses root,
and CI is root), detached in its own process group with its output in a file (a daemon holding the
test runner's stdout keeps CI's pipe open), and is stopped by its process group.

:func:`make_ca` makes a CA and a server certificate for ``localhost``/127.0.0.1 with the ``openssl``
command; :func:`serve_tls` makes a sandbox's PostgreSQL serve it (``ssl = on``, reloaded).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.helpers import log_tail, stop_process_group, wait_for

PGBOUNCER = Path("/usr/sbin/pgbouncer")


def _free_port() -> int:
    from cronkit_sandbox.cluster import free_port

    return free_port()


def _port_open(port: int) -> bool:
    from cronkit_sandbox.cluster import port_in_use

    return port_in_use(port)


@dataclass(frozen=True)
class Bouncer:
    """A running PgBouncer: the DSN a client uses, and its log."""

    dsn: str
    log: Path
    pool_size: int

    def log_tail(self) -> str:
        return log_tail(self.log, 20)


def _unprivileged() -> dict[str, Any]:
    """Popen arguments that drop root to ``nobody`` (nothing when not root)."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("nobody")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


@contextmanager
def pgbouncer(server_dsn: str, *, pool_size: int = 2, pool_mode: str = "transaction") -> Iterator[Bouncer]:
    """PgBouncer in ``pool_mode`` (transaction: Supavisor on 6543; session: on 5432) in front of
    ``server_dsn``'s server (its role and password)."""
    params = conninfo_to_dict(server_dsn)
    user, password = str(params["user"]), str(params["password"])
    dbname = str(params.get("dbname") or "postgres")
    port = _free_port()
    work = Path(tempfile.mkdtemp(prefix="cronkit-pgbouncer-", dir="/tmp"))
    drop = _unprivileged()
    ini, users, log = work / "pgbouncer.ini", work / "userlist.txt", work / "pgbouncer.log"
    users.write_text(f'"{user}" "{password}"\n', encoding="utf-8")
    ini.write_text(
        "[databases]\n"
        f"{dbname} = host={params.get('host', '127.0.0.1')} port={params['port']} dbname={dbname}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = scram-sha-256\nauth_file = {users}\n"
        f"pool_mode = {pool_mode}\n"
        f"default_pool_size = {pool_size}\nmin_pool_size = 0\nreserve_pool_size = 0\nmax_client_conn = 50\n"
        f"logfile = {log}\nlog_connections = 0\nlog_disconnections = 0\n"
        "server_login_retry = 1\n",
        encoding="utf-8",
    )
    for path in (work, ini, users):
        os.chmod(path, 0o700 if path == work else 0o600)
        if drop:
            os.chown(path, drop["user"], drop["group"])
    with open(work / "stdout.log", "wb") as out, open(os.devnull, "rb") as devnull:
        process = subprocess.Popen([str(PGBOUNCER), str(ini)], stdin=devnull, stdout=out, stderr=subprocess.STDOUT,
                                   cwd=work, start_new_session=True, **drop)
    bouncer = Bouncer(make_conninfo(server_dsn, host="127.0.0.1", port=str(port)), log, pool_size)
    try:
        wait_for(lambda: _port_open(port) or process.poll() is not None, timeout=10, interval=0.1,
                 message="pgbouncer to listen")
        if process.poll() is not None:
            raise RuntimeError("pgbouncer did not start:\n" + (work / "stdout.log").read_text(errors="replace")
                               + bouncer.log_tail())
        yield bouncer
    finally:
        stop_process_group(process, timeout=10)
        shutil.rmtree(work, ignore_errors=True)


# -- TLS ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabCA:
    """A CA certificate and a server key pair it signed (for ``localhost`` and 127.0.0.1)."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def make_ca(directory: Path, name: str = "cronkit test CA") -> LabCA:
    """A fresh CA in ``directory`` and a server certificate it signed for localhost/127.0.0.1."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=directory)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", "server.key", "-out", "server.csr", cwd=directory)
    (directory / "san.ext").write_text("subjectAltName = DNS:localhost, IP:127.0.0.1\n", encoding="utf-8")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=directory)
    return LabCA(directory / "ca.crt", directory / "server.crt", directory / "server.key")




def serve_tls(sandbox: Any, superuser: Any, ca: LabCA) -> None:
    """Make ``sandbox``'s PostgreSQL serve ``ca``'s server certificate: copied into the cluster's own
    files (owned by its OS user, 0600, as PostgreSQL demands of a key), ``ssl = on``, reloaded."""
    state = sandbox.load_state()
    cluster = sandbox._cluster(state)
    inner = {}
    for source, target in ((ca.server_cert, "server.crt"), (ca.server_key, "server.key")):
        path = cluster.home / target
        shutil.copyfile(source, path)
        os.chmod(path, 0o600)
        if not cluster.user.is_self:
            os.chown(path, cluster.user.uid, cluster.user.gid)
        inner[target] = cluster.inner(path)
    superuser.execute(f"ALTER SYSTEM SET ssl_cert_file = '{inner['server.crt']}'")
    superuser.execute(f"ALTER SYSTEM SET ssl_key_file = '{inner['server.key']}'")
    superuser.execute("ALTER SYSTEM SET ssl = on")
    superuser.execute("SELECT pg_reload_conf()")
    wait_for(lambda: superuser.execute("SHOW ssl").fetchone()["ssl"] == "on", timeout=10, interval=0.2,
             message="ssl = on after the reload")
