"""Run history, rollups, HTTP outcomes, retention and the [monitoring] jobs, as specifications.

Synthetic history is written inside a transaction that is rolled back, as a throw-away role
without BYPASSRLS: pg_cron's row-level security then hides every other session's runs, so the
shared sandbox's real runs cannot disturb exact counts (or the runid-by-time search), and nothing
is left behind. The HTTP test needs committed requests (pg_net sends after COMMIT), so it uses
unique job names and deletes its rows afterwards.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest
from tests.helpers import wait_for
from psycopg import sql

from cronkit import monitor
from cronkit.monitor import history
from cronkit.errors import CronkitError, ManifestError
from cronkit.maintenance import maintenance_jobs, monitoring_settings
from cronkit.manifest import parse_manifest
from cronkit.plan import schema_files

Conn = psycopg.Connection[dict[str, Any]]
BASE = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


GROUP_ROLE = "cronkit_monitor_tests"


@pytest.fixture(scope="session")
def monitoring_schema(sandbox: Any) -> None:
    """cronkit's schema files, as `cronkit apply` runs them (idempotent), and a group role that
    may read and write pg_cron's history and cronkit's tables (granted once, not per test: GRANT
    on a shared schema races with other sessions doing the same)."""
    from cronkit import db as cdb

    with cdb.connect(sandbox.database_url, autocommit=True) as conn:
        for _name, text in schema_files():
            conn.execute(text)  # type: ignore[arg-type]
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (GROUP_ROLE,)).fetchone()
        group = sql.Identifier(GROUP_ROLE)
        if not exists:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOBYPASSRLS").format(group))
        for statement in (
            "GRANT USAGE ON SCHEMA cron, cronkit TO {}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON cron.job_run_details TO {}",
            "GRANT SELECT ON cron.job TO {}",
            "GRANT USAGE ON ALL SEQUENCES IN SCHEMA cron TO {}",
            "GRANT ALL ON ALL TABLES IN SCHEMA cronkit TO {}",
            "GRANT ALL ON ALL SEQUENCES IN SCHEMA cronkit TO {}",
        ):
            conn.execute(sql.SQL(statement).format(group))


@pytest.fixture
def iso(db: Conn, monitoring_schema: None) -> Iterator[Conn]:
    """The app-role connection inside a transaction, switched to a fresh role that sees only its
    own pg_cron rows (row-level security); everything is rolled back at the end."""
    role = sql.Identifier(f"ck_test_{uuid.uuid4().hex[:10]}")
    with db.transaction(force_rollback=True):
        db.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOBYPASSRLS IN ROLE {}").format(role, sql.Identifier(GROUP_ROLE)))
        db.execute(sql.SQL("GRANT {} TO current_user").format(role))
        db.execute(sql.SQL("SET LOCAL ROLE {}").format(role))
        yield db


def add_runs(conn: Conn, jobid: int, runs: list[tuple[str, datetime | None, datetime | None, str]]) -> list[int]:
    """Insert (status, start, end, message) rows in order; returns their runids."""
    ids = []
    for status, start, end, message in runs:
        row = conn.execute(
            "INSERT INTO cron.job_run_details (jobid, job_pid, database, username, command, status, return_message, start_time, end_time) "
            "VALUES (%s, 4242, current_database(), current_user, 'SELECT 1', %s, %s, %s, %s) RETURNING runid",
            (jobid, status, message, start, end),
        ).fetchone()
        assert row is not None
        ids.append(int(row["runid"]))
    return ids


def minutely(start: datetime, count: int, duration_ms: Any, *, fail_every: int = 0,
             every: int = 1) -> list[tuple[str, datetime, datetime, str]]:
    """``count`` runs ``every`` minutes from ``start`` (one second past the minute)."""
    rows = []
    for i in range(count):
        begin = start + timedelta(minutes=i * every, seconds=1)
        failed = fail_every and i % fail_every == 0
        rows.append(("failed" if failed else "succeeded", begin, begin + timedelta(milliseconds=duration_ms(i)),
                     f"ERROR:  boom {i}\n" if failed else "1 row"))
    return rows


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(p * len(ordered)) - 1]


# -- summaries ---------------------------------------------------------------------------------------


def test_raw_summary_counts_runs_and_gives_exact_nearest_rank_percentiles(iso: Conn) -> None:
    durations = [float(100 + 7 * i) for i in range(90)]
    add_runs(iso, 7001, minutely(BASE, 90, lambda i: durations[i], fail_every=10))
    add_runs(iso, 7001, [("running", BASE + timedelta(minutes=95), None, "")])

    frame = monitor.run_summary(iso, BASE, BASE + timedelta(hours=2), jobs=[7001], use_rollups=False)

    row = frame.row(0, named=True)
    assert (row["jobid"], row["runs"], row["succeeded"], row["failed"], row["running"]) == (7001, 91, 81, 9, 1)
    assert row["p50_ms"] == pytest.approx(nearest_rank(durations, 0.5))
    assert row["p95_ms"] == pytest.approx(nearest_rank(durations, 0.95))
    assert row["max_ms"] == pytest.approx(max(durations))
    assert row["mean_ms"] == pytest.approx(sum(durations) / len(durations))
    assert row["last_status"] == "running"
    assert row["last_failure_message"] == "ERROR:  boom 80\n"
    assert row["last_failure_at"] == BASE + timedelta(minutes=80, seconds=1, milliseconds=durations[80])


def test_rollup_summary_equals_raw_counts_at_partial_edge_hours_and_percentiles_within_2_5_percent(iso: Conn) -> None:
    add_runs(iso, 7002, minutely(BASE, 240, lambda i: 50 + (i * 37) % 900, fail_every=7))
    monitor.refresh_rollups(iso)
    # runs newer than the refresh, and a window whose edges cut hours in half
    add_runs(iso, 7002, minutely(BASE + timedelta(hours=4), 30, lambda i: 2000.0))
    since, until = BASE + timedelta(minutes=25), BASE + timedelta(hours=4, minutes=12)

    raw = monitor.run_summary(iso, since, until, jobs=[7002], use_rollups=False).row(0, named=True)
    rolled = monitor.run_summary(iso, since, until, jobs=[7002]).row(0, named=True)

    for key in ("runs", "succeeded", "failed", "running", "max_ms", "last_start", "last_failure_message"):
        assert rolled[key] == raw[key], key
    assert raw["runs"] == 240 - 25 + 12
    assert rolled["mean_ms"] == pytest.approx(raw["mean_ms"])
    assert rolled["p50_ms"] == pytest.approx(raw["p50_ms"], rel=0.025)
    assert rolled["p95_ms"] == pytest.approx(raw["p95_ms"], rel=0.025)


def test_a_job_in_cron_job_without_runs_is_listed_with_zero_runs(iso: Conn) -> None:
    name = f"ck_idle_{uuid.uuid4().hex[:8]}"
    jobid = iso.execute("SELECT cron.schedule(%s, '0 0 1 1 *', 'SELECT 1') AS id", (name,)).fetchone()["id"]  # type: ignore[index]

    frame = monitor.run_summary(iso, timedelta(hours=1), jobs=[name])

    assert frame.select("jobid", "jobname", "runs", "active").rows() == [(jobid, name, 0, True)]


def test_a_read_inside_a_callers_transaction_leaves_its_settings_alone(iso: Conn) -> None:
    iso.execute("SET LOCAL jit = on")
    iso.execute("SET LOCAL TimeZone = 'Europe/Berlin'")
    iso.execute("SET LOCAL statement_timeout = '12345ms'")

    monitor.run_summary(iso, timedelta(hours=1), jobs=[7011])  # rollups: jit off inside
    monitor.run_summary(iso, timedelta(hours=1), jobs=[7011], use_rollups=False)
    monitor.http_outcomes(iso, timedelta(hours=1), jobs=["ck-nothing"])

    row = iso.execute("SELECT current_setting('jit') AS jit, current_setting('TimeZone') AS tz, "
                      "current_setting('statement_timeout') AS st").fetchone()
    assert row == {"jit": "on", "tz": "Europe/Berlin", "st": "12345ms"}


def test_summary_refuses_an_empty_or_huge_window(iso: Conn) -> None:
    with pytest.raises(CronkitError, match="empty"):
        monitor.run_summary(iso, BASE, BASE)
    with pytest.raises(CronkitError, match="longer than"):
        monitor.run_summary(iso, timedelta(days=500))


# -- rollups -------------------------------------------------------------------------------------------

FROM_SCRATCH = """
WITH runs AS (
    SELECT date_trunc('hour', start_time, 'UTC') AS bucket, status, runid,
           extract(epoch FROM end_time - start_time)::float8 * 1000 AS ms
      FROM cron.job_run_details WHERE jobid = %s AND status IN ('succeeded', 'failed')
), bins AS (
    SELECT bucket, floor(ln(greatest(ms, 1)) / ln(1.05))::bigint AS bin, count(*) AS n
      FROM runs WHERE ms IS NOT NULL GROUP BY 1, 2
)
SELECT bucket, count(*) FILTER (WHERE status = 'succeeded') AS succeeded, count(*) FILTER (WHERE status = 'failed') AS failed,
       max(ms) AS dur_max_ms, min(runid) AS min_runid, max(runid) AS max_runid,
       max(runid) FILTER (WHERE status = 'failed') AS max_failed_runid,
       (SELECT array_agg((bin << 32) | n ORDER BY bin) FROM bins WHERE bins.bucket = runs.bucket) AS hist
  FROM runs GROUP BY 1 ORDER BY 1
