"""Run history per job from the daily and hourly rollups (plus the raw edges): summary, timeline, recent runs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from psycopg import sql

from cronkit.audit import has_log
from cronkit.db import Conn
from cronkit.monitor.window import (
    DEFAULT_TIMEOUT_MS,
    ROLLUP_BUCKET,
    TS,
    Jobs,
    Window,
    _copied_frame,
    _floor_hour,
    _frame,
    _job_ids,
    _require_schema,
    guarded,
    has_monitoring_schema,
    runid_floor,
)
from cronkit.queries import query

_TS = TS

SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "jobid": pl.Int64(), "jobname": pl.String(), "active": pl.Boolean(), "schedule": pl.String(),
    "runs": pl.Int64(), "succeeded": pl.Int64(), "failed": pl.Int64(), "running": pl.Int64(),
    "p50_ms": pl.Float64(), "p95_ms": pl.Float64(), "max_ms": pl.Float64(), "mean_ms": pl.Float64(),
    "last_start": _TS, "last_status": pl.String(), "last_failure_at": _TS, "last_failure_message": pl.String(),
    # runs that called nothing because the previous call was still in flight (overlap = "skip")
    "skipped_overlap": pl.Int64(),
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
_BOUNDS = query("monitor/bounds")

# Units: daily rollup rows of the whole days inside the window, hourly rollup rows of the other
# whole hours, plus the raw runs that are in neither (newer than the watermark, still open at the
# last refresh, or in a partial edge hour), aggregated per job and hour once, up front. Each unit
# is (jobid, jobname, bucket, runs, succeeded, failed, running, timed, ms_sum, ms_max, hist,
# last_runid, last_failed_runid); a raw unit's histogram has one element per timed run (the
# percentile step sums equal bins). Every bound is a constant from _BOUNDS.
_UNITS = query("monitor/units")


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
_PERCENTILES = query("monitor/percentiles")


def _percentiles(keys: str, source: str) -> sql.Composed:
    """The p50/p95 CTEs (``pct``) per ``keys`` over the units in CTE ``source``."""
    return _PERCENTILES.format(keys=sql.SQL(keys), source=sql.Identifier(source))


_SUMMARY_ROLLUP = query("monitor/summary_rollup")

_SUMMARY_RAW = query("monitor/summary_raw")


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
            query = _SUMMARY_ROLLUP.format(units=_units(params), percentiles=_percentiles("jobid", "units"))
        else:
            params = {"since": window.since, "until": window.until, "lo": runid_floor(conn, window.since), "jobids": jobids}
            query = _SUMMARY_RAW.format(run_time=_RUN_TIME, final=_FINAL)
        rows = conn.execute(query, params).fetchall()
        skipped = _overlap_skips(conn, window)
    return _frame([{**row, "skipped_overlap": skipped.get(row["jobname"], 0)} for row in rows], SUMMARY_SCHEMA)


_OVERLAP_SKIPS = query("monitor/overlap_skips")


SKIPS_SCHEMA: dict[str, pl.DataType] = {"jobname": pl.String(), "bucket": _TS, "skipped": pl.Int64()}
#: buckets are counted from here (midnight UTC), as the HTTP timeline's
_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


def overlap_skips(conn: Conn, since: datetime | timedelta, until: datetime | None = None, *,
                  bucket: timedelta) -> pl.DataFrame:
    """Runs skipped under ``overlap = "skip"`` per job and ``bucket`` in the window (none before
    the table exists): what the run summary counts and the monitor's heatmap draws."""
    window = Window.of(since, until)
    if not conn.execute("SELECT to_regclass('cronkit.skipped_runs') IS NOT NULL AS ok").fetchone()["ok"]:
        return pl.DataFrame(schema=SKIPS_SCHEMA)
    rows = conn.execute(_OVERLAP_SKIPS, {"since": window.since, "until": window.until, "bucket": bucket,
                                         "origin": _ORIGIN}).fetchall()
    return _frame(rows, SKIPS_SCHEMA)


