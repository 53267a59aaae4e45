"""What the checks share: the connection, server facts, the manifest and memoised reads (each a named query)."""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import sql

from cronkit import db, recover, registry, schedules
from cronkit.doctor.catalogue import CATALOGUE
from cronkit.doctor.model import Finding, Severity, Skip, Thresholds, jsonable
from cronkit.errors import CronkitError
from cronkit.facts import LAUNCHER_BACKEND, SCHEDULER_APPNAME, ServerFacts
from cronkit.manifest import JobSpec, Manifest, SecretsConfig
from cronkit.monitor import missed
from cronkit.queries import query
from cronkit.redact import scrub
from cronkit.text import error_line
from cronkit.secrets import (
    GucBackend,
    SecretBackend,
    SecretStatus,
    TableBackend,
    VaultBackend,
)

#: job_run_details states of a run that has not finished
RUNNING_STATES = ("starting", "connecting", "sending", "running")
#: runs the missed-run check reads at most (a longer history needs a shorter window)
MAX_MISSED_RUNS = 200_000

#: a secrets backend as a hashable key: ("vault",) | ("table", table, key_col, value_col) | ("guc", prefix)
BackendKey = recover.BackendKey


@dataclass(frozen=True)
class SecretNeed:
    """A secret some jobs read when they fire, and where that need was found."""

    backend: BackendKey
    name: str
    jobs: tuple[str, ...]
    origins: tuple[str, ...]  # "manifest" | "registry" | "command"