"""
ROLLUP_ROWS = """
SELECT bucket, succeeded, failed, dur_max_ms, min_runid, max_runid, max_failed_runid, hist
  FROM cronkit.run_rollup_hour WHERE jobid = %s ORDER BY 1
"""


def test_incremental_rollups_equal_a_from_scratch_aggregate_after_late_finishing_runs(iso: Conn) -> None:
    first = add_runs(iso, 7003, minutely(BASE, 100, lambda i: 10 + i * 3, fail_every=9))
    still_running = add_runs(iso, 7003, [("running", BASE + timedelta(minutes=100, seconds=1), None, ""),
                                         ("starting", None, None, "")])
    step1 = monitor.refresh_rollups(iso)
    assert step1["open"] >= 2
    assert iso.execute("SELECT count(*) AS n FROM cronkit.run_rollup_open WHERE runid = ANY(%s)",
                       (still_running,)).fetchone()["n"] == 2  # type: ignore[index]

    # the two open runs finish (one of them fails before it ever started, as pg_cron < 1.6.3 logs it)
    iso.execute("UPDATE cron.job_run_details SET status = 'succeeded', end_time = start_time + interval '5 minutes' "
                "WHERE runid = %s", (still_running[0],))
    iso.execute("UPDATE cron.job_run_details SET status = 'failed', return_message = 'connection failed', "
                "start_time = %s, end_time = %s WHERE runid = %s",
                (BASE + timedelta(minutes=101), BASE + timedelta(minutes=101, seconds=2), still_running[1]))
    add_runs(iso, 7003, minutely(BASE + timedelta(minutes=102), 80, lambda i: 400 + i))
    monitor.refresh_rollups(iso)
    monitor.refresh_rollups(iso)  # nothing new: must change nothing

    incremental = iso.execute(ROLLUP_ROWS, (7003,)).fetchall()
    scratch = iso.execute(FROM_SCRATCH, (7003,)).fetchall()
    assert incremental == scratch
    assert sum(r["succeeded"] + r["failed"] for r in incremental) == len(first) + 2 + 80
    open_left = iso.execute("SELECT count(*) AS n FROM cronkit.run_rollup_open WHERE runid = ANY(%s)",
                            (still_running,)).fetchone()
    assert open_left is not None and open_left["n"] == 0

    rebuilt = monitor.rebuild_rollups(iso)
    assert rebuilt["runs"] >= sum(r["succeeded"] + r["failed"] for r in incremental)
    assert iso.execute(ROLLUP_ROWS, (7003,)).fetchall() == scratch


# Per UTC day, from the raw runs (placed in time as the rollups place them: start, else end, else
# the previous run's start) and, separately, by merging the hourly rollup rows of each day.
_PLACED = """
SELECT d.runid, d.status, extract(epoch FROM d.end_time - d.start_time)::float8 * 1000 AS ms,
       date_trunc('day', coalesce(d.start_time, d.end_time,
           (SELECT p.start_time FROM cron.job_run_details p WHERE p.runid < d.runid AND p.start_time IS NOT NULL
             ORDER BY p.runid DESC LIMIT 1)), 'UTC') AS day
  FROM cron.job_run_details d WHERE d.jobid = %(jobid)s AND d.status IN ('succeeded', 'failed')
