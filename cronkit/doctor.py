"""``cronkit doctor``: find what keeps scheduled jobs from doing their work, show the evidence, name the fix.

A job goes pg_cron → generated wrapper → secret → ``net.http_post`` → Edge Function, and every hop
fails silently in its own way: pg_cron says *succeeded* when pg_net merely queued a request, pg_net
drops a header whose value is NULL, a dropped role crash-loops the scheduler, responses vanish
after ``pg_net.ttl``. The doctor runs one small check per failure mode (the catalogue,
:data:`CATALOGUE`, documented in ``docs/doctor.md``) and reports :class:`Finding` records with
rows as evidence and the SQL or action that fixes each.

How it behaves:

* **Read-only.** Everything runs in one transaction that is rolled back (``READ ONLY`` when the
  doctor starts it), each check in its own savepoint under a ``statement_timeout``, so a doctor run
  changes nothing and a slow or failing check cannot take the others down.
* **Degrades per check.** A check that cannot run — a missing privilege, a table that does not
  exist, a manifest that does not resolve — lands in :attr:`Report.skipped` with the reason.
* **Works as Supabase's ``postgres`` role** (no superuser): settings only a superuser may read are
  used when visible and replaced by evidence any role can see (``pg_stat_activity`` names,
  ``pg_extension``, a harmless probe) when not; where that leaves doubt, the message says so.
* **Never shows a secret.** Values appear only as :func:`cronkit.redact.mask` (length and a
  fingerprint); every string in the evidence is scrubbed of anything shaped like a key or JWT.

Missed runs use :mod:`cronkit.monitor.missed`'s model and queue numbers :mod:`cronkit.monitor.queues`' query, so the
doctor agrees with the monitor; everything else reads pg_cron's, pg_net's and cronkit's tables
directly, and keeps working when cronkit's monitoring schema is absent.

Use :func:`diagnose` from Python, ``cronkit doctor [MANIFEST] [--json]`` from a shell
(:func:`cmd_doctor`; exit status 0 = nothing above info, 1 = warnings, 2 = critical).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Any

import psycopg
from psycopg import errors as pgerr
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from cronkit import schedules
from cronkit.errors import CronkitError
from cronkit.facts import ServerFacts, server_facts
from cronkit.manifest import TEMPLATE, JobSpec, Manifest, QueueSpec, SecretsConfig
from cronkit.redact import fingerprint, mask
from cronkit.secrets import GucBackend, SecretBackend, SecretStatus, TableBackend, VaultBackend

Conn = psycopg.Connection[Any]

SEVERITIES = ("critical", "warning", "info")
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
#: job_run_details states of a run that has not finished
RUNNING_STATES = ("starting", "connecting", "sending", "running")
SCHEDULER_APPNAME = "pg_cron scheduler"
#: anything shaped like a key: a JWT (all three parts) or Supabase's new API keys
KEY_PATTERN = re.compile(
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*)?|sb_(?:secret|publishable)_[A-Za-z0-9_-]{8,}"
)
#: a credential echoed as ``name: value`` / ``name=value`` (e.g. in a response body): the value is masked
CREDENTIAL_PATTERN = re.compile(
    r"""(?i)((?:authorization|apikey|api[_-]key|token|secret|password)["']?\s*[:=]\s*["']?(?:bearer\s+)?)"""
    r"""(?!<secret )([^\s"',;}]{6,})"""
)


# ------------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Finding:
    """One problem, with the rows that show it and what to do about it. JSON-ready, secret-free."""

    code: str
    severity: str  # "critical" | "warning" | "info"
    job: str | None
    evidence: Any  # a dict, or a list of rows as dicts
    fix: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "job": self.job,
            "message": self.message,
            "evidence": self.evidence,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class Report:
    """What the doctor found, most severe first, and which checks it could not run."""

    findings: list[Finding]
    skipped: list[tuple[str, str]]
    checked: list[str]
    server: dict[str, Any]
    generated_at: datetime
    window: timedelta

    @property
    def exit_code(self) -> int:
        """0 when nothing is above info, 1 with warnings, 2 with anything critical."""
        severities = {f.severity for f in self.findings}
        if "critical" in severities:
            return 2
        if "warning" in severities:
            return 1
        return 0

    @property
    def summary(self) -> dict[str, int]:
        counts = Counter(f.severity for f in self.findings)
        return {name: counts.get(name, 0) for name in SEVERITIES}

    def codes(self, severity: str | None = None) -> set[str]:
        return {f.code for f in self.findings if severity is None or f.severity == severity}

    def find(self, code: str, job: str | None = None) -> list[Finding]:
        return [f for f in self.findings if f.code == code and (job is None or f.job == job)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "window_seconds": int(self.window.total_seconds()),
            "exit_code": self.exit_code,
            "summary": self.summary,
            "server": self.server,
            "findings": [f.as_dict() for f in self.findings],
            "skipped": [{"check": check, "reason": reason} for check, reason in self.skipped],
            "checked": self.checked,
        }

    def render(self) -> str:
        """The report for a terminal: each finding with its evidence (abridged) and fix."""
        server = self.server
        lines = [
            f"cronkit doctor: database {server.get('database')!r} as {server.get('role')!r} "
            f"(pg_cron {server.get('pg_cron') or '-'}, pg_net {server.get('pg_net') or '-'}, "
            f"Vault {server.get('vault') or '-'}), last {_human(self.window)}",
            "",
        ]
        for finding in self.findings:
            where = f"  [{finding.job}]" if finding.job else ""
            lines.append(f"{finding.severity.upper():<8} {finding.code}{where}")
            lines.append(f"  {finding.message}")
            for evidence_line in _abridge(finding.evidence):
                lines.append(f"    {evidence_line}")
            lines.append(f"  fix: {finding.fix}")
            lines.append("")
        if not self.findings:
            lines += ["no problems found", ""]
        for check, reason in self.skipped:
            lines.append(f"skipped  {check}: {reason}")
        s = self.summary
        lines.append(
            f"{s['critical']} critical, {s['warning']} warning(s), {s['info']} info; "
            f"{len(self.checked)} checks ran, {len(self.skipped)} skipped; exit status {self.exit_code}"
        )
        return "\n".join(lines)


@dataclass(frozen=True)
class Check:
    """A catalogue entry: one failure mode, how severe it is by default, and its fix."""

    code: str
    severity: str
    description: str
    fix: str
    run: Callable[[Context], Iterable[Finding]] = field(repr=False, compare=False)


CATALOGUE: dict[str, Check] = {}


def check(code: str, severity: str, description: str, fix: str) -> Callable[[Callable[[Context], Iterable[Finding]]], Callable[[Context], Iterable[Finding]]]:
    """Register a check function under ``code`` (catalogue order = run order)."""
    assert severity in SEVERITIES, severity

    def register(run: Callable[[Context], Iterable[Finding]]) -> Callable[[Context], Iterable[Finding]]:
        assert code not in CATALOGUE, f"duplicate check {code}"
        CATALOGUE[code] = Check(code, severity, description, fix, run)
        return run

    return register


class Skip(Exception):
    """Raised by a check (or a shared read it needs) that cannot run here; the message says why."""


@dataclass(frozen=True)
class Thresholds:
    """When something counts as a problem. Every field is a keyword of :func:`diagnose`."""

    #: a run in starting/connecting/sending/running for longer than this is stuck
    stuck_after: timedelta = timedelta(minutes=10)
    #: this many failed runs in a row (most recent first) make CONSECUTIVE_FAILURES
    consecutive_failures: int = 3
    #: a scheduled time counts as missed only once this much time has passed after it
    missed_grace: timedelta = timedelta(seconds=90)
    #: this many missed runs of a job make MISSED_RUNS
    missed_runs: int = 1
    #: this many runs longer than the schedule's interval make OVERRUNS
    overruns: int = 1
    #: cron.job_run_details rows (estimate) above which RUN_HISTORY_BLOAT is reported
    history_rows: int = 200_000
    #: responses that pg_net.ttl purges within this margin count as expiring
    expiry_margin: timedelta = timedelta(hours=1)
    #: pending queue items above which QUEUE_BACKLOG is reported
    queue_backlog_rows: int = 100
    #: a pending item older than this makes QUEUE_BACKLOG
    queue_backlog_age: timedelta = timedelta(hours=1)
    #: an item in a processing state untouched for this long is stuck
    queue_stuck_after: timedelta = timedelta(minutes=30)
    #: this many items that used up their retries make RETRIES_EXHAUSTED a warning (fewer: info)
    retries_exhausted: int = 10
    #: per-statement limit for the doctor's own queries
    statement_timeout: timedelta = timedelta(seconds=5)


DEFAULTS = Thresholds()


# ------------------------------------------------------------------------------------------------
# Entry points


def diagnose(
    conn: Conn,
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
    outer_is_ours = conn.info.transaction_status == TransactionStatus.IDLE
    # Rows as dicts for the doctor and the modules it calls, whatever the caller's connection uses.
    row_factory = conn.row_factory
    conn.row_factory = dict_row  # type: ignore[assignment]
    try:
        with conn.transaction(force_rollback=True):
            if outer_is_ours:
                conn.execute("SET TRANSACTION READ ONLY")
            conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(
                sql.Literal(f"{int(limits.statement_timeout.total_seconds() * 1000)}ms")))
            facts = server_facts(conn)
            server_now = conn.execute("select now() as now").fetchone()["now"]  # type: ignore[index]
            ctx = Context(conn, facts, manifest, environment, environ, now or server_now, window, limits)
            for entry in selected:
                try:
                    with conn.transaction():
                        found = list(entry.run(ctx))
                except Exception as exc:  # noqa: BLE001 - a check that cannot run is reported, never fatal
                    if conn.closed or conn.broken:
                        raise
                    skipped.append((entry.code, _reason(exc, facts)))
                    continue
                checked.append(entry.code)
                findings.extend(found)
                skipped.extend((entry.code, reason) for reason in ctx.partial_skips.pop(entry.code, []))
    finally:
        conn.row_factory = row_factory  # type: ignore[assignment]
    findings.sort(key=lambda f: (_RANK[f.severity], list(CATALOGUE).index(f.code) if f.code in CATALOGUE else 999, f.job or ""))
    server = {**facts.as_dict(), "now": ctx.now.isoformat()}
    return Report(findings, skipped, checked, _jsonable(server), ctx.now, window)


def cmd_doctor(args: Any) -> int:
    """``cronkit doctor [MANIFEST] [--env ENV] [--dsn DSN] [--json]``; returns the exit status 0/1/2."""
    from cronkit import config, db
    from cronkit.manifest import load_manifest

    settings = config.load(dsn=getattr(args, "dsn", None))
    path = getattr(args, "manifest", None) or settings.manifest
    manifest = load_manifest(path) if path else None
    environment = getattr(args, "env", None) or settings.environment
    with db.connect(settings.database_url) as conn, db.translated("diagnose the database"):
        report = diagnose(conn, manifest, environment=environment, environ=settings.values)
    if getattr(args, "json", False):
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.render())
    return report.exit_code


# ------------------------------------------------------------------------------------------------
# Shared reads (cached per run; a failure is cached too and skips every check that needs it)


@dataclass(frozen=True)
class SecretNeed:
    backend: tuple[str, ...]  # ("vault",) | ("table", table, key_col, value_col) | ("guc", prefix)
    name: str
    jobs: tuple[str, ...]
    origins: tuple[str, ...]  # "manifest" | "registry" | "command"


