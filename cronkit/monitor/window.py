"""Time windows, guarded read-only queries and the runid range a window maps to (shared by every monitor read)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from psycopg import sql

from cronkit.db import Conn, copy_out, in_transaction, translated
from cronkit.errors import CronkitError
from cronkit.queries import query

Jobs = Sequence[int | str] | None

#: default statement_timeout of one monitoring query
DEFAULT_TIMEOUT_MS = 15_000
#: the longest window any function accepts
MAX_WINDOW = timedelta(days=400)
#: how far a run's runid may be "ahead" of its start time (pg_cron hands out the runid when it
#: starts the run, then connects: at most the 10 s startup timeout, bgw/launcher delays on top)
RUNID_MARGIN = timedelta(minutes=10)
ROLLUP_BUCKET = timedelta(hours=1)

TS = pl.Datetime("us", "UTC")


# -- windows and guarded queries -------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A half-open time range ``[since, until)`` in UTC."""

    since: datetime
    until: datetime

    @classmethod
    def of(cls, since: datetime | timedelta, until: datetime | None = None, *, now: datetime | None = None,
           max_span: timedelta = MAX_WINDOW) -> Window:
        """``since`` is a moment or a look-back from ``until`` (default: now); both must be aware."""
        now = now or datetime.now(UTC)
        end = _aware(until, "until") if until is not None else now
        start = end - since if isinstance(since, timedelta) else _aware(since, "since")
        if start >= end:
            raise CronkitError(f"The window is empty: since {start:%Y-%m-%d %H:%M:%S} is not before until {end:%Y-%m-%d %H:%M:%S}.",
                               remedy="Pass a since that is earlier than until.")
        if end - start > max_span:
            raise CronkitError(f"The window is {end - start}, longer than the {max_span.days} days a look may cover.",
                               remedy="Look at a shorter window; history older than the retention horizon is gone anyway.")
        return cls(start, end)


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, e.g. datetime(2026, 1, 1, tzinfo=UTC)")
    return moment.astimezone(UTC)


@contextlib.contextmanager
def guarded(conn: Conn, timeout_ms: int = DEFAULT_TIMEOUT_MS, action: str = "read the job history", *,
            jit: bool = True, read_only: bool = True) -> Iterator[None]:
    """A READ ONLY transaction (or savepoint) with ``statement_timeout`` and ``TimeZone = 'UTC'`` set locally,
    and ``jit = off`` when ``jit`` is false: for the rollup reads, whose few-thousand-row plans can
    still cost enough to trigger JIT compilation that takes longer than the query (measured: 66 ms
    of compilation in a 100 ms HTTP summary).

    Inside a caller's transaction the previous values are put back on the way out, so a monitoring
    read never changes the caller's session settings. Only the upkeep functions, which write the
    rollups, pass ``read_only=False``.
    """
    nested = in_transaction(conn)
    with translated(action):
        previous = None
        if nested:
            previous = conn.execute(
                "SELECT current_setting('statement_timeout') AS st, current_setting('TimeZone') AS tz, "
                "current_setting('jit') AS jit"
            ).fetchone()
        with conn.transaction():
            if read_only and not nested:
                conn.execute("SET TRANSACTION READ ONLY")
            conn.execute(
                "SELECT set_config('statement_timeout', %s, true), set_config('TimeZone', 'UTC', true)",
                (str(int(timeout_ms)),),
            )
            if not jit:
                conn.execute("SELECT set_config('jit', 'off', true)")
            yield
            if previous is not None:
                conn.execute(
                    "SELECT set_config('statement_timeout', %s, true), set_config('TimeZone', %s, true), "
                    "set_config('jit', %s, true)",
                    (previous["st"], previous["tz"], previous["jit"]),
                )


def _frame(rows: Sequence[Mapping[str, Any]], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Rows as a frame with exactly ``schema`` (an empty result still has every column)."""
    columns = {name: [row.get(name) for row in rows] for name in schema}
    return pl.DataFrame(columns, schema=dict(schema))


def _copied_frame(conn: Conn, statement: sql.Composable, params: Mapping[str, Any],
                  schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """The rows of ``statement`` (columns named as in ``schema``; timestamps, numbers and text) as a
    frame, read through ``COPY`` for results of thousands of rows: a Python object per value costs
    more than the query. Timestamps travel as epoch microseconds, so no text date is parsed."""
    columns = [sql.SQL("(extract(epoch FROM {0}) * 1000000)::bigint AS {0}").format(sql.Identifier(name))
               if dtype == TS else sql.Identifier(name) for name, dtype in schema.items()]
    text = copy_out(conn, sql.SQL("SELECT {} FROM ({}) AS q").format(sql.SQL(", ").join(columns), statement), params)
    wire = {name: pl.Int64() if dtype == TS else dtype for name, dtype in schema.items()}
    frame = pl.read_csv(text, has_header=False, new_columns=list(wire), schema=wire) if text else pl.DataFrame(schema=wire)
    return frame.with_columns(pl.col(name).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
                              for name, dtype in schema.items() if dtype == TS)


def has_monitoring_schema(conn: Conn) -> bool:
    """True when ``cronkit/sql/schema_monitoring.sql`` has been applied (``cronkit apply``) and the role may use it."""
    row = conn.execute(query("monitor/has_schema")).fetchone()
    return bool(row and (row["ok"] if isinstance(row, Mapping) else row[0]))


def runid_floor(conn: Conn, at: datetime) -> int:
    """A runid below every run that started at or after ``at`` (O(log n) primary-key probes).

    Without cronkit's monitoring schema this is 0, i.e. "scan from the beginning".
    """
    if not has_monitoring_schema(conn):
        return 0
    row = conn.execute("SELECT cronkit.runid_at(%s) AS runid", (_aware(at, "at") - RUNID_MARGIN,)).fetchone()
    assert row is not None
    return int(row["runid"])


def _job_ids(conn: Conn, jobs: Jobs) -> list[int] | None:
    """Job ids for a list of ids and/or names (names are looked up in cron.job)."""
    if jobs is None:
        return None
    ids = [j for j in jobs if isinstance(j, int)]
    names = [j for j in jobs if isinstance(j, str)]
    if names:
        rows = conn.execute("SELECT jobid FROM cron.job WHERE jobname = ANY(%s)", (names,)).fetchall()
        ids += [int(r["jobid"]) for r in rows]
    return ids


def _job_names(conn: Conn, jobs: Jobs) -> list[str] | None:
    if jobs is None:
        return None
    names = [j for j in jobs if isinstance(j, str)]
    ids = [j for j in jobs if isinstance(j, int)]
    if ids:
        rows = conn.execute("SELECT jobname FROM cron.job WHERE jobid = ANY(%s) AND jobname IS NOT NULL", (ids,)).fetchall()
        names += [str(r["jobname"]) for r in rows]
    return names




def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _require_schema(conn: Conn) -> None:
    if not has_monitoring_schema(conn):
        raise CronkitError(
            "cronkit's monitoring tables are not in this database.",
            remedy="Run `cronkit apply` (it creates schema cronkit with the monitoring objects), then add "
            "[monitoring] to the manifest so the harvest and rollup jobs keep them current.",
        )