"""
DAY_FROM_SCRATCH = f"""
WITH runs AS ({_PLACED}), bins AS (
    SELECT day, floor(ln(greatest(ms, 1)) / ln(1.05))::bigint AS bin, count(*) AS n
      FROM runs WHERE ms IS NOT NULL GROUP BY 1, 2
)
SELECT day, count(*) FILTER (WHERE status = 'succeeded') AS succeeded, count(*) FILTER (WHERE status = 'failed') AS failed,
       count(ms) AS timed_runs, max(ms) AS dur_max_ms, min(runid) AS min_runid, max(runid) AS max_runid,
       max(runid) FILTER (WHERE status = 'failed') AS max_failed_runid,
       coalesce((SELECT array_agg((bin << 32) | n ORDER BY bin) FROM bins WHERE bins.day = runs.day), '{{}}') AS hist
  FROM runs GROUP BY 1 ORDER BY 1
"""
DAY_FROM_HOURLY = """
WITH h AS (SELECT date_trunc('day', bucket, 'UTC') AS day, * FROM cronkit.run_rollup_hour WHERE jobid = %(jobid)s), bins AS (
    SELECT day, e >> 32 AS bin, sum(e & 4294967295)::bigint AS n FROM h, unnest(h.hist) AS e GROUP BY 1, 2
)
SELECT day, sum(succeeded) AS succeeded, sum(failed) AS failed, sum(timed_runs) AS timed_runs, max(dur_max_ms) AS dur_max_ms,
       min(min_runid) AS min_runid, max(max_runid) AS max_runid, max(max_failed_runid) AS max_failed_runid,
       coalesce((SELECT array_agg((bin << 32) | n ORDER BY bin) FROM bins WHERE bins.day = h.day), '{}') AS hist
  FROM h GROUP BY 1 ORDER BY 1
"""
DAY_ROWS = """
SELECT day, succeeded, failed, timed_runs, dur_max_ms, min_runid, max_runid, max_failed_runid, hist
  FROM cronkit.run_rollup_day WHERE jobid = %(jobid)s ORDER BY 1
"""


def _as_numbers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sums come back as numeric from one query and bigint from another: compare as ints."""
    return [{k: int(v) if k in ("succeeded", "failed", "timed_runs") and v is not None else v for k, v in r.items()}
            for r in rows]


def assert_daily_level_exact(conn: Conn, jobid: int) -> list[dict[str, Any]]:
    daily = _as_numbers(conn.execute(DAY_ROWS, {"jobid": jobid}).fetchall())
    assert daily == _as_numbers(conn.execute(DAY_FROM_SCRATCH, {"jobid": jobid}).fetchall())
    assert daily == _as_numbers(conn.execute(DAY_FROM_HOURLY, {"jobid": jobid}).fetchall())
    return daily


def test_daily_rollups_stay_the_merge_of_the_hourly_rows_through_late_runs_rebuilds_and_backfill(iso: Conn) -> None:
    # every 7 minutes for 23.3 hours from 04:00 the day before BASE: two UTC days
    add_runs(iso, 7008, minutely(BASE - timedelta(hours=30), 200, lambda i: 20 + (i * 53) % 3000, fail_every=11, every=7))
    late = add_runs(iso, 7008, [("running", BASE - timedelta(hours=6, minutes=1), None, ""), ("starting", None, None, "")])
    monitor.refresh_rollups(iso)
    assert_daily_level_exact(iso, 7008)

    # one run finishes late; the other fails without ever connecting (pg_cron < 1.6.3: no times at
    # all, placed at the previous run's start, counted but not timed); more runs cross midnight
    iso.execute("UPDATE cron.job_run_details SET status = 'succeeded', end_time = start_time + interval '4 seconds' "
                "WHERE runid = %s", (late[0],))
    iso.execute("UPDATE cron.job_run_details SET status = 'failed', return_message = 'connection failed' WHERE runid = %s",
                (late[1],))
    add_runs(iso, 7008, minutely(BASE + timedelta(hours=11), 400, lambda i: 700 + 11 * i, fail_every=13))
    monitor.refresh_rollups(iso)
    monitor.refresh_rollups(iso)  # nothing new: must change nothing

    daily = assert_daily_level_exact(iso, 7008)
    assert [r["day"] for r in daily] == [BASE - timedelta(days=1, hours=10), BASE - timedelta(hours=10), BASE + timedelta(hours=14)]
    assert sum(r["succeeded"] + r["failed"] for r in daily) == 200 + 2 + 400
    assert sum(r["timed_runs"] for r in daily) == 200 + 1 + 400

    monitor.rebuild_rollups(iso)
    assert daily == assert_daily_level_exact(iso, 7008)

    # an installation that had only the hourly level: the next refresh derives the daily one
    iso.execute("UPDATE cronkit.monitor_state SET day_rollup_ready = false WHERE id")
    iso.execute("DELETE FROM cronkit.run_rollup_day WHERE jobid = 7008")
    assert monitor.run_summary(iso, BASE - timedelta(days=2), BASE + timedelta(days=1), jobs=[7008]).row(0, named=True)["runs"] == 602
    monitor.refresh_rollups(iso)
    assert daily == assert_daily_level_exact(iso, 7008)


