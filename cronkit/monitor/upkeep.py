"""Monitoring upkeep: harvest pg_net responses, refresh or rebuild the rollups, apply retention, and their state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import sql

from cronkit.db import Conn
from cronkit.monitor.window import DEFAULT_TIMEOUT_MS, _require_schema, guarded

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
    with guarded(conn, timeout_ms, action, read_only=False):
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

