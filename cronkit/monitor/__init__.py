"""Run history and HTTP outcomes of pg_cron jobs, aggregated in the database, as polars frames.

Why this is not ``select * from cron.job_run_details``: the table has no index but its primary key
(pg_cron#408), grows without bound (the Supabase dashboard gives up above 200k rows), and its
``succeeded`` only means ``net.http_post`` queued a request. So:

* every read is time-windowed, and the window becomes a **runid range** (runids are handed out
  when a run starts): :func:`runid_floor` finds it with a binary search over the primary key
  (``cronkit.runid_at``) instead of a sequential scan;
* history comes from **daily and hourly rollups** kept current by ``cronkit.refresh_rollups()``
  (a maintenance job; watermark on runid, runs still running at refresh time are kept in an open
  set and folded in once final; the same new runs go into both levels in one statement). A
  summary reads one daily row per job for each whole UTC day inside the window, hourly rows for
  the other whole hours (at most 23 per job), and raw rows only for the two partial hours at its
  edges (found through the rollup's runid range) and for whatever is newer than the last refresh —
  so results are exact counts while the cost follows the number of jobs and days, not runs. The
  timeline reads the hourly level only;
* duration percentiles from rollups come from a log-scale histogram (bins 5 percent wide, the value
  reported is the bin's geometric middle, capped at the maximum): within 2.5 percent of the
  nearest-rank percentile. ``use_rollups=False`` computes exact nearest-rank percentiles from raw
  rows (``percentile_disc``) for the same window;
* HTTP outcomes come from ``cronkit.request_ledger`` (which request belongs to which job) joined to
  the durable ``cronkit.http_responses`` (copied from ``net._http_response`` by
  ``cronkit.harvest_responses()`` before pg_net's TTL deletes them) and, for requests not
  harvested yet, to ``net._http_response`` itself. A request without any response is *pending*
  until pg_net's TTL has passed, then *expired* (its outcome can no longer be known).

Every query runs in a transaction with ``statement_timeout`` and ``TimeZone = UTC`` set locally.
Reference: shared/reference/pg_cron_pg_net_vault.md §1.2, §1.7, §2.3-2.5, §4.2.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import psycopg
from psycopg import sql

from cronkit.db import translated
from cronkit.errors import CronkitError

Conn = psycopg.Connection[Any]
Jobs = Sequence[int | str] | None

#: default statement_timeout of one monitoring query
DEFAULT_TIMEOUT_MS = 15_000
#: the longest window any function accepts
MAX_WINDOW = timedelta(days=400)
#: how far a run's runid may be "ahead" of its start time (pg_cron hands out the runid when it
#: starts the run, then connects: at most the 10 s startup timeout, bgw/launcher delays on top)
RUNID_MARGIN = timedelta(minutes=10)
ROLLUP_BUCKET = timedelta(hours=1)
#: outcome classes, in display order (see cronkit.http_outcome in schema_monitoring.sql)
OUTCOMES = ("2xx", "3xx", "4xx", "5xx", "timeout", "transport_error", "other", "pending", "expired")

_TS = pl.Datetime("us", "UTC")

SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "jobid": pl.Int64(), "jobname": pl.String(), "active": pl.Boolean(), "schedule": pl.String(),
    "runs": pl.Int64(), "succeeded": pl.Int64(), "failed": pl.Int64(), "running": pl.Int64(),
    "p50_ms": pl.Float64(), "p95_ms": pl.Float64(), "max_ms": pl.Float64(), "mean_ms": pl.Float64(),
    "last_start": _TS, "last_status": pl.String(), "last_failure_at": _TS, "last_failure_message": pl.String(),
}
TIMELINE_SCHEMA: dict[str, pl.DataType] = {
    "bucket": _TS, "jobid": pl.Int64(), "jobname": pl.String(), "runs": pl.Int64(), "succeeded": pl.Int64(),
    "failed": pl.Int64(), "running": pl.Int64(), "p50_ms": pl.Float64(), "p95_ms": pl.Float64(), "max_ms": pl.Float64(),
}
HTTP_SCHEMA: dict[str, pl.DataType] = {
    "jobname": pl.String(), "requests": pl.Int64(),
    **{name: pl.Int64() for name in OUTCOMES},
    "last_error_at": _TS, "last_error": pl.String(),
}
HTTP_TIMELINE_SCHEMA: dict[str, pl.DataType] = {
    "bucket": _TS, "jobname": pl.String(), "outcome": pl.String(), "requests": pl.Int64(),
}
RUNS_SCHEMA: dict[str, pl.DataType] = {
    "runid": pl.Int64(), "jobid": pl.Int64(), "jobname": pl.String(), "status": pl.String(),
    "start_time": _TS, "end_time": _TS, "duration_ms": pl.Float64(), "return_message": pl.String(),
}


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
            jit: bool = True) -> Iterator[None]:
    """A transaction (or savepoint) with ``statement_timeout`` and ``TimeZone = 'UTC'`` set locally,
    and ``jit = off`` when ``jit`` is false: for the rollup reads, whose few-thousand-row plans can
    still cost enough to trigger JIT compilation that takes longer than the query (measured: 66 ms
    of compilation in a 100 ms HTTP summary).

    Inside a caller's transaction the previous values are put back on the way out, so a monitoring
    read never changes the caller's session settings.
    """
    nested = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    with translated(action):
        previous = None
        if nested:
            previous = conn.execute(
                "SELECT current_setting('statement_timeout') AS st, current_setting('TimeZone') AS tz, "
                "current_setting('jit') AS jit"
            ).fetchone()
        with conn.transaction():
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


def has_monitoring_schema(conn: Conn) -> bool:
    """True when ``cronkit/sql/schema_monitoring.sql`` has been applied (``cronkit apply``)."""
    row = conn.execute(
        "SELECT to_regclass('cronkit.monitor_state') IS NOT NULL "
        "AND to_regprocedure('cronkit.runid_at(timestamptz)') IS NOT NULL AS ok"
    ).fetchone()
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


# -- run history ----------------------------------------------------------------------------------

# The effective time of a run: its start; else its end; else (pg_cron < 1.6.3 leaves both NULL
# on runs that never connected) the start of the previous run. The sub-select runs only for rows
# without any time, and is exactly what cronkit.refresh_rollups() uses.
_RUN_TIME = sql.SQL(
    "coalesce(d.start_time, d.end_time, (SELECT p.start_time FROM cron.job_run_details p "
    "WHERE p.runid < d.runid AND p.start_time IS NOT NULL ORDER BY p.runid DESC LIMIT 1), 'epoch'::timestamptz)"
)
_FINAL = sql.SQL("('succeeded', 'failed')")

# The bookkeeping a rollup read needs, computed first so the reads below have constant bounds the
# planner turns into primary-key range scans: the whole hours [full_start, full_end) inside the
# window; the whole UTC days [day_start, day_end) inside those (read from the daily level; empty,
# i.e. both equal full_end, when the window holds no whole day, when ``days`` is false, or while
# the daily level is not built yet); the watermark and open set; and the runid ranges of the
# rolled-up runs of the two partial edge hours (all rolled-up runs of a bucket lie in
# [min_runid, max_runid] of its rows).
_BOUNDS = sql.SQL("""
WITH b AS (
    SELECT date_trunc('hour', %(since)s::timestamptz, 'UTC') AS lead_bucket,
           CASE WHEN date_trunc('hour', %(since)s::timestamptz, 'UTC') = %(since)s::timestamptz THEN %(since)s::timestamptz
                ELSE date_trunc('hour', %(since)s::timestamptz, 'UTC') + interval '1 hour' END AS full_start,
           date_trunc('hour', %(until)s::timestamptz, 'UTC') AS full_end
), d AS (
    SELECT b.*,
           CASE WHEN date_trunc('day', b.full_start, 'UTC') = b.full_start THEN b.full_start
                ELSE date_trunc('day', b.full_start, 'UTC') + interval '1 day' END AS first_day,
           date_trunc('day', b.full_end, 'UTC') AS end_day
      FROM b
)
SELECT d.full_start, d.full_end,
       CASE WHEN %(days)s AND s.day_rollup_ready AND d.first_day < d.end_day THEN d.first_day ELSE d.full_end END AS day_start,
       CASE WHEN %(days)s AND s.day_rollup_ready AND d.first_day < d.end_day THEN d.end_day ELSE d.full_end END AS day_end,
       s.run_watermark AS wm,
       (SELECT coalesce(array_agg(runid), '{}') FROM cronkit.run_rollup_open) AS open_ids,
       lead.lo AS lead_lo, lead.hi AS lead_hi, trail.lo AS trail_lo, trail.hi AS trail_hi
  FROM d
 CROSS JOIN cronkit.monitor_state s
 CROSS JOIN LATERAL (SELECT min(r.min_runid) AS lo, max(r.max_runid) AS hi FROM cronkit.run_rollup r
                      WHERE r.bucket = d.lead_bucket AND d.lead_bucket < d.full_start
                        AND (%(jobids)s::bigint[] IS NULL OR r.jobid = ANY(%(jobids)s::bigint[]))) AS lead
 CROSS JOIN LATERAL (SELECT min(r.min_runid) AS lo, max(r.max_runid) AS hi FROM cronkit.run_rollup r
                      WHERE r.bucket = d.full_end AND d.full_end < %(until)s::timestamptz AND d.full_end >= d.full_start
                        AND (%(jobids)s::bigint[] IS NULL OR r.jobid = ANY(%(jobids)s::bigint[]))) AS trail
 WHERE s.id
