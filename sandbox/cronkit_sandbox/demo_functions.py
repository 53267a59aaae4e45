"""The seed systems' Edge Functions, as sandbox handlers that do the real database work.

Each handler does what its guide says the hosted function does: it claims queue rows with
``FOR UPDATE SKIP LOCKED``, writes log rows, moves schedules. Only the outside world (Instagram,
Bubble, Zoom, WhatsApp/e-mail, TMDB) is simulated: an outside call "fails" for a share of items
set by the function's ``item_failure_rate``. Whether an item fails depends only on the seed, the
queue, the item and its attempt number, so a test knows in advance which items fail.

A handler gets ``(body, db_url, behaviour)`` and returns ``(status, json)``. Handlers stay fast:
every query has a statement timeout far below the ~15 s at which hosted Edge Functions are
dropped (``EarlyDrop``), and nothing sleeps or polls.

Tables: ``examples/<system>/schema.sql``. Connections come from :mod:`cronkit.db`; queries are
composed with ``psycopg.sql``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from psycopg import sql

from cronkit.db import Conn, connect, translated
from cronkit.errors import SandboxError
from cronkit_sandbox.behaviour import Behaviour

STATEMENT_TIMEOUT_MS = 5000
APPLICATION_NAME = "cronkit-edge"
INGEST_SOURCES = ("mixed_daily", "mixed_weekly")
REFRESH_MAX_RETRIES = 3
OPS_RECIPIENT = "ops@example.test"

#: (JSON body or None, app-role DSN or None, behaviour) -> (HTTP status, JSON answer)
DemoHandler = Callable[[Any, str | None, Behaviour], tuple[int, Any]]


class BadRequest(ValueError):
    """The request body is not one the function accepts; answered 400."""


# --------------------------------------------------------------------------------------------
# Shared helpers


@contextlib.contextmanager
def _database(db_url: str | None, action: str) -> Iterator[Conn]:
    """An autocommit app-role connection; driver errors become cronkit errors (answered 500)."""
    if not db_url:
        raise SandboxError(
            "The edge server has no database URL, so this demo function cannot run.",
            remedy="Start the server with CRONKIT_EDGE_DB_URL (or the variable named by --db-url-env) set.",
        )
    with translated(action):
        conn = connect(
            db_url,
            autocommit=True,
            application_name=APPLICATION_NAME,
            options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        )
        with conn:
            yield conn


def item_fails(behaviour: Behaviour, queue: str, item: object, attempt: int) -> bool:
    """Whether the simulated outside call for ``item`` fails on this ``attempt``."""
    rate = behaviour.item_failure_rate
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"{behaviour.seed}:{queue}:{item}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def _split(
    behaviour: Behaviour, queue: str, rows: Sequence[dict[str, Any]], attempt_column: str
) -> tuple[list[int], list[int]]:
    """Ids of claimed rows whose outside call succeeds, and of those whose call fails."""
    ok: list[int] = []
    failed: list[int] = []
    for row in rows:
        (failed if item_fails(behaviour, queue, row["id"], row[attempt_column]) else ok).append(row["id"])
    return ok, failed


def _simulated_error(upstream: str) -> str:
    return f"{upstream} failed (simulated by the sandbox: item_failure_rate)"


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    return body


def _int(body: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{key} must be an integer between {low} and {high}.")
    return value


def _bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise BadRequest(f"{key} must be true or false.")
    return value


def _as_of(body: dict[str, Any]) -> dt.date:
    """The run's date (UTC today); ``{"as_of": "YYYY-MM-DD"}`` lets a test pick the day."""
    value = body.get("as_of")
    if value is None:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise BadRequest("as_of must be a date like 2025-01-31.") from None


# --------------------------------------------------------------------------------------------
# Seed 000: Instagram sync