def test_rollup_summary_over_days_equals_raw_at_partial_days_hours_and_late_runs(iso: Conn) -> None:
    start = BASE - timedelta(days=2, hours=3)
    add_runs(iso, 7009, minutely(start, 500, lambda i: 30 + (i * 97) % 4000, fail_every=17, every=10))  # 3.5 days
    running = add_runs(iso, 7009, [("running", BASE + timedelta(minutes=3), None, "")])
    monitor.refresh_rollups(iso)
    # after the refresh: the open run finishes, and newer runs arrive
    iso.execute("UPDATE cron.job_run_details SET status = 'failed', end_time = start_time + interval '9 seconds', "
                "return_message = 'ERROR:  late' WHERE runid = %s", (running[0],))
    add_runs(iso, 7009, minutely(start + timedelta(minutes=5000), 30, lambda i: 5000.0))

    windows = [
        (BASE - timedelta(days=1, hours=5, minutes=35), BASE + timedelta(days=1, hours=2, minutes=12)),  # days + edges
        (BASE - timedelta(hours=10), BASE + timedelta(hours=14)),  # exactly one UTC day
        (BASE - timedelta(days=3), BASE + timedelta(days=2)),  # past both ends of the history
        (BASE - timedelta(hours=3, minutes=10), BASE + timedelta(hours=2, minutes=50)),  # hours only
        (BASE + timedelta(minutes=2), BASE + timedelta(minutes=40)),  # inside one hour
    ]
    with monitor.guarded(iso):
        params = history._rollup_params(iso, *windows[0], [7009])
    assert params["day_start"] == BASE + timedelta(hours=14) - timedelta(days=1)  # the daily level is read
    assert params["day_end"] == BASE + timedelta(hours=14)
    for since, until in windows:
        raw = monitor.run_summary(iso, since, until, jobs=[7009], use_rollups=False).row(0, named=True)
        rolled = monitor.run_summary(iso, since, until, jobs=[7009]).row(0, named=True)
        for key in ("runs", "succeeded", "failed", "running", "max_ms", "last_start", "last_status",
                    "last_failure_at", "last_failure_message"):
            assert rolled[key] == raw[key], (since, until, key)
        assert raw["runs"] > 0
        assert rolled["mean_ms"] == pytest.approx(raw["mean_ms"])
        assert rolled["p50_ms"] == pytest.approx(raw["p50_ms"], rel=0.025)
        assert rolled["p95_ms"] == pytest.approx(raw["p95_ms"], rel=0.025)
    whole = monitor.run_summary(iso, *windows[2], jobs=[7009]).row(0, named=True)
    assert (whole["runs"], whole["running"]) == (500 + 1 + 30, 0)


def test_runid_floor_finds_the_first_run_of_a_time_with_a_binary_search(iso: Conn) -> None:
    ids = add_runs(iso, 7004, minutely(BASE, 300, lambda i: 5))
    # what cronkit.runid_at answers for a time, without the safety margin runid_floor adds
    at = iso.execute("SELECT cronkit.runid_at(%s) AS r", (BASE + timedelta(minutes=120, seconds=30),)).fetchone()
    assert at is not None and at["r"] == ids[121]
    assert monitor.runid_floor(iso, BASE + timedelta(minutes=120, seconds=30)) == ids[111]


def test_timeline_gives_one_row_per_job_and_hour_including_runs_newer_than_the_refresh(iso: Conn) -> None:
    add_runs(iso, 7005, minutely(BASE, 120, lambda i: 100.0, fail_every=60))
    monitor.refresh_rollups(iso)
    add_runs(iso, 7005, minutely(BASE + timedelta(hours=2), 10, lambda i: 100.0))

    frame = monitor.run_timeline(iso, BASE, BASE + timedelta(hours=3), jobs=[7005])

    assert frame.select("bucket", "runs", "failed").rows() == [
        (BASE, 60, 1), (BASE + timedelta(hours=1), 60, 1), (BASE + timedelta(hours=2), 10, 0)]
    assert frame.get_column("p50_ms").to_list() == pytest.approx([100.0] * 3, rel=0.025)


def test_each_hourly_rollup_row_keeps_the_percentiles_a_merge_of_its_histogram_gives(iso: Conn) -> None:
    def duration(i: int) -> float:
        return 20.0 + (i * 131) % 5000

    add_runs(iso, 7012, minutely(BASE, 180, duration, fail_every=8))
    monitor.refresh_rollups(iso)
    add_runs(iso, 7012, minutely(BASE + timedelta(hours=2, minutes=40), 30, lambda i: 9000.0))  # not folded yet

    frame = monitor.run_timeline(iso, BASE, BASE + timedelta(hours=4), jobs=[7012])

    assert frame.get_column("runs").to_list() == [60, 60, 80, 10]
    for row in frame.iter_rows(named=True):
        hour = row["bucket"]
        merged = monitor.run_summary(iso, hour, hour + timedelta(hours=1), jobs=[7012]).row(0, named=True)
        assert (row["p50_ms"], row["p95_ms"]) == pytest.approx((merged["p50_ms"], merged["p95_ms"]), rel=1e-12)
    first = frame.row(0, named=True)
    assert first["p50_ms"] == pytest.approx(nearest_rank([duration(i) for i in range(60)], 0.5), rel=0.025)
    assert first["p95_ms"] == pytest.approx(nearest_rank([duration(i) for i in range(60)], 0.95), rel=0.025)
    stored = iso.execute("SELECT count(*) AS n FROM cronkit.run_rollup_hour WHERE jobid = 7012 AND p95_ms IS NOT NULL")
    assert stored.fetchone() == {"n": 3}


