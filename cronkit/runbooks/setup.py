"""The setup runbook's steps: server facts, tables, extensions, the plan and apply, the success checklist.

Guide 002's procedure driven by one manifest. Secrets are :mod:`cronkit.runbooks.secret_store`,
the manual run and verification :mod:`cronkit.runbooks.job_checks`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import marimo as mo
import polars as pl
from psycopg import sql

from cronkit import db
from cronkit.db import Conn
from cronkit.errors import CronkitError
from cronkit.facts import ServerFacts, server_facts
from cronkit.manifest import QueueSpec
from cronkit.outcomes import FAILED, Outcome
from cronkit.plan import apply, make_plan
from cronkit.queries import query
from cronkit.runbooks.context import RunbookContext, specs
from cronkit.runbooks.job_checks import NO_REQUEST
from cronkit.runbooks.runtime import Gate, NotApplied, esc, say
from cronkit.runbooks.secret_store import secrets_frame
from cronkit.secrets import SecretState

# -- step 1: the server --------------------------------------------------------------------------


def server_facts_of(ctx: RunbookContext) -> ServerFacts:
    """PostgreSQL, pg_cron, pg_net and Vault versions and the role's attributes."""
    with ctx.read() as conn:
        return server_facts(conn)


def server_facts_frame(f: ServerFacts) -> pl.DataFrame:
    rows = [
        ("PostgreSQL", f.postgresql), ("database", f.database), ("role", f.role),
        ("superuser", "yes" if f.superuser else "no (like Supabase's postgres role)"),
        ("bypass RLS", "yes" if f.bypassrls else "no"),
        ("pg_cron", f.pg_cron or "not installed"), ("pg_net", f.pg_net or "not installed"),
        ("Vault", f.vault or "not installed"), ("cron.database_name", f.cron_database or "(not readable)"),
    ]
    return pl.DataFrame({"fact": [r[0] for r in rows], "value": [str(r[1]) for r in rows]})


# -- step 2: the tables the jobs need ------------------------------------------------------------

TABLES_SCHEMA: dict[str, Any] = {"table": pl.String, "needed_by": pl.String, "exists": pl.Boolean, "problem": pl.String}
_MISSING_RELATION = re.compile(r'relation "([^"]+)" does not exist')


def _guard_relations(conn: Conn, guard: str) -> tuple[list[str], str | None]:
    """Tables a guard reads, as PostgreSQL's planner sees them; or the relation it cannot find."""
    try:
        with conn.transaction():  # a savepoint: a guard that fails must not end the read
            row = conn.execute(query("runbooks/guard_relations").format(guard=sql.SQL(guard))).fetchone()  # type: ignore[arg-type]
    except db.sqlstate.UndefinedTable as exc:
        missing = _MISSING_RELATION.search(exc.diag.message_primary or str(exc))
        return [missing.group(1) if missing else "?"], f"does not exist ({exc.diag.message_primary})"
    except db.DatabaseError as exc:
        return [], f"the guard does not compile: {exc.diag.message_primary or exc}"
    assert row is not None
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "Relation Name" in node:
                name = f"{node.get('Schema', 'public')}.{node['Relation Name']}"
                if name not in found:
                    found.append(name)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(next(iter(row.values())))
    return found, None


def _queue_problem(conn: Conn, queue: QueueSpec) -> tuple[bool, str]:
    exists = conn.execute(query("runbooks/relation_exists"), {"name": queue.table}).fetchone()
    if not exists or not exists["ok"]:
        return False, "does not exist"
    columns = {r["attname"] for r in conn.execute(query("runbooks/table_columns"), {"name": queue.table}).fetchall()}
    wanted = [c for c in (queue.status_column, queue.created_column, queue.updated_column, queue.retry_column) if c]
    missing = [c for c in wanted if c not in columns]
    return True, (f"missing column(s) {', '.join(missing)} named in [[queues]]" if missing else "")


