"""Plan and apply: compare a manifest with the live database, then converge in one transaction.

A plan is a list of steps (``setup``, ``secret``, ``create``, ``update``, ``unchanged``,
``remove``), each with the exact SQL it runs, plus *problems* that block applying (a missing
secret, a schedule the installed pg_cron refuses, a name clash with a job cronkit did not create)
and *warnings*. Applying takes a transaction-level advisory lock, re-plans under it (so two
concurrent applies serialize and the second finds nothing to do), runs every step and commits —
or changes nothing at all.

Only jobs listed in ``cronkit.managed_jobs`` for the manifest's project are ever updated or
removed; every other ``cron.job`` row is reported as *foreign* and left alone.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from importlib import resources
from typing import Any

from psycopg import sql

from cronkit import audit, registry, schedules
from cronkit.audit import AuditAction
from cronkit.db import AdaptContext, Conn, ConnectionMode, in_transaction, mode_of, syntax_error, translated
from cronkit.declarative import declarative_gap
from cronkit.errors import CronkitError, ExtensionMissing
from cronkit.facts import ServerFacts, require_pg_cron, server_facts
from cronkit.local_time import LocalTimePlan, plan_local_time, reissued
from cronkit.maintenance import maintenance_jobs
from cronkit.manifest import JobSpec, Manifest
from cronkit.redact import fingerprint, looks_like_placeholder, mask, mask_keys
from cronkit.secrets import GUC_REMEDY, SecretBackend, SecretState, SecretStatus, backend_for, store_secret
from cronkit.registry import removal_statements
from cronkit.statement import Statement
from cronkit.wrappers import Wrapper, render_wrapper, spec_hash

APPLY_LOCK = "cronkit.apply"


class StepAction(StrEnum):
    """What one step of a plan does; its symbol is how a plan shows it."""

    SETUP = "setup"
    SECRET = "secret"
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    REMOVE = "remove"

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "remove": "-", "unchanged": "="}.get(self.value, "*")


@dataclass(frozen=True)
class Step:
    action: StepAction
    job: str | None
    detail: str
    statements: tuple[Statement, ...] = ()
    run: Callable[[Conn], object] | None = field(default=None, repr=False, compare=False)
    #: what changes, one line each, as a person reviews it (the SQL is in ``statements``)
    changes: tuple[str, ...] = ()
    #: a job's schedule and what it calls or runs, as the manifest says (for the markdown plan)
    schedule: str = ""
    target: str = ""

    def execute(self, conn: Conn) -> None:
        if self.run is not None:
            self.run(conn)
            return
        for statement in self.statements:
            statement.execute(conn)


@dataclass
class Plan:
    project: str
    environment: str
    facts: ServerFacts
    steps: list[Step] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    foreign: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[SecretStatus] = field(default_factory=list)
    #: what sits between cronkit and the server (cronkit.db.connection_mode), and what it limits
    connection: ConnectionMode = ConnectionMode.DIRECT

    @property
    def summary(self) -> dict[str, int]:
        counts = {str(a): 0 for a in (StepAction.CREATE, StepAction.UPDATE, StepAction.REMOVE, StepAction.UNCHANGED,
                                      StepAction.SETUP, StepAction.SECRET)}
        for step in self.steps:
            counts[step.action] += 1
        return counts

    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.action != StepAction.UNCHANGED]

    def as_dict(self, conn: Conn) -> dict[str, Any]:
        return {
            "project": self.project,
            "environment": self.environment,
            "summary": self.summary,
            "problems": self.problems,
            "warnings": self.warnings,
            "steps": [
                {"action": s.action, "job": s.job, "detail": s.detail, "sql": [st.display(conn) for st in s.statements]}
                for s in self.steps
            ],
            "foreign_jobs": self.foreign,
            "secrets": [s.as_dict() for s in self.secrets],
            "server": self.facts.versions,
            "connection": {"mode": str(self.connection), "limits": self.connection.limits},
        }

    def render(self) -> str:
        """The plan as a person reviews it: one line per step and, under each job that changes, what
        changes (Terraform-style). ``script`` is the exact SQL."""
        lines = [f"plan for project {self.project!r} ({self.environment}) on {self.facts.database} as {self.facts.role}",
                 f"connection: {self.connection.describe()}"]
        for step in self.steps:
            lines.append(f"  {step.action.symbol} {step.action:<9} {step.job or ''}  {step.detail}".rstrip())
            lines.extend(f"        {change}" for change in step.changes)
        for job in self.foreign:
            lines.append(f"  ? foreign   {job['jobname']}  (not created by cronkit; left alone)")
        for warning in self.warnings:
            lines.append(f"  warning: {warning}")
        for problem in self.problems:
            lines.append(f"  PROBLEM: {problem}")
        s = self.summary
        lines.append(
            f"summary: {s['create']} to create, {s['update']} to update, {s['remove']} to remove, "
            f"{s['unchanged']} unchanged, {s['setup'] + s['secret']} setup/secret steps"
        )
        if self.changes:
            lines.append("the exact SQL: `cronkit plan --sql` (a script for psql; secret values are never in it)")
        return "\n".join(lines)

    def script(self, conn: Conn) -> str:
        """Every change as the SQL ``apply`` runs, as one script that pastes into psql: in one
        transaction, each statement terminated. A secret is stored by ``apply`` itself (its value
        is never written out): the script says so in a comment."""
        lines = [f"-- cronkit plan for project {self.project!r} ({self.environment}) on {self.facts.database} "
                 f"as {self.facts.role}", "BEGIN;", f"SELECT pg_advisory_xact_lock(hashtext('{APPLY_LOCK}'));"]
        for step in self.changes:
            lines.append("")
            lines.append(f"-- {step.action.symbol} {step.action} {step.job or ''} {step.detail}".rstrip())
            if step.run is not None:
                lines.append("-- (stored by `cronkit apply` or `cronkit secrets set`; the value is not shown)")
            for statement in step.statements:
                text = statement.display(conn).rstrip()
                lines.append(text if text.endswith(";") else text + ";")
        lines.extend(["", "COMMIT;"])
        return "\n".join(lines) + "\n"

    def markdown(self) -> str:
        """The plan for a pull-request comment (``cronkit plan --format markdown``): a heading, the
        summary line, one table row per job, then setup steps, foreign jobs, warnings and problems.
        Stable (docs/migrations.md): sections appear only when they have content, rows in plan order.
        No secret value is in it: secrets appear as names, masked length and fingerprint."""
        s = self.summary
        lines = [
            f"### cronkit plan: {_code(self.project)} ({_code(self.environment)})",
            "",
            f"**{s['create']} to create, {s['update']} to update, {s['remove']} to remove, {s['unchanged']} unchanged, "
            f"{s['setup'] + s['secret']} setup/secret step(s)** on database {_code(self.facts.database)} "
            f"as {_code(self.facts.role)}",
        ]
        jobs = [step for step in self.steps if step.job is not None]
        if jobs:
            lines += ["", "| | job | action | schedule | target | what changes |", "|---|---|---|---|---|---|"]
            for step in jobs:
                if step.action == StepAction.CREATE:
                    what = "; ".join(step.changes)
                elif step.action == StepAction.UNCHANGED:
                    what = ""
                else:
                    what = step.detail
                cells = [_code(step.action.symbol), _code(step.job or ""), str(step.action),
                         _code(step.schedule) if step.schedule else "", _code(step.target) if step.target else "", what]
                lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        for step in jobs:
            if step.action == StepAction.UPDATE and step.changes:
                lines += ["", f"<details><summary>{_cell(step.job or '')}: wrapper change</summary>", "",
                          "```diff", *step.changes, "```", "", "</details>"]
        setup = [step for step in self.steps if step.job is None]
        sections = [
            ("Setup and secrets", [step.detail for step in setup]),
            ("Foreign jobs (not created by cronkit; left alone)",
             [f"{_code(job['jobname'])} {_code(job['schedule'])}" for job in self.foreign]),
            ("Warnings", self.warnings),
            ("Problems (nothing can be applied until each is fixed)", self.problems),
        ]
        for title, items in sections:
            if items:
                lines += ["", f"**{title}**", "", *(f"- {_cell(item)}" for item in items)]
        if self.changes:
            lines += ["", "The exact SQL: `cronkit plan --sql`."]
        return mask_keys("\n".join(lines) + "\n")


def _code(text: str) -> str:
    """``text`` as a markdown code span, whatever backticks it holds."""
    if "`" not in text:
        return f"`{text}`"
    longest = max(len(run) for run in re.findall("`+", text))
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}"


def _cell(text: str) -> str:
    """``text`` safe in one markdown table cell: no pipe ends it, no line break splits the row."""
    return text.replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


# -- reading the live state -----------------------------------------------------------------------


def schema_files() -> list[tuple[str, str]]:
    """cronkit's own DDL: ``cronkit/sql/schema*.sql`` in name order (idempotent statements)."""
    folder = resources.files("cronkit").joinpath("sql")
    names = sorted(p.name for p in folder.iterdir() if p.name.startswith("schema") and p.name.endswith(".sql"))
    return [(name, folder.joinpath(name).read_text(encoding="utf-8")) for name in names]