class Context:
    """What the checks share: the connection, server facts, the manifest and cached reads."""

    def __init__(self, conn: Conn, facts: ServerFacts, manifest: Manifest | None, environment: str | None,
                 environ: Mapping[str, str] | None, now: datetime, window: timedelta, limits: Thresholds) -> None:
        self.conn = conn
        self.facts = facts
        self.manifest = manifest
        self.environment = environment or (manifest.default_environment if manifest else None)
        self.environ = environ
        self.now = now.astimezone(UTC)
        self.window = window
        self.window_start = self.now - window
        self.limits = limits
        self.partial_skips: dict[str, list[str]] = defaultdict(list)
        self._memo: dict[str, tuple[bool, Any]] = {}

    # -- plumbing ---------------------------------------------------------------------------------

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        if key in self._memo:
            ok, value = self._memo[key]
            if ok:
                return value
            raise value
        try:
            value = compute()
        except Exception as exc:
            self._memo[key] = (False, exc)
            raise
        self._memo[key] = (True, value)
        return value

    def rows(self, query: str | sql.Composable, params: Mapping[str, Any] | tuple[Any, ...] | None = None) -> list[dict[str, Any]]:
        return self.conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def row(self, query: str | sql.Composable, params: Mapping[str, Any] | tuple[Any, ...] | None = None) -> dict[str, Any]:
        found = self.conn.execute(query, params).fetchone()  # type: ignore[arg-type]
        assert found is not None
        return found

    def optional(self, query: str | sql.Composable, params: Any = None) -> list[dict[str, Any]] | None:
        """Rows, or None when the query fails (privilege, missing object); in its own savepoint."""
        try:
            with self.conn.transaction():
                return self.rows(query, params)
        except psycopg.Error:
            return None

    def found(self, code: str, *, job: str | None, message: str, evidence: Any,
              severity: str | None = None, fix: str | None = None) -> Finding:
        entry = CATALOGUE[code]
        return Finding(
            code=code,
            severity=severity or entry.severity,
            job=job,
            evidence=_scrub(_jsonable(evidence)),
            fix=_scrub(fix or entry.fix),
            message=_scrub(message),
        )

    def skip_part(self, code: str, reason: str) -> None:
        self.partial_skips[code].append(reason)

    # -- server -----------------------------------------------------------------------------------

    @property
    def database(self) -> str:
        return self.facts.database

    @property
    def version(self) -> schedules.PgCronVersion | None:
        if not self.facts.pg_cron:
            return None
        try:
            return schedules.parse_pg_cron_version(self.facts.pg_cron)
        except CronkitError:
            return None

    @property
    def cron_tz(self) -> str:
        version = self.version
        if version is not None and version.supports_timezone and self.facts.cron_timezone:
            return self.facts.cron_timezone
        return "GMT"

    def require_cron(self) -> None:
        if not self.facts.pg_cron:
            raise Skip(f"pg_cron is not installed in database {self.database!r} (see PG_CRON_MISSING / WRONG_CRON_DATABASE)")

    def activity(self) -> list[dict[str, Any]]:
        # application_name, datname and pid are visible to every role; backend_type and
        # backend_start only with pg_read_all_stats (NULL otherwise).
        return self.memo("activity", lambda: self.rows(
            "select pid, datname, usename, application_name, backend_type, backend_start from pg_stat_activity"
        ))

    def scheduler_rows(self) -> list[dict[str, Any]]:
        return [a for a in self.activity()
                if a["application_name"] == SCHEDULER_APPNAME or (a["backend_type"] or "") == "pg_cron launcher"]

    def pg_net_workers(self) -> list[dict[str, Any]]:
        return [a for a in self.activity()
                if "pg_net" in (a["backend_type"] or "").lower() or (a["application_name"] or "").startswith("pg_net ")]

    def in_recovery(self) -> bool:
        return bool(self.memo("recovery", lambda: self.row("select pg_is_in_recovery() as r")["r"]))

    def postmaster_start(self) -> datetime:
        return self.memo("postmaster", lambda: self.row("select pg_postmaster_start_time() as t")["t"])

    def preload_list(self) -> list[str] | None:
        if self.facts.preload is None:
            return None
        return [part.strip().strip('"') for part in self.facts.preload.split(",") if part.strip()]

    def cron_preloaded(self) -> tuple[bool | None, dict[str, Any]]:
        """Whether pg_cron's library is in shared_preload_libraries, and the evidence for the answer."""
        def compute() -> tuple[bool | None, dict[str, Any]]:
            libraries = self.preload_list()
            if libraries is not None:
                return "pg_cron" in libraries, {"shared_preload_libraries": self.facts.preload}
            if self.scheduler_rows():
                return True, {"scheduler_session": True}
            if not self.facts.pg_cron:
                return None, {"shared_preload_libraries": "not visible to this role"}
            # Calling any pg_cron C function loads its library; pg_cron refuses to load outside
            # shared_preload_libraries. unschedule(-1) finds no job, and the transaction is read-only.
            try:
                with self.conn.transaction():
                    self.conn.execute("select cron.unschedule(-1::bigint)")
            except psycopg.Error as exc:
                text = (exc.diag.message_primary or str(exc)).strip()
                if "shared_preload_libraries" in text:
                    return False, {"shared_preload_libraries": "not visible to this role", "probe": "select cron.unschedule(-1)", "probe_error": text}
                return True, {"probe": "select cron.unschedule(-1)", "probe_error": text}
            return True, {}
        return self.memo("preloaded", compute)

    # -- pg_cron ----------------------------------------------------------------------------------

    def jobs(self) -> list[dict[str, Any]]:
        self.require_cron()
        return self.memo("jobs", lambda: self.rows(
            "select jobid, jobname, schedule, command, database, username, active from cron.job order by jobid"
        ))

    def job_label(self, jobid: int) -> str:
        for job in self.jobs():
            if job["jobid"] == jobid:
                return job["jobname"] or f"jobid {jobid}"
        return f"jobid {jobid}"

    def relation_exists(self, name: str) -> bool | None:
        """Whether a table exists; None when this role may not even look into its schema."""
        found = self.optional("select to_regclass(%s) is not null as ok", (name,))
        return None if found is None else bool(found[0]["ok"])

    def managed(self) -> dict[str, dict[str, Any]]:
        """cronkit's registry (empty when cronkit never applied here or the role cannot read it)."""
        def compute() -> dict[str, dict[str, Any]]:
            if not self.relation_exists("cronkit.managed_jobs"):
                return {}
            rows = self.optional("select jobname, project, wrapper, spec, created_at, updated_at from cronkit.managed_jobs")
            return {r["jobname"]: r for r in rows or []}
        return self.memo("managed", compute)

    def specs(self) -> list[JobSpec]:
        """The manifest's jobs for the environment (empty without a manifest)."""
        def compute() -> list[JobSpec]:
            if self.manifest is None:
                return []
            try:
                from cronkit.maintenance import maintenance_jobs

                return self.manifest.resolve(self.environment, self.environ or {}) + maintenance_jobs(self.manifest)
            except CronkitError as exc:
                raise Skip(f"the manifest does not resolve for environment {self.environment!r}: {exc.message}") from None
        return self.memo("specs", compute)

    def spec_for(self, jobname: str) -> JobSpec | None:
        try:
            specs = self.specs()
        except Skip:
            return None
        return next((s for s in specs if s.name == jobname), None)

    def runs(self) -> list[dict[str, Any]]:
        """Run details that started in the window, plus runs without a start time (never connected)."""
        self.require_cron()

        def compute() -> list[dict[str, Any]]:
            return self.rows(
                """
                select runid, jobid, job_pid, status, left(return_message, 500) as return_message, start_time, end_time
                  from cron.job_run_details
                 where runid >= %(lo)s and (start_time >= %(since)s or start_time is null)
                 order by runid desc
                 limit 50000
                """,
                {"since": self.window_start, "lo": self.runid_floor(self.window_start)},
            )
        return self.memo("runs", compute)

    def runid_floor(self, at: datetime) -> int:
        """A runid below every run since ``at``: cron.job_run_details has no index but its key, so
        with cronkit's monitoring schema a window becomes a runid range (``cronkit.monitor``);
        0 (a scan) without it or when this role may not use it."""
        from cronkit.monitor import runid_floor

        try:
            with self.conn.transaction():
                return runid_floor(self.conn, at)
        except psycopg.Error:
            return 0

    def run_summary(self) -> dict[int, dict[str, Any]]:
        """Per job: its newest runid, and its last run before / first run inside the window."""
        self.require_cron()
        return self.memo("run_summary", lambda: {r["jobid"]: r for r in self.rows(
            """
            select jobid, max(runid) as last_runid,
                   max(start_time) filter (where start_time < %(since)s) as last_before,
                   min(start_time) filter (where start_time >= %(since)s) as first_in_window
              from cron.job_run_details
             group by jobid
            """,
            {"since": self.window_start},
        )})

    def job_sources(self) -> dict[int, list[tuple[str, str]]]:
        """Per job: (where, text) for its command and the source of every function it calls."""
        def compute() -> dict[int, list[tuple[str, str]]]:
            jobs = self.jobs()
            wanted: set[tuple[str | None, str]] = set()
            per_job: dict[int, set[tuple[str | None, str]]] = {}
            for job in jobs:
                names = {(m.group(1), m.group(2)) for m in _CALL.finditer(job["command"])}
                per_job[job["jobid"]] = names
                wanted |= names
            functions: dict[tuple[str | None, str], list[tuple[str, str]]] = defaultdict(list)
            if wanted:
                rows = self.rows(
                    """
                    select n.nspname, p.proname, p.oid::regprocedure::text as signature, p.prosrc
                      from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                     where p.proname = any(%(names)s)
                       and n.nspname not in ('pg_catalog', 'information_schema', 'cron', 'net', 'vault')
                       and p.prokind in ('f', 'p')
                    """,
                    {"names": sorted({n for _, name in wanted for n in (name, name.lower())})},
                )
                for r in rows:
                    entry = (f"function {r['signature']}", r["prosrc"] or "")
                    functions[(r["nspname"], r["proname"])].append(entry)
                    functions[(None, r["proname"])].append(entry)
            result: dict[int, list[tuple[str, str]]] = {}
            for job in jobs:
                sources = [("cron.job.command", job["command"])]
                seen: set[str] = set()
                for schema, name in per_job[job["jobid"]]:
                    candidates = functions.get((schema, name)) or functions.get(
                        (schema.lower() if schema else None, name.lower()), [])
                    for where, text in candidates:
                        if where not in seen:
                            seen.add(where)
                            sources.append((where, text))
                result[job["jobid"]] = sources
            return result
        return self.memo("job_sources", compute)

    def jobs_matching(self, pattern: re.Pattern[str], *, active_only: bool = True) -> list[dict[str, Any]]:
        sources = self.job_sources()
        return [job for job in self.jobs()
                if (job["active"] or not active_only) and any(pattern.search(text) for _, text in sources[job["jobid"]])]

    # -- HTTP -------------------------------------------------------------------------------------

    def ledger_ready(self) -> bool:
        """Whether cronkit's request ledger is readable; Skip when the role may not read it."""
        exists = self.memo("ledger", lambda: self.relation_exists("cronkit.request_ledger"))
        if exists is None:
            raise Skip(f"role {self.facts.role!r} may not read schema cronkit (request ledger)")
        return exists

    def ledger_readable(self) -> bool:
        try:
            return self.ledger_ready()
        except Skip:
            return False

    def harvest_table(self) -> dict[str, str] | None:
        """Column map of cronkit's durable response copy (``cronkit.http_responses``), if present.

        Keys are the names used here (``key``, ``status_code``, ``content``, ``timed_out``,
        ``error_msg``, ``outcome``), values the table's columns (the body excerpt is ``excerpt``).
        """
        def compute() -> dict[str, str] | None:
            rows = self.rows(
                """
                select column_name from information_schema.columns
                 where table_schema = 'cronkit' and table_name = 'http_responses'
                """
            )
            columns = {r["column_name"] for r in rows}
            key = next((c for c in ("request_id", "id") if c in columns), None)
            if key is None:
                return None
            found = {"key": key}
            for name, candidates in (("status_code", ("status_code",)), ("content", ("excerpt", "content")),
                                     ("timed_out", ("timed_out",)), ("error_msg", ("error_msg",)), ("outcome", ("outcome",))):
                column = next((c for c in candidates if c in columns), None)
                if column:
                    found[name] = column
            return found
        return self.memo("harvest_table", compute)

    def pg_net_ttl(self) -> timedelta:
        return self.memo("ttl", lambda: self.row(
            "select coalesce(nullif(current_setting('pg_net.ttl', true), ''), '6 hours')::interval as ttl")["ttl"])

    def http_outcomes(self) -> list[dict[str, Any]]:
        """Requests cronkit wrappers queued in the window, each with its outcome class."""
        if not self.facts.pg_net:
            raise Skip("pg_net is not installed here")
        if not self.ledger_ready():
            raise Skip("cronkit.request_ledger does not exist (no cronkit-managed HTTP job was applied here)")

        def compute() -> list[dict[str, Any]]:
            harvest = self.harvest_table()
            if harvest:
                join = sql.SQL("left join cronkit.http_responses h on h.{k} = l.request_id").format(k=sql.Identifier(harvest["key"]))

                def col(name: str) -> sql.Composable:
                    if name in harvest:
                        return sql.SQL("coalesce(r.{c}, h.{h})").format(c=sql.Identifier(name), h=sql.Identifier(harvest[name]))
                    return sql.SQL("r.{}").format(sql.Identifier(name))
                answered = sql.SQL("(r.id is not null or h.{k} is not null)").format(k=sql.Identifier(harvest["key"]))
                outcome = sql.SQL("h.{}").format(sql.Identifier(harvest["outcome"])) if "outcome" in harvest else sql.SQL("null::text")
            else:
                join = sql.SQL("")

                def col(name: str) -> sql.Composable:
                    return sql.SQL("r.{}").format(sql.Identifier(name))
                answered = sql.SQL("(r.id is not null)")
                outcome = sql.SQL("null::text")
            query = sql.SQL(
                """
                select l.request_id, l.jobname, l.url, l.created_at,
                       {status} as status_code, left({content}, 300) as content,
                       {timed_out} as timed_out, {error} as error_msg, {answered} as answered,
                       {outcome} as harvested_outcome
                  from cronkit.request_ledger l
                  left join net._http_response r on r.id = l.request_id
                  {join}
                 where l.created_at >= %(since)s
                 order by l.created_at desc
                 limit 20000
                """
            ).format(status=col("status_code"), content=col("content"), timed_out=col("timed_out"),
                     error=col("error_msg"), answered=answered, outcome=outcome, join=join)
            rows = self.rows(query, {"since": self.window_start})
            for r in rows:
                r["class"] = self._classify(r)
            return rows
        return self.memo("http_outcomes", compute)

    def unattributed_responses(self) -> list[dict[str, Any]]:
        """Responses in the window that no cronkit wrapper queued (hand-written jobs, webhooks)."""
        if not self.facts.pg_net:
            raise Skip("pg_net is not installed here")

        def compute() -> list[dict[str, Any]]:
            exclude = (sql.SQL("and not exists (select 1 from cronkit.request_ledger l where l.request_id = r.id)")
                       if self.ledger_readable() else sql.SQL(""))
            rows = self.rows(
                sql.SQL(
                    """
                    select r.id as request_id, null::text as jobname, null::text as url, r.created as created_at,
                           r.status_code, left(r.content, 300) as content, r.timed_out, r.error_msg, true as answered
                      from net._http_response r
                     where r.created >= %(since)s {exclude}
                     order by r.created desc
                     limit 5000
                    """
                ).format(exclude=exclude),
                {"since": self.window_start},
            )
            for r in rows:
                r["class"] = self._classify(r)
            return rows
        return self.memo("unattributed", compute)

    def _classify(self, r: Mapping[str, Any]) -> str:
        if r.get("harvested_outcome") == "expired":
            return "missing"  # cronkit's harvest found no response within pg_net.ttl
        error = r["error_msg"]
        if r["timed_out"] or (error or "").startswith("Timeout"):
            return "timeout"
        if error is not None:
            return "unreachable"
        status = r["status_code"]
        if status is None:
            if r.get("answered"):
                return "unknown"
            spec = self.spec_for(r["jobname"]) if r.get("jobname") else None
            timeout = timedelta(milliseconds=spec.timeout_ms if spec else 5000)
            return "pending" if r["created_at"] > self.now - timeout - timedelta(minutes=5) else "missing"
        if 200 <= status < 400:
            return "ok"
        if status == 401:
            return "unauthorized"
        if status >= 500:
            return "server_error"
        return "client_error"

    # -- secrets ----------------------------------------------------------------------------------

    def secret_needs(self) -> list[SecretNeed]:
        """Every secret a job reads: from the manifest, cronkit's registry and hand-written commands."""
        def compute() -> list[SecretNeed]:
            needs: dict[tuple[tuple[str, ...], str], tuple[set[str], set[str]]] = {}

            def add(backend: tuple[str, ...], name: str, job: str, origin: str) -> None:
                jobs, origins = needs.setdefault((backend, name), (set(), set()))
                jobs.add(job)
                origins.add(origin)

            declared: set[str] = set()
            if self.manifest is not None:
                backend = _backend_key(self.manifest.secrets)
                for spec in self.specs():
                    declared.add(spec.name)
                    for name in spec.secret_names:
                        add(backend, name, spec.name, "manifest")
            if self.facts.pg_cron:
                managed = self.managed()
                sources = self.job_sources()
                for job in self.jobs():
                    label = job["jobname"] or f"jobid {job['jobid']}"
                    if label in declared:
                        continue
                    texts = sources.get(job["jobid"], [])
                    registry = managed.get(job["jobname"] or "")
                    for _where, text in texts:
                        for m in _GENERATED_TABLE_READ.finditer(text):
                            add(("table", f"{m['schema']}.{m['table']}", m["key"], m["value"]), _unquote(m["name"]), label,
                                "registry" if registry else "command")
                        for m in _VAULT_READ.finditer(text):
                            add(("vault",), _unquote(m["name"]), label, "registry" if registry else "command")
                        for m in _GUC_READ.finditer(text):
                            setting = _unquote(m["name"])
                            if setting.startswith("app."):
                                add(("guc", ""), setting, label, "registry" if registry else "command")
            return [SecretNeed(b, n, tuple(sorted(j)), tuple(sorted(o))) for (b, n), (j, o) in sorted(needs.items())]
        return self.memo("secret_needs", compute)

    def secret_statuses(self) -> dict[tuple[tuple[str, ...], str], SecretStatus]:
        """Status (never the value) of every needed secret; a backend that cannot be read is skipped."""
        def compute() -> dict[tuple[tuple[str, ...], str], SecretStatus]:
            by_backend: dict[tuple[str, ...], list[str]] = defaultdict(list)
            for need in self.secret_needs():
                by_backend[need.backend].append(need.name)
            result: dict[tuple[tuple[str, ...], str], SecretStatus] = {}
            for key, names in by_backend.items():
                if key[0] == "vault" and not self.facts.vault:
                    for name in names:
                        result[(key, name)] = SecretStatus.of(name, None)
                    continue
                try:
                    with self.conn.transaction():
                        statuses = _backend_object(key).status(self.conn, names)
                except (psycopg.Error, CronkitError) as exc:
                    reason = _reason(exc, self.facts)
                    for code in ("SECRET_MISSING", "SECRET_PLACEHOLDER"):
                        self.skip_part(code, f"secrets in {_backend_label(key)}: {reason}")
                    continue
                for status in statuses:
                    result[(key, status.name)] = status
            return result
        return self.memo("secret_statuses", compute)

    # -- environment ------------------------------------------------------------------------------

    def container(self) -> dict[str, Any]:
        def compute() -> dict[str, Any]:
            row = self.row(
                """
                select host(inet_server_addr()) as server_addr, host(inet_client_addr()) as client_addr,
                       inet_server_port() as server_port,
                       exists (select 1 from pg_roles where rolname in ('supabase_admin', 'supabase_functions_admin')) as supabase_roles,
                       exists (select 1 from pg_namespace where nspname = 'supabase_functions') as supabase_functions
                """
            )
            return container_hints(
                client_host=self.conn.info.host, client_port=self.conn.info.port,
                server_addr=row["server_addr"], client_addr=row["client_addr"], server_port=row["server_port"],
                supabase=bool(row["supabase_roles"]), supabase_cli=bool(row["supabase_functions"]),
            )
        return self.memo("container", compute)