def required_tables(ctx: RunbookContext) -> pl.DataFrame:
    """Every table the jobs need: the ``[[queues]]`` tables and the tables guards read (guide 002 step 2)."""
    rows: dict[str, dict[str, Any]] = {}
    with ctx.read() as conn:
        for queue in ctx.manifest.queues:
            exists, problem = _queue_problem(conn, queue)
            rows[queue.table] = {"table": queue.table, "needed_by": "[[queues]]", "exists": exists, "problem": problem}
        for spec in specs(ctx):
            if not spec.guard:
                continue
            relations, trouble = _guard_relations(conn, spec.guard)
            problem = trouble or ""
            for name in relations:
                entry = rows.setdefault(name, {"table": name, "needed_by": "", "exists": not problem, "problem": problem})
                entry["needed_by"] = ", ".join(filter(None, [entry["needed_by"], f"guard of {spec.name}"]))
            if problem and not relations:
                rows[f"guard of {spec.name}"] = {"table": "?", "needed_by": f"guard of {spec.name}", "exists": False,
                                                 "problem": problem}
    return pl.DataFrame(sorted(rows.values(), key=lambda r: r["table"]), schema=TABLES_SCHEMA)


def tables_view(tables: pl.DataFrame) -> mo.Html:
    if tables.is_empty():
        return mo.md("No queue tables declared and no guards: no tables to check.")
    missing = tables.filter(~pl.col("exists") | (pl.col("problem") != ""))
    verdict = ("✅ every table exists" if missing.is_empty()
               else f"❌ {missing.height} table(s) missing or incomplete: create them with your migrations first "
                    "(jobs would fail on every run)")
    return mo.vstack([say(verdict), tables])


# -- step 3: extensions --------------------------------------------------------------------------

#: extension, the schema Supabase puts it in, what it is for, where to click on Supabase
EXTENSIONS = (
    ("pg_cron", "pg_catalog", "schedules the jobs",
     "Dashboard → Integrations → Cron → Enable (or Database → Extensions → pg_cron)"),
    ("pg_net", "extensions", "HTTP calls of the jobs",
     "Dashboard → Database → Extensions → search pg_net → enable it in schema `extensions`"),
    ("supabase_vault", "vault", "secrets in Vault",
     "Dashboard → Integrations → Vault (on by default in new projects)"),
)
EXTENSIONS_SCHEMA: dict[str, Any] = {
    "extension": pl.String, "needed_for": pl.String, "state": pl.String, "version": pl.String,
    "schema": pl.String, "sql": pl.String, "dashboard": pl.String,
}


def _needed_extensions(ctx: RunbookContext) -> list[str]:
    all_specs = specs(ctx)
    needed = ["pg_cron"]
    if any(s.kind == "http" for s in all_specs):
        needed.append("pg_net")
    if ctx.manifest.secrets.backend == "vault" and any(s.secret_names for s in all_specs):
        needed.append("supabase_vault")
    return needed


def extensions_needed(ext: pl.DataFrame) -> bool:
    """True when some extension is missing (so enabling would change something)."""
    return not ext.filter(pl.col("state") == "missing").is_empty()


def extension_statement(name: str) -> sql.Composed:
    """``CREATE EXTENSION`` of one of :data:`EXTENSIONS` in the schema Supabase uses for it."""
    if name == "supabase_vault":  # not relocatable: its objects always live in schema vault
        return sql.SQL("CREATE EXTENSION IF NOT EXISTS {} CASCADE").format(sql.Identifier(name))
    schema = next(s for n, s, _purpose, _where in EXTENSIONS if n == name)
    return sql.SQL("CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {}").format(sql.Identifier(name), sql.Identifier(schema))


def extensions_frame(ctx: RunbookContext) -> pl.DataFrame:
    """Each extension the manifest needs: enabled (version, schema), missing, or not on the server."""
    needed = _needed_extensions(ctx)
    with ctx.read() as conn:
        found = {r["name"]: r for r in conn.execute(query("runbooks/extensions"), {"names": needed}).fetchall()}
    out = []
    for name, _schema, purpose, dashboard in EXTENSIONS:
        if name not in needed:
            continue
        row = found.get(name)
        if row is None:
            state, version, where, statement = "not on this server", None, None, ""
        elif row["extversion"] is None:
            state, version, where, statement = "missing", None, None, extension_statement(name).as_string() + ";"
        else:
            state, version, where, statement = "enabled", row["extversion"], row["nspname"], ""
        out.append({"extension": name, "needed_for": purpose, "state": state, "version": version,
                    "schema": where, "sql": statement, "dashboard": dashboard if state != "enabled" else ""})
    return pl.DataFrame(out, schema=EXTENSIONS_SCHEMA)