def process_instagram_imports(body: Any, db_url: str | None, behaviour: Behaviour) -> tuple[int, Any]:
    """Health check without a body (GET) or with ``{"action": "health"}``; else drain pending imports."""
    if body is None or (isinstance(body, dict) and body.get("action") == "health"):
        return 200, {"status": "ok", "queue": "instagram_imports"}
    limit = _int(_object(body), "limit", 5, 1, 50)
    with _database(db_url, "drain instagram_imports") as conn, conn.transaction():
        rows = conn.execute(
            "SELECT id, attempts FROM instagram_imports WHERE status = 'pending'"
            " ORDER BY created_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
            (limit,),
        ).fetchall()
        done, failed = _split(behaviour, "instagram_imports", rows, "attempts")
        conn.execute(
            "UPDATE instagram_imports SET status = 'completed', attempts = attempts + 1,"
            " processed_at = now(), last_error = NULL WHERE id = ANY(%s)",
            (done,),
        )
        conn.execute(
            "UPDATE instagram_imports SET status = 'failed', attempts = attempts + 1,"
            " processed_at = now(), last_error = %s WHERE id = ANY(%s)",
            (_simulated_error("Instagram fetch"), failed),
        )
    return 200, {"queue": "instagram_imports", "processed": len(rows), "completed": len(done), "failed": len(failed)}


# --------------------------------------------------------------------------------------------
# Seed 001: Golioth auto-sync

# Windows are UTC times of day; start > end means the window spans midnight.
_IN_WINDOW = """
    time_window_start IS NULL OR time_window_end IS NULL
    OR CASE WHEN time_window_start <= time_window_end
        THEN (now() AT TIME ZONE 'UTC')::time >= time_window_start
             AND (now() AT TIME ZONE 'UTC')::time < time_window_end
        ELSE (now() AT TIME ZONE 'UTC')::time >= time_window_start
             OR (now() AT TIME ZONE 'UTC')::time < time_window_end
    END"""


def auto_sync_cron(body: Any, db_url: str | None, behaviour: Behaviour) -> tuple[int, Any]:
    """Run the enabled schedules that are due and inside their time window; move their next run."""
    with _database(db_url, "run due auto_sync_schedules") as conn, conn.transaction():
        rows = conn.execute(
            f"SELECT id, integration_id, ({_IN_WINDOW}) AS in_window FROM auto_sync_schedules"
            " WHERE enabled AND next_run_at <= now() FOR UPDATE SKIP LOCKED"
        ).fetchall()
        due = [row["id"] for row in rows if row["in_window"]]
        synced = conn.execute(
            "UPDATE auto_sync_schedules SET last_run_at = now(),"
            " next_run_at = now() + make_interval(mins => frequency_minutes), updated_at = now()"
            " WHERE id = ANY(%s) RETURNING integration_id",
            (due,),
        ).fetchall()
    message = f"Processing {len(synced)} enabled schedules" if synced else "No schedules due to run"
    return 200, {
        "message": message,
        "synced": [str(row["integration_id"]) for row in synced],
        "skipped_outside_window": len(rows) - len(due),
    }


# --------------------------------------------------------------------------------------------
# Seed 002: Split Lease -> Bubble

# Which rows each action claims: the same conditions as the guide's wrappers count.
_BUBBLE_CLAIMS = {
    "process_queue_data_api": sql.SQL("status = 'pending' AND operation IN ('SIGNUP_ATOMIC', 'INSERT', 'UPDATE')"),
    "retry_failed": sql.SQL(
        "status = 'failed' AND retry_count < max_retries AND (next_retry_at IS NULL OR next_retry_at <= now())"
    ),
}