class Context:
    """What the checks share: the connection, server facts, the manifest and cached reads.

    Every read is a named query (``cronkit/sql/queries/doctor/``) or a call into the module that
    owns the data (registry, secrets backends, monitor); a read that fails is cached as a failure
    too, so every check that needs it is skipped with the same reason.
    """

    def __init__(self, conn: db.Conn, facts: ServerFacts, manifest: Manifest | None, environment: str | None,
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

    def rows(self, name: str | sql.Composable, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The rows of named query ``name`` (or of an already composed statement)."""
        statement = query(name) if isinstance(name, str) else name
        return self.conn.execute(statement, params).fetchall()

    def row(self, name: str | sql.Composable, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        found = self.rows(name, params)
        assert found, name
        return found[0]

    def optional(self, name: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]] | None:
        """Rows, or None when the query fails (privilege, missing object); in its own savepoint."""
        try:
            with self.conn.transaction():
                return self.rows(name, params)
        except db.DatabaseError:
            return None

    def found(self, code: str, *, job: str | None, message: str, evidence: Any,
              severity: Severity | str | None = None, fix: str | None = None) -> Finding:
        entry = CATALOGUE[code]
        return Finding(
            code=code,
            severity=Severity(severity) if severity else entry.severity,
            job=job,
            evidence=scrub(jsonable(evidence)),
            fix=scrub(fix or entry.fix),
            message=scrub(message),
        )

    def skip_part(self, code: str, reason: str) -> None:
        self.partial_skips[code].append(reason)

    def preload(self, **reads: Any) -> None:
        """Answer these reads (by memo key: ``jobs``, ``runs``, ``missed_history``…) from the given
        values instead of the database: a check can then run on rows built elsewhere (tests)."""
        for key, value in reads.items():
            self._memo[key] = (True, value)

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
        """The zone pg_cron evaluates schedules in (the missed-run engine's one rule)."""
        return missed.cron_zone(self.version, self.facts.cron_timezone)

    def require_cron(self) -> None:
        if not self.facts.pg_cron:
            raise Skip(f"pg_cron is not installed in database {self.database!r} (see PG_CRON_MISSING / WRONG_CRON_DATABASE)")

    def activity(self) -> list[dict[str, Any]]:
        return self.memo("activity", lambda: self.rows("doctor/activity"))

    def scheduler_rows(self) -> list[dict[str, Any]]:
        return [a for a in self.activity()
                if a["application_name"] == SCHEDULER_APPNAME or (a["backend_type"] or "") == LAUNCHER_BACKEND]

    def pg_net_workers(self) -> list[dict[str, Any]]:
        return [a for a in self.activity()
                if "pg_net" in (a["backend_type"] or "").lower() or (a["application_name"] or "").startswith("pg_net ")]

    def server_state(self) -> dict[str, Any]:
        return self.memo("server_state", lambda: self.row("doctor/server_state"))

    def in_recovery(self) -> bool:
        return bool(self.server_state()["in_recovery"])

    def postmaster_start(self) -> datetime:
        return self.server_state()["started_at"]

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
            probe = "select cron.unschedule(-1)"
            try:
                with self.conn.transaction():
                    self.rows("doctor/probe_cron_library")
            except db.DatabaseError as exc:
                text = (exc.diag.message_primary or str(exc)).strip()
                if "shared_preload_libraries" in text:
                    return False, {"shared_preload_libraries": "not visible to this role", "probe": probe, "probe_error": text}
                return True, {"probe": probe, "probe_error": text}
            return True, {}
        return self.memo("preloaded", compute)

    # -- pg_cron ----------------------------------------------------------------------------------

    def jobs(self) -> list[dict[str, Any]]:
        self.require_cron()
        return self.memo("jobs", lambda: self.rows("doctor/jobs"))

    def job_label(self, jobid: int) -> str:
        for job in self.jobs():
            if job["jobid"] == jobid:
                return job["jobname"] or f"jobid {jobid}"
        return f"jobid {jobid}"

    def relation_exists(self, name: str) -> bool | None:
        """Whether a table exists; None when this role may not even look into its schema."""
        found = self.optional("doctor/relation_exists", {"name": name})
        return None if found is None else bool(found[0]["ok"])

    def managed(self) -> dict[str, registry.ManagedJob]:
        """cronkit's registry (empty when cronkit never applied here or the role cannot read it)."""
        def compute() -> dict[str, registry.ManagedJob]:
            try:
                with self.conn.transaction():
                    return registry.managed_by_name(self.conn)
            except db.DatabaseError:
                return {}
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
        return self.memo("runs", lambda: self.rows(
            "doctor/runs", {"since": self.window_start, "lo": self.runid_floor(self.window_start)}))

    def runid_floor(self, at: datetime) -> int:
        """A runid below every run since ``at``: cron.job_run_details has no index but its key, so
        with cronkit's monitoring schema a window becomes a runid range (``cronkit.monitor``);
        0 (a scan) without it or when this role may not use it."""
        from cronkit.monitor import runid_floor

        try:
            with self.conn.transaction():
                return runid_floor(self.conn, at)
        except db.DatabaseError:
            return 0

    def rolled_up(self) -> bool:
        """Whether cronkit's rollups are here to bound reads of the history (``cronkit.monitor_state``)."""
        return bool(self.memo("rolled_up", lambda: self.relation_exists("cronkit.monitor_state")))

    def run_summary(self) -> dict[int, dict[str, Any]]:
        """Per job: its last run before / first run inside the window. With cronkit's rollups the
        time before the window is read from them (flat in history size), else from a scan."""
        self.require_cron()

        def compute() -> dict[int, dict[str, Any]]:
            since = self.window_start
            if not self.rolled_up():
                return {r["jobid"]: r for r in self.rows("doctor/run_summary", {"since": since})}
            hour = since.replace(minute=0, second=0, microsecond=0)
            bounds: dict[int, dict[str, Any]] = {
                r["jobid"]: {"jobid": r["jobid"], "last_before": r["last_before"], "first_in_window": None}
                for r in self.rows("doctor/ran_before_rolled", {"since": since, "lo": self.runid_floor(hour)})}
            for run in self.runs():
                start = run["start_time"]
                if start is None or start < since:
                    continue
                entry = bounds.setdefault(run["jobid"], {"jobid": run["jobid"], "last_before": None, "first_in_window": None})
                if entry["first_in_window"] is None or start < entry["first_in_window"]:
                    entry["first_in_window"] = start
            return bounds
        return self.memo("run_summary", compute)

    def missed_history(self) -> missed.History:
        """What the missed-run engine reads: the jobs, every run since an hour before the window,
        cronkit's registry and each job's run bounds (all memoised here)."""
        def compute() -> missed.History:
            since = self.window_start - missed.CONTEXT
            try:
                runs = missed.read_runs(self.conn, since, None, max_runs=MAX_MISSED_RUNS, lo=self.runid_floor(since))
            except missed.TooManyRuns:
                raise Skip(f"more than {MAX_MISSED_RUNS} runs since {since:%Y-%m-%d %H:%M} UTC: use a shorter window") from None
            return missed.History(
                jobs=self.jobs(), runs=runs, now=self.now, version=self.version, zone_setting=self.facts.cron_timezone,
                booted=self.postmaster_start(), registered={name: job.updated_at for name, job in self.managed().items()},
                bounds=self.run_summary(),
            )
        return self.memo("missed_history", compute)

    def missing_owner_jobs(self) -> list[dict[str, Any]]:
        """Jobs whose role was dropped, each with a label."""
        rows = self.memo("owner_missing", lambda: self.rows("doctor/jobs_without_owner"))
        return [{**r, "label": r["jobname"] or f"jobid {r['jobid']}"} for r in rows]

    def runid_seq(self) -> dict[str, Any] | None:
        """Where cron.runid_seq stands against the history; None when the role may not read it."""
        def compute() -> dict[str, Any] | None:
            seq = self.optional("doctor/runid_seq")
            if not seq:
                return None
            top = self.row("doctor/max_runid")["max_runid"]
            next_value = seq[0]["last_value"] + (1 if seq[0]["is_called"] else 0)
            return {"last_value": seq[0]["last_value"], "is_called": seq[0]["is_called"], "next_runid": next_value,
                    "max_runid": top, "behind": top is not None and next_value <= top}
        return self.memo("runid_seq", compute)

    def _lookup(self, schema: str | None, name: str) -> recover.Function | None:
        """A function's definition by name, as a job's command would resolve it (memoised)."""
        def compute() -> recover.Function | None:
            found = self.optional("catalog/function", {"schema": schema, "name": name})
            return recover.Function(**found[0]) if found else None
        return self.memo(f"function {schema}.{name}", compute)

    def _resolve(self, name: str) -> str | None:
        def compute() -> str | None:
            found = self.optional("catalog/relation_schema", {"name": name})
            return found[0]["schema"] if found else None
        return self.memo(f"relation {name}", compute)

    def walks(self) -> dict[int, recover.Walk]:
        """Per job: the functions its command reaches (followed through their bodies) and every
        secret read on the way (:func:`cronkit.recover.walk`, the one reader of hand-made SQL)."""
        return self.memo("walks", lambda: {job["jobid"]: recover.walk(job["command"], self._lookup, self._resolve)
                                           for job in self.jobs()})

    def meanings(self) -> dict[str, recover.Recovered]:
        """Per job that runs SQL (an ``sql`` job, managed or not): what its SQL means
        (:func:`cronkit.recover.recover`) — its guard, its secrets, what it does without them."""
        def compute() -> dict[str, recover.Recovered]:
            specs = {spec.name: spec for spec in self.specs()}
            managed = self.managed()
            result = {}
            for job in self.jobs():
                name = job["jobname"] or f"jobid {job['jobid']}"
                spec, ours = specs.get(name), managed.get(name)
                kind = spec.kind if spec is not None else (ours.kind if ours is not None else None)
                if kind == "http":
                    continue
                sql_text = spec.sql if spec is not None else (ours.spec.get("sql") if ours is not None else job["command"])
                result[name] = recover.recover(sql_text or "", name, self._lookup, self._resolve)
            return result
        return self.memo("meanings", compute)

    def on_missing_secret(self, label: str) -> recover.MissingSecret:
        """What a run of job ``label`` does when a secret it reads is missing: cronkit's HTTP wrappers
        fail the run; an sql job (managed or not) does what its own SQL does (:meth:`meanings`)."""
        if self.managed().get(label) is not None and self.managed()[label].kind == "http":
            return recover.MissingSecret.FAILS  # cronkit's wrapper raises, naming the secret
        spec = self.spec_for(label)
        if spec is not None and spec.kind == "http":
            return recover.MissingSecret.FAILS
        meaning = self.meanings().get(label)
        return meaning.on_missing_secret if meaning is not None else recover.MissingSecret.SENDS_NULL

    def ledgered(self, jobid: int) -> bool:
        """Whether every request job ``jobid`` queues lands in cronkit's ledger: its command is a
        cronkit wrapper that records them (an HTTP wrapper, or an sql wrapper of this version)."""
        return any(f.schema == "cronkit" and "request_ledger" in f.definition for f in self.walks()[jobid].functions)

    def ledger_pids(self) -> dict[str, set[int]]:
        """Per job: the backend pids of its runs that queued a request in the window (the ledger's ``job_pid``)."""
        if not self.ledger_readable():
            return {}
        return self.memo("ledger_pids", lambda: {
            r["jobname"]: set(r["pids"]) for r in self.rows("doctor/ledger_pids", {"since": self.window_start})})

    def guard_has_work(self, guard: str) -> bool | None:
        """What a recovered guard says now, evaluated read-only; None when it cannot be evaluated."""
        def compute() -> bool | None:
            try:
                with db.read_only(self.conn, timeout_ms=2000):
                    return bool(self.row(sql.SQL("SELECT coalesce(({}), false) AS has_work").format(sql.SQL(guard)))["has_work"])
            except db.DatabaseError:
                return None
        return self.memo(f"guard {guard}", compute)

    def job_sources(self) -> dict[int, list[tuple[str, str]]]:
        """Per job: (where, text) for its command and the definition of every function it reaches."""
        walks = self.walks()
        return {job["jobid"]: [("cron.job.command", job["command"])]
                + [(f"function {f.signature or f.schema + '.' + f.name + '()'}", f.definition)
                   for f in walks[job["jobid"]].functions]
                for job in self.jobs()}

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

    def harvested(self) -> bool:
        """Whether cronkit's durable response copy (``cronkit.http_responses``) exists here."""
        return bool(self.memo("harvested", lambda: self.relation_exists("cronkit.http_responses")))

    def pg_net_ttl(self) -> timedelta:
        return self.memo("ttl", lambda: self.row("doctor/pg_net_ttl")["ttl"])

    def http_requests(self) -> list[dict[str, Any]]:
        """Requests cronkit wrappers queued in the window (rows of ``doctor/http_requests``)."""
        if not self.facts.pg_net:
            raise Skip("pg_net is not installed here")
        if not self.ledger_ready():
            raise Skip("cronkit.request_ledger does not exist (no cronkit-managed HTTP job was applied here)")
        name = "doctor/http_requests_harvested" if self.harvested() else "doctor/http_requests"
        return self.memo("http_requests", lambda: self.rows(name, {"since": self.window_start}))

    def unattributed_responses(self) -> list[dict[str, Any]]:
        """Responses in the window that no cronkit wrapper queued (hand-written jobs, webhooks)."""
        if not self.facts.pg_net:
            raise Skip("pg_net is not installed here")
        name = "doctor/http_unattributed_unledgered" if self.ledger_readable() else "doctor/http_unattributed"
        return self.memo("unattributed", lambda: self.rows(name, {"since": self.window_start}))

    # -- secrets ----------------------------------------------------------------------------------

    def secret_needs(self) -> list[SecretNeed]:
        """Every secret a job reads: from the manifest, cronkit's registry and hand-written commands."""
        def compute() -> list[SecretNeed]:
            needs: dict[tuple[BackendKey, str], tuple[set[str], set[str]]] = {}

            def add(backend: BackendKey, name: str, job: str, origin: str) -> None:
                jobs, origins = needs.setdefault((backend, name), (set(), set()))
                jobs.add(job)
                origins.add(origin)

            declared: set[str] = set()
            if self.manifest is not None:
                backend = backend_key(self.manifest.secrets)
                for spec in self.specs():
                    declared.add(spec.name)
                    for name in spec.secret_names:
                        add(backend, name, spec.name, "manifest")
            if self.facts.pg_cron:
                managed = self.managed()
                walks = self.walks()
                for job in self.jobs():
                    label = job["jobname"] or f"jobid {job['jobid']}"
                    if label in declared:
                        continue
                    origin = "registry" if (job["jobname"] or "") in managed else "command"
                    for read in walks[job["jobid"]].reads:
                        add(read.backend, read.name, label, origin)
            return [SecretNeed(b, n, tuple(sorted(j)), tuple(sorted(o))) for (b, n), (j, o) in sorted(needs.items())]
        return self.memo("secret_needs", compute)

    def secret_statuses(self) -> dict[tuple[BackendKey, str], SecretStatus]:
        """Status (never the value) of every needed secret; a backend that cannot be read is skipped."""
        def compute() -> dict[tuple[BackendKey, str], SecretStatus]:
            by_backend: dict[BackendKey, list[str]] = defaultdict(list)
            for need in self.secret_needs():
                by_backend[need.backend].append(need.name)
            result: dict[tuple[BackendKey, str], SecretStatus] = {}
            for key, names in by_backend.items():
                if key[0] == "vault" and not self.facts.vault:
                    for name in names:
                        result[(key, name)] = SecretStatus.of(name, None)
                    continue
                try:
                    with self.conn.transaction():
                        statuses = backend_object(key).status(self.conn, names)
                except (db.DatabaseError, CronkitError) as exc:
                    why = reason(exc, self.facts)
                    for code in ("SECRET_MISSING", "SECRET_PLACEHOLDER"):
                        self.skip_part(code, f"secrets in {backend_label(key)}: {why}")
                    continue
                for status in statuses:
                    result[(key, status.name)] = status
            return result
        return self.memo("secret_statuses", compute)

    def safe_statuses(self) -> dict[tuple[BackendKey, str], SecretStatus]:
        """:meth:`secret_statuses`, or nothing when they cannot be read (for checks that only add them)."""
        try:
            return self.secret_statuses()
        except (Skip, db.DatabaseError, CronkitError):
            return {}

    # -- environment ------------------------------------------------------------------------------

    def network(self) -> dict[str, Any]:
        """The addresses of this connection as the server sees them (for :func:`container_hints`)."""
        return self.memo("network", lambda: self.row("doctor/network"))


def backend_key(config: SecretsConfig) -> BackendKey:
    if config.backend == "vault":
        return ("vault",)
    if config.backend == "table":
        table = config.table if "." in config.table else f"public.{config.table}"
        return ("table", table, config.key_column, config.value_column)
    return ("guc", config.guc_prefix)


def backend_object(key: BackendKey) -> SecretBackend:
    if key[0] == "vault":
        return VaultBackend()
    if key[0] == "table":
        return TableBackend(SecretsConfig(backend="table", table=key[1], key_column=key[2], value_column=key[3]))
    return GucBackend(SecretsConfig(backend="guc", guc_prefix=key[1]))


def store_command(key: BackendKey, name: str, manifest: Manifest | None = None) -> str:
    """The command that stores secret ``name`` where the jobs read it — in the job's own backend,
    never Vault for a table-backed job. A table is always named (the operator sees where the key
    goes); Vault and settings come from the manifest whose backend it is, when there is one."""
    if manifest is not None and backend_key(manifest.secrets) == key and key[0] != "table":
        return f"cronkit secrets set {name} --manifest {shlex.quote(str(manifest.path))}"
    if key[0] == "vault":
        return f"cronkit secrets set {name} --backend vault"
    if key[0] == "table":
        columns = "" if key[2:] == ("key", "value") else f" --key-column {key[2]} --value-column {key[3]}"
        return f"cronkit secrets set {name} --table {key[1]}{columns}"
    return f"cronkit secrets set {name} --backend guc"  # as a superuser; app.settings.<name>


def backend_label(key: BackendKey) -> str:
    if key[0] == "vault":
        return "Vault"
    if key[0] == "table":
        return f"table {key[1]}"
    return "database settings " + (f"{key[1]}*" if key[1] else "(app.*)")


def reason(exc: BaseException, facts: ServerFacts) -> str:
    """Why a check (or a read) could not run, in one line."""
    if isinstance(exc, Skip):
        return str(exc)
    if isinstance(exc, db.sqlstate.InsufficientPrivilege):
        return f"role {facts.role!r} lacks a privilege: {error_line(exc)}"
    if isinstance(exc, db.sqlstate.QueryCanceled):
        return f"a query took longer than the doctor's statement_timeout: {error_line(exc)}"
    if isinstance(exc, (db.sqlstate.UndefinedTable, db.sqlstate.UndefinedFunction, db.sqlstate.InvalidSchemaName,
                        db.sqlstate.UndefinedColumn)):
        return f"missing object: {error_line(exc)}"
    if isinstance(exc, db.DatabaseError):
        return f"{type(exc).__name__}: {error_line(exc)}"
    if isinstance(exc, CronkitError):
        return exc.message
    return f"internal error {type(exc).__name__}: {exc}"


def session(a: Mapping[str, Any]) -> dict[str, Any]:
    """A pg_stat_activity row as evidence."""
    return {"pid": a["pid"], "datname": a["datname"], "application_name": a["application_name"],
            "backend_type": a["backend_type"], "backend_start": a["backend_start"]}


def ident(name: str) -> str:
    """``name`` as it would be written in SQL shown to a person (quoted only when it must be)."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else '"' + name.replace('"', '""') + '"'


def parsed_schedule(ctx: Context, expr: str) -> schedules.Schedule | None:
    """A job's schedule as pg_cron reads it, or None when it cannot."""
    try:
        return schedules.parse_schedule(expr, ctx.version)
    except CronkitError:
        return None