""")

# Units: daily rollup rows of the whole days inside the window, hourly rollup rows of the other
# whole hours, plus the raw runs that are in neither (newer than the watermark, still open at the
# last refresh, or in a partial edge hour), aggregated per job and hour once, up front. Each unit
# is (jobid, jobname, bucket, runs, succeeded, failed, running, timed, ms_sum, ms_max, hist,
# last_runid, last_failed_runid); a raw unit's histogram has one element per timed run (the
# percentile step sums equal bins). Every bound is a constant from _BOUNDS.
_UNITS = sql.SQL("""
raw AS MATERIALIZED (
    SELECT r.jobid, NULL::text AS jobname, date_trunc('hour', r.t, 'UTC') AS bucket, count(*) AS runs,
           count(*) FILTER (WHERE r.status = 'succeeded') AS succeeded,
           count(*) FILTER (WHERE r.status = 'failed') AS failed,
           count(*) FILTER (WHERE NOT r.final) AS running,
           count(r.ms) FILTER (WHERE r.final) AS timed,
           coalesce(sum(r.ms) FILTER (WHERE r.final), 0) AS ms_sum,
           max(r.ms) FILTER (WHERE r.final) AS ms_max,
           coalesce(array_agg((cronkit.duration_bin(r.ms)::bigint << 32) | 1)
                    FILTER (WHERE r.final AND r.ms IS NOT NULL), '{{}}') AS hist,
           max(r.runid) AS last_runid, max(r.runid) FILTER (WHERE r.status = 'failed') AS last_failed_runid
      FROM (SELECT d.runid, d.jobid, d.status, coalesce(d.status IN {final}, false) AS final, {run_time} AS t,
                   extract(epoch FROM d.end_time - d.start_time)::float8 * 1000.0 AS ms,
                   (d.runid <= %(wm)s::bigint AND NOT (d.runid = ANY(%(open_ids)s::bigint[]))) AS rolled
              FROM cron.job_run_details d
             WHERE ({raw_ranges})
               AND (%(jobids)s::bigint[] IS NULL OR d.jobid = ANY(%(jobids)s::bigint[]))
            OFFSET 0) AS r  -- a fence: t and ms are computed once per run, not once per use
     WHERE r.t >= %(since)s::timestamptz AND r.t < %(until)s::timestamptz
       AND NOT (r.rolled AND r.t >= %(full_start)s::timestamptz AND r.t < %(full_end)s::timestamptz)
     GROUP BY r.jobid, date_trunc('hour', r.t, 'UTC')
), units AS NOT MATERIALIZED (
    SELECT r.jobid, r.jobname, r.day AS bucket, r.succeeded + r.failed AS runs, r.succeeded, r.failed,
           0::bigint AS running, r.timed_runs AS timed, r.dur_sum_ms AS ms_sum, r.dur_max_ms AS ms_max, r.hist,
           r.max_runid AS last_runid, r.max_failed_runid AS last_failed_runid
      FROM cronkit.run_rollup_day r
     WHERE r.day >= %(day_start)s::timestamptz AND r.day < %(day_end)s::timestamptz
       AND (%(jobids)s::bigint[] IS NULL OR r.jobid = ANY(%(jobids)s::bigint[]))
    UNION ALL
    SELECT r.jobid, r.jobname, r.bucket, r.runs,
           CASE WHEN r.status = 'succeeded' THEN r.runs ELSE 0 END, CASE WHEN r.status = 'failed' THEN r.runs ELSE 0 END,
           0::bigint, r.timed_runs, r.dur_sum_ms, r.dur_max_ms, r.hist,
           r.max_runid, CASE WHEN r.status = 'failed' THEN r.max_runid END
      FROM cronkit.run_rollup r
     WHERE ((r.bucket >= %(full_start)s::timestamptz AND r.bucket < %(day_start)s::timestamptz)
            OR (r.bucket >= %(day_end)s::timestamptz AND r.bucket < %(full_end)s::timestamptz))
       AND (%(jobids)s::bigint[] IS NULL OR r.jobid = ANY(%(jobids)s::bigint[]))
    UNION ALL
    SELECT * FROM raw
)""")


def _units(params: Mapping[str, Any]) -> sql.Composed:
    """_UNITS reading only the runid ranges that exist, each one primary-key range of a BitmapOr: runs
    newer than the watermark (from the window's floor on), open runs, the two edge hours. (A range
    that matches nothing, or one more condition over all of them, can make the planner misjudge the
    OR and scan every runid of the window instead.)"""
    ranges = [sql.SQL("d.runid > %(new_from)s::bigint")]
    if params["open_ids"]:
        ranges.append(sql.SQL("d.runid = ANY(%(open_ids)s::bigint[])"))
    for edge in ("lead", "trail"):
        if params[f"{edge}_lo"] is not None:
            ranges.append(sql.SQL("d.runid BETWEEN {}::bigint AND {}::bigint").format(
                sql.Placeholder(f"{edge}_lo"), sql.Placeholder(f"{edge}_hi")))
    return _UNITS.format(run_time=_RUN_TIME, final=_FINAL, raw_ranges=sql.SQL(" OR ").join(ranges))


def _rollup_params(conn: Conn, since: datetime, until: datetime, jobids: list[int] | None, *,
                   days: bool = True) -> dict[str, Any]:
    params: dict[str, Any] = {"since": since, "until": until, "jobids": jobids, "lo": runid_floor(conn, since),
                              "days": days}
    row = conn.execute(_BOUNDS, params).fetchone()
    assert row is not None
    params.update(row)
    # each range starts at the window's runid floor (below it every run started before the window)
    params["new_from"] = max(params["wm"], params["lo"] - 1)
    for edge in ("lead", "trail"):
        if params[f"{edge}_lo"] is not None:
            params[f"{edge}_lo"] = max(params[f"{edge}_lo"], params["lo"])
            if params[f"{edge}_lo"] > params[f"{edge}_hi"]:
                params[f"{edge}_lo"] = params[f"{edge}_hi"] = None
    return params


# Nearest-rank percentiles from merged histograms: the bin holding the ceil(p * n)-th duration.
# unnest() in the select list streams the elements (in FROM it would fill a tuplestore per row).
_PERCENTILES = sql.SQL("""
bins AS (
    SELECT {keys}, (e >> 32)::int AS bin, sum((e & 4294967295)::int) AS n
      FROM (SELECT {keys}, unnest(units.hist) AS e FROM units) AS elements
     GROUP BY {keys}, bin
), cum AS (
    SELECT {keys}, bin, sum(n) OVER (PARTITION BY {keys} ORDER BY bin) AS c,
           sum(n) OVER (PARTITION BY {keys}) AS total
      FROM bins
), pct AS (
    SELECT {keys},
           exp((min(bin) FILTER (WHERE c >= ceil(0.5 * total)) + 0.5) * ln(1.05::float8)) AS p50,
           exp((min(bin) FILTER (WHERE c >= ceil(0.95 * total)) + 0.5) * ln(1.05::float8)) AS p95
      FROM cum GROUP BY {keys}
)""")

_SUMMARY_ROLLUP = sql.SQL("""
WITH {units}, {percentiles},
per_job AS (
    SELECT jobid, max(jobname) AS jobname, sum(runs)::bigint AS runs, sum(succeeded)::bigint AS succeeded,
           sum(failed)::bigint AS failed, sum(running)::bigint AS running, max(ms_max) AS max_ms,
           sum(ms_sum) / nullif(sum(timed), 0) AS mean_ms,
           max(last_runid) AS last_runid, max(last_failed_runid) AS last_failed_runid
      FROM units GROUP BY jobid
), jobs AS (
    SELECT j.jobid, j.jobname, j.active, j.schedule FROM cron.job j
     WHERE %(jobids)s::bigint[] IS NULL OR j.jobid = ANY(%(jobids)s::bigint[])
)
SELECT coalesce(jobs.jobid, per_job.jobid) AS jobid, coalesce(jobs.jobname, per_job.jobname) AS jobname,
       jobs.active, jobs.schedule,
       coalesce(per_job.runs, 0) AS runs, coalesce(per_job.succeeded, 0) AS succeeded,
       coalesce(per_job.failed, 0) AS failed, coalesce(per_job.running, 0) AS running,
       least(pct.p50, per_job.max_ms) AS p50_ms, least(pct.p95, per_job.max_ms) AS p95_ms,
       per_job.max_ms, per_job.mean_ms,
       last_run.start_time AS last_start, last_run.status AS last_status,
       coalesce(last_fail.end_time, last_fail.start_time) AS last_failure_at,
       last_fail.return_message AS last_failure_message
  FROM jobs
  FULL JOIN per_job ON per_job.jobid = jobs.jobid
  LEFT JOIN pct ON pct.jobid = per_job.jobid
  LEFT JOIN cron.job_run_details last_run ON last_run.runid = per_job.last_runid
  LEFT JOIN cron.job_run_details last_fail ON last_fail.runid = per_job.last_failed_runid
 ORDER BY 2, 1