OLD_HOURLY = """
CREATE TABLE cronkit.run_rollup (
    bucket timestamptz NOT NULL, jobid bigint NOT NULL, status text NOT NULL, jobname text, runs bigint NOT NULL,
    timed_runs bigint NOT NULL, dur_sum_ms double precision NOT NULL DEFAULT 0, dur_max_ms double precision,
    hist bigint[] NOT NULL DEFAULT '{}', min_runid bigint NOT NULL, max_runid bigint NOT NULL, last_start timestamptz,
    PRIMARY KEY (bucket, jobid, status));
INSERT INTO cronkit.run_rollup VALUES
    ('1990-01-01 10:00+00', 7090, 'succeeded', 'old', 5, 4, 40, 20, ARRAY[(20::bigint << 32) | 3, (40::bigint << 32) | 1],
     11, 19, '1990-01-01 10:50+00'),
    ('1990-01-01 10:00+00', 7090, 'failed', 'old', 2, 2, 30, 25, ARRAY[(20::bigint << 32) | 1, (50::bigint << 32) | 1],
     12, 15, '1990-01-01 10:40+00')
"""


def test_applying_the_schema_turns_the_old_per_status_hourly_rows_into_merged_hourly_rows(db: Conn,
                                                                                        monitoring_schema: None) -> None:
    text = dict(schema_files())["schema_monitoring.sql"]
    with db.transaction(force_rollback=True):
        db.execute(OLD_HOURLY)
        db.execute(text)  # type: ignore[arg-type]
        row = db.execute("SELECT succeeded, failed, timed_runs, dur_sum_ms, dur_max_ms, hist, min_runid, max_runid, "
                         "max_failed_runid, last_start, p50_ms FROM cronkit.run_rollup_hour WHERE jobid = 7090").fetchone()
        gone = db.execute("SELECT to_regclass('cronkit.run_rollup') AS t").fetchone()
    assert gone == {"t": None}
    assert row is not None
    assert (row["succeeded"], row["failed"], row["timed_runs"], row["dur_sum_ms"], row["dur_max_ms"]) == (5, 2, 6, 70, 25)
    assert row["hist"] == [(20 << 32) | 4, (40 << 32) | 1, (50 << 32) | 1]
    assert (row["min_runid"], row["max_runid"], row["max_failed_runid"]) == (11, 19, 15)
    assert row["last_start"] == datetime(1990, 1, 1, 10, 50, tzinfo=UTC)
    assert row["p50_ms"] == pytest.approx(math.exp(20.5 * math.log(1.05)))  # the 3rd of 6 is in bin 20


# -- retention ---------------------------------------------------------------------------------------


def test_retention_deletes_history_older_than_the_horizon_once_rolled_up(iso: Conn) -> None:
    now = iso.execute("SELECT now() AS t").fetchone()["t"]  # type: ignore[index]
    old = add_runs(iso, 7006, minutely(now - timedelta(days=10), 30, lambda i: 20))
    recent = add_runs(iso, 7006, minutely(now - timedelta(days=2), 30, lambda i: 20))
    iso.execute("INSERT INTO cronkit.request_ledger (request_id, jobname, url, created_at) VALUES "
                "(-700601, 'ck-ret', 'http://x', now() - interval '10 days'), (-700602, 'ck-ret', 'http://x', now())")

    with pytest.raises(CronkitError, match="at least 1 day"):
        monitor.apply_retention(iso, timedelta(hours=6))
    monitor.refresh_rollups(iso)
    result = monitor.apply_retention(iso, timedelta(days=7))

    left = [r["runid"] for r in iso.execute("SELECT runid FROM cron.job_run_details WHERE jobid = 7006 ORDER BY runid")]
    assert left == recent
    assert result["runs"] >= len(old) and result["more"] is False
    ledger = [r["request_id"] for r in iso.execute("SELECT request_id FROM cronkit.request_ledger WHERE jobname = 'ck-ret'")]
    assert ledger == [-700602]
    # the history is still in the rollups
    kept = iso.execute("SELECT sum(succeeded + failed) AS n FROM cronkit.run_rollup_hour WHERE jobid = 7006").fetchone()
    assert kept is not None and kept["n"] == 60