def extensions_view(ext: pl.DataFrame, f: ServerFacts) -> mo.Html:
    todo = ext.filter(pl.col("state") != "enabled")
    if todo.is_empty():
        # Versions are in the server facts above; this table stays the same on every server.
        return mo.vstack([say("✅ every extension the jobs need is enabled."), ext.drop("sql", "dashboard", "version")])
    statements = "\n".join(s for s in todo["sql"].to_list() if s)
    lines = [f"❌ {todo.height} extension(s) to enable. The SQL (guide 002 step 3):", f"```sql\n{statements}\n```"]
    if not f.superuser:
        lines.append(
            f"Role `{f.role}` is not a superuser. On Supabase the SQL above works from the SQL Editor or this "
            "runbook (the platform allows these extensions); if it is refused, click instead:"
        )
        lines += [f"- **{r['extension']}**: {r['dashboard']}" for r in todo.iter_rows(named=True)]
    unavailable = todo.filter(pl.col("state") == "not on this server")["extension"].to_list()
    if unavailable:
        lines.append(f"Not installed on the server at all: {', '.join(unavailable)} (self-hosted: install the package, "
                     "e.g. Debian `postgresql-15-cron`, and add pg_cron to `shared_preload_libraries`).")
    return mo.vstack([say("\n\n".join(lines)), ext.drop("dashboard")])


@dataclass(frozen=True)
class ExtensionChange:
    results: tuple[tuple[str, str], ...]  # (extension, what happened)

    def view(self) -> mo.Html:
        if not self.results:
            return say("Nothing to do: every extension was already enabled.")
        return say("\n".join(f"- **{name}**: {esc(outcome)}" for name, outcome in self.results))


def enable_extensions(ctx: RunbookContext, ok: bool | Gate) -> ExtensionChange | NotApplied:
    """Run ``CREATE EXTENSION`` for each missing extension (when confirmed); a refusal is explained."""
    if not ok:
        return NotApplied.of(ok, "Enable extensions")
    todo = extensions_frame(ctx).filter(pl.col("state") == "missing")
    results = []
    with ctx.write(autocommit=True) as conn:  # one refused extension must not undo the others
        for row in todo.iter_rows(named=True):
            try:
                with db.translated(f"enable {row['extension']}"):
                    conn.execute(extension_statement(row["extension"]))
                results.append((row["extension"], "enabled"))
            except CronkitError as exc:
                results.append((row["extension"], f"refused: {exc.message} — click instead: {row['dashboard']}"))
    return ExtensionChange(tuple(results))


# -- step 5: the plan and apply ------------------------------------------------------------------


@dataclass(frozen=True)
class PlanPreview:
    """A plan as shown before applying: summary, problems, warnings, each step's exact SQL."""

    project: str
    environment: str
    summary: Mapping[str, int]
    problems: tuple[str, ...]
    warnings: tuple[str, ...]
    steps: tuple[Mapping[str, Any], ...]
    foreign: tuple[str, ...]
    error: str | None = None

    @property
    def changes(self) -> int:
        return sum(1 for s in self.steps if s["action"] != "unchanged")

    def rows(self) -> pl.DataFrame:
        return pl.DataFrame(
            [{"action": s["action"], "job": s["job"] or "", "detail": s["detail"], "statements": len(s["sql"])}
             for s in self.steps],
            schema={"action": pl.String, "job": pl.String, "detail": pl.String, "statements": pl.Int64},
        )


