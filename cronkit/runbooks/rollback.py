"""The rollback runbook's steps: disable, enable, remove or tear down a project's jobs, previewed with the exact SQL.

Guide 000 "Rollback / Feature Removal", guide 004 "Management". The preview renders the very
statements the write path runs (:func:`cronkit.registry.removal_statements` and
:func:`cronkit.registry.active_statements`, executed by :mod:`cronkit.jobs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import marimo as mo
import polars as pl

from cronkit import db, jobs, registry
from cronkit.db import Conn
from cronkit.errors import ConfigError, CronkitError
from cronkit.registry import active_statements, removal_statements
from cronkit.runbooks.context import (
    RunbookContext,
    registered_jobs,
    secret_names,
    secret_statuses,
)
from cronkit.runbooks.runtime import Gate, NotApplied, esc, say
from cronkit.secrets import SecretState, backend_for, delete_secret
from cronkit.statement import Statement


class RollbackAction(StrEnum):
    """What the rollback runbook can do to a project's jobs."""

    DISABLE = "disable"
    ENABLE = "enable"
    REMOVE = "remove"
    TEARDOWN = "teardown"


ROLLBACK_ACTIONS: tuple[str, ...] = tuple(RollbackAction)
#: the job dropdown's entry for "every job of the project"
ALL_JOBS = "(all jobs)"

PROJECT_JOBS_SCHEMA: dict[str, Any] = {
    "job": pl.String, "jobid": pl.Int64, "schedule": pl.String, "active": pl.Boolean,
    "wrapper": pl.String, "wrapper_exists": pl.Boolean,
}


def project_jobs(ctx: RunbookContext) -> pl.DataFrame:
    """The project's jobs as cronkit registered them, with their live ``cron.job`` state."""
    rows = [{"job": m.jobname, "jobid": m.jobid, "schedule": m.schedule, "active": m.active,
             "wrapper": m.wrapper, "wrapper_exists": m.wrapper_exists} for m in registered_jobs(ctx)]
    return pl.DataFrame(rows, schema=PROJECT_JOBS_SCHEMA)


def job_state(jobs_frame: pl.DataFrame) -> pl.DataFrame:
    """The stable part of :func:`project_jobs` (no jobid): what a rollback changes."""
    return jobs_frame.select("job", "schedule", "active", "wrapper_exists")


def job_choices(ctx: RunbookContext, wanted: str | None = None) -> list[str]:
    """The job dropdown: every job of the project; a job asked for that is not there stays in the
    list (the preview then says so) rather than silently becoming "all jobs"."""
    names = project_jobs(ctx)["job"].to_list()
    return [ALL_JOBS, *names, *([wanted] if wanted and wanted not in names else [])]


def rollback_action(wanted: str | None) -> str:
    """The action parameter, checked: one of :data:`ROLLBACK_ACTIONS`."""
    action = (wanted or RollbackAction.DISABLE).strip().lower()
    if action not in ROLLBACK_ACTIONS:
        raise ConfigError(f"--action {wanted!r} is not a rollback action.", remedy=f"Use one of: {', '.join(ROLLBACK_ACTIONS)}.")
    return action


def chosen_job(value: str | None) -> str | None:
    return None if not value or value == ALL_JOBS else value


@dataclass(frozen=True)
class RollbackPlan:
    action: str
    job: str | None
    steps: tuple[tuple[str, str], ...]  # (what, exact SQL)
    skipped: tuple[str, ...]  # targets already in the wanted state
    with_secrets: bool = False
    error: str | None = None  # the request cannot be carried out as asked
    #: the secrets the plan deletes (teardown with secrets)
    doomed_secrets: tuple[str, ...] = ()

    @property
    def nothing_to_do(self) -> bool:
        return not self.steps and self.error is None


def name_to_type(action: str, job: str | None, project: str) -> str | None:
    """What must be typed before a destructive action runs: the job for remove, the project for
    teardown (a slip of the mouse must not tear down a project); None for pause and resume."""
    if action == RollbackAction.REMOVE:
        return job
    if action == RollbackAction.TEARDOWN:
        return project
    return None