def test_retention_also_keeps_the_other_features_records_within_their_horizons(iso: Conn) -> None:
    """Skipped runs and alert deliveries go with the run history (7 days here); the change record, runs
    by hand, DST reissues and settled dead letters with the rollups (10 days); open ones stay."""
    job = f"ck-records-{uuid.uuid4().hex[:6]}"
    ago = "now() - %s::interval"
    for age in ("8 days", "1 day"):
        iso.execute(f"INSERT INTO cronkit.skipped_runs (jobname, reason, skipped_at) VALUES (%s, 'overlap', {ago})", (job, age))
        iso.execute("INSERT INTO cronkit.alert_deliveries (project, channel, channel_kind, event, payload, status, created_at) "
                    f"VALUES (%s, 'ops', 'slack', 'down', '{{}}', 'delivered', {ago})", (job, age))
    for age in ("11 days", "9 days"):
        entry = iso.execute(f"INSERT INTO cronkit.audit_log (action, target, summary, at) VALUES ('run-now', %s, 'x', {ago}) "
                            "RETURNING id", (job, age)).fetchone()["id"]  # type: ignore[index]
        iso.execute("INSERT INTO cronkit.manual_runs (jobname, started_at, ended_at, status, audit_id) "
                    f"VALUES (%s, {ago}, {ago}, 'called', %s)", (job, age, age, entry))
        iso.execute("INSERT INTO cronkit.schedule_reissues (jobname, jobid, as_of, old_schedule, new_schedule, reissued_at) "
                    f"VALUES (%s, 1, {ago}, 'a', 'b', {ago})", (job, age, age))

    result = monitor.apply_retention(iso, timedelta(days=7), rollup_horizon=timedelta(days=10))

    def ages(table: str, column: str) -> list[int]:
        rows = iso.execute(f"SELECT extract(day FROM now() - {column})::int AS d FROM cronkit.{table} "  # type: ignore[arg-type]
                           "WHERE " + ("target" if table == "audit_log" else "project" if table == "alert_deliveries"
                                       else "jobname") + " = %s", (job,)).fetchall()
        return sorted(r["d"] for r in rows)

    assert ages("skipped_runs", "skipped_at") == ages("alert_deliveries", "created_at") == [1]
    assert ages("audit_log", "at") == ages("manual_runs", "started_at") == ages("schedule_reissues", "reissued_at") == [9]
    assert result["records"] >= 5


def test_retention_drops_rollups_by_whole_utc_days_so_both_levels_stay_equal(iso: Conn) -> None:
    now = iso.execute("SELECT now() AS t").fetchone()["t"].astimezone(UTC)  # type: ignore[index]
    cutoff_day = (now - timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)
    add_runs(iso, 7010, minutely(now - timedelta(days=12), 30, lambda i: 20))  # whole days older: dropped
    add_runs(iso, 7010, minutely(cutoff_day + timedelta(minutes=5), 30, lambda i: 20))  # the day the horizon cuts: kept
    add_runs(iso, 7010, minutely(now - timedelta(days=2), 30, lambda i: 20))
    monitor.refresh_rollups(iso)

    monitor.apply_retention(iso, timedelta(days=7), rollup_horizon=timedelta(days=10))

    daily = _as_numbers(iso.execute(DAY_ROWS, {"jobid": 7010}).fetchall())  # the raw runs are gone: vs the hourly level
    assert daily == _as_numbers(iso.execute(DAY_FROM_HOURLY, {"jobid": 7010}).fetchall())
    assert sum(r["succeeded"] for r in daily) == 60
    assert min(r["day"] for r in daily) == cutoff_day


# -- HTTP outcomes -----------------------------------------------------------------------------------


@pytest.fixture
def http_jobs(db: Conn, monitoring_schema: None) -> Iterator[str]:
    prefix = f"ck-http-{uuid.uuid4().hex[:8]}-"
    yield prefix
    like = prefix.replace("-", "-") + "%"
    db.execute("DELETE FROM cronkit.request_ledger WHERE jobname LIKE %s", (like,))
    db.execute("DELETE FROM cronkit.http_responses WHERE jobname LIKE %s", (like,))
    db.execute("DELETE FROM cronkit.http_rollup WHERE jobname LIKE %s", (like,))


def _call(db: Conn, jobname: str, url: str, timeout_ms: int = 5000) -> int:
    """What a cronkit wrapper does: queue the request and record it in the ledger, in one transaction."""
    with db.transaction():
        row = db.execute("SELECT net.http_post(url := %s, timeout_milliseconds := %s) AS id", (url, timeout_ms)).fetchone()
        assert row is not None
        db.execute("INSERT INTO cronkit.request_ledger (request_id, jobname, url) VALUES (%s, %s, %s)",
                   (row["id"], jobname, url))
    return int(row["id"])


@pytest.mark.slow
def test_outcomes_are_attributed_by_request_even_when_jobs_call_the_same_function_concurrently(
    db: Conn, sandbox_only: Any, http_jobs: str
) -> None:
    edge = sandbox_only.edge
    tag = http_jobs.split("-")[2]
    ok, broken, slow = f"ck-ok-{tag}", f"ck-broken-{tag}", f"ck-slow-{tag}"
    edge.configure(ok, status=200, verify_jwt=False, latency_ms=50)
    edge.configure(broken, status=503, verify_jwt=False)
    edge.configure(slow, status=200, verify_jwt=False, latency_ms=3000)
    base = f"{sandbox_only.supabase_url}/functions/v1/"
    a, b, c, d, e, f = (http_jobs + x for x in "abcdef")
    requests = []
    for _ in range(3):  # a and b interleave calls to the same function; c to a failing one
        requests += [_call(db, a, base + ok), _call(db, b, base + ok), _call(db, c, base + broken)]
    requests += [_call(db, b, base + f"ck-nothing-{tag}")]  # no such function: 404
    requests += [_call(db, d, base + slow, timeout_ms=500)]  # times out
    requests += [_call(db, e, "http://127.0.0.1:9/")]  # nothing listens: transport error
    db.execute("INSERT INTO cronkit.request_ledger (request_id, jobname, url) VALUES (-1, %s, 'http://never')", (f,))

    wait_for(lambda: db.execute("SELECT count(*) AS n FROM net._http_response WHERE id = ANY(%s)",
                                (requests,)).fetchone()["n"] == len(requests),  # type: ignore[index]
             timeout=30, message="pg_net responses to every request")
    expected = {
        a: {"requests": 3, "2xx": 3},
        b: {"requests": 4, "2xx": 3, "4xx": 1},
        c: {"requests": 3, "5xx": 3},
        d: {"requests": 1, "timeout": 1},
        e: {"requests": 1, "transport_error": 1},
        f: {"requests": 1, "pending": 1},
    }

    def observed() -> dict[str, dict[str, int]]:
        frame = monitor.http_outcomes(db, timedelta(minutes=10), jobs=sorted(expected))
        return {r["jobname"]: {k: v for k, v in r.items() if k in ("requests", *monitor.OUTCOMES) and v}
                for r in frame.iter_rows(named=True)}

    assert observed() == expected  # from net._http_response (not harvested yet)
    # a job whose answers were all 2xx has no last error (not the text of some 2xx answer)
    assert monitor.http_outcomes(db, timedelta(minutes=10), jobs=[a]).row(0, named=True)["last_error"] is None
    assert monitor.harvest_responses(db)["copied"] >= len(requests)
    assert observed() == expected  # from cronkit.http_responses
    monitor.refresh_rollups(db)
    assert observed() == expected  # from cronkit.http_rollup
    errors = monitor.http_outcomes(db, timedelta(minutes=10), jobs=[c]).row(0, named=True)
    assert errors["last_error"].startswith("5xx: 503")


