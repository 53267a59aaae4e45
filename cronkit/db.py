"""The one module that talks to psycopg: connections, transactions and driver-error translation.

Everything else in cronkit receives a :data:`Conn` from :func:`connect`, composes its SQL with
``psycopg.sql`` (or loads it by name from :mod:`cronkit.queries`) and catches driver errors by
the names re-exported here (:data:`DatabaseError`, :mod:`sqlstate`); values always travel as
parameters. No other module imports psycopg beyond ``psycopg.sql``.
"""

from __future__ import annotations

import contextlib
import os
import re
import weakref
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Any, TypeAlias

import psycopg
from psycopg import errors as pgerr
from psycopg import sql
from psycopg import errors as sqlstate  # noqa: F401  (re-exported: callers catch sqlstate.UndefinedTable, ...)
from psycopg.abc import AdaptContext  # noqa: F401  (re-exported for sql.Composable.as_string)
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from cronkit.errors import (
    ConfigError,
    ConnectionFailed,
    CronkitError,
    ExtensionMissing,
    PrivilegeError,
)
from cronkit.text import first_line

APPLICATION_NAME = "cronkit"

#: a connection whose rows are dicts (what :func:`connect` returns)
Conn: TypeAlias = psycopg.Connection[dict[str, Any]]
#: the root of every driver error
DatabaseError = psycopg.Error
#: raise inside ``conn.transaction()`` to roll that block back without an error
Rollback = psycopg.Rollback
OperationalError = psycopg.OperationalError


def in_transaction(conn: psycopg.Connection[Any]) -> bool:
    """True when a transaction is open on ``conn`` (anything but idle)."""
    return conn.info.transaction_status != TransactionStatus.IDLE


def use_dict_rows(conn: psycopg.Connection[Any]) -> None:
    """Make ``conn`` return rows as dicts (for connections cronkit did not open itself)."""
    conn.row_factory = dict_row  # type: ignore[assignment]


def dict_cursor(conn: psycopg.Connection[Any]) -> psycopg.Cursor[dict[str, Any]]:
    """A cursor whose rows are dicts, whatever the connection's own row factory."""
    return conn.cursor(row_factory=dict_row)


@contextlib.contextmanager
def read_only(conn: psycopg.Connection[Any], *, timeout_ms: int | None = None) -> Iterator[psycopg.Connection[Any]]:
    """A READ ONLY transaction (nested reads become a savepoint) with an optional local timeout.

    Read paths (monitor, runbooks, doctor) run here so a read can never change anything.
    """
    nested = in_transaction(conn)
    with conn.transaction():
        if not nested:
            conn.execute("SET TRANSACTION READ ONLY")
        if timeout_ms is not None:
            conn.execute("SELECT set_config('statement_timeout', %s, true)", (f"{int(timeout_ms)}ms",))
        yield conn


#: where a secret value waits for the statement that stores it (see :func:`staged_secret`)
STAGED_SECRET = sql.Identifier("pg_temp", "cronkit_secret_in")


@contextlib.contextmanager
def staged_secret(conn: psycopg.Connection[Any], name: str, value: str, description: str = "") -> Iterator[None]:
    """Put one secret into the temporary table :data:`STAGED_SECRET` (columns name, value,
    description) for the statements inside the block, then remove it; all in one transaction.

    The value travels by ``COPY ... FROM STDIN``: PostgreSQL logs a statement's text and its bind
    parameters (``log_statement``, ``log_min_duration_statement``) and pg_stat_statements keeps the
    text, but COPY data appears in neither. The statements that store it read the table, so no
    query text or parameter ever holds the value.
    """
    with conn.transaction():
        conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (name text NOT NULL, value text NOT NULL, "
                             "description text NOT NULL) ON COMMIT DROP").format(STAGED_SECRET))
        conn.execute(sql.SQL("TRUNCATE {}").format(STAGED_SECRET))
        with conn.cursor().copy(sql.SQL("COPY {} (name, value, description) FROM STDIN").format(STAGED_SECRET)) as copy:
            copy.write_row((name, value, description))
        try:
            yield
        finally:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(STAGED_SECRET))


