"""The one module that talks to psycopg: connections and driver-error translation.

Everything else in cronkit receives a ``psycopg.Connection`` from :func:`connect` and composes
its SQL with ``psycopg.sql``; values always travel as parameters.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import errors as pgerr
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from cronkit.errors import (
    ConnectionFailed,
    CronkitError,
    ExtensionMissing,
    PrivilegeError,
)

APPLICATION_NAME = "cronkit"


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, safe to print or log."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", dsn)
    if "password" in params:
        params["password"] = "***"
    return make_conninfo(**params)


def connect(
    dsn: str,
    *,
    autocommit: bool = False,
    connect_timeout: int = 5,
    application_name: str = APPLICATION_NAME,
    **kwargs: Any,
) -> psycopg.Connection[dict[str, Any]]:
    """Open a connection whose rows are dicts, named ``cronkit`` in ``pg_stat_activity``.

    A connection failure becomes :class:`ConnectionFailed` naming the redacted DSN and the
    server's reason; the password never appears. An empty ``dsn`` means libpq's ``PG*`` variables.
    """
    try:
        return psycopg.connect(
            dsn,
            autocommit=autocommit,
            connect_timeout=connect_timeout,
            application_name=application_name,
            row_factory=dict_row,
            **kwargs,
        )
    except psycopg.OperationalError as exc:
        reason = _first_line(str(exc)).replace(dsn, redact_dsn(dsn))
        raise ConnectionFailed(f"Could not connect to {redact_dsn(dsn)}: {reason}") from None
    except psycopg.ProgrammingError as exc:
        raise ConnectionFailed(f"The database URL is malformed: {_first_line(str(exc))}") from None


def _first_line(text: str) -> str:
    text = text.strip()
    return text.splitlines()[0] if text else text


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
        raise PrivilegeError(f"Could not {action}: {_first_line(exc.diag.message_primary or str(exc))}") from exc
    except (pgerr.InvalidSchemaName, pgerr.UndefinedFunction, pgerr.UndefinedTable) as exc:
        message = exc.diag.message_primary or str(exc)
        missing = _extension_hint(message)
        if missing:
            raise ExtensionMissing(f"Could not {action}: {message} (is {missing} installed?)") from exc
        raise CronkitError(f"Could not {action}: {message}") from exc
    except psycopg.OperationalError as exc:
        raise ConnectionFailed(f"Could not {action}: {_first_line(str(exc))}") from exc
    except psycopg.Error as exc:
        raise CronkitError(f"Could not {action}: {_first_line(exc.diag.message_primary or str(exc))}") from exc


def _extension_hint(message: str) -> str | None:
    for schema, extension in (("cron", "pg_cron"), ("net", "pg_net"), ("vault", "supabase_vault")):
        if f'"{schema}"' in message or f"{schema}." in message:
            return extension
    return None