def _overlap_skips(conn: Conn, window: Window) -> dict[str, int]:
    """Runs each job skipped in the window: its buckets of :func:`overlap_skips` summed."""
    skips = overlap_skips(conn, window.since, window.until, bucket=window.until - window.since)
    return {row["jobname"]: int(row["skipped"]) for row in skips.group_by("jobname").agg(pl.col("skipped").sum())
            .iter_rows(named=True)}


_TIMELINE = query("monitor/timeline")


def run_timeline(
    conn: Conn,
    since: datetime | timedelta,
    until: datetime | None = None,
    *,
    jobs: Jobs = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> pl.DataFrame:
    """Per job per UTC hour: runs, succeeded, failed, running, p50/p95/max duration (ms).

    The window is widened to whole hours. Reads the hourly rollup rows with their percentiles, and
    merges histograms only for the hours that also hold runs newer than the last refresh (so the
    current hour is included). Needs the monitoring schema.
    """
    window = Window.of(since, until)
    start = _floor_hour(window.since)
    end = _floor_hour(window.until)
    end = end if end == window.until else end + ROLLUP_BUCKET
    with guarded(conn, timeout_ms, jit=False):
        _require_schema(conn)
        params = _rollup_params(conn, start, end, _job_ids(conn, jobs), days=False)  # hourly rows only
        query = _TIMELINE.format(units=_units(params), percentiles=_percentiles("jobid, bucket", "mixed"))
        frame = _copied_frame(conn, query, params, TIMELINE_SCHEMA)  # ~17k rows a week for 100 jobs
    return frame.sort("bucket", "jobid")


_RECENT_RUNS = query("monitor/recent_runs")


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


MANUAL_RUNS_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.Int64(), "jobname": pl.String(), "slot": _TS, "started_at": _TS, "ended_at": _TS, "status": pl.String(),
    "request_id": pl.Int64(), "message": pl.String(), "duration_ms": pl.Float64(), "db_role": pl.String(),
    "os_user": pl.String(),
}
_MANUAL_RUNS = query("audit/manual_runs")


def manual_runs(conn: Conn, since: datetime | timedelta, until: datetime | None = None, *, jobs: Jobs = None,
                timeout_ms: int = DEFAULT_TIMEOUT_MS) -> pl.DataFrame:
    """Runs started by hand in the window (``cronkit run-now``, the runbooks' test runs), oldest
    first: pg_cron's history does not have them. Empty before the change record exists."""
    window = Window.of(since, until)
    with guarded(conn, timeout_ms, "read the runs started by hand"):
        if not has_log(conn, writable=False):
            return pl.DataFrame(schema=MANUAL_RUNS_SCHEMA)
        names = list(jobs) if jobs is not None else None
        rows = conn.execute(_MANUAL_RUNS, {"since": window.since, "until": window.until, "names": names}).fetchall()
    return _frame(rows, MANUAL_RUNS_SCHEMA)


def failed_in_a_row_query(first_runid: sql.Composable) -> sql.Composed:
    """Per job, its failed runs in a row since run ``first_runid`` (a literal, or an expression
    such as ``cronkit.runid_at(now() - interval '1 day')`` where the statement runs inside pg_cron):
    the one definition the doctor and the alerts share (``sql/queries/runs/failed_in_a_row.sql``)."""
    return query("runs/failed_in_a_row").format(first_runid=first_runid)


def failed_in_a_row(conn: Conn, first_runid: int) -> dict[int, dict[str, Any]]:
    """:func:`failed_in_a_row_query` by jobid: ``failed_in_a_row``, ``has_success``, ``last_success``,
    ``last_message``."""
    rows = conn.execute(failed_in_a_row_query(sql.Literal(int(first_runid)))).fetchall()
    return {int(r["jobid"]): dict(r) for r in rows}