def copy_out(conn: psycopg.Connection[Any], statement: sql.Composable, params: Mapping[str, Any]) -> bytes:
    """The rows of ``statement`` as CSV text: ``COPY (statement) TO STDOUT``, parameters merged on the
    client. For result sets read into a frame in bulk (a day of runs is ~150k rows): the server
    writes the text and polars parses it, with no Python object per value."""
    out = bytearray()
    with conn.cursor().copy(sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv)").format(statement), params) as copy:
        for chunk in copy:
            out += chunk
    return bytes(out)


@contextlib.contextmanager
def notices(conn: psycopg.Connection[Any]) -> Iterator[list[str]]:
    """The primary messages of the NOTICEs the server sends while the block runs (a wrapper says
    so when its guard found nothing to do)."""
    seen: list[str] = []

    def keep(diagnostic: psycopg.errors.Diagnostic) -> None:
        seen.append(diagnostic.message_primary or "")

    conn.add_notice_handler(keep)
    try:
        yield seen
    finally:
        conn.remove_notice_handler(keep)


def without_detail(conn: psycopg.Connection[Any], statement: sql.Composable) -> sql.Composable:
    """``statement`` run inside a server-side block that re-raises any error with its SQLSTATE and
    message but without DETAIL, which for a failed write quotes the row (``Failing row contains
    (..., <value>, ...)``). An error caught in PL/pgSQL is never logged, so the row reaches neither
    the server's log nor the driver. For statements that write a secret value.
    """
    return sql.SQL("DO $cronkit_guard$ BEGIN EXECUTE {}; EXCEPTION WHEN others THEN "
                   "RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM; END $cronkit_guard$").format(
        sql.Literal(statement.as_string(conn)))


def error_summary(exc: BaseException) -> str:
    """What an error says, safe to show: a server error's first message line only (its DETAIL,
    CONTEXT and the statement text quoted around a position can hold values); other errors' text."""
    if isinstance(exc, psycopg.Error):
        return first_line(exc.diag.message_primary or str(exc))
    return str(exc)


def syntax_error(conn: psycopg.Connection[Any], statement: Any) -> str | None:
    """The server's syntax error for ``statement`` (None when it parses), run in a savepoint that is
    always rolled back. Only a syntax error (42601) counts; any other refusal (privileges, a missing
    table) is not this check's business and gives None."""
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(statement)
    except psycopg.errors.SyntaxError as exc:
        return str(exc.diag.message_primary or exc)
    except psycopg.Error:
        return None
    return None


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, safe to print or log."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", dsn)
    if "password" in params:
        params["password"] = "***"
    return make_conninfo(**params)


def dsn_label(dsn: str, environ: Mapping[str, str] | None = None) -> str:
    """``host:port/dbname`` of a DSN, with libpq's ``PG*`` variables (``environ``) and defaults for
    what it leaves out: a name for a database in metrics and logs that holds neither user nor password."""
    env = os.environ if environ is None else environ
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return redact_dsn(dsn)
    host = params.get("host") or params.get("hostaddr") or env.get("PGHOST") or "localhost"
    port = params.get("port") or env.get("PGPORT") or "5432"
    user = params.get("user") or env.get("PGUSER") or ""
    dbname = params.get("dbname") or env.get("PGDATABASE") or user or "postgres"
    return f"{host}:{port}/{dbname}"


# -- connection modes ------------------------------------------------------------------------------

#: names the mode of a pooler cronkit cannot recognise by its host name (a self-hosted PgBouncer)
POOL_MODE_VARIABLE = "CRONKIT_POOL_MODE"