def bubble_sync(body: Any, db_url: str | None, behaviour: Behaviour) -> tuple[int, Any]:
    """``process_queue_data_api`` drains pending items, ``retry_failed`` retries failed ones.

    Up to ``payload.limit`` items, claimed and finished ``payload.batch_size`` at a time, each batch
    in its own transaction. A failed item gets ``retry_count + 1`` and a backoff of 2^n minutes.
    """
    request = _object(body)
    action = request.get("action")
    if action not in _BUBBLE_CLAIMS:
        raise BadRequest(f"Unknown action {action!r}; expected one of {sorted(_BUBBLE_CLAIMS)}.")
    payload = _object(request.get("payload"))
    limit = _int(payload, "limit", 10, 1, 100)
    batch_size = _int(payload, "batch_size", 5, 1, 100)
    claim = sql.SQL(
        "SELECT id, retry_count FROM sync_queue WHERE {} ORDER BY created_at, id LIMIT %s FOR UPDATE SKIP LOCKED"
    ).format(_BUBBLE_CLAIMS[action])
    completed = failed = 0
    with _database(db_url, f"run bubble_sync {action}") as conn:
        while completed + failed < limit:
            with conn.transaction():
                rows = conn.execute(claim, (min(batch_size, limit - completed - failed),)).fetchall()
                if not rows:
                    break
                done, bad = _split(behaviour, "sync_queue", rows, "retry_count")
                conn.execute(
                    "UPDATE sync_queue SET status = 'completed', processed_at = now(), updated_at = now(),"
                    " error_message = NULL, next_retry_at = NULL WHERE id = ANY(%s)",
                    (done,),
                )
                conn.execute(
                    "UPDATE sync_queue SET status = 'failed', retry_count = retry_count + 1, error_message = %s,"
                    " next_retry_at = now() + make_interval(mins => power(2, retry_count)::int), updated_at = now()"
                    " WHERE id = ANY(%s)",
                    (_simulated_error("Bubble Data API"), bad),
                )
            completed += len(done)
            failed += len(bad)
    return 200, {
        "success": True,
        "action": action,
        "processed": completed + failed,
        "completed": completed,
        "failed": failed,
    }


# --------------------------------------------------------------------------------------------
# Seed 003: scheduled workflows (GitHub Actions moved to pg_cron)


def _bill(conn: Conn, kind: str, start: dt.date, end: dt.date) -> int:
    """Invoice each customer's completed bookings of [start, end]; a period already billed is skipped."""
    rows = conn.execute(
        "INSERT INTO invoices (kind, customer_id, period_start, period_end, booking_count, amount_cents)"
        " SELECT %(kind)s, customer_id, %(start)s, %(end)s, count(*), sum(amount_cents) FROM bookings"
        " WHERE status = 'completed' AND (starts_at AT TIME ZONE 'UTC')::date BETWEEN %(start)s AND %(end)s"
        " GROUP BY customer_id"
        " ON CONFLICT (kind, customer_id, period_start) DO NOTHING RETURNING id",
        {"kind": kind, "start": start, "end": end},
    ).fetchall()
    return len(rows)


def generate_t5_invoices(body: Any, db_url: str | None, behaviour: Behaviour) -> tuple[int, Any]:
    """Invoice yesterday's completed bookings."""
    day = _as_of(_object(body)) - dt.timedelta(days=1)
    with _database(db_url, "generate T5 invoices") as conn:
        created = _bill(conn, "t5", day, day)
    return 200, {"success": True, "day": day.isoformat(), "created": created}


def generate_monthly_invoices(body: Any, db_url: str | None, behaviour: Behaviour) -> tuple[int, Any]:
    """Runs daily; bills the previous month only on days 1-3 (the guide's "date window")."""
    as_of = _as_of(_object(body))
    if as_of.day > 3:
        return 200, {"success": True, "skipped": True, "reason": f"{as_of} is outside the monthly window (days 1-3)"}
    end = as_of.replace(day=1) - dt.timedelta(days=1)
    start = end.replace(day=1)
    with _database(db_url, "generate monthly invoices") as conn:
        created = _bill(conn, "monthly", start, end)
    return 200, {"success": True, "period": [start.isoformat(), end.isoformat()], "created": created}


