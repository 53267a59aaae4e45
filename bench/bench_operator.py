"""The operator's views at any history size: doctor, missed-run detection, the monitor runbook, the
hourly timeline and ``cronkit status``, each beside a baseline measured in the same run.

Run: PYTHONPATH=. python bench/bench_operator.py [--rows 1000000,10000000,30000000] [--jobs 100]
     [--state-dir /tmp/bench-operator] [--keep] [--repeat 3]

For each row count it loads synthetic pg_cron history (``bench_history.load``: ``rows`` runs of
``jobs`` every-minute jobs ending now, ~2 % failed, ledger rows and responses) into its own
sandbox, builds the rollups, and schedules the ``jobs`` jobs for real (``SELECT 1`` every minute),
so the history goes on growing as on a live server. Then it measures, each case in a fresh child
process (so its peak RSS is the case's own, imports included; the time is the best of
``--repeat`` calls after the first):

* ``doctor``        — :func:`cronkit.doctor.diagnose` over its default 6-hour window, all checks;
* ``missed``        — :func:`cronkit.monitor.missed.detect_missed`, 100 jobs over 24 h, and ``missed-1``
  for one job;
* ``monitor``       — runbooks/monitor.py run headless over 24 h, every output rendered as it would
  be displayed (charts to Vega-Lite JSON, frames to HTML);
* ``timeline``      — :func:`cronkit.monitor.run_timeline` over 7 days;
* ``status``/``help`` — ``cronkit status --json`` and ``cronkit --help``, wall time.

Baselines, in this process: one ``count(*)`` of ``cron.job_run_details``; the per-job health query
a psql user would write for the last 24 h; the raw hourly GROUP BY over 7 days (what a dashboard
asks of the raw table). Ratios are printed; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

COUNT = "SELECT count(*) FROM cron.job_run_details"
PER_JOB_HEALTH = """
SELECT j.jobid, j.jobname, count(d.runid) AS runs, count(*) FILTER (WHERE d.status = 'failed') AS failed,
       max(d.start_time) AS last_start
  FROM cron.job j LEFT JOIN cron.job_run_details d ON d.jobid = j.jobid AND d.start_time >= now() - interval '24 hours'
 GROUP BY j.jobid, j.jobname
"""
RAW_HOURLY = """
SELECT jobid, date_trunc('hour', start_time) AS bucket, count(*) AS runs,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY end_time - start_time) AS p50,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY end_time - start_time) AS p95
  FROM cron.job_run_details WHERE start_time >= now() - interval '7 days' GROUP BY 1, 2