class ConnectionMode(StrEnum):
    """What sits between cronkit and PostgreSQL, and so what a connection can rely on."""

    #: PostgreSQL itself (Supabase: ``db.<ref>.supabase.co:5432``)
    DIRECT = "direct"
    #: a pooler that gives each client a server connection for its whole session (Supavisor on 5432)
    SESSION_POOLER = "session_pooler"
    #: a pooler that lends a server connection for one transaction (Supavisor on 6543, PgBouncer
    #: ``pool_mode = transaction``): two transactions of one client may run on two server sessions
    TRANSACTION_POOLER = "transaction_pooler"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")

    @property
    def limits(self) -> str:
        """What this mode changes for cronkit, in a few words for plan and doctor."""
        return {
            ConnectionMode.DIRECT: "no limits",
            ConnectionMode.SESSION_POOLER: "one server session per client while connected; pool size caps clients",
            ConnectionMode.TRANSACTION_POOLER: "no session state; prepared statements off",
        }[self]

    def describe(self) -> str:
        """``transaction pooler (no session state; prepared statements off)``."""
        return f"{self.label} ({self.limits})"


def connection_mode(dsn: str, environ: Mapping[str, str] | None = None) -> ConnectionMode:
    """The mode of a connection to ``dsn``: :data:`POOL_MODE_VARIABLE` when set (``transaction``,
    ``session`` or ``direct``), else Supabase's host names — ``*.pooler.supabase.com`` is Supavisor,
    in transaction mode on port 6543 and session mode on 5432 — and direct for any other host.

    The one place the mode is decided; libpq's ``PGHOST``/``PGPORT`` (in ``environ``) fill what the
    DSN leaves out.
    """
    env = os.environ if environ is None else environ
    chosen = (env.get(POOL_MODE_VARIABLE) or "").strip().lower()
    if chosen:
        by_word = {"transaction": ConnectionMode.TRANSACTION_POOLER, "session": ConnectionMode.SESSION_POOLER,
                   "direct": ConnectionMode.DIRECT}
        by_word.update({mode.value: mode for mode in ConnectionMode})
        if chosen not in by_word:
            raise ConfigError(f"{POOL_MODE_VARIABLE}={chosen!r} is not a connection mode.",
                              remedy=f"Set {POOL_MODE_VARIABLE} to transaction, session or direct (or unset it: "
                              "Supabase's pooler is recognised by its host name).")
        return by_word[chosen]
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return ConnectionMode.DIRECT  # connect() reports the malformed DSN
    host = str(params.get("host") or env.get("PGHOST") or "").lower().rstrip(".")
    port = str(params.get("port") or env.get("PGPORT") or "5432")
    if host.endswith(".pooler.supabase.com"):
        return ConnectionMode.TRANSACTION_POOLER if port == "6543" else ConnectionMode.SESSION_POOLER
    return ConnectionMode.DIRECT


#: the mode each connection cronkit opened was opened for (see :func:`mode_of`)
_MODES: weakref.WeakKeyDictionary[psycopg.Connection[Any], ConnectionMode] = weakref.WeakKeyDictionary()


def mode_of(conn: psycopg.Connection[Any]) -> ConnectionMode:
    """The mode ``conn`` was opened in by :func:`connect`; for a connection cronkit did not open,
    the mode of its DSN."""
    known = _MODES.get(conn)
    return known if known is not None else connection_mode(conn.info.dsn)