""")

_SUMMARY_RAW = sql.SQL("""
WITH b AS (
    SELECT %(since)s::timestamptz AS since, %(until)s::timestamptz AS until, %(lo)s::bigint AS lo,
           %(jobids)s::bigint[] AS jobids
), raw AS (
    SELECT d.runid, d.jobid, d.status, d.start_time, {run_time} AS t,
           extract(epoch FROM d.end_time - d.start_time)::float8 * 1000.0 AS ms
      FROM cron.job_run_details d, b
     WHERE d.runid >= b.lo AND (b.jobids IS NULL OR d.jobid = ANY(b.jobids))
), per_job AS (
    SELECT raw.jobid, count(*) AS runs,
           count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           count(*) FILTER (WHERE status NOT IN {final} OR status IS NULL) AS running,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE status IN {final}) AS p50_ms,
           percentile_disc(0.95) WITHIN GROUP (ORDER BY ms) FILTER (WHERE status IN {final}) AS p95_ms,
           max(ms) FILTER (WHERE status IN {final}) AS max_ms,
           avg(ms) FILTER (WHERE status IN {final}) AS mean_ms,
           max(runid) AS last_runid, max(runid) FILTER (WHERE status = 'failed') AS last_failed_runid
      FROM raw, b WHERE raw.t >= b.since AND raw.t < b.until
     GROUP BY raw.jobid
), jobs AS (
    SELECT j.jobid, j.jobname, j.active, j.schedule FROM cron.job j, b
     WHERE b.jobids IS NULL OR j.jobid = ANY(b.jobids)
)
SELECT coalesce(jobs.jobid, per_job.jobid) AS jobid, jobs.jobname, jobs.active, jobs.schedule,
       coalesce(per_job.runs, 0) AS runs, coalesce(per_job.succeeded, 0) AS succeeded,
       coalesce(per_job.failed, 0) AS failed, coalesce(per_job.running, 0) AS running,
       per_job.p50_ms, per_job.p95_ms, per_job.max_ms, per_job.mean_ms,
       last_run.start_time AS last_start, last_run.status AS last_status,
       coalesce(last_fail.end_time, last_fail.start_time) AS last_failure_at,
       last_fail.return_message AS last_failure_message
  FROM jobs
  FULL JOIN per_job ON per_job.jobid = jobs.jobid
  LEFT JOIN cron.job_run_details last_run ON last_run.runid = per_job.last_runid
  LEFT JOIN cron.job_run_details last_fail ON last_fail.runid = per_job.last_failed_runid
 ORDER BY 2, 1
