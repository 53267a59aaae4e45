"""HTTP outcomes per job: the request ledger joined to harvested and live pg_net responses, as one Outcome each."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import polars as pl
from psycopg import sql

from cronkit.db import Conn
from cronkit.monitor.window import (
    DEFAULT_TIMEOUT_MS, TS, Jobs, Window, _frame, _job_names, _require_schema, guarded,
)
from cronkit.outcomes import OUTCOMES

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
_HTTP_BOUNDS = sql.SQL("""
SELECT CASE WHEN date_trunc('hour', %(since)s::timestamptz, 'UTC') = %(since)s::timestamptz THEN %(since)s::timestamptz
            ELSE date_trunc('hour', %(since)s::timestamptz, 'UTC') + interval '1 hour' END AS full_start,
       greatest(date_trunc('hour', %(until)s::timestamptz, 'UTC'), %(since)s::timestamptz) AS full_end,
       s.http_watermark AS wm,
       greatest(%(since)s::timestamptz, s.expired_until) AS unresolved_from,
       now() - coalesce(nullif(current_setting('pg_net.ttl', true), '')::interval, interval '6 hours') AS expired_before
  FROM cronkit.monitor_state s WHERE s.id
""")

# Units: rollup rows of the whole hours; durable rows that are not in them (in a partial edge
# hour: [since, full_start) and [full_end, until), each an index range on requested_at; or newer
# than the watermark: an index range on seq); and requests without a durable row yet.
_HTTP_UNITS = sql.SQL("""
resolved AS (
    -- rolled-up whole hours
    SELECT r.jobname, r.bucket, r.outcome, r.requests AS n, NULL::timestamptz AS error_at, NULL::text AS error
      FROM cronkit.http_rollup r
     WHERE r.bucket >= %(full_start)s::timestamptz AND r.bucket < %(full_end)s::timestamptz
       AND (%(names)s::text[] IS NULL OR r.jobname = ANY(%(names)s::text[]))
    UNION ALL
    -- durable rows not in those rollup rows
    SELECT h.jobname, date_trunc('hour', h.requested_at, 'UTC'), h.outcome, 1, NULL, NULL
      FROM cronkit.http_responses h
     WHERE ((h.requested_at >= %(lead_lo)s::timestamptz AND h.requested_at < %(lead_hi)s::timestamptz)
            OR (h.requested_at >= %(trail_lo)s::timestamptz AND h.requested_at < %(trail_hi)s::timestamptz)
            OR (h.seq > %(wm)s::bigint AND h.requested_at >= %(full_start)s::timestamptz AND h.requested_at < %(full_end)s::timestamptz))
       AND (%(names)s::text[] IS NULL OR h.jobname = ANY(%(names)s::text[]))
), unresolved AS (
    -- requests with no durable row yet: at most pg_net.ttl old once the harvest job runs
    -- (a primary-key probe per request: as NOT EXISTS the planner may hash all of http_responses)
    SELECT l.jobname, l.request_id, l.created_at
      FROM cronkit.request_ledger l
      LEFT JOIN LATERAL (SELECT true AS found FROM cronkit.http_responses h
                          WHERE h.request_id = l.request_id LIMIT 1) AS durable ON true
     WHERE l.created_at >= %(unresolved_from)s::timestamptz AND l.created_at < %(until)s::timestamptz
       AND (%(names)s::text[] IS NULL OR l.jobname = ANY(%(names)s::text[]))
       AND durable.found IS NULL
), live AS (
    SELECT u.jobname, date_trunc('hour', u.created_at, 'UTC') AS bucket,
           {live_outcome} AS outcome, 1 AS n, {live_error_at} AS error_at, {live_error} AS error
      FROM unresolved u {live_join}
), units AS (
    SELECT * FROM resolved UNION ALL SELECT * FROM live
)""")


def _http_params(conn: Conn, window: Window, names: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {"since": window.since, "until": window.until, "names": names}
    row = conn.execute(_HTTP_BOUNDS, params).fetchone()
    assert row is not None
    params.update(row)
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

_HTTP_SUMMARY = sql.SQL("""
WITH {units},
per_job AS (
    SELECT jobname, sum(n)::bigint AS requests, {pivot} FROM units GROUP BY jobname
), live_error AS (
    -- the newest error among the responses not harvested yet (only live rows carry one)
    SELECT DISTINCT ON (jobname) jobname, error_at, error FROM live
     WHERE error_at IS NOT NULL ORDER BY jobname, error_at DESC
), jobs AS (
    SELECT m.jobname FROM cronkit.managed_jobs m
     WHERE m.spec ->> 'kind' = 'http' AND (%(names)s::text[] IS NULL OR m.jobname = ANY(%(names)s::text[]))
    UNION
    SELECT jobname FROM per_job
)
SELECT jobs.jobname, coalesce(p.requests, 0) AS requests, {coalesced},
       CASE WHEN le.error_at >= e.requested_at OR e.requested_at IS NULL THEN le.error_at
            ELSE e.requested_at END AS last_error_at,
       CASE WHEN le.error_at >= e.requested_at OR e.requested_at IS NULL THEN le.error
            ELSE e.error END AS last_error
  FROM jobs
  LEFT JOIN per_job p ON p.jobname = jobs.jobname
  LEFT JOIN live_error le ON le.jobname = jobs.jobname
  LEFT JOIN LATERAL (
      -- the partial index (jobname, requested_at) WHERE outcome <> '2xx' makes this one probe
      SELECT h.requested_at,
             h.outcome || ': ' || coalesce(h.error_msg, h.status_code::text || coalesce(' ' || h.excerpt, ''), 'no response within pg_net.ttl') AS error
        FROM cronkit.http_responses h
       WHERE h.jobname = jobs.jobname AND h.outcome <> '2xx'
         AND h.requested_at >= %(since)s::timestamptz AND h.requested_at < %(until)s::timestamptz
       ORDER BY h.requested_at DESC LIMIT 1
  ) e ON true
 ORDER BY jobs.jobname
""")


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


_HTTP_TIMELINE = sql.SQL("""
WITH {units}
SELECT bucket, jobname, outcome, sum(n)::bigint AS requests FROM units
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
""")


def http_timeline(
    conn: Conn,
    since: datetime | timedelta,
    until: datetime | None = None,
    *,
    jobs: Jobs = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> pl.DataFrame:
    """Requests per job per UTC hour (of the request) per outcome class; long format for charts."""
    window = Window.of(since, until)
    with guarded(conn, timeout_ms, "read the HTTP outcomes", jit=False):
        _require_schema(conn)
        params = _http_params(conn, window, _job_names(conn, jobs))
        rows = conn.execute(_HTTP_TIMELINE.format(units=_http_units(conn)), params).fetchall()
    return _frame(rows, HTTP_TIMELINE_SCHEMA)