def connect(
    dsn: str,
    *,
    autocommit: bool = False,
    connect_timeout: int = 5,
    application_name: str = APPLICATION_NAME,
    environ: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> psycopg.Connection[dict[str, Any]]:
    """Open a connection whose rows are dicts, named ``cronkit`` in ``pg_stat_activity``.

    A connection failure becomes :class:`ConnectionFailed` naming the redacted DSN and the
    server's reason; the password never appears. An empty ``dsn`` means libpq's ``PG*`` variables.

    Behind a transaction pooler (:func:`connection_mode`, read from ``environ``) psycopg never
    prepares statements on the server: a prepared statement lives in one server session, and the
    next transaction may run on another (PgBouncer before 1.21 and Supavisor in transaction mode
    answer ``prepared statement "_pg3_0" does not exist``). Everything else cronkit sets is
    transaction-scoped (``SET LOCAL``, ``set_config(..., true)``, ``pg_advisory_xact_lock``,
    ``ON COMMIT DROP``), so it holds in every mode.
    """
    mode = connection_mode(dsn, environ)
    if mode is ConnectionMode.TRANSACTION_POOLER:
        kwargs.setdefault("prepare_threshold", None)
    try:
        conn = psycopg.connect(
            dsn,
            autocommit=autocommit,
            connect_timeout=connect_timeout,
            application_name=application_name,
            row_factory=dict_row,
            **kwargs,
        )
    except psycopg.OperationalError as exc:
        reason = first_line(str(exc)).replace(dsn, redact_dsn(dsn))
        raise ConnectionFailed(f"Could not connect to {redact_dsn(dsn)}: {reason}",
                               remedy=_connection_remedy(dsn, reason)) from None
    except psycopg.ProgrammingError as exc:
        # a malformed URL is configuration, not an unreachable server; never echo it (it may hold a password)
        reason = first_line(str(exc)).replace(dsn, redact_dsn(dsn)) if dsn else first_line(str(exc))
        raise ConfigError(f"The database URL is malformed: {reason}",
                          remedy="Write it as postgresql://USER:PASSWORD@HOST:PORT/DATABASE (percent-encode special "
                          "characters in the password), in DATABASE_URL, .env or --dsn.") from None
    _MODES[conn] = mode
    return conn


def _connection_remedy(dsn: str, reason: str) -> str | None:
    """A fix for a TLS failure (the server's certificate not trusted, or not for this host); None
    keeps :class:`ConnectionFailed`'s own."""
    lowered = reason.lower()
    if "certificate verify failed" in lowered or "root certificate" in lowered:
        return ("The server's certificate is not signed by the CA in sslrootcert (or ~/.postgresql/root.crt). Point "
                "sslrootcert at the CA that signed it (Supabase: Database Settings → SSL Configuration → Download "
                "certificate), or use sslmode=require to encrypt without verifying.")
    if "does not match host name" in lowered or "server certificate for" in lowered:
        return ("The certificate is valid but names another host: connect with the host name it was issued for "
                "(verify-full checks it), or use sslmode=verify-ca.")
    if "server does not support ssl" in lowered:
        return "The server does not accept TLS: enable ssl on it, or use sslmode=prefer/disable on a trusted network."
    return None


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """Turn driver errors raised inside the block into cronkit errors that say what to do.

    ``action`` completes the sentence "Could not ...", e.g. ``"schedule job 'x'"``.
    """
    try:
        yield
    except CronkitError:
        raise
    except pgerr.InsufficientPrivilege as exc:
        raise PrivilegeError(f"Could not {action}: {error_summary(exc)}") from exc
    except (pgerr.InvalidSchemaName, pgerr.UndefinedFunction, pgerr.UndefinedTable) as exc:
        message = exc.diag.message_primary or str(exc)
        missing = _extension_hint(message)
        if missing:
            raise ExtensionMissing(f"Could not {action}: {message} (is {missing} installed?)") from exc
        raise CronkitError(f"Could not {action}: {message}") from exc
    except psycopg.OperationalError as exc:
        raise ConnectionFailed(f"Could not {action}: {first_line(str(exc))}") from exc
    except psycopg.Error as exc:
        raise CronkitError(f"Could not {action}: {error_summary(exc)}") from exc


def _extension_hint(message: str) -> str | None:
    for schema, extension in (("cron", "pg_cron"), ("net", "pg_net"), ("vault", "supabase_vault")):
        if f'"{schema}"' in message or f"{schema}." in message:
            return extension
    return None
