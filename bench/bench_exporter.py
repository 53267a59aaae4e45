"""One exporter scrape at any history size, beside baselines measured in the same process.

Run: PYTHONPATH=. python bench/bench_exporter.py [--rows 1000000] [--jobs 100] [--scrapes 20]
     [--state-dir /tmp/bench-exporter] [--keep]

It loads synthetic pg_cron history into its own sandbox (``bench_history.load``: ``rows`` runs of
``jobs`` every-minute jobs ending now, ~2 % failed, ledger rows and responses), builds the rollups
and schedules the jobs for real (``bench_operator.schedule_jobs``), so history goes on growing
while it measures. Then, over one kept connection as a scrape uses it:

* baselines: a bare ``SELECT 1`` round trip, and ``run_summary`` over the last hour alone;
* each read on its own: those of every scrape (the 1 h summary, HTTP outcomes, queue snapshots,
  monitoring state) and the background ones a scrape does not wait for (the 8-day last-run
  summary, missed runs, the doctor: at most once a minute per database);
* a whole scrape (``generate_latest`` of the exporter's registry: reads plus text rendering),
  best and median of ``--scrapes``, with client memory growth over them (tracemalloc).

Ratios are printed; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(best, median) seconds of ``repeat`` calls after a first one."""
    fn()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return min(times), statistics.median(times)


def size(rows: int, args: argparse.Namespace, su: Any, app: Any, dsn: str) -> None:
    from bench_operator import prepare_history
    from prometheus_client import generate_latest

    from cronkit import db, exporter, monitor
    from cronkit.monitor.missed import detect_missed

    prepare_history(su, app, rows, args.jobs)

    repeat = args.scrapes
    with db.connect(dsn, autocommit=True) as conn:
        ping, _ = timed(lambda: conn.execute("SELECT 1").fetchall(), repeat)
        summary, _ = timed(lambda: monitor.run_summary(conn, exporter.WINDOW), repeat)
        print(f"baselines: SELECT 1 {ping * 1000:.2f} ms · run_summary (1 h) {summary * 1000:.1f} ms", flush=True)
        reads = {
            "summary 1 h": lambda: monitor.run_summary(conn, exporter.WINDOW),
            "last run 8 d": lambda: monitor.run_summary(conn, exporter.LOOKBACK),
            "http 1 h": lambda: monitor.http_outcomes(conn, exporter.WINDOW),
            "missed 1 h": lambda: detect_missed(conn, exporter.WINDOW),
            "queues": lambda: exporter._latest_snapshots(conn, exporter.TIMEOUT_MS),
            "state": lambda: monitor.monitor_state(conn),
        }
        for name, fn in reads.items():
            best, _ = timed(fn, repeat)
            print(f"  read {name:<13} {best * 1000:8.1f} ms", flush=True)
        best, _ = timed(lambda: exporter.doctor_counts(conn), 1)
        print(f"  read doctor        {best * 1000:8.1f} ms", flush=True)
        best, _ = timed(lambda: exporter.read_slow(conn), 1)
        print(f"  background reads   {best * 1000:8.1f} ms (last run 8 d, missed, doctor: at most once a minute, "
              "not on a scrape's path)", flush=True)

    fleet = exporter.Exporter([exporter.Target(dsn)])
    registry = fleet.registry()
    try:
        began = time.perf_counter()
        exporter.scrape_text(fleet)  # the first scrape waits for the background reads
        first = time.perf_counter() - began
        best, median = timed(lambda: generate_latest(registry), repeat)
        gc.collect()
        tracemalloc.start()
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(repeat):
            generate_latest(registry)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        fleet.close()
    print(f"  scrape: best {best * 1000:.1f} ms, median {median * 1000:.1f} ms (first, waiting for the background reads: "
          f"{first * 1000:.0f} ms) · {best / ping:.0f}x SELECT 1 · {best / summary:.1f}x run_summary alone · "
          f"memory {(after - before) / 1024:+.0f} KiB over {repeat} traced scrapes", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000", help="comma-separated run counts (10M takes ~10 minutes to load)")
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--state-dir", type=Path, default=Path("/tmp/bench-exporter"))
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    args = parser.parse_args(argv)

    from bench_history import each_size

    each_size(args, size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