# Regexes over job commands and function sources.
_CALL = re.compile(r'(?:"?([A-Za-z_][\w$]*)"?\s*\.\s*)?"?([A-Za-z_][\w$]*)"?\s*\(')
_VAULT_READ = re.compile(r"vault\s*\.\s*decrypted_secrets\s+where\s+name\s*=\s*'(?P<name>(?:[^']|'')*)'", re.I)
_GUC_READ = re.compile(r"current_setting\s*\(\s*'(?P<name>(?:[^']|'')*)'", re.I)
# exactly what cronkit.secrets.TableBackend.read_into generates
_GENERATED_TABLE_READ = re.compile(
    r'SELECT "(?P<value>[^"]+)" INTO "_ck_secret_\d+" FROM "(?P<schema>[^"]+)"\."(?P<table>[^"]+)" '
    r"WHERE \"(?P<key>[^\"]+)\" = '(?P<name>(?:[^']|'')*)'"
)
# a purge of the run history: by hand (Supabase's delete-job-run-details) or cronkit's retention job
_RETENTION = re.compile(
    r'\b(?:delete\s+from|truncate(?:\s+table)?)\s+(?:only\s+)?"?cron"?\s*\.\s*"?job_run_details"?'
    r'|\bcronkit\s*\.\s*apply_retention\s*\(', re.I)
# a copy of responses before pg_net.ttl: cronkit's harvest job, or an insert of one's own
_HARVEST = re.compile(
    r'\bcronkit\s*\.\s*harvest_responses\s*\(|\binsert\s+into\s+"?cronkit"?\s*\.\s*"?http_responses"?', re.I)
_HTTP_CALL = re.compile(r"\bnet\s*\.\s*http_(?:post|get|delete)\s*\(", re.I)
_SECONDS = re.compile(r"^\s*\d+\s+seconds?\s*$", re.I)


def _unquote(text: str) -> str:
    return text.replace("''", "'")


def _backend_key(config: SecretsConfig) -> tuple[str, ...]:
    if config.backend == "vault":
        return ("vault",)
    if config.backend == "table":
        table = config.table if "." in config.table else f"public.{config.table}"
        return ("table", table, config.key_column, config.value_column)
    return ("guc", config.guc_prefix)


def _backend_object(key: tuple[str, ...]) -> SecretBackend:
    if key[0] == "vault":
        return VaultBackend()
    if key[0] == "table":
        return TableBackend(SecretsConfig(backend="table", table=key[1], key_column=key[2], value_column=key[3]))
    return GucBackend(SecretsConfig(backend="guc", guc_prefix=key[1]))


def _backend_label(key: tuple[str, ...]) -> str:
    if key[0] == "vault":
        return "Vault"
    if key[0] == "table":
        return f"table {key[1]}"
    return "database settings " + (f"{key[1]}*" if key[1] else "(app.*)")


# ------------------------------------------------------------------------------------------------
# Checks: extensions and the scheduler


@check(
    "PG_CRON_MISSING", "critical",
    "pg_cron is not installed in the database cronkit connects to (and runs nowhere else either).",
    "On Supabase: Dashboard → Integrations → Cron (or Database → Extensions → pg_cron). Elsewhere, as a "
    "superuser in the database named by cron.database_name: CREATE EXTENSION pg_cron;",
)
def _pg_cron_missing(ctx: Context) -> Iterator[Finding]:
    if ctx.facts.pg_cron:
        return
    elsewhere = _cron_databases(ctx) - {ctx.database}
    if elsewhere:
        return  # WRONG_CRON_DATABASE says where it is
    available = ctx.rows(
        "select name, default_version, installed_version from pg_available_extensions where name = 'pg_cron'"
    )
    preloaded, preload_evidence = ctx.cron_preloaded()
    evidence = {
        "database": ctx.database,
        "pg_extension": "no row for pg_cron",
        "available_extension": available[0] if available else None,
        "scheduler_sessions": [_session(a) for a in ctx.scheduler_rows()],
        **preload_evidence,
    }
    if not available:
        message = (f"pg_cron is not installed in {ctx.database!r}, and the server has no pg_cron package "
                   "(pg_available_extensions has no row for it).")
        fix = ("Install the package for this PostgreSQL (Debian: apt-get install postgresql-15-cron), add pg_cron to "
               "shared_preload_libraries, restart, then CREATE EXTENSION pg_cron. On Supabase, enable it in the dashboard.")
        yield ctx.found("PG_CRON_MISSING", job=None, message=message, evidence=evidence, fix=fix)
        return
    message = f"pg_cron is not installed in database {ctx.database!r}: there are no cron.job / cron.job_run_details tables, so no job can exist."
    if preloaded and ctx.scheduler_rows():
        message += " Its scheduler is running and waits for the extension to be created here."
    yield ctx.found("PG_CRON_MISSING", job=None, message=message, evidence=evidence)


@check(
    "PG_CRON_NOT_PRELOADED", "critical",
    "pg_cron's library is not in shared_preload_libraries, so no scheduler runs and no job fires.",
    "Add pg_cron to shared_preload_libraries (ALTER SYSTEM SET shared_preload_libraries = '..., pg_cron' as a "
    "superuser, keeping the existing entries) and restart PostgreSQL. On Supabase it is always preloaded: restart "
    "the project (Settings → General → Restart) or contact support.",
)
def _pg_cron_not_preloaded(ctx: Context) -> Iterator[Finding]:
    preloaded, evidence = ctx.cron_preloaded()
    if preloaded is not False:
        return
    installed = f"pg_cron {ctx.facts.pg_cron} is installed in {ctx.database!r} but" if ctx.facts.pg_cron else "pg_cron"
    message = (f"{installed} its library is not in shared_preload_libraries: the scheduler (launcher) is never "
               "started, so no job runs — and pg_cron's functions refuse to load.")
    yield ctx.found("PG_CRON_NOT_PRELOADED", job=None, message=message,
                    evidence={**evidence, "scheduler_sessions": [_session(a) for a in ctx.scheduler_rows()]})


@check(
    "WRONG_CRON_DATABASE", "critical",
    "pg_cron's scheduler serves another database than the one cronkit connects to (cron.database_name).",
    "Point DATABASE_URL at the database pg_cron runs in (on Supabase always `postgres`) and run jobs for other "
    "databases with cron.schedule_in_database(...); or, self-hosted, set cron.database_name to this database and restart.",
)
def _wrong_cron_database(ctx: Context) -> Iterator[Finding]:
    elsewhere = sorted(_cron_databases(ctx) - {ctx.database})
    if not elsewhere:
        return
    evidence = {
        "database": ctx.database,
        "cron.database_name": ctx.facts.cron_database or "not visible to this role",
        "scheduler_sessions": [_session(a) for a in ctx.scheduler_rows()],
        "pg_cron_installed_here": ctx.facts.pg_cron,
    }
    if ctx.facts.pg_cron:
        message = (f"pg_cron {ctx.facts.pg_cron} is installed in {ctx.database!r}, but its scheduler runs in "
                   f"{', '.join(map(repr, elsewhere))}: jobs defined here never fire (a restore into a renamed "
                   "database does this, supabase#42413).")
    else:
        message = (f"pg_cron runs in database {', '.join(map(repr, elsewhere))}, not in {ctx.database!r} where "
                   "cronkit is connected: jobs cannot be created or seen from here.")
    yield ctx.found("WRONG_CRON_DATABASE", job=None, message=message, evidence=evidence)


def _cron_databases(ctx: Context) -> set[str]:
    found = {a["datname"] for a in ctx.scheduler_rows() if a["datname"]}
    if ctx.facts.cron_database:
        found.add(ctx.facts.cron_database)
    return found