def escalate_overdue_bookings(body: Any, db_url: str | None, behaviour: Behaviour) -> tuple[int, Any]:
    """Unpaid bookings past their due date: escalation level 1 and a reminder to the customer."""
    with _database(db_url, "escalate overdue bookings") as conn:
        rows = conn.execute(
            "WITH overdue AS ("
            "  UPDATE bookings SET escalation_level = 1, escalated_at = now()"
            "  WHERE status = 'confirmed' AND paid_at IS NULL AND payment_due_at < now() AND escalation_level = 0"
            "  RETURNING id, customer_id)"
            " INSERT INTO notifications (channel, recipient, template, payload)"
            " SELECT 'email', c.email, 'booking_overdue', jsonb_build_object('booking_id', o.id)"
            " FROM overdue o JOIN customers c ON c.id = o.customer_id"
            " RETURNING payload ->> 'booking_id' AS booking_id"
        ).fetchall()
    return 200, {"success": True, "escalated": sorted(int(row["booking_id"]) for row in rows)}


def run_escalation_orchestration(body: Any, db_url: str | None, behaviour: Behaviour) -> tuple[int, Any]:
    """Escalated bookings still unpaid after a day go one level up (max 3) and ops is told.

    ``{"force": true}`` skips the one-day wait. The workflow reads ``success`` from the answer.
    """
    force = _bool(_object(body), "force")
    with _database(db_url, "run escalation orchestration") as conn:
        rows = conn.execute(
            "WITH raised AS ("
            "  UPDATE bookings SET escalation_level = escalation_level + 1, escalated_at = now()"
            "  WHERE status = 'confirmed' AND paid_at IS NULL AND escalation_level BETWEEN 1 AND 2"
            "    AND (%(force)s OR escalated_at < now() - interval '24 hours')"
            "  RETURNING id, escalation_level)"
            " INSERT INTO notifications (channel, recipient, template, payload)"
            " SELECT 'email', %(ops)s, 'escalation_level_' || escalation_level, jsonb_build_object('booking_id', id)"
            " FROM raised RETURNING payload ->> 'booking_id' AS booking_id",
            {"force": force, "ops": OPS_RECIPIENT},
        ).fetchall()
    return 200, {"success": True, "force": force, "escalated": sorted(int(row["booking_id"]) for row in rows)}


def schedule_create_zoom(body: Any, db_url: str | None, behaviour: Behaviour) -> tuple[int, Any]:
    """Create meetings for online bookings starting within 24 h (any future one with ``force_invoke``)."""
    force = _bool(_object(body), "force_invoke")
    with _database(db_url, "create Zoom meetings") as conn:
        rows = conn.execute(
            "UPDATE bookings SET zoom_join_url = 'https://zoom.example.test/j/' || (9000000000 + id)"
            " WHERE id IN ("
            "  SELECT id FROM bookings WHERE requires_zoom AND zoom_join_url IS NULL AND status = 'confirmed'"
            "    AND starts_at > now() AND (%s OR starts_at <= now() + interval '24 hours')"
            "  ORDER BY starts_at LIMIT 20 FOR UPDATE SKIP LOCKED)"
            " RETURNING id",
            (force,),
        ).fetchall()
    return 200, {"success": True, "created": sorted(row["id"] for row in rows)}