def preview_plan(ctx: RunbookContext) -> PlanPreview:
    """``cronkit plan``: read-only. A database that cannot be planned yet (no pg_cron) gives ``error``."""
    try:
        with ctx.read() as conn:
            plan = make_plan(conn, ctx.manifest, ctx.environment, environ=ctx.environ)
            data = plan.as_dict(conn)
    except CronkitError as exc:
        return PlanPreview(ctx.project, ctx.environment, {}, (), (), (), (), error=str(exc))
    return PlanPreview(
        project=data["project"], environment=data["environment"], summary=data["summary"],
        problems=tuple(data["problems"]), warnings=tuple(data["warnings"]), steps=tuple(data["steps"]),
        foreign=tuple(sorted(j["jobname"] for j in data["foreign_jobs"])),
    )


#: how a step's SQL is shown: its own scroll box, at most ~30 lines high, never wider than the page
_SQL_BOX = "max-height: 30em; max-width: 100%; overflow: auto; white-space: pre; font-size: 0.85em"


def plan_view(plan: PlanPreview) -> mo.Html:
    if plan.error:
        return say(f"❌ No plan yet:\n\n```\n{plan.error}\n```\n\nFix the steps above first.")
    s = plan.summary
    head = (f"**{plan.changes} change(s)**: {s['create']} to create, {s['update']} to update, {s['remove']} to remove, "
            f"{s['setup'] + s['secret']} setup/secret step(s); {s['unchanged']} job(s) already match the manifest.")
    if not plan.changes:
        head = f"✅ **Nothing to do**: the database already matches the manifest ({s['unchanged']} job(s) unchanged)."
    parts = [head]
    parts += [f"- ❌ problem: {esc(problem)}" for problem in plan.problems]
    parts += [f"- ⚠️ warning: {esc(warning)}" for warning in plan.warnings]
    if plan.foreign:
        parts.append(f"Jobs cronkit did not create (left alone): {esc(', '.join(plan.foreign))}.")
    blocks = []
    for step in plan.steps:
        if step["action"] == "unchanged":
            continue
        title = html.escape(f"{step['action']} {step['job'] or ''} — {step['detail']}", quote=False)
        statements = [text if text.rstrip().endswith(";") else text.rstrip() + ";" for text in step["sql"]]
        body = html.escape("\n".join(statements) or "(runs through the secret backend; the value is a bind parameter)",
                           quote=False)
        # a long wrapper scrolls inside its own box instead of running past the page's right edge
        blocks.append(f"<details><summary>{title}</summary><pre style='{_SQL_BOX}'><code class='language-sql'>"
                      f"{body}</code></pre></details>")
    summary = say("\n\n".join(parts))
    return mo.vstack([summary, mo.Html("\n".join(blocks))] if blocks else [summary])


@dataclass(frozen=True)
class ApplyOutcome:
    applied: tuple[str, ...]  # one line per step run
    remaining: int  # changes left after applying (0 = converged)
    error: str | None = None

    def view(self) -> mo.Html:
        if self.error:
            return say(f"❌ Nothing was applied:\n\n```\n{self.error}\n```")
        if not self.applied:
            return say("✅ Nothing to do: the database already matched the manifest; nothing was changed.")
        lines = "\n".join(f"- {esc(line)}" for line in self.applied)
        verdict = ("✅ verified: a new plan finds nothing left to do." if self.remaining == 0
                   else f"⚠️ a new plan still finds {self.remaining} change(s).")
        return say(f"Applied {len(self.applied)} step(s) in one transaction:\n\n{lines}\n\n{verdict}")


def apply_plan(ctx: RunbookContext, ok: bool | Gate) -> ApplyOutcome | NotApplied:
    """``cronkit apply`` (one transaction, advisory lock, re-planned under the lock), then re-plan."""
    if not ok:
        return NotApplied.of(ok, "Apply")
    try:
        with ctx.write() as conn:
            result = apply(conn, ctx.manifest, ctx.environment, environ=ctx.environ)
    except CronkitError as exc:
        return ApplyOutcome((), -1, error=str(exc))
    lines = tuple(f"{s.action} {s.job or ''} {s.detail}".replace("  ", " ").strip() for s in result.plan.changes)
    return ApplyOutcome(lines, preview_plan(ctx).changes)


