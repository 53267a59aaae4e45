"""Run history per job from the daily and hourly rollups (plus the raw edges): summary, timeline, recent runs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from psycopg import sql

from cronkit.db import Conn
from cronkit.monitor.window import (
    DEFAULT_TIMEOUT_MS, ROLLUP_BUCKET, TS, Jobs, Window, _floor_hour, _frame, _job_ids, _require_schema, guarded,
    has_monitoring_schema, runid_floor,
)

_TS = TS

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
RUNS_SCHEMA: dict[str, pl.DataType] = {
    "runid": pl.Int64(), "jobid": pl.Int64(), "jobname": pl.String(), "status": pl.String(),
    "start_time": _TS, "end_time": _TS, "duration_ms": pl.Float64(), "return_message": pl.String(),
}



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
