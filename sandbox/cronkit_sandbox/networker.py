"""The sandbox's pg_net delivery worker: performs the HTTP requests queued by the pg_net stand-in.

Real pg_net runs a background worker inside PostgreSQL that sends queued requests with libcurl.
The sandbox cannot load pg_net, so its stand-in extension (``standins/pg_net--0.20.0.sql``) only
queues, and this process delivers, the way pg_net 0.20's worker does (``src/worker.c``,
``src/core.c``; reference §2.4-2.5):

* one session named ``pg_net 0.20.0`` (what the real worker reports as application_name), which
  ``net.check_worker_is_up()`` and ``net.wait_until_running()`` look for;
* on demand, like 0.19+: it looks at the queue at start and when woken. ``net.wake()`` — called by
  every request function — NOTIFYs ``cronkit_pg_net_wake``, delivered only when the caller's
  transaction commits; requests INSERTed into the queue directly wait for the next wake;
* per pass, one transaction: delete at most ``pg_net.batch_size`` responses older than
  ``pg_net.ttl``, take at most ``pg_net.batch_size`` requests from the queue, perform them all
  concurrently until each finishes or times out, insert one ``net._http_response`` row each, COMMIT;
  after a pass that did something, pause one second (cut short by a wake) and go again;
* ``net.worker_restart()`` NOTIFYs ``cronkit_pg_net_restart``: the worker reconnects (a new
  session, settings read again), as the real worker restarts.

HTTP follows libcurl as pg_net configures it: headers from ``jsonb_each_text(headers)`` as
``name: value`` lines (a JSON-null value drops the header; an empty value is not sent), libcurl's
``Host``/``Accept: */*``/``Content-Type`` defaults, ``User-Agent: pg_net/0.20.0``, redirects followed,
http/https only, ``timeout_milliseconds`` as the limit on the whole transfer (0 = none). Outcomes use
curl's error texts (``Couldn't connect to server``, ``Timeout of N ms reached. ...``).
Not reproduced: HTTP/2 (responses come over HTTP/1.1, header names as the server sent them) and
connection reuse.

Run: ``CRONKIT_NETWORKER_DSN=<superuser DSN> python -m cronkit_sandbox.networker --log FILE``.
The DSN comes only from the environment (``ps`` shows argv to every user). The log gets one line
per request — method, URL without credentials or query values, status or error, duration — and
never a header or body.

The HTTP side (libcurl's behaviour, records, curl's error texts) is :mod:`cronkit_sandbox.transfer`.
This is a dev tool in pg_net's place, not part of cronkit: it connects through
:func:`cronkit.db.connect` and names psycopg only for types and ``LISTEN``/``notifies()``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cronkit import db
from cronkit.errors import ConfigError, ConnectionFailed, CronkitError
from cronkit_sandbox.transfer import PG_NET_VERSION, QueuedRequest, deliver

if TYPE_CHECKING:
    import psycopg

APPLICATION_NAME = f"pg_net {PG_NET_VERSION}"
WAKE_CHANNEL = "cronkit_pg_net_wake"
RESTART_CHANNEL = "cronkit_pg_net_restart"
DSN_ENV = "CRONKIT_NETWORKER_DSN"
DEFAULT_TTL = "6 hours"
DEFAULT_BATCH_SIZE = 200
#: pg_net's pause between passes while there is work, and our longest wait between stop checks
PAUSE_SECONDS = 1.0
MAX_RECONNECT_BACKOFF_SECONDS = 10.0

log = logging.getLogger("cronkit_sandbox.networker")

# -------------------------------------------------------------------------------------------------
# SQL (the real worker's queries, src/core.c)

INSTALLED = """
select to_regclass('net.http_request_queue') is not null
       and to_regclass('net._http_response') is not null as installed
"""

# Placeholder GUCs set in postgresql.conf (or with ALTER SYSTEM + pg_reload_conf()); a session
# sees a reload at its next statement, so every pass uses the current values.
SETTINGS = """
select coalesce(nullif(current_setting('pg_net.ttl', true), ''), %(ttl)s) as ttl,
       coalesce(nullif(current_setting('pg_net.batch_size', true), '')::int, %(batch_size)s) as batch_size
"""

EXPIRE_RESPONSES = """
with expired as (
    select ctid from net._http_response
    where created < now() - %(ttl)s::interval
    order by created
    limit %(batch_size)s
)
delete from net._http_response r using expired where r.ctid = expired.ctid
"""

CONSUME_REQUESTS = """
with batch as (
    select id from net.http_request_queue order by id limit %(batch_size)s
)
delete from net.http_request_queue q using batch where q.id = batch.id
returning q.id, q.method, q.url, q.timeout_milliseconds, q.body,
    -- a JSON-null value makes a NULL line, which pg_net skips
    array(select key || ': ' || value from jsonb_each_text(q.headers)) as header_lines
