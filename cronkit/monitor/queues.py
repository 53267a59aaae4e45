"""Queue health: the work tables a manifest declares under ``[[queues]]``, and pgmq queues.

For each declared table (:class:`cronkit.manifest.QueueSpec`): items by status group (pending,
processing, failed, done, other), age of the oldest pending item, items stuck in a processing
status (not updated for ``stuck_after``), failed items that used up ``max_retries``, the retry
distribution of unfinished items, and the drain rate (done items updated within
``recent_window``, when the table has an ``updated_column``). pgmq queues come from
``pgmq.metrics_all()`` when it exists; its columns are read by name because
``queue_visible_length`` only exists from pgmq 1.5 (Supabase ships 1.4.4 and 1.5.1).

The statistics query of a table is built once (:func:`stats_query`) and used twice: live by
:func:`queue_health`, and inside the ``cronkit-queues:<project>`` maintenance job, whose statement
(:func:`snapshot_statement`) inserts the same numbers into ``cronkit.queue_snapshots`` so
:func:`queue_trend` can chart depth, age and drain rate over time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from psycopg import sql

from cronkit.db import Conn
from cronkit.manifest import QueueSpec
from cronkit.monitor import DEFAULT_TIMEOUT_MS, Window, _frame, _require_schema, guarded


STUCK_AFTER = timedelta(minutes=15)
RECENT_WINDOW = timedelta(minutes=15)
_TS = pl.Datetime("us", "UTC")

#: the columns of a statistics row, in the order of cronkit.queue_snapshots
STAT_COLUMNS = (
    "total", "pending", "processing", "failed", "done", "other", "oldest_pending_age_s",
    "stuck_processing", "exhausted", "retries", "done_recent", "recent_window_s", "sent_total",
)
HEALTH_SCHEMA: dict[str, pl.DataType] = {
    "queue": pl.String(), "kind": pl.String(),
    "total": pl.Int64(), "pending": pl.Int64(), "processing": pl.Int64(), "failed": pl.Int64(),
    "done": pl.Int64(), "other": pl.Int64(), "oldest_pending_age_s": pl.Float64(),
    "stuck_processing": pl.Int64(), "exhausted": pl.Int64(), "retries": pl.String(),
    "done_recent": pl.Int64(), "recent_window_s": pl.Int64(), "sent_total": pl.Int64(),
    "drain_per_min": pl.Float64(),
}
TREND_SCHEMA: dict[str, pl.DataType] = {
    "taken_at": _TS, "project": pl.String(), **{k: v for k, v in HEALTH_SCHEMA.items() if k != "drain_per_min"},
}


def _table(spec: QueueSpec) -> sql.Identifier:
    return sql.Identifier(*spec.table.split("."))


def _in(column: sql.Composable, values: Sequence[str]) -> sql.Composable:
    """``column::text = ANY('{...}'::text[])`` - an enum or text status, compared as text."""
    return sql.SQL("{}::text = ANY({}::text[])").format(column, sql.Literal(list(values)))


def _seconds(delta: timedelta) -> sql.Composable:
    return sql.SQL("{}::interval").format(sql.Literal(f"{int(delta.total_seconds())} seconds"))


def stats_query(spec: QueueSpec, *, stuck_after: timedelta = STUCK_AFTER,
                recent_window: timedelta = RECENT_WINDOW) -> sql.Composed:
    """One row with :data:`STAT_COLUMNS` for a declared queue table (reads the table twice)."""
    status = sql.Identifier(spec.status_column)
    created = sql.Identifier(spec.created_column)
    updated = sql.Identifier(spec.updated_column) if spec.updated_column else None
    retry = sql.Identifier(spec.retry_column) if spec.retry_column else None
    known = [*spec.pending, *spec.processing, *spec.failed, *spec.done]
    pending, processing = _in(status, spec.pending), _in(status, spec.processing)
    failed, done = _in(status, spec.failed), _in(status, spec.done)
    # a processing item is stuck when it has not been touched for stuck_after; without an
    # updated_column the creation time is all there is
    touched = sql.SQL("coalesce({}, {})").format(updated, created) if updated else created
    exhausted = (
        sql.SQL("count(*) FILTER (WHERE {f} AND {r} >= {m})").format(f=failed, r=retry, m=sql.Literal(spec.max_retries))
        if retry is not None and spec.max_retries is not None else sql.SQL("NULL::bigint")
    )
    retries = (
        sql.SQL(
            "(SELECT jsonb_object_agg(coalesce(r::text, 'null'), n) FROM "
            "(SELECT {r} AS r, count(*) AS n FROM {t} WHERE NOT coalesce({d}, false) GROUP BY 1) AS rd)"
        ).format(r=retry, t=_table(spec), d=done)
        if retry is not None else sql.SQL("NULL::jsonb")
    )
    done_recent = (
        sql.SQL("count(*) FILTER (WHERE {d} AND {u} >= now() - {w})").format(d=done, u=updated, w=_seconds(recent_window))
        if updated is not None else sql.SQL("NULL::bigint")
    )
    return sql.SQL("""SELECT count(*) AS total,
       count(*) FILTER (WHERE {pending}) AS pending,
       count(*) FILTER (WHERE {processing}) AS processing,
       count(*) FILTER (WHERE {failed}) AS failed,
       count(*) FILTER (WHERE {done}) AS done,
       count(*) FILTER (WHERE NOT coalesce({known}, false)) AS other,
       extract(epoch FROM now() - min({created}) FILTER (WHERE {pending}))::float8 AS oldest_pending_age_s,
       count(*) FILTER (WHERE {processing} AND {touched} < now() - {stuck}) AS stuck_processing,
       {exhausted} AS exhausted,
       {retries} AS retries,
       {done_recent} AS done_recent,
       {window}::integer AS recent_window_s,
       NULL::bigint AS sent_total
  FROM {table}""").format(
        pending=pending, processing=processing, failed=failed, done=done, known=_in(status, known),
        created=created, touched=touched, stuck=_seconds(stuck_after), exhausted=exhausted,
        retries=retries, done_recent=done_recent,
        window=sql.Literal(int(recent_window.total_seconds()) if updated is not None else None),
        table=_table(spec),
    )


def snapshot_statement(queues: Sequence[QueueSpec], project: str, *, stuck_after: timedelta = STUCK_AFTER,
                       recent_window: timedelta = RECENT_WINDOW) -> sql.Composed:
    """One statement that appends a snapshot of every queue (and of pgmq, when installed) to
    ``cronkit.queue_snapshots``: what the ``cronkit-queues:<project>`` job runs."""
    columns = sql.SQL(", ").join(map(sql.Identifier, STAT_COLUMNS))
    parts = [
        sql.SQL(
            "{name} AS (INSERT INTO cronkit.queue_snapshots (taken_at, project, queue, kind, {columns}) "
            "SELECT now(), {project}, {queue}, 'table', {columns} FROM ({stats}) AS q)"
        ).format(
            name=sql.Identifier(f"q{i}"), columns=columns, project=sql.Literal(project),
            queue=sql.Literal(spec.table),
            stats=stats_query(spec, stuck_after=stuck_after, recent_window=recent_window),
        )
        for i, spec in enumerate(queues)
    ]
    pgmq = sql.SQL("SELECT cronkit.snapshot_pgmq({})").format(sql.Literal(project))
    if not parts:
        return pgmq
    return sql.SQL("WITH {} {}").format(sql.SQL(", ").join(parts), pgmq)


def _has_pgmq(conn: Conn) -> bool:
    row = conn.execute("SELECT to_regprocedure('pgmq.metrics_all()') IS NOT NULL AS ok").fetchone()
    return bool(row and row["ok"])


_PGMQ = sql.SQL("""
SELECT j ->> 'queue_name' AS queue, 'pgmq' AS kind, (j ->> 'queue_length')::bigint AS total,
       coalesce((j ->> 'queue_visible_length')::bigint, (j ->> 'queue_length')::bigint) AS pending,
       (j ->> 'oldest_msg_age_sec')::float8 AS oldest_pending_age_s,
       (j ->> 'total_messages')::bigint AS sent_total
  FROM (SELECT to_jsonb(m) AS j FROM pgmq.metrics_all() AS m) AS x
 ORDER BY 1
