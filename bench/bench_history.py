"""History at scale: cronkit's summary vs fetching everything vs one raw aggregate, slots, rollups.

Run: PYTHONPATH=. python bench/bench_history.py [--rows 1000000,10000000] [--jobs 100] [--days 7]
     [--state-dir /tmp/bench-sandbox] [--keep]

For each row count it loads synthetic pg_cron history into its own sandbox (``--state-dir``,
removed at the end unless ``--keep``): ``rows`` runs of ``jobs`` every-minute jobs ending now,
~2 percent failed, plus one ledger row per run, durable responses for requests older than pg_net's
6 h TTL and ``net._http_response`` rows for the newer ones. Then, in one run, it measures:

(a) ``cronkit.monitor.run_summary`` over the last ``--days`` (rollups, the default path: daily rows
    of the whole UTC days, hourly rows of the other whole hours, raw runs of the two partial edge
    hours and of whatever is newer than the last refresh) — and the same without rollups (exact
    percentiles, runid-bounded raw read);
(b) the naive baseline: fetch every run of the window into polars and aggregate on the client;
(c) one bare server-side aggregate over the raw table for the window (what a dashboard query does:
    a sequential scan, since cron.job_run_details has no index on time);
plus the HTTP outcome summary, the expected-slot engine against a plain cronsim loop, and the cost
of keeping rollups current: the first build over all rows (both levels), deriving the daily level
from the hourly one (what the first refresh after an upgrade from an hourly-only schema does,
once), and one refresh per minute of the busy schedule. Times are the best of ``--repeat``
untraced runs; client memory is tracemalloc's peak of Python allocations plus the frame's own
size, from one more run (tracing slows every Python allocation: it added ~14 ms to a 45 ms
summary and nothing to the server-bound aggregate). Targets: (a) at least 10x faster than (c) at
10M rows with client memory independent of row count; slots at least 1M/s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from pathlib import Path
from typing import Any

import polars as pl
from cronsim import CronSim

from cronkit import db, monitor
from cronkit.plan import schema_files
from cronkit_sandbox.manager import Sandbox
from cronkit.schedules import parse_schedule

LOAD = """
INSERT INTO cron.job_run_details (runid, jobid, job_pid, database, username, command, status, return_message, start_time, end_time)
SELECT g + 1, 1000 + g %% %(jobs)s, 4242, 'postgres', 'postgres', 'SELECT bench()',
       CASE WHEN hashint4(g::int) %% 50 = 0 THEN 'failed' ELSE 'succeeded' END,
       CASE WHEN hashint4(g::int) %% 50 = 0 THEN 'ERROR:  bench failure' ELSE '1 row' END,
       t, t + make_interval(secs => (20 + abs(hashint4(g::int + 7)) %% 2000) / 1000.0)
  FROM generate_series(0, %(rows)s - 1) AS g,
       LATERAL (SELECT date_trunc('minute', now()) - make_interval(mins => (%(rows)s - 1 - g) / %(jobs)s)
                       + make_interval(secs => 1 + (g %% %(jobs)s) * 0.01) AS t) AS s
"""
LEDGER = """
INSERT INTO cronkit.request_ledger (request_id, jobname, job_pid, url, created_at)
SELECT runid, 'bench-' || jobid, 4242, 'http://bench/functions/v1/f', start_time FROM cron.job_run_details
"""
DURABLE = """
INSERT INTO cronkit.http_responses (request_id, jobname, requested_at, responded_at, outcome, status_code)
SELECT runid, 'bench-' || jobid, start_time, end_time,
       CASE WHEN hashint4(runid::int) %% 40 = 0 THEN '5xx' ELSE '2xx' END,
       CASE WHEN hashint4(runid::int) %% 40 = 0 THEN 503 ELSE 200 END
  FROM cron.job_run_details WHERE start_time < now() - interval '6 hours'
"""
LIVE = """
INSERT INTO net._http_response (id, status_code, timed_out, error_msg, created)
SELECT runid, CASE WHEN hashint4(runid::int) %% 40 = 0 THEN NULL ELSE 200 END,
       hashint4(runid::int) %% 40 = 0, CASE WHEN hashint4(runid::int) %% 40 = 0 THEN 'Timeout of 5000 ms reached' END, end_time
  FROM cron.job_run_details WHERE start_time >= now() - interval '6 hours'
"""
RAW_AGGREGATE = """
SELECT jobid, count(*) AS runs, count(*) FILTER (WHERE status = 'failed') AS failed,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY end_time - start_time) AS p50,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY end_time - start_time) AS p95,
       max(end_time - start_time) AS max, max(start_time) AS last_start
  FROM cron.job_run_details WHERE start_time >= %(since)s GROUP BY jobid