""")


def run_summary(
    conn: Conn,
    since: datetime | timedelta,
    until: datetime | None = None,
    *,
    jobs: Jobs = None,
    use_rollups: bool = True,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> pl.DataFrame:
    """Per job over ``[since, until)``: runs, succeeded, failed, running, p50/p95/max/mean duration
    (ms), last run, last failure and its message. One row per job in ``cron.job`` (a job that did not
    run has ``runs = 0``) plus jobs that ran but are gone. ``jobs`` narrows to ids or names.

    Runs are placed in time by their start. With ``use_rollups`` (needs the monitoring schema)
    counts are exact and percentiles within 2.5 percent; without, percentiles are exact.
    """
    window = Window.of(since, until)
    with guarded(conn, timeout_ms, jit=not use_rollups):
        rollups = use_rollups and has_monitoring_schema(conn)
        jobids = _job_ids(conn, jobs)
        if rollups:
            params = _rollup_params(conn, window.since, window.until, jobids)
            query = _SUMMARY_ROLLUP.format(units=_units(params), percentiles=_PERCENTILES.format(keys=sql.SQL("jobid")))
        else:
            params = {"since": window.since, "until": window.until, "lo": runid_floor(conn, window.since), "jobids": jobids}
            query = _SUMMARY_RAW.format(run_time=_RUN_TIME, final=_FINAL)
        rows = conn.execute(query, params).fetchall()
    return _frame(rows, SUMMARY_SCHEMA)


_TIMELINE = sql.SQL("""
WITH {units}, {percentiles}
SELECT u.bucket, u.jobid, coalesce(max(u.jobname), max(j.jobname)) AS jobname, sum(u.runs)::bigint AS runs,
       sum(u.succeeded)::bigint AS succeeded, sum(u.failed)::bigint AS failed, sum(u.running)::bigint AS running,
       least(max(pct.p50), max(u.ms_max)) AS p50_ms, least(max(pct.p95), max(u.ms_max)) AS p95_ms,
       max(u.ms_max) AS max_ms
  FROM units u
  LEFT JOIN pct ON pct.jobid = u.jobid AND pct.bucket = u.bucket
  LEFT JOIN cron.job j ON j.jobid = u.jobid
 GROUP BY u.bucket, u.jobid
 ORDER BY u.bucket, u.jobid
