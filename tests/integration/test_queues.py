"""Queue health of declared work tables and pgmq queues, live and as periodic snapshots.

Each test builds its queue in a transaction that is rolled back; pgmq is not packaged for the
sandbox, so a stand-in ``pgmq.metrics_all()`` with pgmq 1.4.4's columns (no
``queue_visible_length``) is created the same way.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from cronkit.manifest import QueueSpec
from cronkit.monitor.queues import queue_health, queue_trend, retry_distribution, snapshot_statement
from tests.integration.test_monitor import iso, monitoring_schema  # noqa: F401 - fixtures

SPEC = QueueSpec(table="pg_temp.ck_sync_queue", pending=("pending",), processing=("processing",), failed=("failed",),
                 done=("completed",), updated_column="updated_at", retry_column="retry_count", max_retries=3)

ITEMS = [
    # status, created minutes ago, updated minutes ago, retries
    ("pending", 50, 50, 0), ("pending", 5, 5, 1), ("pending", 1, 1, 0),
    ("processing", 40, 30, 0),   # stuck: untouched for 30 minutes
    ("processing", 3, 2, 0),
    ("failed", 60, 20, 3), ("failed", 60, 20, 1),   # one exhausted its 3 retries
    ("completed", 30, 10, 0), ("completed", 30, 12, 0), ("completed", 90, 80, 2),  # 2 done in the last 15 min
    ("weird", 10, 10, 0),
]


@pytest.fixture
def queue(iso: Any) -> Any:
    iso.execute("CREATE TEMP TABLE ck_sync_queue (id serial, status text, created_at timestamptz, "
                "updated_at timestamptz, retry_count int)")
    for status, created, updated, retries in ITEMS:
        iso.execute("INSERT INTO ck_sync_queue (status, created_at, updated_at, retry_count) "
                    "VALUES (%s, now() - make_interval(mins => %s), now() - make_interval(mins => %s), %s)",
                    (status, created, updated, retries))
    return iso


def test_health_counts_items_by_status_group_with_age_stuck_exhausted_and_drain(queue: Any) -> None:
    row = queue_health(queue, [SPEC], include_pgmq=False).row(0, named=True)

    assert (row["queue"], row["kind"], row["total"]) == ("pg_temp.ck_sync_queue", "table", 11)
    assert (row["pending"], row["processing"], row["failed"], row["done"], row["other"]) == (3, 2, 2, 3, 1)
    assert row["oldest_pending_age_s"] == pytest.approx(50 * 60)
    assert (row["stuck_processing"], row["exhausted"]) == (1, 1)
    assert json.loads(row["retries"]) == {"0": 5, "1": 2, "3": 1}
    assert (row["done_recent"], row["recent_window_s"]) == (2, 900)
    assert row["drain_per_min"] == pytest.approx(2 / 15)


def test_stuck_after_and_a_table_without_updated_or_retry_columns(queue: Any) -> None:
    bare = QueueSpec(table="pg_temp.ck_sync_queue", processing=("processing",), done=("completed",))
    row = queue_health(queue, [bare], include_pgmq=False, stuck_after=timedelta(minutes=2)).row(0, named=True)
    # without updated_column a processing item's age is its creation time
    assert row["stuck_processing"] == 2
    assert (row["exhausted"], row["retries"], row["done_recent"], row["drain_per_min"]) == (None, None, None, None)


def test_retry_distribution_as_long_rows(queue: Any) -> None:
    frame = retry_distribution(queue_health(queue, [SPEC], include_pgmq=False))
    assert frame.rows() == [("pg_temp.ck_sync_queue", 0, 5), ("pg_temp.ck_sync_queue", 1, 2), ("pg_temp.ck_sync_queue", 3, 1)]


def test_a_snapshot_stores_the_same_numbers_and_the_trend_computes_rates(queue: Any) -> None:
    statement = snapshot_statement([SPEC], "ck-queues-test")
    queue.execute(statement)
    queue.execute("UPDATE cronkit.queue_snapshots SET taken_at = taken_at - interval '10 minutes' WHERE project = 'ck-queues-test'")
    queue.execute("UPDATE ck_sync_queue SET status = 'completed', updated_at = now() WHERE status = 'pending'")
    queue.execute(statement)

    trend = queue_trend(queue, timedelta(hours=1), project="ck-queues-test")
    live = queue_health(queue, [SPEC], include_pgmq=False).drop("drain_per_min")

    assert trend.height == 2
    assert trend.tail(1).select(live.columns).row(0) == live.row(0)
    assert trend.get_column("done").to_list() == [3, 6]
    assert trend.get_column("done_per_min").to_list()[1] == pytest.approx(3 / 10)


PGMQ_144 = """
CREATE SCHEMA pgmq;
CREATE TYPE pgmq.metrics_result AS (queue_name text, queue_length bigint, newest_msg_age_sec int,
                                    oldest_msg_age_sec int, total_messages bigint, scrape_time timestamptz);
CREATE FUNCTION pgmq.metrics_all() RETURNS SETOF pgmq.metrics_result LANGUAGE sql AS $$
    VALUES ('emails'::text, 7::bigint, 2, 95, 120::bigint, now()), ('empty', 0, NULL, NULL, 4, now())
$$;
"""


def test_pgmq_queues_are_read_by_column_name_without_queue_visible_length(iso: Any) -> None:
    iso.execute("RESET ROLE")  # creating schema pgmq needs the database owner; still rolled back
    iso.execute(PGMQ_144)

    rows = queue_health(iso, []).select("queue", "kind", "total", "pending", "oldest_pending_age_s", "sent_total").rows()
    iso.execute(snapshot_statement([], "ck-pgmq-test"))
    stored = iso.execute("SELECT queue, total, pending, sent_total FROM cronkit.queue_snapshots "
                         "WHERE project = 'ck-pgmq-test' ORDER BY queue").fetchall()

    assert rows == [("emails", "pgmq", 7, 7, 95.0, 120), ("empty", "pgmq", 0, 0, None, 4)]
    assert [tuple(r.values()) for r in stored] == [("emails", 7, 7, 120), ("empty", 0, 0, 4)]