def notification_worker(body: Any, db_url: str | None, behaviour: Behaviour) -> tuple[int, Any]:
    """``{"limit": 5, "runs": 1}``: claim up to ``limit`` due notifications per run, send them.

    Limits are capped (50 per run, 5 runs) to keep one invocation far from EarlyDrop. A failed
    send goes back to pending with a 2^attempts-minute backoff until ``max_attempts``.
    """
    request = _object(body)
    limit = _int(request, "limit", 5, 1, 50)
    runs = _int(request, "runs", 1, 1, 5)
    sent = failed = 0
    with _database(db_url, "send notifications") as conn:
        for _ in range(runs):
            with conn.transaction():
                rows = conn.execute(
                    "SELECT id, attempts FROM notifications WHERE status = 'pending' AND send_after <= now()"
                    " ORDER BY send_after, id LIMIT %s FOR UPDATE SKIP LOCKED",
                    (limit,),
                ).fetchall()
                ok, bad = _split(behaviour, "notifications", rows, "attempts")
                conn.execute(
                    "UPDATE notifications SET status = 'sent', attempts = attempts + 1, sent_at = now(),"
                    " last_error = NULL WHERE id = ANY(%s)",
                    (ok,),
                )
                conn.execute(
                    "UPDATE notifications SET attempts = attempts + 1, last_error = %s,"
                    " status = CASE WHEN attempts + 1 >= max_attempts THEN 'failed' ELSE 'pending' END,"
                    " send_after = now() + make_interval(mins => power(2, attempts)::int)"
                    " WHERE id = ANY(%s)",
                    (_simulated_error("WhatsApp/e-mail provider"), bad),
                )
            sent += len(ok)
            failed += len(bad)
            if not rows:
                break
    return 200, {"success": True, "sent": sent, "failed": failed}


# --------------------------------------------------------------------------------------------
# Seed 004: Tasty Mangoes


def scheduled_ingest(body: Any, db_url: str | None, behaviour: Behaviour) -> tuple[int, Any]:
    """Log one ingest run of ``source`` (TMDB calls simulated: ``max_movies`` checked)."""
    started = time.monotonic()
    request = _object(body)
    source = request.get("source")
    if source not in INGEST_SOURCES:
        raise BadRequest(f"source must be one of {list(INGEST_SOURCES)}.")
    max_movies = _int(request, "max_movies", 30, 1, 500)
    trigger_type = request.get("trigger_type", "manual")
    if not isinstance(trigger_type, str) or not trigger_type:
        raise BadRequest("trigger_type must be a non-empty string.")
    failed = sum(item_fails(behaviour, "scheduled_ingest", f"{source}:{n}", 0) for n in range(max_movies))
    with _database(db_url, "log a scheduled ingest") as conn:
        row = conn.execute(
            "INSERT INTO scheduled_ingestion_log"
            " (source, movies_checked, movies_ingested, movies_failed, duration_ms, trigger_type)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (source, max_movies, max_movies - failed, failed, round((time.monotonic() - started) * 1000), trigger_type),
        ).fetchone()
    assert row is not None  # INSERT ... RETURNING always returns the row
    return 200, {"success": True, "log_id": row["id"], "movies_ingested": max_movies - failed, "movies_failed": failed}


def daily_refresh(body: Any, db_url: str | None, behaviour: Behaviour) -> tuple[int, Any]:
    """Enqueue up to 100 stale movies (newest releases first) and record the sync time."""
    limit = _int(_object(body), "limit", 100, 1, 1000)
    with _database(db_url, "enqueue stale movies") as conn, conn.transaction():
        rows = conn.execute(
            "INSERT INTO refresh_queue (work_id, priority)"
            " SELECT id, CASE WHEN release_date >= current_date - 30 THEN 3"
            "                 WHEN release_date >= current_date - 180 THEN 2 ELSE 1 END"
            " FROM works w WHERE is_stale(w.release_date, w.last_refreshed_at)"
            "   AND NOT EXISTS (SELECT 1 FROM refresh_queue q"
            "                   WHERE q.work_id = w.id AND q.status IN ('queued', 'processing'))"
            " ORDER BY w.release_date DESC NULLS LAST, w.id LIMIT %s"
            # the partial unique index settles a race with an overlapping run
            " ON CONFLICT DO NOTHING RETURNING work_id",
            (limit,),
        ).fetchall()
        conn.execute(
            "INSERT INTO sync_state (sync_type, last_sync_at) VALUES ('daily_refresh_stale', now())"
            " ON CONFLICT (sync_type) DO UPDATE SET last_sync_at = excluded.last_sync_at"
        )
    return 200, {"success": True, "enqueued": sorted(row["work_id"] for row in rows)}