""")


def run_timeline(
    conn: Conn,
    since: datetime | timedelta,
    until: datetime | None = None,
    *,
    jobs: Jobs = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> pl.DataFrame:
    """Per job per UTC hour: runs, succeeded, failed, running, p50/p95/max duration (ms).

    The window is widened to whole hours. Reads the rollups plus the runs newer than the last
    refresh, so the current hour is included. Needs the monitoring schema.
    """
    window = Window.of(since, until)
    start = _floor_hour(window.since)
    end = _floor_hour(window.until)
    end = end if end == window.until else end + ROLLUP_BUCKET
    with guarded(conn, timeout_ms, jit=False):
        _require_schema(conn)
        params = _rollup_params(conn, start, end, _job_ids(conn, jobs), days=False)  # hourly rows only
        query = _TIMELINE.format(units=_units(params), percentiles=_PERCENTILES.format(keys=sql.SQL("jobid, bucket")))
        rows = conn.execute(query, params).fetchall()
    return _frame(rows, TIMELINE_SCHEMA)


_RECENT_RUNS = sql.SQL("""
SELECT d.runid, d.jobid, j.jobname, d.status, d.start_time, d.end_time,
       extract(epoch FROM d.end_time - d.start_time)::float8 * 1000.0 AS duration_ms, d.return_message
  FROM cron.job_run_details d
  LEFT JOIN cron.job j ON j.jobid = d.jobid
 WHERE d.runid >= %(lo)s
   AND {run_time} >= %(since)s AND {run_time} < %(until)s
   AND (%(jobids)s::bigint[] IS NULL OR d.jobid = ANY(%(jobids)s::bigint[]))
 ORDER BY d.runid DESC
 LIMIT %(limit)s