def schema_digest() -> str:
    """Identifies the schema version: any change to the DDL files makes apply run them again."""
    digest = hashlib.sha256()
    for name, text in schema_files():
        digest.update(name.encode() + b"\0" + text.encode())
    return digest.hexdigest()[:16]


def schema_statements() -> tuple[Statement, ...]:
    """Create or upgrade schema cronkit and record its version: idempotent, run by ``apply`` when the
    version differs and by every exported migration."""
    statements = [Statement(sql.SQL(text)) for _name, text in schema_files()]  # type: ignore[arg-type]
    statements.append(Statement(
        sql.SQL("INSERT INTO cronkit.meta (key, value) VALUES ('schema_digest', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
        (schema_digest(),),
    ))
    return tuple(statements)


def _schema_ready(conn: Conn) -> bool:
    row = conn.execute("select to_regclass('cronkit.meta') is not null as ok").fetchone()
    if not row["ok"]:
        return False
    version = conn.execute("select value from cronkit.meta where key = 'schema_digest'").fetchone()
    return bool(version and version["value"] == schema_digest())


def _wrapper_source(conn: Conn, function: str) -> str | None:
    row = conn.execute(
        "select p.prosrc from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
        "where n.nspname = 'cronkit' and p.proname = %s and p.pronargs = 0",
        (function,),
    ).fetchone()
    return row["prosrc"] if row else None


# -- planning -------------------------------------------------------------------------------------


def make_plan(
    conn: Conn,
    manifest: Manifest,
    environment: str | None = None,
    *,
    adopt: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Plan:
    """Compare the manifest with the database. Reads only; never changes anything."""
    facts = server_facts(conn)
    env_name = environment or manifest.default_environment
    plan = Plan(project=manifest.project, environment=env_name, facts=facts, connection=mode_of(conn))
    require_pg_cron(facts)
    specs = manifest.resolve(env_name, environ) + maintenance_jobs(manifest)
    backend = backend_for(manifest.secrets)
    if any(s.kind == "http" for s in specs) and not facts.pg_net:
        raise ExtensionMissing("pg_net is not installed in this database; HTTP jobs need it.",
                               remedy="On Supabase: Dashboard → Database → Extensions → pg_net (schema extensions).")
    if manifest.secrets.backend == "vault" and not facts.vault and any(s.secret_names for s in specs):
        raise ExtensionMissing("Supabase Vault (supabase_vault) is not installed; the manifest's secrets use it.",
                               remedy="Enable Vault in the Supabase dashboard, or choose backend = \"table\" under [secrets].")

    version = schedules.parse_pg_cron_version(facts.pg_cron)
    with translated("read the live jobs"):
        live = registry.live_jobs(conn)
        # The registry is read whenever it exists: an older schema still says which jobs are ours.
        managed = registry.managed_by_name(conn)

    if not _schema_ready(conn):
        plan.steps.append(Step(StepAction.SETUP, None, "create or upgrade schema cronkit (registry, request ledger, monitoring)",
                               schema_statements()))
    backend_setup = backend.setup(conn)
    if backend_setup:
        plan.steps.append(Step(StepAction.SETUP, None, f"create the secrets table ({manifest.secrets.table})",
                               tuple(Statement(s) for s in backend_setup)))

    _plan_secrets(conn, plan, specs, manifest, backend, environ)
    gap = declarative_gap(manifest.path, [spec.name for spec in specs])
    if gap is not None:
        plan.warnings.append(f"{gap.message()} Fix: {gap.fix}")

    desired_names = set()
    moment = conn.execute("SELECT now() AS now").fetchone()["now"]
    for spec in specs:
        desired_names.add(spec.name)
        local = None
        if reissued(spec, version, facts.cron_timezone):
            local = plan_local_time(spec, moment, (live.get(spec.name) or {}).get("schedule"))
        elif spec.schedule_from_local:
            plan.warnings.append(
                f"job {spec.name!r}: cron.timezone is {facts.cron_timezone!r}, not GMT: the GMT expression computed "
                f"from `at` is read in that zone. Write `schedule` in local time instead.")
        _plan_job(conn, plan, spec, manifest.project, backend, version, live.get(spec.name), managed.get(spec.name), adopt,
                  local)

    for name, row in sorted(managed.items()):
        if row.project == manifest.project and name not in desired_names:
            # row.jobid is cronkit's own job (by identity): a job re-created by hand under the name is left alone.
            plan.steps.append(Step(StepAction.REMOVE, name, "no longer in the manifest",
                                   removal_statements(name, row.jobid, row.wrapper)))

    ours = {row.jobid for row in managed.values() if row.jobid is not None}
    plan.foreign = [
        {"jobid": row["jobid"], "jobname": name, "schedule": row["schedule"], "active": row["active"], "username": row["username"]}
        for name, row in live.items()
        if row["jobid"] not in ours and name not in desired_names
    ]
    return plan


def _plan_secrets(conn: Conn, plan: Plan, specs: list[JobSpec], manifest: Manifest, backend: SecretBackend,
                  environ: Mapping[str, str] | None) -> None:
    environ = os.environ if environ is None else environ
    names = sorted({n for spec in specs for n in spec.secret_names})
    if not names:
        return
    statuses = backend.status(conn, names)
    plan.secrets = statuses
    for status in statuses:
        source = manifest.secrets.source_value(status.name, environ)
        value = source[1] if source else None
        if value:
            if looks_like_placeholder(value):
                plan.problems.append(f"secret {status.name!r}: {source[0]} holds a placeholder, not a real value")
                continue
            if status.fingerprint == fingerprint(value):
                continue
            if backend.kind == "guc" and not plan.facts.superuser:
                plan.problems.append(
                    f"secret {status.name!r} must be stored, but role {plan.facts.role!r} may not set app.* settings "
                    f"(GUC_SECRETS_UNSUPPORTED). {GUC_REMEDY}"
                )
                continue
            action = "create" if status.state == SecretState.MISSING else "update"
            plan.steps.append(Step(
                StepAction.SECRET, None,
                f"{action} secret {status.name!r} in {backend.kind} from {source[0]} ({mask(value)})",
                run=lambda c, n=status.name, v=value: store_secret(c, backend, n, v, "managed by cronkit",
                                                                   project=manifest.project),
            ))
            continue
        if backend.kind == "guc" and not plan.facts.superuser and status.state != SecretState.PRESENT:
            # `cronkit secrets set` cannot help this role: say why, and what works instead.
            plan.problems.append(
                f"secret {status.name!r} is {status.state} in guc ({manifest.secrets.guc_prefix}{status.name}), and role "
                f"{plan.facts.role!r} may not set app.* settings (GUC_SECRETS_UNSUPPORTED). {GUC_REMEDY}"
            )
        elif status.state == SecretState.MISSING:
            plan.problems.append(
                f"secret {status.name!r} is missing in {backend.kind}: store it with `cronkit secrets set {status.name}`"
                + (f" or set {source[0]}" if source else "")
            )
        elif status.state == SecretState.PLACEHOLDER:
            plan.problems.append(f"secret {status.name!r} holds a placeholder value: store the real one with `cronkit secrets set {status.name}`")


def _plan_job(conn: Conn, plan: Plan, spec: JobSpec, project: str, backend: SecretBackend,
              version: schedules.PgCronVersion, live: dict[str, Any] | None, managed: registry.ManagedJob | None,
              adopt: bool, local: LocalTimePlan | None = None) -> None:
    if local is not None:  # the DST maintenance job keeps it right: schedule what the reissue rule says now
        spec = replace(spec, schedule=local.schedule)
    try:
        # strict: forms pg_cron accepts but silently misreads (a 6th field, `12.30`) are refused here.
        schedules.parse_schedule(spec.schedule, version, strict=True)
    except CronkitError as exc:
        plan.problems.append(f"job {spec.name!r}: {exc.message} — {exc.remedy}")
        return
    if spec.intended_local and local is None:
        warning = schedules.dst_warning(spec.schedule, spec.intended_local[0], spec.intended_local[1], version=version)
        if warning:
            plan.warnings.append(f"job {spec.name!r}: {warning}")
    if live is not None and live["username"] != plan.facts.role and (managed is None or managed.jobid != live["jobid"]):
        # pg_cron keys jobs by (name, owner): scheduling this name as another role would add a second
        # job beside this one (two runs per slot), and only its owner may alter it.
        plan.problems.append(
            f"job {spec.name!r} (jobid {live['jobid']}) belongs to role {live['username']!r}, and cronkit is connected "
            f"as {plan.facts.role!r}: adopting it would schedule a second job beside it. Connect as "
            f"{live['username']!r} (--dsn) to adopt it, or rename the job in the manifest."
        )
        return
    if live is not None and managed is not None and managed.jobid != live["jobid"] and not adopt:
        was = f"jobid {managed.recorded_jobid}" if managed.recorded_jobid is not None else "cronkit's job"
        plan.problems.append(
            f"job {spec.name!r} was re-created outside cronkit (jobid {live['jobid']}, owner {live['username']}; "
            f"cronkit's was {was}): it is foreign now and left alone. Re-run with --adopt to manage it again, "
            "or rename the job in the manifest."
        )
        return
    if live is not None and managed is None and not adopt:
        plan.problems.append(
            f"job {spec.name!r} already exists (jobid {live['jobid']}) and was not created by cronkit; it is left alone. "
            "Rename the job in the manifest, or re-run with --adopt to let cronkit replace it (see `cronkit import`)."
        )
        return
    if managed is not None and managed.project != project:
        plan.problems.append(f"job {spec.name!r} belongs to cronkit project {managed.project!r}, not {project!r}.")
        return

    for key, problem in _unparsable(conn, spec):
        plan.problems.append(f"job {spec.name!r}: {key}: the server cannot parse it ({problem}) — fix the SQL; "
                             "every run would fail")
        return
    desired = desired_job(spec, backend, project, conn, local)
    wrapper, command, digest, statements = desired.wrapper, desired.command, desired.digest, desired.statements
    dst = (local.change_line,) if local else ()

    shown = {"schedule": spec.schedule + ("" if spec.active else " (paused)"), "target": _target(spec)}
    if live is None:
        plan.steps.append(Step(StepAction.CREATE, spec.name, f"schedule {spec.schedule!r}" + ("" if spec.active else " (inactive)"),
                               statements, changes=(*_what_it_runs(spec, wrapper), *dst), **shown))
        return
    reasons: list[str] = []
    changes: list[str] = []
    if live["schedule"] != spec.schedule:
        reasons.append(f"schedule {live['schedule']!r} → {spec.schedule!r}")
    if live["command"] != command:
        reasons.append("command")
    if live["active"] != spec.active:
        reasons.append(f"active {live['active']} → {spec.active}")
    if managed is None or managed.jobid != live["jobid"]:
        reasons.append("adopt a job cronkit did not create")
    elif (source := _wrapper_source(conn, wrapper.function)) != wrapper.body:
        # The registry's hash also covers schedule and active: only the source says the wrapper changed.
        reasons.append("wrapper" if managed.spec_hash != digest else "wrapper changed outside cronkit")
        changes.extend(_body_diff(source or "", wrapper.body))
    elif (managed.spec_hash != digest or managed.recorded_jobid is None) and not reasons:
        reasons.append("registry")  # a row from before jobids were recorded gets its jobid
    if reasons:
        plan.steps.append(Step(StepAction.UPDATE, spec.name, ", ".join(reasons), statements, changes=(*dst, *changes),
                               **shown))
    else:
        plan.steps.append(Step(StepAction.UNCHANGED, spec.name, f"schedule {spec.schedule!r}", changes=dst, **shown))


def _target(spec: JobSpec) -> str:
    """What a job calls (method and URL template, secrets as ``{secret:NAME}``) or runs (its SQL's first line)."""
    if spec.kind == "http":
        return f"{spec.method} {spec.url}"
    first = (spec.sql or "").strip().splitlines()[:1]
    return f"SQL: {first[0][:80]}" if first else "SQL"


def _what_it_runs(spec: JobSpec, wrapper: Wrapper) -> tuple[str, ...]:
    """A new job in a few lines: what it calls or runs, through which function."""
    if spec.kind == "http":
        what = [f"calls {spec.method} {spec.url} (timeout {spec.timeout_ms} ms)"]
    else:
        lines = (spec.sql or "").strip().splitlines()
        what = [f"runs SQL: {lines[0][:100]}" + (f" … ({len(lines)} lines)" if len(lines) > 1 else "")] if lines else []
    if spec.guard:
        guard = " ".join(spec.guard.split())
        what.append(f"only when: {guard if len(guard) <= 100 else guard[:99] + '…'}")
    return (*what, f"through {wrapper.regprocedure}")


#: lines of a wrapper's change shown in a plan; the rest is in `cronkit plan --sql`
_DIFF_LINES = 24


def _body_diff(old: str, new: str) -> list[str]:
    """What changes in a wrapper's body, as a unified diff of the changed lines (capped)."""
    diff = [line.rstrip() for line in difflib.unified_diff(old.splitlines(), new.splitlines(), "live", "manifest",
                                                            n=0, lineterm="")
            if not line.startswith(("---", "+++"))]
    if len(diff) > _DIFF_LINES:
        diff = [*diff[:_DIFF_LINES], f"… {len(diff) - _DIFF_LINES} more line(s) of the wrapper change"]
    return diff


def _unparsable(conn: Conn, spec: JobSpec) -> list[tuple[str, str]]:
    """``sql`` and ``guard`` as the server parses them, without running them: each is compiled into a
    throwaway plpgsql function (check_function_bodies parses its statements) that is rolled back."""
    parts = [("guard", f"BEGIN\nPERFORM ({spec.guard}\n);\nEND")] if spec.guard else []
    if spec.sql is not None:
        parts.append(("sql", f"BEGIN\n{spec.sql.rstrip().rstrip(';')}\n;\nEND"))
    found = []
    for key, body in parts:
        statement = sql.SQL("CREATE FUNCTION pg_temp.cronkit_parse_check() RETURNS void LANGUAGE plpgsql AS {}").format(
            sql.Literal(body))
        problem = syntax_error(conn, statement)
        if problem:
            found.append((key, problem))
    return found


@dataclass(frozen=True)
class DesiredJob:
    """One job as the manifest wants it: its wrapper, its ``cron.job.command``, the registry's hash
    and the statements that converge any database to it (each idempotent)."""

    spec: JobSpec
    wrapper: Wrapper
    command: str
    digest: str
    statements: tuple[Statement, ...]


def desired_job(spec: JobSpec, backend: SecretBackend, project: str, context: AdaptContext | None,
                local: LocalTimePlan | None = None) -> DesiredJob:
    """The one definition of what creating or updating a job runs: a plan's create/update step and an
    exported migration both run exactly these statements. ``context`` renders literals (a
    connection, or None offline: the same text for a server with standard_conforming_strings);
    ``local``: a local-time job the DST maintenance job keeps in step (its intent is registered and
    hashed instead of today's UTC expression)."""
    wrapper = render_wrapper(spec, backend, project, context)
    command = wrapper.command(context)
    digest = spec_hash(wrapper, local.hash_key if local else spec.schedule, spec.active,
                       spec.retry.as_config() if spec.retry else None)
    statements = _job_statements(spec, wrapper, command, digest, project, local.intent if local else None)
    return DesiredJob(spec, wrapper, command, digest, statements)


def _job_statements(spec: JobSpec, wrapper: Wrapper, command: str, digest: str, project: str,
                    local: dict[str, Any] | None = None) -> tuple[Statement, ...]:
    fields = {
        "schedule": spec.schedule, "kind": spec.kind, "method": spec.method, "url": spec.url,
        "headers": dict(spec.headers), "body": spec.body, "timeout_ms": spec.timeout_ms, "guard": spec.guard,
        "secrets": list(spec.secret_names), "active": spec.active, "sql": spec.sql,
    }
    if local is not None:  # read by cronkit.reissue_local_schedules (sql/schema_local_time.sql)
        fields["local"] = local
    if spec.overlap != "allow":
        fields["overlap"] = str(spec.overlap)
    if spec.retry is not None:
        fields["retry"] = spec.retry.as_config()
    stored = json.dumps(fields, sort_keys=True)
    statements = [
        Statement(wrapper.create_statement()),
        Statement(wrapper.comment_statement()),
        # Named cron.schedule is an upsert on (jobname, username): the jobid survives, there is no
        # window without the job, and `active` is kept — so it is set explicitly below.
        Statement(sql.SQL("SELECT cron.schedule(%s, %s, %s)"), (spec.name, spec.schedule, command)),
        Statement(
            sql.SQL("SELECT cron.alter_job((SELECT jobid FROM cron.job WHERE jobname = %s AND username = current_user), active := %s)"),
            (spec.name, spec.active),
        ),
        registry.register_statement(spec.name, project, wrapper.regprocedure, stored, digest),
    ]
    return tuple(statements)


# -- applying -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyResult:
    plan: Plan
    applied: bool


def apply(
    conn: Conn,
    manifest: Manifest,
    environment: str | None = None,
    *,
    adopt: bool = False,
    environ: Mapping[str, str] | None = None,
    progress: Callable[[str], None] = lambda _m: None,
) -> ApplyResult:
    """Converge the database to the manifest in one transaction, or change nothing.

    Raises :class:`CronkitError` listing the plan's problems before anything is changed.
    """
    if conn.autocommit:
        raise CronkitError("apply needs a connection that is not in autocommit mode (one transaction).")
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (APPLY_LOCK,))
            plan = make_plan(conn, manifest, environment, adopt=adopt, environ=environ)
            if plan.problems:
                raise CronkitError(
                    "Nothing was applied; the plan has problems:\n  - " + "\n  - ".join(plan.problems),
                    remedy="Fix each problem above, then `cronkit plan` again.",
                )
            with translated("apply the plan"):
                for step in plan.changes:
                    progress(f"{step.action} {step.job or ''} {step.detail}".strip())
                    step.execute(conn)
                if plan.changes:
                    counts = {k: v for k, v in plan.summary.items() if v and k != StepAction.UNCHANGED}
                    audit.record(conn, AuditAction.APPLY, f"applied {len(plan.changes)} change(s) in environment "
                                 f"{plan.environment}: " + ", ".join(f"{v} {k}" for k, v in counts.items()),
                                 project=plan.project, details={"environment": plan.environment, **counts,
                                                                "jobs": sorted({s.job for s in plan.changes if s.job})})
    finally:
        if in_transaction(conn):
            conn.rollback()
    return ApplyResult(plan=plan, applied=bool(plan.changes))
