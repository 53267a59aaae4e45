"""The doctor's engine: run the catalogue's checks in one read-only transaction, each in its own savepoint."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from cronkit import db, privileges
from cronkit.doctor import checks as _checks  # noqa: F401  (registers every check)
from cronkit.doctor.catalogue import CATALOGUE, order
from cronkit.doctor.context import Context, reason
from cronkit.doctor.model import (
    DEFAULTS,
    Finding,
    Report,
    Severity,
    Thresholds,
    jsonable,
)
from cronkit.facts import server_facts
from cronkit.manifest import Manifest
from cronkit.queries import query


def diagnose(
    conn: db.Conn,
    manifest: Manifest | None = None,
    *,
    environment: str | None = None,
    now: datetime | None = None,
    window: timedelta = timedelta(hours=6),
    environ: Mapping[str, str] | None = None,
    checks: Iterable[str] | None = None,
    stuck_after: timedelta = DEFAULTS.stuck_after,
    consecutive_failures: int = DEFAULTS.consecutive_failures,
    missed_grace: timedelta = DEFAULTS.missed_grace,
    missed_runs: int = DEFAULTS.missed_runs,
    overruns: int = DEFAULTS.overruns,
    history_rows: int = DEFAULTS.history_rows,
    expiry_margin: timedelta = DEFAULTS.expiry_margin,
    queue_backlog_rows: int = DEFAULTS.queue_backlog_rows,
    queue_backlog_age: timedelta = DEFAULTS.queue_backlog_age,
    queue_stuck_after: timedelta = DEFAULTS.queue_stuck_after,
    retries_exhausted: int = DEFAULTS.retries_exhausted,
    statement_timeout: timedelta = DEFAULTS.statement_timeout,
) -> Report:
    """Run the checks of :data:`CATALOGUE` (or only ``checks``) against ``conn``; never changes anything.

    ``manifest`` (optional) adds the declared side: its jobs' secrets, schedules, DST intent and
    queues, resolved for ``environment`` with ``environ`` filling ``{env:...}`` templates (and, when
    the manifest names secret sources, telling a stale stored key from a wrong one). ``now`` and
    ``window`` bound the history read (run details, requests, responses).

    Everything runs in one transaction — ``READ ONLY`` when the doctor opens it — that is rolled
    back; each check in a savepoint under ``statement_timeout``. A check that cannot run lands in
    :attr:`Report.skipped` with the reason ("skipped, because …"), never as a crash.
    """
    limits = Thresholds(
        stuck_after=stuck_after, consecutive_failures=consecutive_failures, missed_grace=missed_grace,
        missed_runs=missed_runs, overruns=overruns, history_rows=history_rows, expiry_margin=expiry_margin,
        queue_backlog_rows=queue_backlog_rows, queue_backlog_age=queue_backlog_age,
        queue_stuck_after=queue_stuck_after, retries_exhausted=retries_exhausted,
        statement_timeout=statement_timeout,
    )
    selected = list(CATALOGUE.values()) if checks is None else [CATALOGUE[code] for code in checks]
    findings: list[Finding] = []
    skipped: list[tuple[str, str]] = []
    checked: list[str] = []
    # Rows as dicts for the doctor and the modules it calls, whatever the caller's connection uses.
    row_factory = conn.row_factory
    db.use_dict_rows(conn)
    try:
        # read_only: a READ ONLY transaction when the doctor opens it (a savepoint inside the
        # caller's); the inner block is always rolled back, its local timeout with it.
        with db.read_only(conn), conn.transaction(force_rollback=True):
            conn.execute(query("doctor/statement_timeout"),
                         {"timeout": f"{int(limits.statement_timeout.total_seconds() * 1000)}ms"})
            facts = server_facts(conn)
            gaps = tuple(gap.line() for gap in privileges.missing(conn).values())
            server_now = conn.execute(query("doctor/server_state")).fetchone()["now"]  # type: ignore[index]
            ctx = Context(conn, facts, manifest, environment, environ, now or server_now, window, limits)
            for entry in selected:
                try:
                    with conn.transaction():
                        found = list(entry.run(ctx))
                except Exception as exc:
                    if conn.closed or conn.broken:
                        raise
                    skipped.append((entry.code, reason(exc, facts)))
                    continue
                checked.append(entry.code)
                findings.extend(found)
                skipped.extend((entry.code, why) for why in ctx.partial_skips.pop(entry.code, []))
    finally:
        conn.row_factory = row_factory  # type: ignore[assignment]
    findings.sort(key=lambda f: (Severity(f.severity).rank, order(f.code), f.job or ""))
    server = {**facts.as_dict(), "now": ctx.now.isoformat()}
    return Report(findings, skipped, checked, jsonable(server), ctx.now, window, gaps, connection=db.mode_of(conn))


def cmd_doctor(args: Any) -> int:
    """``cronkit doctor [MANIFEST] [--env ENV] [--dsn DSN] [--json]``; returns the exit status 0/1/2."""
    from cronkit import config
    from cronkit.manifest import load_manifest

    settings = config.load(dsn=getattr(args, "dsn", None))
    path = getattr(args, "manifest", None) or settings.manifest
    manifest = load_manifest(path) if path else None
    environment = getattr(args, "env", None) or settings.environment
    with db.connect(settings.database_url, environ=settings.values) as conn, db.translated("diagnose the database"):
        report = diagnose(conn, manifest, environment=environment, environ=settings.values)
    print(json.dumps(report.as_dict(), indent=2) if getattr(args, "json", False) else report.render())
    return int(report.exit_code)