"""


# -- the cases, each run in a child process ----------------------------------------------------------


def _case(name: str, dsn: str) -> Callable[[], Any]:
    from cronkit import db

    if name == "doctor":
        from cronkit.doctor import diagnose

        def doctor() -> Any:
            with db.connect(dsn) as conn:
                return diagnose(conn, None)
        return doctor
    if name in ("missed", "missed-1"):
        from cronkit.monitor import missed

        jobs = ["bench-1000"] if name == "missed-1" else None

        def detect() -> Any:
            with db.connect(dsn) as conn:
                return missed.detect_missed(conn, timedelta(hours=24), jobs=jobs)
        return detect
    if name == "timeline":
        from cronkit import monitor

        def timeline() -> Any:
            with db.connect(dsn) as conn:
                return monitor.run_timeline(conn, timedelta(days=7))
        return timeline
    if name == "monitor":
        import importlib.util

        spec = importlib.util.spec_from_file_location("monitor_runbook", ROOT / "runbooks" / "monitor.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        params = {"manifest": None, "env": None, "dsn": dsn, "job": None, "hours": 24.0, "refresh": None}

        def render() -> Any:
            outputs, _defs = module.app.run(defs={"p": params})
            return [_displayed(value) for value in outputs]
        return render
    raise SystemExit(f"unknown case {name!r}")


def _displayed(value: Any) -> int:
    """What showing ``value`` costs: its Vega-Lite JSON, HTML or text; returns the size."""
    if value is None:
        return 0
    if type(value).__module__.startswith("altair"):
        return len(value.to_json())
    if hasattr(value, "_repr_html_"):
        return len(value._repr_html_() or "")
    return len(getattr(value, "text", None) or repr(value))


def child(name: str, dsn: str, repeat: int) -> None:
    began = time.perf_counter()
    fn = _case(name, dsn)
    fn()  # first call: imports, caches, plans
    first = time.perf_counter() - began
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"first": first, "best": min(times), "rss": peak}))


def in_child(name: str, dsn: str, repeat: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--case", name, "--dsn", dsn, "--repeat", str(repeat)],
                         capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode != 0:
        raise SystemExit(f"case {name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def wall(args: list[str], dsn: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([str(Path(sys.executable).with_name("cronkit")), *args], capture_output=True, check=False,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": dsn})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# -- orchestration ---------------------------------------------------------------------------------


def best(conn: Any, statement: str, repeat: int) -> float:
    times = []
    with conn.cursor(row_factory=None) as cur:
        cur.execute("SET statement_timeout = 0")
        for _ in range(repeat):
            start = time.perf_counter()
            cur.execute(statement).fetchall()
            times.append(time.perf_counter() - start)
    return min(times)


def schedule_jobs(su: Any, jobs: int, active: bool) -> None:
    if not su.execute("SELECT 1 FROM cron.job WHERE jobname = 'bench-1000'").fetchall():
        su.execute("SELECT cron.unschedule(jobid) FROM cron.job")
        su.execute("SELECT setval('cron.jobid_seq', 999)")
        su.execute("SELECT cron.schedule('bench-' || (1000 + j), '* * * * *', 'SELECT 1') FROM generate_series(0, %s - 1) j",
                   (jobs,))
    su.execute("SELECT cron.alter_job(jobid, active := %s) FROM cron.job WHERE jobname LIKE 'bench-%%'", (active,))


def prepare_history(su: Any, app: Any, rows: int, jobs: int) -> None:
    """``rows`` runs of ``jobs`` every-minute jobs loaded (the jobs paused meanwhile) and the rollups
    built from them, each step's time printed: what every size of a bench starts from."""
    from bench_history import load

    from cronkit import monitor

    print(f"\n== {rows:,} runs ({jobs} every-minute jobs, {rows // jobs / 1440:.1f} days) ==", flush=True)
    schedule_jobs(su, jobs, active=False)  # nothing may write history while it loads
    print(f"load:                         {load(su, app, rows, jobs):7.1f} s", flush=True)
    start = time.perf_counter()
    monitor.rebuild_rollups(app)
    monitor.refresh_rollups(app)
    print(f"rollups, first build:         {time.perf_counter() - start:7.1f} s", flush=True)
    schedule_jobs(su, jobs, active=True)


def size(rows: int, args: argparse.Namespace, su: Any, app: Any, dsn: str) -> None:
    prepare_history(su, app, rows, args.jobs)
    count = best(app, COUNT, args.repeat)
    health = best(app, PER_JOB_HEALTH, args.repeat)
    hourly = best(app, RAW_HOURLY, args.repeat)
    print(f"baselines: count(*) {count * 1000:.0f} ms · per-job health (24 h) {health * 1000:.0f} ms · "
          f"raw hourly GROUP BY (7 d) {hourly * 1000:.0f} ms", flush=True)
    lines = [("doctor", count, "count(*)"), ("missed", count, "count(*)"), ("missed-1", count, "count(*)"),
             ("monitor", count, "count(*)"), ("timeline", hourly, "raw hourly")]
    for name, base, base_name in lines:
        got = in_child(name, dsn, args.repeat)
        print(f"  {name:<10} best {got['best'] * 1000:8.0f} ms  first {got['first'] * 1000:8.0f} ms  "
              f"peak RSS {got['rss'] / 1048576:6.0f} MiB  {base / got['best']:6.2f}x vs {base_name}"
              + (f"  {health / got['best']:5.2f}x vs per-job health" if name == "doctor" else ""), flush=True)
    status, help_ = wall(["status", "--json"], dsn, args.repeat), wall(["--help"], dsn, args.repeat)
    print(f"  status     {status * 1000:8.0f} ms  --help {help_ * 1000:.0f} ms  ratio {status / help_:.2f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000,30000000", help="comma-separated run counts")
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--state-dir", type=Path, default=Path("/tmp/bench-operator"))
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        child(args.case, args.dsn, args.repeat)
        return 0

    from bench_history import each_size

    each_size(args, size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
