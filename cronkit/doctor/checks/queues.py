"""Checks of the queues a manifest declares: backlog, items stuck in processing, retries used up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from cronkit.db import DatabaseError
from cronkit.doctor.catalogue import check
from cronkit.doctor.context import Context, ident, reason
from cronkit.doctor.model import Finding, Severity, Skip
from cronkit.manifest import QueueSpec
from cronkit.monitor.queues import stats_query
from cronkit.text import human_duration


def _queues(ctx: Context) -> list[QueueSpec]:
    if ctx.manifest is None:
        raise Skip("needs a manifest: queues are declared in its [[queues]]")
    return list(ctx.manifest.queues)


def _queue_stats(ctx: Context, queue: QueueSpec, code: str) -> dict[str, Any] | None:
    """cronkit.monitor.queues' statistics row of a declared queue (the same numbers its snapshots keep)."""
    def compute() -> dict[str, Any] | str:
        if not ctx.row("doctor/relation_exists", {"name": queue.table})["ok"]:
            return f"queue table {queue.table} does not exist"
        try:
            with ctx.conn.transaction():
                return ctx.row(stats_query(queue, stuck_after=ctx.limits.queue_stuck_after))
        except DatabaseError as exc:
            return f"queue {queue.table}: {reason(exc, ctx.facts)}"

    stats = ctx.memo(f"queue:{queue.table}", compute)
    if isinstance(stats, str):
        ctx.skip_part(code, stats)
        return None
    return stats


def _queue_jobs(ctx: Context, queue: QueueSpec) -> list[str]:
    """Manifest jobs whose guard or SQL mentions the queue's table: the ones that drain it."""
    table = queue.table.rpartition(".")[2]
    try:
        specs = ctx.specs()
    except Skip:
        return []
    return [s.name for s in specs if table in (s.guard or "") or table in (s.sql or "")]


@check(
    "QUEUE_BACKLOG", Severity.WARNING,
    "A declared queue has many pending items, or items that have waited longer than the threshold (default 1 h).",
    "Check the job that drains it (active? succeeding? HTTP 2xx?), then raise its batch size or frequency.",
)
def _queue_backlog(ctx: Context) -> Iterator[Finding]:
    for queue in _queues(ctx):
        stats = _queue_stats(ctx, queue, "QUEUE_BACKLOG")
        if stats is None or not stats["pending"]:
            continue
        age = stats["oldest_pending_age_s"]
        if stats["pending"] < ctx.limits.queue_backlog_rows and (age is None or age < ctx.limits.queue_backlog_age.total_seconds()):
            continue
        jobs = _queue_jobs(ctx, queue)
        message = (f"Queue {queue.table} has {stats['pending']} pending item(s)"
                   + (f", the oldest waiting {human_duration(timedelta(seconds=age))}" if age is not None else "")
                   + (f"; {stats['done_recent']} done in the last {human_duration(timedelta(seconds=stats['recent_window_s']))}"
                      if stats["done_recent"] is not None and stats["recent_window_s"] else "")
                   + (f"; drained by {', '.join(jobs)}" if jobs else "") + ".")
        yield ctx.found("QUEUE_BACKLOG", job=jobs[0] if len(jobs) == 1 else None, message=message,
                        evidence={"table": queue.table, "pending_states": list(queue.pending),
                                  **{k: stats[k] for k in ("pending", "processing", "failed", "done", "oldest_pending_age_s",
                                                           "done_recent", "recent_window_s")},
                                  "thresholds": {"rows": ctx.limits.queue_backlog_rows,
                                                 "age_s": ctx.limits.queue_backlog_age.total_seconds()},
                                  "jobs": jobs})


@check(
    "QUEUE_STUCK_ITEMS", Severity.WARNING,
    "Items of a declared queue sit in a processing state, untouched for longer than the threshold (a worker died mid-item).",
    "Put them back: UPDATE <table> SET <status> = '<pending>' WHERE <status> = '<processing>' AND <updated> < now() - "
    "interval '30 minutes'; and make the worker reset its claim on failure.",
)
def _queue_stuck(ctx: Context) -> Iterator[Finding]:
    for queue in _queues(ctx):
        if not queue.processing:
            continue
        stats = _queue_stats(ctx, queue, "QUEUE_STUCK_ITEMS")
        if stats is None or not stats["stuck_processing"]:
            continue
        column = queue.updated_column or queue.created_column
        minutes = int(ctx.limits.queue_stuck_after.total_seconds() // 60)
        jobs = _queue_jobs(ctx, queue)
        message = (f"Queue {queue.table} has {stats['stuck_processing']} item(s) in {list(queue.processing)} whose "
                   f"{column} is older than {human_duration(ctx.limits.queue_stuck_after)}: their worker died or gave up "
                   "without releasing them, and nothing picks them up again.")
        pending = queue.pending[0] if queue.pending else "pending"
        status = ident(queue.status_column)
        fix = (f"UPDATE {queue.table} SET {status} = '{pending}' WHERE {status} IN "
               f"({', '.join(repr(s) for s in queue.processing)}) AND {ident(column)} < now() - interval '{minutes} minutes';"
               " Then make the worker release its claim when it fails.")
        yield ctx.found("QUEUE_STUCK_ITEMS", job=jobs[0] if len(jobs) == 1 else None, message=message, fix=fix,
                        evidence={"table": queue.table, "processing_states": list(queue.processing),
                                  "stuck": stats["stuck_processing"], "processing": stats["processing"],
                                  "by_column": column, "stuck_after_s": ctx.limits.queue_stuck_after.total_seconds(),
                                  "jobs": jobs})


@check(
    "RETRIES_EXHAUSTED", Severity.WARNING,
    "Failed items of a declared queue have used up their retries (retry column ≥ max_retries): nothing will try them again.",
    "Look at their error, fix the cause, then re-queue them deliberately (reset the retry counter and status) or "
    "archive them; a warning from the threshold on (default 10 items), info below.",
)
def _retries_exhausted(ctx: Context) -> Iterator[Finding]:
    for queue in _queues(ctx):
        if not queue.retry_column or queue.max_retries is None or not queue.failed:
            continue
        stats = _queue_stats(ctx, queue, "RETRIES_EXHAUSTED")
        if stats is None or not stats["exhausted"]:
            continue
        count = stats["exhausted"]
        jobs = _queue_jobs(ctx, queue)
        message = (f"Queue {queue.table} has {count} failed item(s) with {queue.retry_column} ≥ {queue.max_retries}: "
                   "nothing will retry them.")
        yield ctx.found("RETRIES_EXHAUSTED", job=jobs[0] if len(jobs) == 1 else None, message=message,
                        evidence={"table": queue.table, "failed_states": list(queue.failed), "retry_column": queue.retry_column,
                                  "max_retries": queue.max_retries, "exhausted": count, "failed": stats["failed"],
                                  "retries": stats["retries"], "jobs": jobs, "warning_from": ctx.limits.retries_exhausted},
                        severity=Severity.WARNING if count >= ctx.limits.retries_exhausted else "info")