"""
NAIVE = "SELECT jobid, runid, status, return_message, start_time, end_time FROM cron.job_run_details WHERE start_time >= %(since)s"


def measure(fn: Callable[[], Any], repeat: int, *, memory: bool = True) -> tuple[float, int, Any]:
    """(best seconds of ``repeat`` untraced runs, peak client bytes of one traced run, result)."""
    best, peak, result = float("inf"), 0, None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - began)
    if memory:
        tracemalloc.start()
        result = fn()
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peak = top + (result.estimated_size() if isinstance(result, pl.DataFrame) else 0)
    return best, peak, result


def mib(n: int) -> str:
    return f"{n / 1048576:8.1f} MiB"


def load(su: Any, app: Any, rows: int, jobs: int) -> float:
    began = time.perf_counter()
    su.execute("TRUNCATE cron.job_run_details")
    app.execute("TRUNCATE cronkit.request_ledger, cronkit.http_responses, cronkit.http_rollup, cronkit.run_rollup_hour, "
                "cronkit.run_rollup_day, cronkit.run_rollup_open")
    app.execute("UPDATE cronkit.monitor_state SET run_watermark = 0, http_watermark = 0, "
                "harvest_watermark = now(), expired_until = now() - interval '6 hours 5 minutes'")
    su.execute("TRUNCATE net._http_response")
    su.execute(LOAD, {"rows": rows, "jobs": jobs})
    su.execute("SELECT setval('cron.runid_seq', %s)", (rows,))
    app.execute(LEDGER, {})
    app.execute(DURABLE, {})
    su.execute(LIVE, {})
    for table in ("cron.job_run_details", "cronkit.request_ledger", "cronkit.http_responses", "net._http_response"):
        su.execute(f"VACUUM ANALYZE {table}")  # noqa: S608 - fixed names
    return time.perf_counter() - began


def slot_throughput() -> tuple[float, float]:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    end = start + timedelta(days=31)
    schedule = parse_schedule("* * * * *")
    began = time.perf_counter()
    ours = sum(1 for _ in schedule.expected_slots(start, end))
    ours_rate = ours / (time.perf_counter() - began)
    began = time.perf_counter()
    theirs = sum(1 for _ in takewhile(lambda t: t < end, CronSim("* * * * *", start - timedelta(seconds=1))))
    return ours_rate, theirs / (time.perf_counter() - began)


def busy_minute(su: Any, jobs: int) -> None:
    """One more minute of the busy schedule: a run per job, one of them still running."""
    su.execute(
        "INSERT INTO cron.job_run_details (jobid, job_pid, database, username, command, status, return_message, start_time, end_time) "
        "SELECT 1000 + j, 4242, 'postgres', 'postgres', 'SELECT bench()', CASE WHEN j = 0 THEN 'running' ELSE 'succeeded' END, "
        "'1 row', now(), CASE WHEN j = 0 THEN NULL ELSE now() + interval '150 milliseconds' END "
        "FROM generate_series(0, %s - 1) j", (jobs,))
    su.execute("UPDATE cron.job_run_details SET status = 'succeeded', end_time = now() "
               "WHERE status = 'running' AND runid < (SELECT max(runid) FROM cron.job_run_details)")


def bench(rows: int, args: argparse.Namespace, su: Any, app: Any) -> dict[str, float]:
    print(f"\n== {rows:,} runs ({args.jobs} every-minute jobs, {rows // args.jobs / 1440:.1f} days) ==")
    print(f"load synthetic history (+ ledger, responses): {load(su, app, rows, args.jobs):7.1f} s")
    first, _, built = measure(lambda: monitor.rebuild_rollups(app), 1, memory=False)
    print(f"rollups, first build over all rows:            {first:7.2f} s  ({built['runs']:,} runs folded)")
    app.execute("UPDATE cronkit.monitor_state SET day_rollup_ready = false WHERE id")
    derived, _, _ = measure(lambda: monitor.refresh_rollups(app), 1, memory=False)
    days = app.execute("SELECT count(*) AS n FROM cronkit.run_rollup_day").fetchone()["n"]
    print(f"rollups, daily level from the hourly (once):   {derived:7.2f} s  ({days:,} job-days)")
    per_minute = []
    for _ in range(5):
        busy_minute(su, args.jobs)
        elapsed, _, _ = measure(lambda: monitor.refresh_rollups(app), 1, memory=False)
        per_minute.append(elapsed)
    refresh = statistics.median(per_minute)
    print(f"rollups, refresh after one busy minute:        {refresh * 1000:7.1f} ms (median of 5; {args.jobs} new runs)")

    since = datetime.now(UTC) - timedelta(days=args.days)
    results: dict[str, float] = {}
    rows_out = []
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("(a) cronkit summary (rollups)", lambda: monitor.run_summary(app, since, timeout_ms=600_000)),
        ("(a') cronkit summary, exact (raw)", lambda: monitor.run_summary(app, since, use_rollups=False, timeout_ms=600_000)),
        ("(b) naive fetch-all into polars", lambda: naive(app, since)),
        ("(c) one raw server-side aggregate", lambda: raw_aggregate(app, since)),
        ("cronkit HTTP outcomes", lambda: monitor.http_outcomes(app, since, timeout_ms=600_000)),
    ]
    for label, fn in cases:
        elapsed, peak, result = measure(fn, args.repeat)
        results[label] = elapsed
        rows_out.append((label, elapsed, peak, result.height if isinstance(result, pl.DataFrame) else len(result)))
    base = results["(c) one raw server-side aggregate"]
    print(f"window: last {args.days} days")
    for label, elapsed, peak, height in rows_out:
        print(f"  {label:<38} {elapsed * 1000:9.1f} ms  peak client {mib(peak)}  {height:>8,} rows out"
              f"  {base / elapsed:7.1f}x vs (c)")
    results["first_build"] = first
    results["refresh"] = refresh
    return results


def naive(conn: Any, since: datetime) -> pl.DataFrame:
    with conn.cursor(row_factory=None) as cur:  # tuples: the cheapest way to pull rows into Python
        cur.execute("SET statement_timeout = 0")
        rows = cur.execute(NAIVE, {"since": since}).fetchall()
    frame = pl.DataFrame(rows, schema=["jobid", "runid", "status", "return_message", "start_time", "end_time"], orient="row")
    return frame.with_columns(ms=(pl.col("end_time") - pl.col("start_time")).dt.total_microseconds() / 1000).group_by("jobid").agg(
        runs=pl.len(), failed=(pl.col("status") == "failed").sum(), p50=pl.col("ms").quantile(0.5, "nearest"),
        p95=pl.col("ms").quantile(0.95, "nearest"), max=pl.col("ms").max())


def raw_aggregate(conn: Any, since: datetime) -> list[Any]:
    with conn.cursor(row_factory=None) as cur:
        cur.execute("SET statement_timeout = 0")
        return cur.execute(RAW_AGGREGATE, {"since": since}).fetchall()


@contextmanager
def bench_sandbox(state_dir: Path, keep: bool) -> Iterator[tuple[Any, Any, Any]]:
    """A sandbox of its own with cronkit's schema: (env, superuser connection, app connection),
    both autocommit; removed afterwards unless ``keep``. Every bench of this directory starts here."""
    sandbox = Sandbox(state_dir)
    env = sandbox.up()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · sandbox {state_dir}", flush=True)
    try:
        with db.connect(env.superuser_url, autocommit=True) as su, db.connect(env.database_url, autocommit=True) as app:
            for _name, text in schema_files():
                app.execute(text)  # type: ignore[arg-type]
            yield env, su, app
    finally:
        if not keep:
            sandbox.down(reset=True)


def each_size(args: Any, size: Callable[..., None]) -> None:
    """``size(rows, args, su, app, dsn)`` for every count of ``--rows``, in one :func:`bench_sandbox`."""
    with bench_sandbox(args.state_dir, args.keep) as (env, su, app):
        for rows in [int(x) for x in args.rows.split(",")]:
            size(rows, args, su, app, env.database_url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000", help="comma-separated run counts")
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--days", type=int, default=7, help="summary window")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--state-dir", type=Path, default=Path("/tmp/bench-sandbox"))
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.rows.split(",")]

    ours, theirs = slot_throughput()
    print(f"expected slots ('* * * * *', 31 days): cronkit {ours / 1e6:.2f}M/s, cronsim loop {theirs / 1e6:.2f}M/s "
          f"({ours / theirs:.1f}x)")

    with bench_sandbox(args.state_dir, args.keep) as (_env, su, app):
        su.execute("SELECT cron.unschedule(jobid) FROM cron.job")  # nothing may write history meanwhile
        summary = {rows: bench(rows, args, su, app) for rows in counts}
    if len(counts) > 1:
        small, large = summary[counts[0]], summary[counts[-1]]
        label = "(a) cronkit summary (rollups)"
        print(f"\nscaling {counts[0]:,} -> {counts[-1]:,} runs: (a) x{large[label] / small[label]:.1f}, "
              f"(c) x{large['(c) one raw server-side aggregate'] / small['(c) one raw server-side aggregate']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