# -- step 6: the success checklist ---------------------------------------------------------------

CHECKLIST_SCHEMA: dict[str, Any] = {"step": pl.String, "status": pl.String, "detail": pl.String}
#: done and verified · failed or missing · waiting for pg_cron · nothing to do yet (so not verified)
_MARK = {"done": "✅", "todo": "❌", "waiting": "⏳", "idle": "—"}


def answered_state(row: Mapping[str, Any]) -> tuple[str, str]:
    """Status and detail of "answered by its endpoint" from a verification row (empty: not scheduled)."""
    if not row:
        return "todo", "not scheduled"
    detail = f"last call: {row['last_http']} ({row['http']} since applied)"
    last = row["last_http"]
    if last in FAILED:
        return "todo", detail
    if last == Outcome.OK:
        return "done", detail
    if last == NO_REQUEST and row["work"] == "nothing to do":
        return "idle", "no call yet: its guard finds nothing to do, so its key and endpoint are not verified"
    return "waiting", detail


def checklist(ctx: RunbookContext, verification: pl.DataFrame) -> pl.DataFrame:
    """The guides' success checklist, re-read from the database (status: done / todo / waiting)."""
    items: list[tuple[str, str, str]] = []
    for row in required_tables(ctx).iter_rows(named=True):
        ok = row["exists"] and not row["problem"]
        items.append((f"table {row['table']} exists", "done" if ok else "todo", row["problem"] or row["needed_by"]))
    for row in extensions_frame(ctx).iter_rows(named=True):
        items.append((f"{row['extension']} extension enabled", "done" if row["state"] == "enabled" else "todo",
                      row["schema"] or row["state"]))
    try:
        for row in secrets_frame(ctx).iter_rows(named=True):
            items.append((f"secret {row['secret']} stored", "done" if row["state"] == SecretState.PRESENT else "todo",
                          row["state"]))
    except CronkitError as exc:
        items.append(("secrets readable", "todo", exc.message))
    by_job: dict[str, dict[str, Any]] = {r["job"]: r for r in verification.iter_rows(named=True)}
    for spec in specs(ctx):
        row = by_job.get(spec.name) or {}
        items.append((f"wrapper of {spec.name} created", "done" if row and row["wrapper"] else "todo", ""))
        items.append((f"{spec.name} scheduled and {'active' if spec.active else 'paused'}",
                      "done" if row and row["active"] == spec.active and row["schedule"] else "todo",
                      row["schedule"] if row and row["schedule"] else "not in cron.job"))
        if spec.kind == "http":
            items.append((f"{spec.name} answered by its endpoint", *answered_state(row)))
        runs = row["scheduled_runs"] if row else 0
        items.append((f"{spec.name} ran on schedule", "done" if runs else "waiting",
                      row["last_run"] if row and runs else "no scheduled run yet (pg_cron fires on the minute)"))
    plan = preview_plan(ctx)
    items.append(("plan: nothing left to do", "done" if not plan.error and plan.changes == 0 else "todo",
                  plan.error or f"{plan.changes} change(s) pending"))
    return pl.DataFrame([{"step": s, "status": st, "detail": d} for s, st, d in items], schema=CHECKLIST_SCHEMA)


def checklist_view(items: pl.DataFrame) -> mo.Html:
    lines = [f"- {_MARK[r['status']]} {esc(r['step'])}" for r in items.iter_rows(named=True)]
    todo = items.filter(pl.col("status") == "todo").height
    waiting = items.filter(pl.col("status") == "waiting").height
    idle = items.filter(pl.col("status") == "idle").height
    verdict = ("**All done.**" if not todo and not waiting else
               f"**{todo} to do, {waiting} waiting** (waiting items complete on their own: pg_cron fires on the minute).")
    if idle:
        verdict += f" {idle} item(s) had nothing to do yet (—): not verified until there is work."
    return say("### Success checklist\n\n" + "\n".join(lines) + "\n\n" + verdict)