@check(
    "SCHEDULER_DOWN", "critical",
    "No `pg_cron scheduler` session in pg_stat_activity: pg_cron is installed but nothing starts jobs.",
    "Restart the database (Supabase: Settings → General → Restart project, a fast reboot). pg_cron < 1.6.1 does not "
    "restart a terminated scheduler; if it keeps exiting, fix JOB_OWNER_MISSING / RUNID_SEQ_BEHIND first and read "
    "the server log for 'pg_cron scheduler'.",
)
def _scheduler_down(ctx: Context) -> Iterator[Finding]:
    ctx.require_cron()
    if ctx.scheduler_rows():
        return
    preloaded, _ = ctx.cron_preloaded()
    if preloaded is False:
        return  # PG_CRON_NOT_PRELOADED is the cause
    evidence: dict[str, Any] = {
        "pg_stat_activity": f"no session with application_name = '{SCHEDULER_APPNAME}'",
        "pg_cron": ctx.facts.pg_cron,
        "server_started_at": ctx.postmaster_start(),
        "in_recovery": ctx.in_recovery(),
    }
    if ctx.in_recovery():
        message = ("This server is a hot standby: pg_cron runs no jobs until it is promoted. Connect cronkit to the primary.")
        yield ctx.found("SCHEDULER_DOWN", job=None, message=message, evidence=evidence, severity="info",
                        fix="Connect cronkit to the primary server; on a standby no job runs by design.")
        return
    causes = []
    owners = _missing_owner_jobs(ctx)
    if owners:
        causes.append(f"jobs owned by dropped roles ({', '.join(j['label'] for j in owners)}) make the scheduler exit at start (pg_cron#399)")
    behind = _runid_seq_state(ctx)
    if behind and behind["behind"]:
        causes.append("cron.runid_seq is behind max(runid): every run insert fails with a duplicate key")
    evidence["likely_causes"] = causes
    message = "pg_cron is installed but its scheduler is not running: no job starts."
    if causes:
        message += " Likely cause: " + "; ".join(causes) + "."
    elif ctx.version is not None and ctx.version < (1, 6, 1):
        message += f" pg_cron {ctx.version} does not restart a scheduler that was terminated (fixed in 1.6.1)."
    yield ctx.found("SCHEDULER_DOWN", job=None, message=message, evidence=evidence)


@check(
    "PG_NET_MISSING", "critical",
    "Jobs call net.http_post/get/delete, but pg_net is not installed in this database.",
    "On Supabase: Dashboard → Database → Extensions → pg_net (schema extensions). Elsewhere, as a superuser: "
    "CREATE EXTENSION pg_net; (pg_net must also be in shared_preload_libraries).",
)
def _pg_net_missing(ctx: Context) -> Iterator[Finding]:
    if ctx.facts.pg_net:
        return
    needing = _http_jobs(ctx)
    if not needing:
        return
    message = f"pg_net is not installed in {ctx.database!r}, but {len(needing)} job(s) make HTTP calls through it: {', '.join(needing[:10])}."
    yield ctx.found("PG_NET_MISSING", job=needing[0] if len(needing) == 1 else None, message=message,
                    evidence={"database": ctx.database, "http_jobs": needing})


def _http_jobs(ctx: Context) -> list[str]:
    names: list[str] = []
    try:
        names += [s.name for s in ctx.specs() if s.kind == "http"]
    except Skip:
        pass
    if ctx.facts.pg_cron:
        for job in ctx.jobs_matching(_HTTP_CALL, active_only=False):
            label = job["jobname"] or f"jobid {job['jobid']}"
            if label not in names:
                names.append(label)
        for name, row in ctx.managed().items():
            if (row["spec"] or {}).get("kind") == "http" and name not in names:
                names.append(name)
    return names


@check(
    "PG_NET_WORKER_DOWN", "critical",
    "pg_net is installed but its background worker is not running here: queued requests are never sent.",
    "SELECT net.worker_restart(); then check again. If the worker stays away: pg_net must be in "
    "shared_preload_libraries and pg_net.database_name must name this database; restart the database (Supabase: fast reboot).",
)
def _pg_net_worker_down(ctx: Context) -> Iterator[Finding]:
    if not ctx.facts.pg_net:
        return
    workers = ctx.pg_net_workers()
    here = [w for w in workers if w["datname"] in (None, ctx.database)]
    if here:
        return
    queue = ctx.optional("select count(*) as queued from net.http_request_queue")
    evidence: dict[str, Any] = {
        "pg_stat_activity": "no session with backend_type like '%pg_net%' or application_name like 'pg_net %' in this database",
        "pg_net": ctx.facts.pg_net,
        "workers_in_other_databases": [_session(w) for w in workers],
        "queued_requests": queue[0]["queued"] if queue else "not readable",
    }
    if ctx.ledger_readable():
        waiting = ctx.optional(
            """
            select count(*) as unanswered, min(l.created_at) as oldest
              from cronkit.request_ledger l
             where l.created_at >= %(since)s
               and not exists (select 1 from net._http_response r where r.id = l.request_id)
            """,
            {"since": ctx.window_start},
        )
        if waiting:
            evidence["unanswered_requests"] = waiting[0]
    if workers:
        message = (f"pg_net's worker serves database {workers[0]['datname']!r}, not {ctx.database!r}: requests queued "
                   "here are never sent (pg_net.database_name).")
    else:
        message = "pg_net is installed but its background worker is not running: every queued HTTP request waits forever."
    severity = "critical" if _http_jobs(ctx) else "warning"
    yield ctx.found("PG_NET_WORKER_DOWN", job=None, message=message, evidence=evidence, severity=severity)


# ------------------------------------------------------------------------------------------------
# Checks: jobs and their runs


@check(
    "JOB_INACTIVE", "warning",
    "A job is inactive (cron.job.active = false) although it is declared active — or, info, one nobody declared.",
    "Resume it: `cronkit resume NAME` or SELECT cron.alter_job(JOBID, active := true); "
    "(re-running cron.schedule keeps active = false).",
)
def _job_inactive(ctx: Context) -> Iterator[Finding]:
    managed = ctx.managed()
    for job in ctx.jobs():
        if job["active"]:
            continue
        label = job["jobname"] or f"jobid {job['jobid']}"
        spec = ctx.spec_for(label)
        registry = managed.get(job["jobname"] or "")
        declared = spec.active if spec is not None else (registry["spec"] or {}).get("active") if registry else None
        if declared is False:
            continue
        evidence = {"jobid": job["jobid"], "jobname": job["jobname"], "schedule": job["schedule"],
                    "username": job["username"], "active": False,
                    "declared_active": declared, "managed_by": registry["project"] if registry else None}
        fix = f"SELECT cron.alter_job({job['jobid']}, active := true);" + (f"  (or `cronkit resume {label}`)" if registry else "")
        if declared:
            where = "the manifest" if spec is not None else f"cronkit project {registry['project']!r}" if registry else "its declaration"
            message = f"Job {label!r} is paused (active = false) although {where} declares it active: it does not run."
            yield ctx.found("JOB_INACTIVE", job=label, message=message, evidence=evidence, fix=fix)
        else:
            message = f"Job {label!r} is paused (active = false) and does not run; nothing declares whether it should."
            yield ctx.found("JOB_INACTIVE", job=label, message=message, evidence=evidence, severity="info", fix=fix)


def _missing_owner_jobs(ctx: Context) -> list[dict[str, Any]]:
    rows = ctx.memo("owner_missing", lambda: ctx.rows(
        """
        select j.jobid, j.jobname, j.username, j.active, j.schedule
          from cron.job j
         where not exists (select 1 from pg_roles r where r.rolname = j.username)
         order by j.jobid
        """
    ))
    return [{**r, "label": r["jobname"] or f"jobid {r['jobid']}"} for r in rows]


@check(
    "JOB_OWNER_MISSING", "critical",
    "A job belongs to a role that no longer exists: the scheduler exits at start (pg_cron#399), stopping every job.",
    "As a superuser: recreate the role (CREATE ROLE name LOGIN) or delete the job row "
    "(DELETE FROM cron.job WHERE jobid = N; cron.unschedule only finds your own jobs), then restart the scheduler.",
)
def _job_owner_missing(ctx: Context) -> Iterator[Finding]:
    ctx.require_cron()
    for row in _missing_owner_jobs(ctx):
        message = (f"Job {row['label']!r} (jobid {row['jobid']}) belongs to role {row['username']!r}, which does not exist. "
                   "pg_cron's scheduler looks up every job's role — even inactive ones — and exits when one is missing, "
                   "so no job in this cluster runs while this row exists.")
        fix = (f"As a superuser: CREATE ROLE {_ident(row['username'])} LOGIN;  or  DELETE FROM cron.job WHERE jobid = {row['jobid']};  "
               "then restart the database so the scheduler starts again.")
        evidence = {k: row[k] for k in ("jobid", "jobname", "username", "active", "schedule")}
        evidence["role_exists"] = False
        yield ctx.found("JOB_OWNER_MISSING", job=row["label"], message=message, evidence=evidence, fix=fix)


def _runid_seq_state(ctx: Context) -> dict[str, Any] | None:
    def compute() -> dict[str, Any] | None:
        seq = ctx.optional("select last_value, is_called from cron.runid_seq")
        if not seq:
            return None
        top = ctx.row("select max(runid) as max_runid from cron.job_run_details")["max_runid"]
        next_value = seq[0]["last_value"] + (1 if seq[0]["is_called"] else 0)
        return {"last_value": seq[0]["last_value"], "is_called": seq[0]["is_called"], "next_runid": next_value,
                "max_runid": top, "behind": top is not None and next_value <= top}
    return ctx.memo("runid_seq", compute)


@check(
    "RUNID_SEQ_BEHIND", "critical",
    "cron.runid_seq would hand out a runid that already exists in cron.job_run_details (duplicate key on every run).",
    "Move the sequence past the history (as the table owner): SELECT setval('cron.runid_seq', (SELECT max(runid) "
    "FROM cron.job_run_details)); — Supabase's documented alternative is TRUNCATE cron.job_run_details.",
)
def _runid_seq_behind(ctx: Context) -> Iterator[Finding]:
    ctx.require_cron()
    state = _runid_seq_state(ctx)
    if state is None:
        raise Skip("cron.runid_seq is not readable by this role")
    if not state["behind"]:
        return
    message = (f"cron.runid_seq's next value {state['next_runid']} is not above max(runid) {state['max_runid']}: the "
               "scheduler's insert into cron.job_run_details fails with 'duplicate key value violates unique constraint "
               "\"job_run_details_pkey\"' (a crash loop after a restore or a sequence reset; Supabase discussion #42484).")
    yield ctx.found("RUNID_SEQ_BEHIND", job=None, message=message, evidence=state)


def _stuck_runs(ctx: Context) -> list[dict[str, Any]]:
    def compute() -> list[dict[str, Any]]:
        rows = ctx.rows(
            """
            select d.runid, d.jobid, d.job_pid, d.status, d.start_time,
                   exists (select 1 from pg_stat_activity a where a.pid = d.job_pid) as backend_alive
              from cron.job_run_details d
             where d.status in ('starting', 'connecting', 'sending', 'running')
             order by d.runid
             limit 500
            """
        )
        summary = ctx.run_summary()
        stuck = []
        minute_ago = ctx.now - timedelta(minutes=1)
        for r in rows:
            started = r["start_time"]
            r["last_runid"] = summary.get(r["jobid"], {}).get("last_runid") or r["runid"]
            if r["last_runid"] > r["runid"]:
                reason = "orphaned: a later run of the job exists (runs of a job never overlap)"
            elif started is not None and started < ctx.now - ctx.limits.stuck_after:
                reason = ("still running" if r["backend_alive"] else "orphaned: its backend is gone") + \
                    f" after {_human(ctx.now - started)}"
            elif r["job_pid"] and not r["backend_alive"] and (started is None or started < minute_ago):
                reason = "orphaned: its backend is gone"
            else:
                continue
            stuck.append({**r, "reason": reason, "label": ctx.job_label(r["jobid"])})
        return stuck
    return ctx.memo("stuck", compute)


def _orphaned_runids(ctx: Context) -> set[int]:
    """Stuck rows whose run is over (backend gone, or a later run exists): not real durations."""
    return {r["runid"] for r in _stuck_runs(ctx) if not r["backend_alive"] or r["last_runid"] != r["runid"]}


@check(
    "RUNS_STUCK", "warning",
    "Runs left in starting/connecting/sending/running: orphaned rows, or a run that has been going for too long.",
    "Close orphaned rows: UPDATE cron.job_run_details SET status = 'failed', return_message = 'orphaned run closed by "
    "operator', end_time = coalesce(end_time, now()) WHERE runid IN (...); stop a live run with "
    "SELECT pg_cancel_backend(job_pid) and make the job shorter.",
)
def _runs_stuck(ctx: Context) -> Iterator[Finding]:
    ctx.require_cron()
    by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in _stuck_runs(ctx):
        by_job[r["label"]].append(r)
    for label, rows in by_job.items():
        live = [r for r in rows if r["backend_alive"] and r["last_runid"] == r["runid"]]
        runids = ", ".join(str(r["runid"]) for r in rows[:20])
        message = f"Job {label!r} has {len(rows)} run(s) stuck in {sorted({r['status'] for r in rows})}: " + \
            "; ".join(sorted({r["reason"] for r in rows})) + "."
        fix = (f"UPDATE cron.job_run_details SET status = 'failed', return_message = 'orphaned run closed by operator', "
               f"end_time = coalesce(end_time, now()) WHERE runid IN ({runids});")
        if live:
            fix = (f"The run is alive: SELECT pg_cancel_backend({live[0]['job_pid']}); then make the job shorter "
                   "(smaller batches) or schedule it less often. " + fix)
        evidence = [{k: r[k] for k in ("runid", "jobid", "status", "start_time", "job_pid", "backend_alive", "reason")} for r in rows[:20]]
        yield ctx.found("RUNS_STUCK", job=label, message=message, evidence=evidence, fix=fix)


_FAILURE_HINTS = (
    ("cronkit: secret", "a secret the wrapper reads is missing or a placeholder (see SECRET_MISSING / SECRET_PLACEHOLDER)"),
    ("connection failed", "pg_cron could not open a connection for the run: check cron.host, pg_hba.conf/.pgpass and that the job's role can log in"),
    ("job startup timeout", "too many jobs start at the same moment (pg_cron's hard-coded 10 s startup timeout, pg_cron#282): spread the schedules"),
    ('null value in column "url"', "the URL evaluated to NULL — typically a missing Vault secret in url := (select decrypted_secret ...) || '/functions/v1/...'"),
    ("permission denied", "the job's role lacks a privilege the command needs"),
    ("does not exist", "an object the command uses does not exist (dropped function, missing extension or schema)"),
    ("server restarted", "the server restarted while the run was in progress"),
    ("statement timeout", "the run hit the statement_timeout of the job's role"),
    ("job canceled", "the job was unscheduled or deactivated while it ran"),
)