""")


def queue_health(
    conn: Conn,
    queues: Sequence[QueueSpec],
    *,
    include_pgmq: bool = True,
    stuck_after: timedelta = STUCK_AFTER,
    recent_window: timedelta = RECENT_WINDOW,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> pl.DataFrame:
    """One row per declared queue table (``kind = 'table'``) and per pgmq queue (``'pgmq'``).

    ``drain_per_min`` is done items updated within ``recent_window`` per minute (tables with an
    ``updated_column``); for trends over time use :func:`queue_trend`. ``retries`` is a JSON
    object ``{"retry count": items}`` over unfinished items.
    """
    rows: list[dict[str, Any]] = []
    with guarded(conn, timeout_ms, "read queue health"):
        for spec in queues:
            row = conn.execute(stats_query(spec, stuck_after=stuck_after, recent_window=recent_window)).fetchone()
            assert row is not None
            row = {"queue": spec.table, "kind": "table", **row}
            if row["retries"] is not None:
                row["retries"] = json.dumps(row["retries"], sort_keys=True)
            if row["done_recent"] is not None:
                row["drain_per_min"] = row["done_recent"] / (recent_window.total_seconds() / 60)
            rows.append(row)
        if include_pgmq and _has_pgmq(conn):
            rows.extend(conn.execute(_PGMQ).fetchall())
    return _frame(rows, HEALTH_SCHEMA)


def retry_distribution(frame: pl.DataFrame) -> pl.DataFrame:
    """The ``retries`` JSON of a health or trend frame as long rows: queue, retries, items."""
    out: list[dict[str, Any]] = []
    for row in frame.select("queue", "retries").iter_rows(named=True):
        for retries, items in json.loads(row["retries"] or "{}").items():
            out.append({"queue": row["queue"], "retries": None if retries == "null" else int(retries), "items": int(items)})
    return pl.DataFrame(out, schema={"queue": pl.String(), "retries": pl.Int64(), "items": pl.Int64()}).sort("queue", "retries")


def queue_trend(
    conn: Conn,
    since: datetime | timedelta,
    until: datetime | None = None,
    *,
    project: str | None = None,
    queues: Sequence[str] | None = None,
    limit: int = 100_000,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> pl.DataFrame:
    """Snapshots in the window, oldest first, with two rates per queue between snapshots:
    ``done_per_min`` (growth of done items) and ``consumed_per_min`` (pgmq: messages sent minus
    queue growth, i.e. read and deleted/archived)."""
    window = Window.of(since, until)
    with guarded(conn, timeout_ms, "read queue snapshots"):
        _require_schema(conn)
        rows = conn.execute(
            """
            SELECT taken_at, project, queue, kind, total, pending, processing, failed, done, other,
                   oldest_pending_age_s, stuck_processing, exhausted, retries::text AS retries,
                   done_recent, recent_window_s, sent_total
              FROM cronkit.queue_snapshots
             WHERE taken_at >= %(since)s AND taken_at < %(until)s
               AND (%(project)s::text IS NULL OR project = %(project)s)
               AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
             ORDER BY taken_at
             LIMIT %(limit)s
            """,
            {"since": window.since, "until": window.until, "project": project,
             "queues": list(queues) if queues is not None else None, "limit": int(limit)},
        ).fetchall()
    frame = _frame(rows, TREND_SCHEMA)
    minutes = pl.col("taken_at").diff().dt.total_seconds() / 60
    key = ["project", "queue"]
    return frame.sort([*key, "taken_at"]).with_columns(
        (pl.col("done").diff() / minutes).over(key).alias("done_per_min"),
        ((pl.col("sent_total").diff() - pl.col("total").diff()) / minutes).over(key).alias("consumed_per_min"),
    ).sort("taken_at", *key)