def untyped(action: str, job: str | None, project: str, typed: str | None) -> str | None:
    """What is still missing before a destructive action may run (None: nothing): the exact name."""
    wanted = name_to_type(action, job, project)
    if wanted is None or (typed or "").strip() == wanted:
        return None
    return f"Type **{esc(wanted)}** in the box above to confirm the {action} (headless: `--confirm {esc(wanted)}`)."


def confirm_box(action: str, job: str | None, project: str, value: str | None = None) -> Any:
    """The text box the name is typed into (shown only for remove and teardown)."""
    wanted = name_to_type(action, job, project)
    label = f"Type **{wanted}** to confirm the {action}" if wanted else "Nothing to type for this action"
    return mo.ui.text(value=value or "", label=label, disabled=wanted is None, full_width=True)


def _shown(conn: Conn, statements: Sequence[Statement]) -> str:
    return "\n".join(st.display(conn) + ";" for st in statements)


def rollback_plan(ctx: RunbookContext, action: str, job: str | None = None, with_secrets: bool = False) -> RollbackPlan:
    """What ``action`` would do, with the exact SQL, and what is already in the wanted state.

    ``disable``/``enable``: ``cron.alter_job(active := ...)`` (history and jobid kept); ``remove``:
    unschedule one job and drop its wrapper; ``teardown``: everything the project created, and with
    ``with_secrets`` the secrets only its jobs read. ``job`` narrows disable/enable to one job.
    """
    if action not in ROLLBACK_ACTIONS:
        raise ConfigError(f"Unknown action {action!r}.", remedy=f"Use one of: {', '.join(ROLLBACK_ACTIONS)}.")
    frame = project_jobs(ctx)
    if job and job not in frame["job"].to_list() and action != RollbackAction.TEARDOWN:
        known = ", ".join(frame["job"].to_list()) or "(none)"
        return RollbackPlan(action, job, (), (), error=f"{job!r} is not a job of project {ctx.project!r} in this database "
                                                     f"(its jobs: {known}).")
    if action == RollbackAction.REMOVE and not job:
        return RollbackPlan(action, None, (), (), error="Choose the job to remove (or use teardown for all of them).")
    targets = [r for r in frame.iter_rows(named=True) if action == RollbackAction.TEARDOWN or not job or r["job"] == job]
    steps: list[tuple[str, str]] = []
    skipped: list[str] = []
    doomed: list[str] = []
    with ctx.read() as conn:  # one connection renders every statement
        if action in (RollbackAction.DISABLE, RollbackAction.ENABLE):
            want = action == RollbackAction.ENABLE
            for r in targets:
                if r["jobid"] is None:
                    skipped.append(f"{r['job']}: not in cron.job")
                elif r["active"] == want:
                    skipped.append(f"{r['job']}: already {'active' if want else 'inactive'}")
                else:
                    steps.append((f"{action} {r['job']}",
                                  _shown(conn, active_statements(r["jobid"], r["job"], want, managed=True))))
        else:
            for r in targets:
                steps.append((f"remove job {r['job']} and its wrapper {r['wrapper']}",
                              _shown(conn, removal_statements(r["job"], r["jobid"], r["wrapper"]))))
            if action == RollbackAction.TEARDOWN and with_secrets:
                others = _secrets_read_elsewhere(ctx, conn)
                for status in secret_statuses(ctx, secret_names(ctx)):
                    if status.state == SecretState.MISSING:
                        skipped.append(f"secret {status.name}: already absent")
                    elif status.name in others:
                        skipped.append(f"secret {status.name}: kept, other projects' jobs read it "
                                       f"({', '.join(others[status.name])})")
                    else:
                        doomed.append(status.name)
                        steps.append((f"delete secret {status.name} ({ctx.manifest.secrets.backend})",
                                      _shown(conn, [backend_for(ctx.manifest.secrets).delete_statement(conn, status.name)])))
            if not steps and not skipped:
                skipped.append(f"project {ctx.project!r} has no jobs in this database")
    return RollbackPlan(action, job, tuple(steps), tuple(skipped), with_secrets, doomed_secrets=tuple(doomed))