@check(
    "CONSECUTIVE_FAILURES", "critical",
    "A job's most recent runs all failed (status = 'failed' in cron.job_run_details).",
    "Read return_message in the evidence, reproduce with `cronkit run-now NAME` (or run the command by hand as "
    "the job's role), fix the cause, and watch the next run.",
)
def _consecutive_failures(ctx: Context) -> Iterator[Finding]:
    threshold = max(1, ctx.limits.consecutive_failures)
    by_job: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in ctx.runs():  # newest first
        if r["status"] in ("succeeded", "failed"):
            by_job[r["jobid"]].append(r)
    jobs = {j["jobid"]: j for j in ctx.jobs()}
    for jobid, runs in by_job.items():
        if jobid not in jobs:
            continue  # history of an unscheduled job
        streak = 0
        for r in runs:
            if r["status"] != "failed":
                break
            streak += 1
        if streak < threshold:
            continue
        label = jobs[jobid]["jobname"] or f"jobid {jobid}"
        last_ok = next((r for r in runs if r["status"] == "succeeded"), None)
        latest = (runs[0]["return_message"] or "").strip()
        first_line = latest.splitlines()[0] if latest else "(no message)"
        hints = [hint for needle, hint in _FAILURE_HINTS if needle in latest.lower() or needle in latest]
        message = f"Job {label!r} failed its last {streak} run(s)" + (
            "" if last_ok else f" (no successful run in the last {_human(ctx.window)})") + f": {first_line}"
        if hints:
            message += f" — {hints[0]}."
        evidence = {
            "failed_in_a_row": streak,
            "last_success": last_ok["end_time"] if last_ok else None,
            "active": jobs[jobid]["active"],
            "recent_failures": [
                {"runid": r["runid"], "start_time": r["start_time"], "end_time": r["end_time"],
                 "return_message": (r["return_message"] or "").strip()[:300]}
                for r in runs[: min(streak, 5)]
            ],
        }
        yield ctx.found("CONSECUTIVE_FAILURES", job=label, message=message, evidence=evidence)


def _parsed_schedule(ctx: Context, expr: str) -> schedules.Schedule | None:
    try:
        return schedules.parse_schedule(expr, ctx.version)
    except CronkitError:
        return None


def _job_runs(ctx: Context) -> dict[int, list[dict[str, Any]]]:
    """Runs with a start time, per job, oldest first."""
    def compute() -> dict[int, list[dict[str, Any]]]:
        by_job: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for r in ctx.runs():
            if r["start_time"] is not None:
                by_job[r["jobid"]].append(r)
        for runs in by_job.values():
            runs.sort(key=lambda r: r["start_time"])
        return by_job
    return ctx.memo("job_runs", compute)


def _run_end(ctx: Context, run: Mapping[str, Any]) -> datetime | None:
    if run["end_time"] is not None:
        return run["end_time"]
    if run["status"] in RUNNING_STATES:
        return ctx.now
    return None


@check(
    "MISSED_RUNS", "warning",
    "Scheduled times at which an active job did not start (scheduler or server down; pg_cron never replays them).",
    "Find out why nothing ran then (SCHEDULER_DOWN, a restart, a standby promotion, cron.max_running_jobs). "
    "pg_cron does not catch up: run the job once by hand (`cronkit run-now NAME`) if the missed work matters.",
)
def _missed_runs(ctx: Context) -> Iterator[Finding]:
    """Expected versus actual runs with cronkit.monitor.missed's model of pg_cron (queued, late, downtime...)."""
    import polars as pl

    from cronkit.monitor import missed as engine

    ctx.require_cron()
    if ctx.in_recovery():
        raise Skip("this server is a standby: pg_cron runs nothing here")
    managed, summary = ctx.managed(), ctx.run_summary()
    infos: list[Any] = []
    basis: dict[int, str] = {}
    for job in ctx.jobs():
        schedule = _parsed_schedule(ctx, job["schedule"]) if job["active"] else None
        if schedule is None or schedule.kind == "reboot" or schedule.never_runs:
            continue
        registry = managed.get(job["jobname"] or "")
        stats = summary.get(job["jobid"], {})
        # No slot is expected before the job existed. cron.job has no creation time: use when
        # cronkit last (re)scheduled it, else "before the window" if it ran then, else its first run.
        if registry is not None:
            anchor, basis[job["jobid"]] = registry["updated_at"], "cronkit last (re)scheduled it"
        elif stats.get("last_before") is not None:
            anchor, basis[job["jobid"]] = None, "it ran before the window"
        elif stats.get("first_in_window") is not None:
            anchor, basis[job["jobid"]] = stats["first_in_window"] - timedelta(seconds=2), "its first run in the window"
        else:
            continue  # never ran and not cronkit's: no way to tell when it was created
        infos.append(engine.JobInfo(job["jobid"], job["jobname"], job["schedule"], True, anchor))
    if not infos:
        return
    context_start = ctx.window_start - engine.CONTEXT
    rows = ctx.rows(
        """
        select jobid, runid, status, start_time, end_time, left(return_message, 200) as return_message
          from cron.job_run_details
         where runid >= %(lo)s and coalesce(start_time, end_time) >= %(since)s
         order by runid
         limit 200001
        """,
        {"lo": ctx.runid_floor(context_start), "since": context_start},
    )
    if len(rows) > 200_000:
        raise Skip(f"more than 200000 runs since {context_start:%Y-%m-%d %H:%M} UTC: use a shorter window")
    ts = pl.Datetime("us", "UTC")
    runs = pl.DataFrame(
        {k: [r[k] for r in rows] for k in ("jobid", "runid", "status", "start_time", "end_time", "return_message")},
        schema={"jobid": pl.Int64(), "runid": pl.Int64(), "status": pl.String(), "start_time": ts,
                "end_time": ts, "return_message": pl.String()},
    )
    started = ctx.postmaster_start()
    report = engine.analyze(
        infos, runs, ctx.window_start, ctx.now, now=ctx.now, grace=ctx.limits.missed_grace, tz=ctx.cron_tz,
        version=ctx.version, restarts=[started] if context_start <= started < ctx.now else [], infer_downtime=True,
    )
    scheduler_up = bool(ctx.scheduler_rows())
    downtime = list(report.downtime.iter_rows(named=True))
    rows = list(report.summary.iter_rows(named=True))
    # Times missed while no job ran at all are one outage, not a problem of each job: with two or
    # more jobs affected they become one cluster-wide finding; per job remain the other misses.
    affected = {r["jobid"]: r["downtime"] for r in rows if r["downtime"]}
    shared = len(affected) >= 2
    if shared:
        labels = {r["jobid"]: r["jobname"] or f"jobid {r['jobid']}" for r in rows}
        total = sum(affected.values())
        spans = "; ".join(f"{d['start']:%Y-%m-%d %H:%M}–{d['end']:%H:%M} UTC ({d['reason']})" for d in downtime[:3])
        message = (f"{len(affected)} jobs did not start at {total} scheduled time(s) while no job ran at all: {spans}."
                   + ("" if scheduler_up else " The pg_cron scheduler is not running now (SCHEDULER_DOWN)."))
        yield ctx.found("MISSED_RUNS", job=None, message=message, evidence={
            "downtime": downtime[:10], "not_started_by_job": {labels[j]: n for j, n in sorted(affected.items())},
            "scheduler_running": scheduler_up, "server_started_at": started, "timezone": ctx.cron_tz,
        })
    for row in rows:
        kinds = ["missed"] if shared else ["missed", "downtime"]
        not_started = sum(row[k] or 0 for k in kinds)
        if not_started < max(1, ctx.limits.missed_runs):
            continue
        label = row["jobname"] or f"jobid {row['jobid']}"
        slots = report.slots.filter((pl.col("jobid") == row["jobid"]) & pl.col("kind").is_in(kinds))
        times = slots.get_column("slot").to_list()
        causes = []
        if not scheduler_up:
            causes.append("the pg_cron scheduler is not running now (SCHEDULER_DOWN)")
        # pg_cron < 1.6.3 records no time for a run that failed before it started (pg_cron#246)
        unstarted = [r for r in ctx.runs() if r["jobid"] == row["jobid"] and r["start_time"] is None and r["end_time"] is None
                     and r["status"] == "failed"]
        if unstarted:
            reason = (unstarted[0]["return_message"] or "").strip().splitlines()[0] if unstarted[0]["return_message"] else "?"
            causes.append(f"{len(unstarted)} run(s) failed before they could start ({reason!r}; see CONSECUTIVE_FAILURES)")
        windows = [d for d in downtime if any(d["start"] <= t <= d["end"] for t in times)]
        causes += [f"{d['reason']} between {d['start']:%H:%M} and {d['end']:%H:%M} UTC" for d in windows]
        message = (f"Job {label!r} ({row['schedule']!r}) did not start at {not_started} of {row['expected']} scheduled "
                   f"time(s) in the last {_human(ctx.window)}")
        if times:
            message += f" (first {times[0]:%Y-%m-%d %H:%M}, last {times[-1]:%H:%M} UTC)"
        if row["silent_since"] is not None:
            message += f"; it has not started since {row['silent_since']:%Y-%m-%d %H:%M} UTC"
        message += "." + (f" Likely cause: {'; '.join(causes)}." if causes else "")
        evidence = {
            "schedule": row["schedule"], "timezone": ctx.cron_tz, "since_basis": basis[row["jobid"]],
            "expected": row["expected"], "not_started": not_started,
            **{kind: row[kind] for kind in engine.SLOT_KINDS},
            "not_started_times": times[:10], "silent_since": row["silent_since"],
            "runs_failed_before_starting": len(unstarted),
            "downtime": windows[:5], "scheduler_running": scheduler_up, "server_started_at": started,
        }
        yield ctx.found("MISSED_RUNS", job=label, message=message, evidence=evidence)