def test_http_outcomes_count_each_request_once_across_rollups_partial_hours_and_the_watermark(iso: Conn) -> None:
    name = f"ck-edges-{uuid.uuid4().hex[:8]}"
    at = [BASE + timedelta(minutes=i, seconds=30) for i in range(180)]  # 10:00 to 12:59
    outcome = ["5xx" if i % 7 == 0 else "2xx" for i in range(180)]

    def durable(ids: list[int]) -> None:
        with iso.cursor() as cur:
            cur.executemany(
                "INSERT INTO cronkit.request_ledger (request_id, jobname, url, created_at) VALUES (%s, %s, 'http://x', %s)",
                [(-800000 - i, name, at[i]) for i in ids])
            cur.executemany(
                "INSERT INTO cronkit.http_responses (request_id, jobname, requested_at, responded_at, outcome, status_code) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                [(-800000 - i, name, at[i], at[i], outcome[i], 503 if outcome[i] == "5xx" else 200) for i in ids])

    durable([i for i in range(120) if i not in (70, 71)])
    monitor.refresh_rollups(iso)
    durable([70, 71, *range(120, 180)])  # newer than the watermark: in a whole hour, and in the partial one after

    since, until = BASE + timedelta(minutes=25), BASE + timedelta(hours=2, minutes=40)
    row = monitor.http_outcomes(iso, since, until, jobs=[name]).row(0, named=True)

    inside = [i for i in range(180) if since <= at[i] < until]
    assert row["requests"] == len(inside) == 135
    assert (row["2xx"], row["5xx"]) == (sum(outcome[i] == "2xx" for i in inside), sum(outcome[i] == "5xx" for i in inside))
    assert row["last_error_at"] == at[max(i for i in inside if outcome[i] == "5xx")]
    hours = monitor.http_timeline(iso, since, until, jobs=[name])  # a 2 h 15 min window: 5-minute buckets
    assert hours.get_column("requests").sum() == 135
    assert hours.get_column("bucket").min() == BASE + timedelta(minutes=25)
    assert hours.filter(pl.col("bucket") == BASE + timedelta(minutes=30)).get_column("requests").sum() == 5
    whole = monitor.http_timeline(iso, since, until, jobs=[name], bucket=timedelta(hours=1))
    assert whole.group_by("bucket").agg(pl.col("requests").sum()).sort("bucket").rows() == [
        (BASE, 35), (BASE + timedelta(hours=1), 60), (BASE + timedelta(hours=2), 40)]


def test_requests_without_a_response_past_pg_net_ttl_are_expired(iso: Conn) -> None:
    iso.execute("UPDATE cronkit.monitor_state SET expired_until = '-infinity' WHERE id")
    iso.execute("INSERT INTO cronkit.request_ledger (request_id, jobname, url, created_at) VALUES "
                "(-900001, 'ck-lost', 'http://x', now() - interval '7 hours'), (-900002, 'ck-lost', 'http://x', now())")

    before = monitor.http_outcomes(iso, timedelta(hours=8), jobs=["ck-lost"]).row(0, named=True)
    harvested = monitor.harvest_responses(iso)
    after = monitor.http_outcomes(iso, timedelta(hours=8), jobs=["ck-lost"]).row(0, named=True)

    assert (before["expired"], before["pending"]) == (1, 1)
    assert harvested["expired"] >= 1
    assert (after["expired"], after["pending"], after["requests"]) == (1, 1, 2)
    assert after["last_error"] == "expired: no response within pg_net.ttl"


# -- the [monitoring] manifest table ---------------------------------------------------------------


def manifest(monitoring: dict[str, Any], queues: list[dict[str, Any]] | None = None) -> Any:
    data: dict[str, Any] = {"project": "shop", "monitoring": monitoring}
    if queues:
        data["queues"] = queues
    return parse_manifest(data, Path("cronkit.toml"))


def test_monitoring_defaults_give_harvest_rollup_and_retention_jobs() -> None:
    jobs = maintenance_jobs(manifest({"enabled": True}))

    assert [(j.name, j.schedule, j.kind) for j in jobs] == [
        ("cronkit-harvest:shop", "* * * * *", "sql"),
        ("cronkit-rollups:shop", "* * * * *", "sql"),
        ("cronkit-retention:shop", "0 3 * * *", "sql"),
    ]
    assert jobs[2].sql == "SELECT cronkit.apply_retention('604800 seconds'::interval, '34560000 seconds'::interval)"


def test_monitoring_jobs_follow_the_keys_and_queues_add_a_snapshot_job() -> None:
    jobs = maintenance_jobs(manifest(
        {"harvest": "*/5 * * * *", "rollups": False, "retention": "30 days", "retention_schedule": "15 4 * * 0",
         "queue_snapshots": "*/10 * * * *"},
        queues=[{"table": "public.jobs"}],
    ))

    assert [(j.name, j.schedule) for j in jobs] == [
        ("cronkit-harvest:shop", "*/5 * * * *"), ("cronkit-retention:shop", "15 4 * * 0"),
        ("cronkit-queues:shop", "*/10 * * * *")]
    assert "INSERT INTO cronkit.queue_snapshots" in (jobs[2].sql or "")
    assert maintenance_jobs(manifest({"enabled": False})) == []
    assert maintenance_jobs(manifest({})) == []


def test_declared_queues_get_their_snapshot_job_without_monitoring_unless_turned_off() -> None:
    queue = [{"table": "public.jobs"}]

    assert [(j.name, j.schedule) for j in maintenance_jobs(manifest({}, queues=queue))] == [
        ("cronkit-queues:shop", "*/5 * * * *")]
    turned_off = maintenance_jobs(manifest({"queue_snapshots": False}, queues=queue))
    assert "cronkit-queues:shop" not in [j.name for j in turned_off]
    assert maintenance_jobs(manifest({"enabled": False}, queues=queue)) == []


@pytest.mark.parametrize(
    ("monitoring", "key", "problem"),
    [
        ({"harvst": "* * * * *"}, "monitoring.harvst", "unknown key"),
        ({"harvest": "61 * * * *"}, "monitoring.harvest", ""),
        ({"rollups": 5}, "monitoring.rollups", "expected a schedule string or false"),
        ({"retention": "6 hours"}, "monitoring.retention", "shorter than 1 day"),
        ({"retention": "a week"}, "monitoring.retention", "expected '<number> <unit>'"),
        ({"retention": "30 days", "rollup_retention": "7 days"}, "monitoring.rollup_retention", "shorter than retention"),
        ({"retention_schedule": "@reboot"}, "monitoring.retention_schedule", "does not run regularly"),
        ({"stuck_after": "0 minutes"}, "monitoring.stuck_after", "must be positive"),
    ],
)
def test_it_rejects_invalid_monitoring_keys_naming_the_key(monitoring: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(ManifestError) as info:
        monitoring_settings(manifest(monitoring))
    assert str(info.value).startswith(f"cronkit.toml: {key}: ")
    assert problem in str(info.value)


def test_every_maintenance_statement_runs_as_the_app_role(iso: Conn) -> None:
    iso.execute("CREATE TEMP TABLE ck_jobs (id int, status text, created_at timestamptz DEFAULT now(), updated_at timestamptz)")
    jobs = maintenance_jobs(manifest({"enabled": True, "queue_snapshots": "*/5 * * * *"},
                                     queues=[{"table": "pg_temp.ck_jobs", "updated_column": "updated_at"}]))
    for job in jobs:
        # what the generated wrapper does with a sql job
        iso.execute(sql.SQL("DO {}").format(sql.Literal(f"BEGIN EXECUTE {sql.Literal(job.sql).as_string(iso)}; END")))
    state = monitor.monitor_state(iso)
    assert state.harvested_at is not None and state.rollups_refreshed_at is not None
    assert state.retention_applied_at is not None


# -- "failed N runs in a row": one query, the doctor's CONSECUTIVE_FAILURES and the alerts read it --

MISSING = 'ERROR:  relation "public.import_queue" does not exist\nLINE 1: select count(*) from public.import_queue'


def _runs_then_doctor(conn: Conn, newest_first: list[str]) -> tuple[dict[str, Any], list[Any]]:
    """Runs of one job a minute apart (given newest first), then the shared query's row for it and
    the doctor's CONSECUTIVE_FAILURES findings at its default threshold."""
    from cronkit.doctor import CATALOGUE, DEFAULTS
    from cronkit.doctor.context import Context
    from cronkit.facts import server_facts
    from cronkit.monitor.history import failed_in_a_row

    jobid, now = 880_000 + uuid.uuid4().int % 10_000, datetime.now(UTC)
    oldest_first = list(reversed(newest_first))
    add_runs(conn, jobid, [(status, now - timedelta(minutes=len(oldest_first) - i, seconds=-1),
                            now - timedelta(minutes=len(oldest_first) - i), MISSING if status == "failed" else "1 row")
                           for i, status in enumerate(oldest_first)])
    ctx = Context(conn=conn, facts=server_facts(conn), manifest=None, environment=None, environ=None,
                  now=now, window=timedelta(hours=6), limits=DEFAULTS)
    ctx.preload(jobs=[{"jobid": jobid, "jobname": "import-sync", "active": True}])
    return failed_in_a_row(conn, 0)[jobid], list(CATALOGUE["CONSECUTIVE_FAILURES"].run(ctx))


def test_two_failed_runs_in_a_row_are_a_doctor_finding_at_the_default_threshold(iso: Conn) -> None:
    streak, findings = _runs_then_doctor(iso, ["failed", "failed", "succeeded"])

    assert (streak["failed_in_a_row"], streak["has_success"]) == (2, True)
    [finding] = findings
    assert (finding.code, finding.job, finding.severity) == ("CONSECUTIVE_FAILURES", "import-sync", "critical")
    assert finding.evidence["failed_in_a_row"] == 2 and len(finding.evidence["recent_failures"]) == 2
    assert 'relation "public.import_queue" does not exist' in finding.message
    assert "an object the command uses does not exist" in finding.message


@pytest.mark.parametrize(("newest_first", "streak"), [(["failed", "succeeded", "failed"], 1),
                                                      (["succeeded", "failed", "failed"], 0)],
                         ids=["one failure after a success", "failures the job recovered from"])
def test_a_single_latest_failure_or_a_recovered_job_is_no_finding(iso: Conn, newest_first: list[str],
                                                                  streak: int) -> None:
    found, findings = _runs_then_doctor(iso, newest_first)
    assert found["failed_in_a_row"] == streak and findings == []