""")


def recent_runs(
    conn: Conn,
    since: datetime | timedelta,
    until: datetime | None = None,
    *,
    jobs: Jobs = None,
    limit: int = 10_000,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> pl.DataFrame:
    """The newest ``limit`` raw runs in the window (newest first), for per-run charts and drill-down."""
    window = Window.of(since, until)
    with guarded(conn, timeout_ms):
        params = {"since": window.since, "until": window.until, "lo": runid_floor(conn, window.since),
                  "jobids": _job_ids(conn, jobs), "limit": int(limit)}
        rows = conn.execute(_RECENT_RUNS.format(run_time=_RUN_TIME), params).fetchall()
    return _frame(rows, RUNS_SCHEMA)


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _require_schema(conn: Conn) -> None:
    if not has_monitoring_schema(conn):
        raise CronkitError(
            "cronkit's monitoring tables are not in this database.",
            remedy="Run `cronkit apply` (it creates schema cronkit with the monitoring objects), then add "
            "[monitoring] to the manifest so the harvest and rollup jobs keep them current.",
        )


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


# -- maintenance (what the [monitoring] jobs run, callable by hand) -----------------------------------


@dataclass(frozen=True)
class MonitorState:
    """Watermarks and the last time each maintenance step ran (None: never)."""

    run_watermark: int
    http_watermark: int
    harvest_watermark: datetime | None
    expired_until: datetime | None
    harvested_at: datetime | None
    rollups_refreshed_at: datetime | None
    retention_applied_at: datetime | None
    open_runs: int


def monitor_state(conn: Conn) -> MonitorState:
    with guarded(conn, DEFAULT_TIMEOUT_MS, "read cronkit's monitoring state"):
        _require_schema(conn)
        row = conn.execute("""
            SELECT run_watermark, http_watermark,
                   CASE WHEN isfinite(harvest_watermark) THEN harvest_watermark END AS harvest_watermark,
                   CASE WHEN isfinite(expired_until) THEN expired_until END AS expired_until,
                   harvested_at, rollups_refreshed_at, retention_applied_at,
                   (SELECT count(*) FROM cronkit.run_rollup_open) AS open_runs
              FROM cronkit.monitor_state WHERE id
        """).fetchone()
    assert row is not None
    return MonitorState(**row)


def _call(conn: Conn, query: sql.Composable, params: Mapping[str, Any], timeout_ms: int, action: str) -> dict[str, Any]:
    with guarded(conn, timeout_ms, action):
        _require_schema(conn)
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return dict(row["result"])


def harvest_responses(conn: Conn, *, timeout_ms: int = 120_000) -> dict[str, int]:
    """Copy new pg_net responses of cronkit's requests into ``cronkit.http_responses``; mark
    requests older than pg_net.ttl without a response as expired. Returns the counts."""
    return _call(conn, sql.SQL("SELECT cronkit.harvest_responses() AS result"), {}, timeout_ms, "harvest pg_net responses")


def refresh_rollups(conn: Conn, *, timeout_ms: int = 600_000) -> dict[str, int]:
    """Fold runs that became final (and new durable responses) into the hourly rollups."""
    return _call(conn, sql.SQL("SELECT cronkit.refresh_rollups() AS result"), {}, timeout_ms, "refresh the rollups")


def rebuild_rollups(conn: Conn, *, timeout_ms: int = 3_600_000) -> dict[str, int]:
    """Drop the rollups and build them again from the raw tables."""
    return _call(conn, sql.SQL("SELECT cronkit.rebuild_rollups() AS result"), {}, timeout_ms, "rebuild the rollups")


def apply_retention(
    conn: Conn,
    horizon: timedelta,
    *,
    rollup_horizon: timedelta = timedelta(days=400),
    max_rows: int = 1_000_000,
    timeout_ms: int = 600_000,
) -> dict[str, Any]:
    """Delete run history, ledger rows and durable responses older than ``horizon`` (at least a
    day), and rollups/queue snapshots older than ``rollup_horizon``. Returns counts per table and
    ``more`` when ``max_rows`` runs were deleted (call again)."""
    return _call(
        conn,
        sql.SQL("SELECT cronkit.apply_retention(%(h)s, %(rh)s, %(m)s) AS result"),
        {"h": horizon, "rh": rollup_horizon, "m": int(max_rows)},
        timeout_ms,
        "apply the retention",
    )