@check(
    "OVERRUNS", "warning",
    "Runs that last longer than the time to the job's next scheduled start: later runs queue up behind them.",
    "Make each run shorter (smaller batches; let the Edge Function answer early), schedule it less often, or skip "
    "when busy: start the command with `SELECT pg_try_advisory_lock(...)` and return when it is false.",
)
def _overruns(ctx: Context) -> Iterator[Finding]:
    ctx.require_cron()
    stuck = _orphaned_runids(ctx)
    runs_by_job = _job_runs(ctx)
    for job in ctx.jobs():
        schedule = _parsed_schedule(ctx, job["schedule"])
        if schedule is None or schedule.kind == "reboot" or schedule.never_runs:
            continue
        label = job["jobname"] or f"jobid {job['jobid']}"
        over: list[dict[str, Any]] = []
        runs = [r for r in runs_by_job.get(job["jobid"], []) if r["runid"] not in stuck]
        for r in runs:
            end = _run_end(ctx, r)
            if end is None:
                continue
            try:
                if schedule.interval_seconds is not None:
                    next_slot = r["start_time"] + timedelta(seconds=schedule.interval_seconds)
                    passed = int((end - r["start_time"]).total_seconds() // schedule.interval_seconds)
                else:
                    upcoming = schedule.next_runs(r["start_time"], 1, ctx.cron_tz)
                    if not upcoming:
                        continue
                    next_slot = upcoming[0]
                    passed = sum(1 for _ in schedule.expected_slots(next_slot, end, ctx.cron_tz)) if end > next_slot else 0
            except CronkitError:
                break
            if end > next_slot + timedelta(seconds=1):
                over.append({"runid": r["runid"], "status": r["status"], "start_time": r["start_time"],
                             "end_time": r["end_time"], "still_running": r["end_time"] is None,
                             "duration_s": round((end - r["start_time"]).total_seconds(), 1),
                             "next_scheduled": next_slot, "scheduled_times_passed": passed})
        if len(over) < max(1, ctx.limits.overruns):
            continue
        longest = max(over, key=lambda o: o["duration_s"])
        running = [o for o in over if o["still_running"]]
        message = (f"Job {label!r} ({job['schedule']!r}) ran past its next scheduled start {len(over)} time(s) in the last "
                   f"{_human(ctx.window)} (longest {longest['duration_s']:.0f} s)"
                   + (", and a run is still going" if running else "")
                   + ". pg_cron never runs a job twice at once: the next runs wait and then start back to back (pg_cron#300).")
        evidence = {"schedule": job["schedule"], "runs_in_window": len(runs), "overruns": len(over),
                    "longest": longest, "recent": sorted(over, key=lambda o: o["start_time"], reverse=True)[:5]}
        yield ctx.found("OVERRUNS", job=label, message=message, evidence=evidence)


# ------------------------------------------------------------------------------------------------
# Checks: HTTP outcomes (cronkit.request_ledger joined to net._http_response)


@dataclass(frozen=True)
class _HttpGroup:
    job: str | None  # None: responses no cronkit wrapper queued
    failing: list[dict[str, Any]]  # of the class asked for, newest first
    counts: dict[str, int]  # every outcome class of the job in the window
    recovered_at: datetime | None  # the newest answer is a success after the last failure


def _http_groups(ctx: Context, klass: str) -> Iterator[_HttpGroup]:
    """The requests of one outcome class, per job (and one group for unattributed responses)."""
    groups: list[list[dict[str, Any]]] = []
    attributed: list[dict[str, Any]] = []
    try:
        attributed = ctx.http_outcomes()
    except Skip as exc:
        ctx.skip_part(_CLASS_CODES[klass], f"requests of cronkit jobs: {exc}")
    groups.append(attributed)
    groups.append(ctx.unattributed_responses())
    for rows in groups:
        per_job: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            per_job[r["jobname"]].append(r)
        for job, job_rows in per_job.items():  # newest first
            failing = [r for r in job_rows if r["class"] == klass]
            if not failing:
                continue
            newest = next((r for r in job_rows if r["class"] not in ("pending", "missing", "unknown")), None)
            recovered = newest["created_at"] if newest is not None and newest["class"] == "ok" else None
            yield _HttpGroup(job, failing, dict(Counter(r["class"] for r in job_rows)), recovered)


def _http_found(ctx: Context, code: str, group: _HttpGroup, message: str, evidence: dict[str, Any],
                fix: str | None = None) -> Finding:
    """A finding for an HTTP group: critical when nothing got through, info once it recovered."""
    default = CATALOGUE[code].severity
    if group.recovered_at is not None:
        severity = "info"
        message += f" It has recovered since: the newest request ({group.recovered_at:%Y-%m-%d %H:%M} UTC) succeeded."
        evidence["recovered_at"] = group.recovered_at
    elif group.job is None:
        severity = "warning" if default == "critical" else default
    elif (default == "warning" and group.counts.get("ok", 0) == 0
          and len(group.failing) >= max(1, ctx.limits.consecutive_failures)):
        severity = "critical"  # nothing got through
    else:
        severity = default
    return ctx.found(code, job=group.job, message=message, evidence=evidence, fix=fix, severity=severity)


def _http_evidence(failing: list[dict[str, Any]], counts: Mapping[str, int]) -> dict[str, Any]:
    return {
        "failed": len(failing),
        "outcomes": dict(counts),
        "first_at": failing[-1]["created_at"],
        "last_at": failing[0]["created_at"],
        "urls": sorted({r["url"] for r in failing if r["url"]})[:5],
        "samples": [
            {"request_id": r["request_id"], "at": r["created_at"], "status_code": r["status_code"],
             "body": (r["content"] or "")[:200] or None, "error_msg": r["error_msg"]}
            for r in failing[:3]
        ],
    }


def _who(job: str | None, count: int) -> str:
    if job is None:
        return f"{count} request(s) not queued by a cronkit wrapper (hand-written cron jobs, database webhooks)"
    return f"Job {job!r}: {count} request(s)"


_CLASS_CODES = {"unauthorized": "HTTP_UNAUTHORIZED", "server_error": "HTTP_SERVER_ERROR", "timeout": "HTTP_TIMEOUT",
                "unreachable": "HTTP_UNREACHABLE", "client_error": "HTTP_CLIENT_ERROR"}


@check(
    "HTTP_UNAUTHORIZED", "critical",
    "The endpoint answered 401: no Authorization header arrived (a NULL value that pg_net dropped) or the key is stale/wrong.",
    "'Missing authorization header': make sure the header value can never be NULL and that the job sends "
    "Authorization: Bearer <JWT>. 'Invalid JWT': store the current key (`cronkit secrets set NAME`; "
    "locally from `supabase status -o env`); sb_secret_ keys are not JWTs — send them as apikey and deploy the "
    "function with verify_jwt = false.",
)
def _http_unauthorized(ctx: Context) -> Iterator[Finding]:
    for group in _http_groups(ctx, "unauthorized"):
        job, failing = group.job, group.failing
        causes = Counter(_auth_cause(r["content"]) for r in failing)
        evidence = _http_evidence(failing, group.counts)
        evidence["causes"] = dict(causes)
        auth = _auth_secrets(ctx, job) if job else []
        if auth:
            evidence["auth_secrets"] = auth
        main = causes.most_common(1)[0][0]
        head = f"{_who(job, len(failing))} answered 401"
        if main == "missing_authorization_header":
            message = (f"{head} 'Missing authorization header': the request reached the function's JWT gate without an "
                       "Authorization header. pg_net silently drops a header whose value is NULL (e.g. 'Bearer ' || a "
                       "missing secret), and a job that sends only apikey never has one.")
            fix = ("Send Authorization: Bearer <key> with a value that cannot be NULL (cronkit wrappers refuse NULL "
                   "secrets; in hand-written jobs check the Vault lookup returns a row), or deploy the function with "
                   "verify_jwt = false and check the key in the function.")
        elif main == "invalid_jwt":
            stale = [a for a in auth if a.get("matches_source") is False]
            message = (f"{head} 'Invalid JWT': a header arrived but the gateway rejected the key — it is stale (rotated, "
                       "or a local CLI key that changed) or not a JWT at all (an sb_secret_/sb_publishable_ key sent as Bearer).")
            if stale:
                message += " " + "; ".join(
                    f"secret {a['secret']!r} ({a['fingerprint']}) differs from {a['source']} ({a['source_fingerprint']}): it is stale"
                    for a in stale) + "."
            fix = ("Store the current key: `cronkit secrets set NAME` (or re-run `cronkit apply`, which re-syncs secrets "
                   "with [secrets.sources]); for sb_secret_ keys send apikey and set verify_jwt = false.")
        else:
            message = (f"{head} 401 from the function's own check (the body names neither a missing header nor an "
                       "invalid JWT): the shared secret it expects (CRON_SECRET, a scheduler token) does not match.")
            fix = "Store the value the function expects (its secret in the Edge Function's env and the secret cronkit sends must match)."
        yield _http_found(ctx, "HTTP_UNAUTHORIZED", group, message, evidence, fix)


def _auth_cause(body: str | None) -> str:
    text = (body or "").lower()
    if "missing authorization header" in text:
        return "missing_authorization_header"
    if "invalid jwt" in text or "jwt" in text:
        return "invalid_jwt"
    return "rejected_by_function"


def _auth_secrets(ctx: Context, job: str) -> list[dict[str, Any]]:
    """Status of the secrets a job sends in auth headers, compared with the manifest's sources when possible."""
    spec = ctx.spec_for(job)
    headers: Mapping[str, str] = {}
    if spec is not None:
        headers = spec.headers
    else:
        registry = ctx.managed().get(job)
        if registry is not None:
            headers = (registry["spec"] or {}).get("headers") or {}
    names = []
    for header, template in headers.items():
        if header.lower() in ("authorization", "apikey") or any(p in header.lower() for p in ("token", "secret", "key")):
            names += [name for kind, name in TEMPLATE.findall(template) if kind == "secret"]
    if not names:
        return []
    statuses = {name: status for (backend, name), status in _safe_statuses(ctx).items()}
    result = []
    for name in dict.fromkeys(names):
        status = statuses.get(name)
        entry: dict[str, Any] = {"secret": name, "state": status.state if status else "unknown",
                                 "length": status.length if status else None,
                                 "fingerprint": status.fingerprint if status else None,
                                 "updated_at": status.updated_at if status else None}
        if ctx.manifest is not None and ctx.environ is not None:
            source = ctx.manifest.secrets.source_value(name, ctx.environ)
            if source is not None and source[1]:
                entry["source"] = source[0]
                entry["source_fingerprint"] = fingerprint(source[1])
                entry["matches_source"] = status is not None and status.fingerprint == entry["source_fingerprint"]
        result.append(entry)
    return result


def _safe_statuses(ctx: Context) -> dict[tuple[tuple[str, ...], str], SecretStatus]:
    try:
        return ctx.secret_statuses()
    except (Skip, psycopg.Error, CronkitError):
        return {}


@check(
    "HTTP_SERVER_ERROR", "warning",
    "The endpoint answered 5xx (function crashed, 546 WORKER_LIMIT, 503 BOOT_ERROR, 504 idle timeout).",
    "Read the function's logs (Dashboard → Edge Functions → Logs, or `supabase functions serve` output) for the "
    "failing invocations; 546 means CPU/memory limits (smaller batches), 504 the 150 s idle timeout (answer early).",
)
def _http_server_error(ctx: Context) -> Iterator[Finding]:
    meanings = {500: "function error (WORKER_ERROR)", 502: "bad gateway", 503: "BOOT_ERROR: the function failed to start",
                504: "IDLE_TIMEOUT: no answer within 150 s", 546: "WORKER_LIMIT: CPU or memory limit hit"}
    for group in _http_groups(ctx, "server_error"):
        job, failing = group.job, group.failing
        statuses = Counter(r["status_code"] for r in failing)
        evidence = _http_evidence(failing, group.counts)
        evidence["status_codes"] = {str(k): v for k, v in statuses.items()}
        named = "; ".join(f"{code}: {meanings[code]}" for code in statuses if code in meanings)
        message = f"{_who(job, len(failing))} answered {', '.join(str(s) for s in sorted(statuses))}" + (f" ({named})" if named else "") + \
            ". pg_cron still records these runs as succeeded: pg_net only queued the request."
        yield _http_found(ctx, "HTTP_SERVER_ERROR", group, message, evidence)


@check(
    "HTTP_CLIENT_ERROR", "warning",
    "The endpoint answered another 4xx (404 function not found / not deployed, 400 bad request, 405 method).",
    "404 'Function not found': deploy the function or fix the URL (…/functions/v1/<slug>); 400: the body the job "
    "sends is not what the function expects; 405: use POST or GET.",
)
def _http_client_error(ctx: Context) -> Iterator[Finding]:
    for group in _http_groups(ctx, "client_error"):
        job, failing = group.job, group.failing
        statuses = Counter(r["status_code"] for r in failing)
        evidence = _http_evidence(failing, group.counts)
        evidence["status_codes"] = {str(k): v for k, v in statuses.items()}
        message = f"{_who(job, len(failing))} answered {', '.join(str(s) for s in sorted(statuses))}"
        if 404 in statuses:
            message += " — 404 usually means the function is not deployed or the URL's slug is wrong"
        yield _http_found(ctx, "HTTP_CLIENT_ERROR", group, message + ".", evidence)


@check(
    "HTTP_TIMEOUT", "warning",
    "pg_net gave up waiting (timed_out, or error_msg 'Timeout of N ms reached'): the function is slower than timeout_milliseconds.",
    "Raise the job's timeout_ms (pg_net's default is 5000 ms) or make the function answer first and work in "
    "EdgeRuntime.waitUntil(...); a slow request also delays the rest of pg_net's batch.",
)
def _http_timeout(ctx: Context) -> Iterator[Finding]:
    for group in _http_groups(ctx, "timeout"):
        job, failing = group.job, group.failing
        evidence = _http_evidence(failing, group.counts)
        spec = ctx.spec_for(job) if job else None
        registry = ctx.managed().get(job or "") if job else None
        timeout = spec.timeout_ms if spec else (registry["spec"] or {}).get("timeout_ms") if registry else None
        evidence["timeout_ms"] = timeout
        message = f"{_who(job, len(failing))} timed out" + (f" after {timeout} ms" if timeout else "") + \
            f": {(failing[0]['error_msg'] or 'timed_out = true').split('. ')[0]}."
        yield _http_found(ctx, "HTTP_TIMEOUT", group, message, evidence)


@check(
    "HTTP_UNREACHABLE", "warning",
    "pg_net could not reach the endpoint (DNS, connection refused, TLS) — including a localhost URL called from a database in a container.",
    "Use a URL the database server itself can reach. With `supabase start` the database runs in a container, where "
    "localhost is the container: use http://api.supabase.internal:8000 (or http://kong:8000, "
    "http://host.docker.internal:54321).",
)
def _http_unreachable(ctx: Context) -> Iterator[Finding]:
    for group in _http_groups(ctx, "unreachable"):
        job, failing = group.job, group.failing
        evidence = _http_evidence(failing, group.counts)
        errors = Counter((r["error_msg"] or "").split(".")[0] for r in failing)
        evidence["errors"] = dict(errors)
        local = sorted({u for u in evidence["urls"] if _is_local_url(u)})
        message = f"{_who(job, len(failing))} failed before any HTTP answer: {errors.most_common(1)[0][0]}."
        fix = None
        if local:
            hints = ctx.container()
            evidence["localhost_urls"] = local
            evidence["database_in_container"] = hints
            verdict = hints["verdict"]
            if verdict == "likely":
                message += (f" The URL points at localhost, and the database looks like it runs in a container "
                            f"({'; '.join(hints['hints'])}): there localhost is the container itself, not your machine.")
            elif verdict == "hosted":
                message += " The URL points at localhost, but the database is hosted: localhost there is Supabase's server."
                fix = "Use the project's URL: https://<ref>.supabase.co/functions/v1/<slug> (store it in Vault per environment)."
            elif verdict == "unlikely":
                message += (" The URL points at localhost and the database runs on this machine (no container seen), "
                            "so nothing listens at that port — is the function server running?")
                fix = "Start the function server (or fix the port), then check again."
            else:
                message += (" The URL points at localhost; if the database runs in a container (supabase start), "
                            "localhost is the container itself — cronkit could not tell from here.")
        yield _http_found(ctx, "HTTP_UNREACHABLE", group, message, evidence, fix)


def _is_local_url(url: str) -> bool:
    match = re.match(r"^[a-z]+://(?:[^@/]*@)?(\[[^\]]+\]|[^:/?#]+)", url or "", re.I)
    if not match:
        return False
    host = match.group(1).strip("[]").lower()
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def container_hints(*, client_host: str | None, client_port: int | None, server_addr: str | None,
                    client_addr: str | None, server_port: int | None, supabase: bool, supabase_cli: bool) -> dict[str, Any]:
    """Does the database run in a container (where ``localhost`` is not the developer's machine)?

    Evidence any role can read: the address the client dialled versus the address the server saw
    itself answering on (``inet_server_addr()``). A loopback dial answered on a non-loopback address
    went through port forwarding — Docker's. Verdict: ``likely`` | ``unlikely`` | ``hosted`` | ``unknown``.
    """
    hints: list[str] = []
    dialled_local = _is_loopback_host(client_host)
    if client_host and re.search(r"\.supabase\.(co|com|net|in)$|pooler\.supabase", client_host):
        return {"verdict": "hosted", "hints": [f"connected to {client_host}"]}
    if supabase_cli:
        hints.append("schema supabase_functions exists (created by the Supabase CLI's local stack)")
    if supabase:
        hints.append("Supabase roles exist (supabase_admin)")
    if dialled_local and client_port == 54322:
        hints.append("connected to port 54322, the Supabase CLI's database port")
    if server_addr is None:
        verdict = "unlikely" if client_host is None or (client_host or "").startswith("/") else "unknown"
        hints.append("connected over a Unix socket" if verdict == "unlikely" else "server address not visible")
        return {"verdict": verdict, "hints": hints}
    if dialled_local and not _is_loopback_host(server_addr):
        hints.append(f"dialled {client_host}:{client_port} but the server answered on {server_addr}:{server_port} (port forwarding)")
        return {"verdict": "likely", "hints": hints}
    if dialled_local and _is_loopback_host(server_addr):
        hints.append(f"dialled {client_host} and the server answered on {server_addr}: same network namespace")
        return {"verdict": "unlikely", "hints": hints}
    if client_addr and _in_docker_range(client_addr):
        hints.append(f"the server sees this client as {client_addr} (a Docker bridge address)")
        return {"verdict": "likely", "hints": hints}
    if supabase_cli and dialled_local:
        return {"verdict": "likely", "hints": hints}
    return {"verdict": "unknown", "hints": hints or [f"connected to {client_host}"]}


def _is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host in ("localhost",):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _in_docker_range(addr: str) -> bool:
    try:
        ip = ip_address(addr)
    except ValueError:
        return False
    return isinstance(ip, IPv4Address) and ip in ip_network("172.16.0.0/12")


@check(
    "RESPONSES_EXPIRING", "warning",
    "Responses of cronkit's requests are (or are about to be) purged by pg_net.ttl before anything kept a copy.",
    "Keep outcomes beyond pg_net.ttl: enable cronkit's monitoring (`[monitoring]` with `enabled = true` in the "
    "manifest, then `cronkit apply`): its cronkit-harvest job copies net._http_response rows into "
    "cronkit.http_responses every minute. Keep that job active and succeeding.",
)
def _responses_expiring(ctx: Context) -> Iterator[Finding]:
    if not ctx.facts.pg_net:
        raise Skip("pg_net is not installed here")
    if not ctx.ledger_ready():
        raise Skip("cronkit.request_ledger does not exist (no cronkit-managed HTTP job was applied here)")
    ttl = ctx.pg_net_ttl()
    harvest = ctx.harvest_table()
    harvest_jobs = [j["jobname"] or f"jobid {j['jobid']}" for j in ctx.jobs_matching(_HARVEST)] if ctx.facts.pg_cron else []
    if harvest:
        join = sql.SQL("left join cronkit.http_responses h on h.{k} = l.request_id").format(k=sql.Identifier(harvest["key"]))
        kept = sql.SQL("h.{} is not null").format(sql.Identifier(harvest["key"]))
        # the harvest records a request that got no response within pg_net.ttl as 'expired'
        expired = (sql.SQL("h.{} = 'expired'").format(sql.Identifier(harvest["outcome"]))
                   if "outcome" in harvest else sql.SQL("false"))
    else:
        join, kept, expired = sql.SQL(""), sql.SQL("false"), sql.SQL("false")
    row = ctx.row(
        sql.SQL(
            """
            select count(*) filter (where (r.id is null and l.created_at < %(expired)s and not {kept}) or {expired_row}) as lost,
                   count(*) filter (where r.id is not null and r.created < %(expiring)s and not {kept}) as expiring,
                   min(l.created_at) filter (where (r.id is null and l.created_at < %(expired)s and not {kept}) or {expired_row}) as oldest_lost,
                   min(r.created) filter (where r.id is not null and r.created < %(expiring)s and not {kept}) as oldest_expiring
              from cronkit.request_ledger l
              left join net._http_response r on r.id = l.request_id
              {join}
             where l.created_at >= %(since)s
            """
        ).format(kept=kept, expired_row=expired, join=join),
        {"expired": ctx.now - ttl, "expiring": ctx.now - ttl + ctx.limits.expiry_margin,
         "since": ctx.now - max(ctx.window, ttl + ctx.limits.expiry_margin + timedelta(hours=1))},
    )
    lost, expiring = row["lost"], row["expiring"]
    if not lost and not expiring:
        return
    if harvest and harvest_jobs and not lost:
        return  # the harvest job will pick them up
    evidence = {"pg_net.ttl": ttl, "lost": lost, "expiring_within": ctx.limits.expiry_margin, "expiring": expiring,
                "oldest_lost": row["oldest_lost"], "oldest_expiring": row["oldest_expiring"],
                "harvest_table": "cronkit.http_responses" if harvest else None, "harvest_jobs": harvest_jobs}
    parts = []
    if lost:
        parts.append(f"{lost} request(s) have no known outcome: no response within pg_net.ttl ({_human(ttl)}), or it was "
                     "purged before anything kept a copy")
    if expiring:
        parts.append(f"{expiring} response(s) will be purged within {_human(ctx.limits.expiry_margin)} and have no copy")
    if not harvest:
        reason = "cronkit's monitoring tables are not installed, so nothing harvests responses"
    elif not harvest_jobs:
        reason = "cronkit.http_responses exists but no active job copies responses into it"
    else:
        reason = (f"the harvest job(s) {', '.join(harvest_jobs)} did not copy them in time, or pg_net never answered "
                  "(see PG_NET_WORKER_DOWN)")
    message = "; ".join(parts) + f" — {reason}."
    yield ctx.found("RESPONSES_EXPIRING", job=None, message=message, evidence=evidence)


# ------------------------------------------------------------------------------------------------
# Checks: secrets


def _secret_findings(ctx: Context, state: str, code: str) -> Iterator[Finding]:
    needs = ctx.secret_needs()
    if not needs:
        return
    statuses = ctx.secret_statuses()
    failures = _secret_failures(ctx)
    for need in needs:
        status = statuses.get((need.backend, need.name))
        if status is None or status.state != state:
            continue
        where = _backend_label(need.backend)
        evidence: dict[str, Any] = {"secret": need.name, "backend": where, "state": status.state, "jobs": list(need.jobs),
                                    "declared_in": list(need.origins)}
        if state == "placeholder":
            evidence.update(length=status.length, fingerprint=status.fingerprint, updated_at=status.updated_at)
        runs = [f for f in failures if f"\"{need.name}\"" in (f["return_message"] or "")]
        if runs:
            evidence["failed_runs"] = [{"job": r["label"], "runid": r["runid"], "start_time": r["start_time"],
                                        "return_message": (r["return_message"] or "").strip()[:200]} for r in runs[:3]]
        job = need.jobs[0] if len(need.jobs) == 1 else None
        jobs = ", ".join(repr(j) for j in need.jobs[:8]) + (" …" if len(need.jobs) > 8 else "")
        set_cmd = f"cronkit secrets set {need.name}"
        if need.backend[0] == "vault":
            manual = f"select vault.create_secret('<value>', '{need.name}');"
        elif need.backend[0] == "table":
            manual = f"insert into {need.backend[1]} ({need.backend[2]}, {need.backend[3]}) values ('{need.name}', '<value>');"
        else:
            manual = f"as a superuser: alter database {_ident(ctx.database)} set {need.backend[1]}{need.name} = '<value>';"
        if state == "missing":
            message = (f"Secret {need.name!r} is missing from {where}, and {jobs} read(s) it when firing: cronkit wrappers "
                       "fail the run; hand-written jobs send NULL, which pg_net drops (→ 401) or makes the URL NULL.")
        else:
            message = (f"Secret {need.name!r} in {where} holds a placeholder (length {status.length}, fingerprint "
                       f"{status.fingerprint}), not a real value; {jobs} send(s) it instead of a key.")
        yield ctx.found(code, job=job, message=message, evidence=evidence, fix=f"`{set_cmd}` (value from stdin) or {manual}")


def _secret_failures(ctx: Context) -> list[dict[str, Any]]:
    if not ctx.facts.pg_cron:
        return []
    try:
        runs = ctx.runs()
    except (Skip, psycopg.Error):
        return []
    return [{**r, "label": ctx.job_label(r["jobid"])} for r in runs
            if r["status"] == "failed" and "cronkit: secret" in (r["return_message"] or "")]


@check(
    "SECRET_MISSING", "critical",
    "A secret a job reads when it fires (Vault, secrets table or app.* setting) does not exist.",
    "Store it: `cronkit secrets set NAME` (the value is read from stdin, never from argv), or re-run `cronkit apply` "
    "when the manifest names a source for it.",
)
def _secret_missing(ctx: Context) -> Iterator[Finding]:
    yield from _secret_findings(ctx, "missing", "SECRET_MISSING")


@check(
    "SECRET_PLACEHOLDER", "critical",
    "A secret holds a value copied from a guide and never filled in (placeholder, your-..., [SERVICE_ROLE_KEY]...).",
    "Store the real value: `cronkit secrets set NAME`.",
)
def _secret_placeholder(ctx: Context) -> Iterator[Finding]:
    yield from _secret_findings(ctx, "placeholder", "SECRET_PLACEHOLDER")


@check(
    "SECRET_INLINED", "critical",
    "A key or JWT is written literally into cron.job.command (or a function it calls): readable by every role that can read cron.job, and copied into every run-history row.",
    "Store the key in Vault (`cronkit secrets set NAME`), reference it as {secret:NAME} in the manifest (or read it "
    "from vault.decrypted_secrets in the command), re-apply, then rotate the exposed key and delete the history rows "
    "that copied it: DELETE FROM cron.job_run_details WHERE jobid = N;",
)
def _secret_inlined(ctx: Context) -> Iterator[Finding]:
    sources = ctx.job_sources()
    for job in ctx.jobs():
        label = job["jobname"] or f"jobid {job['jobid']}"
        hits = []
        for where, text in sources.get(job["jobid"], []):
            for match in KEY_PATTERN.finditer(text):
                key = match.group(0)
                start, end = max(0, match.start() - 40), min(len(text), match.end() + 40)
                excerpt = (text[start:match.start()] + mask(key) + text[match.end():end]).replace("\n", " ")
                hits.append({"where": where, "kind": _key_kind(key), "fingerprint": fingerprint(key),
                             "excerpt": ("…" if start else "") + excerpt + ("…" if end < len(text) else "")})
        if not hits:
            continue
        privileged = any(h["kind"] in ("jwt:service_role", "sb_secret", "jwt") for h in hits)
        kinds = ", ".join(sorted({h["kind"] for h in hits}))
        message = (f"Job {label!r} has {len(hits)} literal key(s) ({kinds}) in {', '.join(sorted({h['where'] for h in hits}))}: "
                   "anyone who can read cron.job sees it, every run copies it into cron.job_run_details.command, "
                   "and rotating the key silently breaks the job.")
        yield ctx.found("SECRET_INLINED", job=label, message=message,
                        evidence={"jobid": job["jobid"], "jobname": job["jobname"], "keys": hits},
                        severity="critical" if privileged else "warning")


def _key_kind(key: str) -> str:
    if key.startswith("sb_secret_"):
        return "sb_secret"
    if key.startswith("sb_publishable_"):
        return "sb_publishable"
    try:
        import base64

        payload = key.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        role = claims.get("role") if isinstance(claims, dict) else None
        return f"jwt:{role}" if isinstance(role, str) and re.fullmatch(r"[a-z_]{1,40}", role) else "jwt"
    except (ValueError, IndexError):
        return "jwt"


@check(
    "GUC_SECRETS_UNSUPPORTED", "warning",
    "Jobs read secrets from app.* database settings, which only a superuser can set (hosted Supabase refuses: 42501) and every role can read in pg_db_role_setting.",
    "Move the secrets to Vault: set backend = \"vault\" under [secrets], `cronkit secrets set NAME`, re-apply; for "
    "hand-written jobs read vault.decrypted_secrets instead of current_setting('app.settings....').",
)
def _guc_secrets_unsupported(ctx: Context) -> Iterator[Finding]:
    needs = [n for n in ctx.secret_needs() if n.backend[0] == "guc"]
    if not needs or ctx.facts.superuser:
        return
    statuses = _safe_statuses(ctx)
    settings = []
    for need in needs:
        status = statuses.get((need.backend, need.name))
        settings.append({"setting": f"{need.backend[1]}{need.name}", "state": status.state if status else "unknown",
                         "jobs": list(need.jobs)})
    unusable = [s for s in settings if s["state"] != "present"]
    jobs = sorted({j for n in needs for j in n.jobs})
    message = (f"{len(jobs)} job(s) read secrets from app.* database settings ({', '.join(s['setting'] for s in settings[:6])}). "
               f"Role {ctx.facts.role!r} is not a superuser, so cronkit cannot set or rotate them (hosted Supabase: "
               "'permission denied to set parameter', 42501), and pg_db_role_setting shows their values to every role.")
    if unusable:
        message += f" {len(unusable)} of them are not set: those jobs send NULL."
    yield ctx.found("GUC_SECRETS_UNSUPPORTED", job=jobs[0] if len(jobs) == 1 else None, message=message,
                    evidence={"role": ctx.facts.role, "superuser": False, "settings": settings,
                              "readable_by_every_role": "pg_db_role_setting"},
                    severity="warning" if unusable else "info")


# ------------------------------------------------------------------------------------------------
# Checks: schedules


@check(
    "SECONDS_UNSUPPORTED", "critical",
    "A schedule uses 'N seconds', which needs pg_cron 1.5 or later; this server's pg_cron refuses (or, for a restored row, skips) it.",
    "Upgrade pg_cron to ≥ 1.5 (on Supabase: upgrade the project's Postgres), or give this environment its own cron "
    "schedule in the manifest, e.g. [environments.<env>.jobs.<name>] schedule = \"* * * * *\".",
)
def _seconds_unsupported(ctx: Context) -> Iterator[Finding]:
    version = ctx.version
    if version is None:
        raise Skip("pg_cron is not installed here, so its version is unknown")
    if version.supports_seconds:
        return
    seen: set[str] = set()
    for spec in ctx.specs():
        if _SECONDS.match(spec.schedule):
            seen.add(spec.name)
            message = (f"Manifest job {spec.name!r} is scheduled {spec.schedule!r} for environment {ctx.environment!r}, "
                       f"but pg_cron here is {version} (extversion {ctx.facts.pg_cron}): cron.schedule refuses it with "
                       f"'invalid schedule: {spec.schedule}', so the job cannot be applied.")
            yield ctx.found("SECONDS_UNSUPPORTED", job=spec.name, message=message,
                            evidence={"schedule": spec.schedule, "source": "manifest", "environment": ctx.environment,
                                      "pg_cron": str(version), "extversion": ctx.facts.pg_cron, "needs": "1.5.0"})
    for job in ctx.jobs():
        label = job["jobname"] or f"jobid {job['jobid']}"
        if label in seen or not _SECONDS.match(job["schedule"]):
            continue
        message = (f"Job {label!r} is scheduled {job['schedule']!r}, which pg_cron {version} cannot read (a row restored "
                   "from a newer server): the scheduler skips it.")
        yield ctx.found("SECONDS_UNSUPPORTED", job=label, message=message,
                        evidence={"jobid": job["jobid"], "schedule": job["schedule"], "source": "cron.job",
                                  "pg_cron": str(version), "needs": "1.5.0"})


@check(
    "DST_DRIFT", "warning",
    "A job meant for a local time (manifest `at` + `timezone`) runs on a GMT schedule, so daylight saving time shifts it by an hour for part of the year.",
    "Choose the GMT expression for the season that matters (the evidence lists both), switch between them at each DST "
    "change, or — pg_cron ≥ 1.5, self-hosted — set cron.timezone to the zone and write the schedule in local time.",
)
def _dst_drift(ctx: Context) -> Iterator[Finding]:
    if ctx.manifest is None:
        raise Skip("needs a manifest: only the manifest says which local time a job is meant for")
    tz = ctx.cron_tz
    if tz not in ("GMT", "UTC", "Etc/UTC", "Etc/GMT", "UCT", "Zulu"):
        raise Skip(f"cron.timezone is {tz!r}: schedules are not evaluated in GMT here")
    live = {j["jobname"]: j for j in ctx.jobs()} if ctx.facts.pg_cron else {}
    for spec in ctx.specs():
        if spec.intended_local is None:
            continue
        at, zone = spec.intended_local
        schedule = live[spec.name]["schedule"] if spec.name in live else spec.schedule
        hour, minute = (int(p) for p in at.split(":"))
        try:
            report = schedules.dst_report(schedule, datetime.min.time().replace(hour=hour, minute=minute), zone,
                                          ctx.now.year, ctx.version)
        except CronkitError:
            continue  # runs several times a day (e.g. a sandbox override): not a time of day
        if not report.warning:
            continue
        evidence = {
            "schedule": schedule, "intended": f"{at} {zone}", "year": report.year,
            "wrong_periods": [{"from": p.first, "to": p.last, "local_time": p.local_time.strftime("%H:%M"),
                               "abbreviation": p.abbreviation} for p in report.mismatches],
            "options": [{"schedule": o.expr, "abbreviation": o.abbreviation} for o in report.options],
        }
        yield ctx.found("DST_DRIFT", job=spec.name, message=f"Job {spec.name!r}: {report.warning}", evidence=evidence)


# ------------------------------------------------------------------------------------------------
# Checks: history and retention


def _history_size(ctx: Context) -> dict[str, Any]:
    def compute() -> dict[str, Any]:
        row = ctx.row(
            """
            select c.reltuples::bigint as estimate, pg_total_relation_size(c.oid) as bytes,
                   pg_size_pretty(pg_total_relation_size(c.oid)) as size,
                   s.last_analyze, s.last_autoanalyze
              from pg_class c left join pg_stat_all_tables s on s.relid = c.oid
             where c.oid = 'cron.job_run_details'::regclass
            """
        )
        rows, method = row["estimate"], "pg_class.reltuples"
        if rows is None or rows < 0:  # never analyzed: count, but never more than the threshold needs
            limit = ctx.limits.history_rows + 1
            rows = ctx.row("select count(*) as n from (select 1 from cron.job_run_details limit %(n)s) t", {"n": limit})["n"]
            method = f"count (capped at {limit}; table never analyzed)"
        return {"rows": rows, "method": method, "size": row["size"], "bytes": row["bytes"],
                "last_analyze": row["last_analyze"] or row["last_autoanalyze"]}
    return ctx.memo("history_size", compute)


@check(
    "RUN_HISTORY_BLOAT", "warning",
    "cron.job_run_details has grown past the threshold (default 200k rows, where Supabase's dashboard stops showing last runs).",
    "Delete old rows in batches (DELETE FROM cron.job_run_details WHERE end_time < now() - interval '7 days' — "
    "batch by runid ranges on big tables), VACUUM it, and schedule retention (see NO_RETENTION).",
)
def _run_history_bloat(ctx: Context) -> Iterator[Finding]:
    ctx.require_cron()
    size = _history_size(ctx)
    if size["rows"] < ctx.limits.history_rows:
        return
    message = (f"cron.job_run_details holds about {size['rows']:,} rows ({size['size']}), above {ctx.limits.history_rows:,}: "
               "history queries get slow (no index but the runid key, pg_cron#408) and every run writes WAL.")
    yield ctx.found("RUN_HISTORY_BLOAT", job=None, message=message, evidence={**size, "threshold": ctx.limits.history_rows})


@check(
    "NO_RETENTION", "warning",
    "No active job deletes old rows from cron.job_run_details: pg_cron keeps every run forever.",
    "Schedule a purge: SELECT cron.schedule('delete-job-run-details', '0 12 * * *', $$DELETE FROM cron.job_run_details "
    "WHERE end_time < now() - interval '7 days'$$); (Supabase's own job name and schedule), or enable cronkit's "
    "monitoring ([monitoring] in the manifest: its cronkit-retention job keeps 7 days by default).",
)
def _no_retention(ctx: Context) -> Iterator[Finding]:
    ctx.require_cron()
    retention = ctx.jobs_matching(_RETENTION)
    if retention:
        return
    inactive = [j["jobname"] or f"jobid {j['jobid']}" for j in ctx.jobs_matching(_RETENTION, active_only=False)]
    size = _history_size(ctx)
    per_day = 0
    for job in ctx.jobs():
        schedule = _parsed_schedule(ctx, job["schedule"]) if job["active"] else None
        if schedule is None or schedule.kind == "reboot":
            continue
        if schedule.interval_seconds:
            per_day += 86400 // schedule.interval_seconds
        else:
            try:
                per_day += sum(1 for _ in schedule.expected_slots(ctx.now, ctx.now + timedelta(days=1), ctx.cron_tz))
            except CronkitError:
                continue
    evidence = {"retention_jobs": [], "inactive_retention_jobs": inactive, "history_rows": size["rows"],
                "history_size": size["size"], "scheduled_runs_per_day": per_day}
    message = "No active job deletes from cron.job_run_details: every run adds a row that stays forever"
    if per_day:
        days = max(0, ctx.limits.history_rows - size["rows"]) / per_day
        evidence["days_until_threshold"] = round(days, 1)
        message += f" ({per_day:,} runs a day: {ctx.limits.history_rows:,} rows in about {days:.0f} days)"
    if inactive:
        message += f"; the retention job(s) {', '.join(inactive)} are paused"
    yield ctx.found("NO_RETENTION", job=None, message=message + ".", evidence=evidence)


# ------------------------------------------------------------------------------------------------
# Checks: queues declared in the manifest


def _queues(ctx: Context) -> list[QueueSpec]:
    if ctx.manifest is None:
        raise Skip("needs a manifest: queues are declared in its [[queues]]")
    return list(ctx.manifest.queues)


def _queue_stats(ctx: Context, queue: QueueSpec, code: str) -> dict[str, Any] | None:
    """cronkit.monitor.queues' statistics row of a declared queue (the same numbers its snapshots keep)."""
    from cronkit.monitor.queues import stats_query

    def compute() -> dict[str, Any] | str:
        if not ctx.row("select to_regclass(%s) is not null as ok", (queue.table,))["ok"]:
            return f"queue table {queue.table} does not exist"
        try:
            with ctx.conn.transaction():
                return ctx.row(stats_query(queue, stuck_after=ctx.limits.queue_stuck_after))
        except psycopg.Error as exc:
            return f"queue {queue.table}: {_reason(exc, ctx.facts)}"

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
    "QUEUE_BACKLOG", "warning",
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
                   + (f", the oldest waiting {_human(timedelta(seconds=age))}" if age is not None else "")
                   + (f"; {stats['done_recent']} done in the last {_human(timedelta(seconds=stats['recent_window_s']))}"
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
    "QUEUE_STUCK_ITEMS", "warning",
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
                   f"{column} is older than {_human(ctx.limits.queue_stuck_after)}: their worker died or gave up "
                   "without releasing them, and nothing picks them up again.")
        pending = queue.pending[0] if queue.pending else "pending"
        status = _ident(queue.status_column)
        fix = (f"UPDATE {queue.table} SET {status} = '{pending}' WHERE {status} IN "
               f"({', '.join(repr(s) for s in queue.processing)}) AND {_ident(column)} < now() - interval '{minutes} minutes';"
               " Then make the worker release its claim when it fails.")
        yield ctx.found("QUEUE_STUCK_ITEMS", job=jobs[0] if len(jobs) == 1 else None, message=message, fix=fix,
                        evidence={"table": queue.table, "processing_states": list(queue.processing),
                                  "stuck": stats["stuck_processing"], "processing": stats["processing"],
                                  "by_column": column, "stuck_after_s": ctx.limits.queue_stuck_after.total_seconds(),
                                  "jobs": jobs})


@check(
    "RETRIES_EXHAUSTED", "warning",
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
                        severity="warning" if count >= ctx.limits.retries_exhausted else "info")


# ------------------------------------------------------------------------------------------------
# Helpers


def _reason(exc: BaseException, facts: ServerFacts) -> str:
    if isinstance(exc, Skip):
        return str(exc)
    if isinstance(exc, pgerr.InsufficientPrivilege):
        return f"role {facts.role!r} lacks a privilege: {_first_line(exc)}"
    if isinstance(exc, pgerr.QueryCanceled):
        return f"a query took longer than the doctor's statement_timeout: {_first_line(exc)}"
    if isinstance(exc, (pgerr.UndefinedTable, pgerr.UndefinedFunction, pgerr.InvalidSchemaName, pgerr.UndefinedColumn)):
        return f"missing object: {_first_line(exc)}"
    if isinstance(exc, psycopg.Error):
        return f"{type(exc).__name__}: {_first_line(exc)}"
    if isinstance(exc, CronkitError):
        return exc.message
    return f"internal error {type(exc).__name__}: {exc}"


def _first_line(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    text = (getattr(diag, "message_primary", None) or str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _session(a: Mapping[str, Any]) -> dict[str, Any]:
    return {"pid": a["pid"], "datname": a["datname"], "application_name": a["application_name"],
            "backend_type": a["backend_type"], "backend_start": a["backend_start"]}


def _ident(name: str) -> str:
    return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else '"' + name.replace('"', '""') + '"'


def _human(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h" if seconds % 3600 == 0 else f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _jsonable(value: Any) -> Any:
    """Rows and values as JSON types: datetimes as ISO 8601, durations as seconds."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_jsonable(v) for v in items]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (IPv4Address, IPv6Address)):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _scrub(value: Any) -> Any:
    """Mask anything shaped like a key in strings of the evidence (defence in depth)."""
    if isinstance(value, str):
        value = KEY_PATTERN.sub(lambda m: mask(m.group(0)), value)
        return CREDENTIAL_PATTERN.sub(lambda m: m.group(1) + mask(m.group(2)), value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _abridge(evidence: Any, limit: int = 6) -> list[str]:
    """A few lines of evidence for the terminal; --json has all of it."""
    if isinstance(evidence, list):
        lines = [json.dumps(row, default=str, ensure_ascii=False)[:200] for row in evidence[:limit]]
        if len(evidence) > limit:
            lines.append(f"… {len(evidence) - limit} more")
        return lines
    if isinstance(evidence, dict):
        lines = []
        for key, value in list(evidence.items())[:10]:
            text = json.dumps(value, default=str, ensure_ascii=False)
            lines.append(f"{key}: {text if len(text) <= 160 else text[:157] + '…'}")
        return lines
    return [str(evidence)]
