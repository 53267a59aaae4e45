"""HTTP outcomes per job: the request ledger joined to harvested and live pg_net responses, as one Outcome each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from psycopg import sql

from cronkit.db import Conn
from cronkit.monitor.window import (
    DEFAULT_TIMEOUT_MS,
    ROLLUP_BUCKET,
    TS,
    Jobs,
    Window,
    _frame,
    _job_names,
    _require_schema,
    guarded,
)
from cronkit.outcomes import OUTCOMES
from cronkit.queries import query

_TS = TS

HTTP_SCHEMA: dict[str, pl.DataType] = {
    "jobname": pl.String(), "requests": pl.Int64(),
    **{name: pl.Int64() for name in OUTCOMES},
    "last_error_at": _TS, "last_error": pl.String(),
}
HTTP_TIMELINE_SCHEMA: dict[str, pl.DataType] = {
    "bucket": _TS, "jobname": pl.String(), "outcome": pl.String(), "requests": pl.Int64(),
}

# -- HTTP outcomes -----------------------------------------------------------------------------------

# The bookkeeping an HTTP read needs, computed first (like _BOUNDS) so the reads below have
# constant bounds: the whole hours [full_start, full_end) read from cronkit.http_rollup, the
# watermark, where unresolved requests may start, and the moment before which a request without
# a response is expired.
_HTTP_BOUNDS = query("monitor/http_bounds")

# Units: rollup rows of the whole hours; durable rows that are not in them (in a partial edge
# hour: [since, full_start) and [full_end, until), each an index range on requested_at; or newer
# than the watermark: an index range on seq); and requests without a durable row yet.
_HTTP_UNITS = query("monitor/http_units")


#: buckets of the HTTP timeline, shortest first; sub-hour ones only for windows up to RAW_WINDOW
BUCKETS = tuple(timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080))
#: windows up to this long are read from raw responses, so their buckets may be shorter than an hour
RAW_WINDOW = timedelta(hours=6)
#: about this many buckets across a window
COLUMNS = 60
#: buckets are counted from here (midnight UTC), so an hour bucket is a UTC hour
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


def timeline_bucket(span: timedelta) -> timedelta:
    """The bucket of an HTTP timeline over ``span``: the shortest of :data:`BUCKETS` that gives at
    most :data:`COLUMNS` buckets; at least an hour when the window is read from hourly rollups."""
    floor = BUCKETS[0] if span <= RAW_WINDOW else ROLLUP_BUCKET
    return next((b for b in BUCKETS if b >= floor and b * COLUMNS >= span), BUCKETS[-1])


def _http_params(conn: Conn, window: Window, names: list[str] | None,
                 bucket: timedelta = ROLLUP_BUCKET) -> dict[str, Any]:
    params: dict[str, Any] = {"since": window.since, "until": window.until, "names": names,
                              "bucket": bucket, "origin": ORIGIN}
    row = conn.execute(_HTTP_BOUNDS, params).fetchone()
    assert row is not None
    params.update(row)
    if bucket < ROLLUP_BUCKET:  # hourly rollup rows cannot be split: read the raw rows of the window
        params.update(full_start=window.until, full_end=window.until)
    if params["full_start"] < params["full_end"]:  # since <= full_start < full_end <= until
        params.update(lead_lo=window.since, lead_hi=params["full_start"], trail_lo=params["full_end"], trail_hi=window.until)
    else:  # no whole hour: every durable row of the window is read
        params.update(lead_lo=window.since, lead_hi=window.until, trail_lo=window.until, trail_hi=window.until)
    return params


_LIVE_JOIN = sql.SQL("LEFT JOIN net._http_response r ON r.id = u.request_id")
_LIVE_OUTCOME = sql.SQL(
    "CASE WHEN r.id IS NOT NULL THEN cronkit.http_outcome(r.status_code, r.timed_out, r.error_msg) "
    "WHEN u.created_at < %(expired_before)s::timestamptz THEN 'expired' ELSE 'pending' END"
)
_LIVE_ERROR_AT = sql.SQL(
    "CASE WHEN r.id IS NOT NULL AND cronkit.http_outcome(r.status_code, r.timed_out, r.error_msg) <> '2xx' "
    "THEN u.created_at END"
)
_LIVE_ERROR = sql.SQL("coalesce(r.error_msg, r.status_code::text || ' ' || coalesce(left(r.content, 200), ''))")
_NO_NET_OUTCOME = sql.SQL("CASE WHEN u.created_at < %(expired_before)s::timestamptz THEN 'expired' ELSE 'pending' END")

_HTTP_SUMMARY = query("monitor/http_summary")


def _has_pg_net(conn: Conn) -> bool:
    row = conn.execute("SELECT to_regclass('net._http_response') IS NOT NULL AS ok").fetchone()
    return bool(row and row["ok"])


def _http_units(conn: Conn) -> sql.Composed:
    if _has_pg_net(conn):
        return _HTTP_UNITS.format(live_outcome=_LIVE_OUTCOME, live_error_at=_LIVE_ERROR_AT,
                                  live_error=_LIVE_ERROR, live_join=_LIVE_JOIN)
    return _HTTP_UNITS.format(live_outcome=_NO_NET_OUTCOME, live_error_at=sql.SQL("NULL::timestamptz"),
                              live_error=sql.SQL("NULL::text"), live_join=sql.SQL(""))


def http_outcomes(
    conn: Conn,
    since: datetime | timedelta,
    until: datetime | None = None,
    *,
    jobs: Jobs = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> pl.DataFrame:
    """Per HTTP job, the requests it made in ``[since, until)`` by outcome class.

    Columns: ``requests`` and one count per class in :data:`OUTCOMES` (``2xx`` … ``other``,
    ``pending`` = no response yet, ``expired`` = no response within pg_net.ttl: unknown), and the
    newest non-2xx answer (``last_error_at``, ``last_error``). Attribution is by request id through
    ``cronkit.request_ledger``, so jobs that call the same function at the same time are told apart.
    """
    window = Window.of(since, until)
    with guarded(conn, timeout_ms, "read the HTTP outcomes", jit=False):
        _require_schema(conn)
        pivot = sql.SQL(", ").join(
            sql.SQL("sum(n) FILTER (WHERE outcome = {})::bigint AS {}").format(sql.Literal(o), sql.Identifier(o))
            for o in OUTCOMES
        )
        coalesced = sql.SQL(", ").join(
            sql.SQL("coalesce(p.{0}, 0) AS {0}").format(sql.Identifier(o)) for o in OUTCOMES
        )
        query = _HTTP_SUMMARY.format(units=_http_units(conn), pivot=pivot, coalesced=coalesced)
        rows = conn.execute(query, _http_params(conn, window, _job_names(conn, jobs))).fetchall()
    return _frame(rows, HTTP_SCHEMA)


_HTTP_TIMELINE = query("monitor/http_timeline")


def http_timeline(
    conn: Conn,
    since: datetime | timedelta,
    until: datetime | None = None,
    *,
    jobs: Jobs = None,
    bucket: timedelta | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> pl.DataFrame:
    """Requests per job per time bucket (of the request) per outcome class; long format for charts.

    ``bucket``: :func:`timeline_bucket` of the window unless given (an hour or longer when the
    window is longer than :data:`RAW_WINDOW`, which is read from hourly rollups)."""
    window = Window.of(since, until)
    bucket = bucket or timeline_bucket(window.until - window.since)
    if bucket < ROLLUP_BUCKET and window.until - window.since > RAW_WINDOW:
        raise ValueError(f"a {window.until - window.since} window is read from hourly rollups: buckets of an hour or more")
    with guarded(conn, timeout_ms, "read the HTTP outcomes", jit=False):
        _require_schema(conn)
        params = _http_params(conn, window, _job_names(conn, jobs), bucket)
        rows = conn.execute(_HTTP_TIMELINE.format(units=_http_units(conn)), params).fetchall()
    return _frame(rows, HTTP_TIMELINE_SCHEMA)