def _secrets_read_elsewhere(ctx: RunbookContext, conn: Conn) -> dict[str, list[str]]:
    """Secrets the project's jobs read that jobs of *other* cronkit projects read too."""
    names = set(secret_names(ctx))
    out: dict[str, list[str]] = {}
    for name, readers in sorted(registry.secret_readers(conn).items()):
        if name in names:
            others = sorted(jobname for jobname, project in readers if project != ctx.project)
            if others:
                out[name] = others
    return out


def rollback_view(plan: RollbackPlan) -> mo.Html:
    head = f"**{plan.action}**" + (f" of **{esc(plan.job)}**" if plan.job else "")
    parts = []
    if plan.error:
        parts.append(f"❌ {esc(plan.error)}")
    elif plan.nothing_to_do:
        parts.append(f"✅ Nothing to do for {head}.")
    else:
        parts.append(f"{head} would run {len(plan.steps)} step(s) in one transaction:")
        parts += [f"**{what}**\n```sql\n{statement}\n```" for what, statement in plan.steps]
    parts += [f"- skipped: {esc(s)}" for s in plan.skipped]
    if plan.action == RollbackAction.TEARDOWN and not plan.with_secrets:
        parts.append("Secrets are kept (tick *also delete secrets* to remove them; run history in "
                     "cron.job_run_details stays either way).")
    return say("\n\n".join(parts))


@dataclass(frozen=True)
class RollbackOutcome:
    action: str
    done: tuple[str, ...]
    error: str | None = None
    skipped: tuple[str, ...] = ()

    def view(self) -> mo.Html:
        if self.error:
            return say(f"❌ Nothing was changed:\n\n```\n{self.error}\n```")
        if not self.done:
            why = "".join(f"\n- {esc(s)}" for s in self.skipped)
            return say(f"✅ Nothing to do: {self.action} was already in effect; nothing was changed.{why}")
        return say("Done:\n\n" + "\n".join(f"- {esc(line)}" for line in self.done))


def rollback(ctx: RunbookContext, action: str, job: str | None, with_secrets: bool,
             ok: bool | Gate) -> RollbackOutcome | NotApplied:
    """Carry out :func:`rollback_plan` with :mod:`cronkit.jobs` when confirmed (one transaction)."""
    if not ok:
        return NotApplied.of(ok, action.capitalize() if action else "Roll back")
    plan = rollback_plan(ctx, action, job, with_secrets)
    if plan.error:
        return RollbackOutcome(action, (), error=plan.error)
    if plan.nothing_to_do:
        return RollbackOutcome(action, (), skipped=plan.skipped)
    done: list[str] = []
    try:
        with ctx.write() as conn:
            if action in (RollbackAction.DISABLE, RollbackAction.ENABLE):
                for what, _sql in plan.steps:
                    name = what.split(" ", 1)[1]
                    row = jobs.set_active(conn, name, action == RollbackAction.ENABLE)
                    done.append(f"{name}: {'active' if row.active else 'inactive'}")
            elif action == RollbackAction.REMOVE:
                jobs.remove_job(conn, job or "")
                done.append(f"removed job {job} and its wrapper")
            else:
                done += jobs.teardown(conn, ctx.manifest, secrets=False, dry_run=False)
                # Only the secrets the plan lists (one other projects read stays), in the same transaction.
                backend = backend_for(ctx.manifest.secrets)
                for name in plan.doomed_secrets:
                    with db.translated(f"delete secret {name!r}"):
                        delete_secret(conn, backend, name, project=ctx.project)
                    done.append(f"delete secret {name!r} ({backend.kind})")
            conn.commit()
    except CronkitError as exc:  # nothing was committed
        return RollbackOutcome(action, (), error=str(exc))
    return RollbackOutcome(action, tuple(done))