def refresh_worker(body: Any, db_url: str | None, behaviour: Behaviour) -> tuple[int, Any]:
    """Claim up to 10 queued items, refresh their movies; failures retry 3 times with backoff.

    The claim commits before the work (status ``processing``), as the hosted worker's does, so a
    crash between the two leaves visible ``processing`` rows rather than silently lost work.
    """
    limit = _int(_object(body), "limit", 10, 1, 10)
    with _database(db_url, "process refresh_queue") as conn:
        claimed = conn.execute(
            "UPDATE refresh_queue SET status = 'processing' WHERE id IN ("
            "  SELECT id FROM refresh_queue WHERE status = 'queued'"
            "    AND (next_attempt_at IS NULL OR next_attempt_at <= now())"
            "  ORDER BY priority DESC, queued_at, id LIMIT %s FOR UPDATE SKIP LOCKED)"
            " RETURNING id, work_id, retry_count",
            (limit,),
        ).fetchall()
        done, failed = _split(behaviour, "refresh_queue", claimed, "retry_count")
        with conn.transaction():
            # what ingest-movie does on success: the movie's metadata is fresh now
            conn.execute(
                "UPDATE works SET last_refreshed_at = now()"
                " WHERE id IN (SELECT work_id FROM refresh_queue WHERE id = ANY(%s))",
                (done,),
            )
            conn.execute(
                "UPDATE refresh_queue SET status = 'completed', processed_at = now(), last_error = NULL"
                " WHERE id = ANY(%s)",
                (done,),
            )
            retried = conn.execute(
                "UPDATE refresh_queue SET retry_count = retry_count + 1, last_error = %(error)s,"
                " status = CASE WHEN retry_count + 1 > %(max)s THEN 'failed' ELSE 'queued' END,"
                " processed_at = CASE WHEN retry_count + 1 > %(max)s THEN now() END,"
                " next_attempt_at = now() + make_interval(mins => power(2, retry_count)::int)"
                " WHERE id = ANY(%(ids)s) RETURNING status",
                {"error": _simulated_error("ingest-movie"), "max": REFRESH_MAX_RETRIES, "ids": failed},
            ).fetchall()
    gave_up = sum(row["status"] == "failed" for row in retried)
    return 200, {
        "success": True,
        "claimed": len(claimed),
        "completed": len(done),
        "requeued": len(failed) - gave_up,
        "failed": gave_up,
    }


# --------------------------------------------------------------------------------------------
# Registry


def _answering_bad_requests(handler: DemoHandler) -> DemoHandler:
    @functools.wraps(handler)
    def run(body: Any, db_url: str | None, behaviour: Behaviour) -> tuple[int, Any]:
        try:
            return handler(body, db_url, behaviour)
        except BadRequest as exc:
            return 400, {"error": str(exc)}

    return run


#: Function name (exactly as deployed in the guides) -> handler.
HANDLERS: dict[str, DemoHandler] = {
    name: _answering_bad_requests(handler)
    for name, handler in {
        # 000
        "process-instagram-imports": process_instagram_imports,
        # 001
        "auto-sync-cron": auto_sync_cron,
        # 002
        "bubble_sync": bubble_sync,
        # 003 (the guide's "some-scheduler-endpoint" placeholder is the Zoom scheduler)
        "generate-t5-invoices": generate_t5_invoices,
        "run-escalation-orchestration": run_escalation_orchestration,
        "schedule-create-zoom": schedule_create_zoom,
        "generate-monthly-invoices": generate_monthly_invoices,
        "escalate-overdue-bookings": escalate_overdue_bookings,
        "notification-worker": notification_worker,
        # 004
        "scheduled-ingest": scheduled_ingest,
        "daily-refresh": daily_refresh,
        "refresh-worker": refresh_worker,
    }.items()
}