"""

INSERT_RESPONSE = """
insert into net._http_response (id, status_code, content_type, headers, content, timed_out, error_msg)
values (%(id)s, %(status_code)s, %(content_type)s, %(headers)s::jsonb, %(content)s, %(timed_out)s, %(error_msg)s)
"""


# -------------------------------------------------------------------------------------------------
# The worker loop


@dataclass(frozen=True)
class Settings:
    ttl: str
    batch_size: int


def read_settings(conn: psycopg.Connection[dict[str, Any]]) -> Settings:
    """``pg_net.ttl`` and ``pg_net.batch_size`` as the session sees them, pg_net's defaults if unset."""
    row = conn.execute(SETTINGS, {"ttl": DEFAULT_TTL, "batch_size": DEFAULT_BATCH_SIZE}).fetchone()
    assert row is not None
    return Settings(ttl=row["ttl"], batch_size=row["batch_size"])


def run_pass(conn: psycopg.Connection[dict[str, Any]]) -> bool:
    """One transaction: purge expired responses, deliver a batch. True if it did anything."""
    with conn.transaction():
        installed = conn.execute(INSTALLED).fetchone()
        if installed is None or not installed["installed"]:
            return False  # pg_net is not created (yet) in this database
        settings = read_settings(conn)
        params = {"ttl": settings.ttl, "batch_size": settings.batch_size}
        expired = conn.execute(EXPIRE_RESPONSES, params).rowcount
        rows = conn.execute(CONSUME_REQUESTS, params).fetchall()
        requests = sorted((QueuedRequest.from_row(row) for row in rows), key=lambda r: r.id)
        deliveries = deliver(requests)
        if deliveries:
            with conn.cursor() as cur:
                cur.executemany(INSERT_RESPONSE, [d.outcome.row(d.request.id) for d in deliveries])
    for delivery in deliveries:
        log.info(delivery.log_line())
    if expired:
        log.info("deleted %d responses older than pg_net.ttl (%s)", expired, settings.ttl)
    return bool(expired or requests)


def _channels(conn: psycopg.Connection[dict[str, Any]], timeout: float) -> set[str]:
    """Channels notified within ``timeout`` seconds (returns at the first notification)."""
    channels = {n.channel for n in conn.notifies(timeout=timeout, stop_after=1)}
    if channels:  # take whatever else is already there
        channels |= {n.channel for n in conn.notifies(timeout=0)}
    return channels


def serve(conn: psycopg.Connection[dict[str, Any]], stop: threading.Event) -> None:
    """Deliver on wakes until ``stop`` is set or a restart is requested."""
    conn.execute(f"LISTEN {WAKE_CHANNEL}")
    conn.execute(f"LISTEN {RESTART_CHANNEL}")
    settings = read_settings(conn)
    log.info(
        "pg_net worker started with a config of: pg_net.ttl=%s, pg_net.batch_size=%d", settings.ttl, settings.batch_size
    )
    # Like pg_net's shared "should wake" flag, which starts set: anything queued while no worker
    # ran (or while this one reconnected) is picked up now.
    woken = True
    while not stop.is_set():
        busy = False
        if woken:
            try:
                with db.translated("deliver queued pg_net requests"):
                    busy = run_pass(conn)
            except ConnectionFailed:
                raise
            except CronkitError as exc:
                if conn.closed:
                    raise
                log.error("%s", exc.message)
        channels = _channels(conn, PAUSE_SECONDS)
        if RESTART_CHANNEL in channels:
            log.info("restart requested (net.worker_restart())")
            return
        woken = busy or WAKE_CHANNEL in channels


def run(dsn: str, stop: threading.Event) -> None:
    """Connect, serve, reconnect with backoff when the database goes away, until ``stop``."""
    backoff = 0.5
    while not stop.is_set():
        try:
            with db.connect(dsn, autocommit=True, application_name=APPLICATION_NAME) as conn:
                backoff = 0.5
                with db.translated("listen for pg_net wakes"):
                    serve(conn, stop)
        except CronkitError as exc:
            log.warning("%s; reconnecting in %.1f s", exc.message, backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, MAX_RECONNECT_BACKOFF_SECONDS)


# -------------------------------------------------------------------------------------------------
# Command line


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cronkit_sandbox.networker",
        description=(
            "The cronkit sandbox's pg_net delivery worker: sends the requests queued by the pg_net "
            f"stand-in after their transaction commits. The database comes from {DSN_ENV} "
            "(a superuser DSN, environment only). Stops on SIGTERM/SIGINT after the batch in flight."
        ),
    )
    parser.add_argument("--log", type=Path, help="append the log here (default: stderr)")
    return parser.parse_args(argv)


def _log_to(path: Path | None) -> None:
    handler: logging.Handler = logging.FileHandler(path, encoding="utf-8") if path else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s networker %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run until SIGTERM/SIGINT; 0 on a clean stop, 2 when the DSN is missing."""
    args = _parse_args(argv)
    dsn = (os.environ if environ is None else environ).get(DSN_ENV)
    if not dsn:
        print(ConfigError(f"{DSN_ENV} is not set: the delivery worker has no database."), file=sys.stderr)
        return 2
    _log_to(args.log)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info("starting (pid %d)", os.getpid())
    run(dsn, stop)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
