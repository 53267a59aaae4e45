"""Checks of the jobs themselves: paused although declared active, owned by a role that is gone."""

from __future__ import annotations

from collections.abc import Iterator

from cronkit.doctor.catalogue import check
from cronkit.doctor.context import Context, ident
from cronkit.doctor.model import Finding, Severity


@check(
    "JOB_INACTIVE", Severity.WARNING,
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
        declared = spec.active if spec is not None else registry.spec.get("active") if registry else None
        if declared is False:
            continue
        evidence = {"jobid": job["jobid"], "jobname": job["jobname"], "schedule": job["schedule"],
                    "username": job["username"], "active": False,
                    "declared_active": declared, "managed_by": registry.project if registry else None}
        fix = f"SELECT cron.alter_job({job['jobid']}, active := true);" + (f"  (or `cronkit resume {label}`)" if registry else "")
        if declared:
            where = "the manifest" if spec is not None else f"cronkit project {registry.project!r}" if registry else "its declaration"
            message = f"Job {label!r} is paused (active = false) although {where} declares it active: it does not run."
            yield ctx.found("JOB_INACTIVE", job=label, message=message, evidence=evidence, fix=fix)
        else:
            message = f"Job {label!r} is paused (active = false) and does not run; nothing declares whether it should."
            yield ctx.found("JOB_INACTIVE", job=label, message=message, evidence=evidence, severity=Severity.INFO, fix=fix)

@check(
    "JOB_OWNER_MISSING", Severity.CRITICAL,
    "A job belongs to a role that no longer exists: the scheduler exits at start (pg_cron#399), stopping every job.",
    "As a superuser: recreate the role (CREATE ROLE name LOGIN) or delete the job row "
    "(DELETE FROM cron.job WHERE jobid = N; cron.unschedule only finds your own jobs), then restart the scheduler.",
)
def _job_owner_missing(ctx: Context) -> Iterator[Finding]:
    ctx.require_cron()
    for row in ctx.missing_owner_jobs():
        message = (f"Job {row['label']!r} (jobid {row['jobid']}) belongs to role {row['username']!r}, which does not exist. "
                   "pg_cron's scheduler looks up every job's role — even inactive ones — and exits when one is missing, "
                   "so no job in this cluster runs while this row exists.")
        fix = (f"As a superuser: CREATE ROLE {ident(row['username'])} LOGIN;  or  DELETE FROM cron.job WHERE jobid = {row['jobid']};  "
               "then restart the database so the scheduler starts again.")
        evidence = {k: row[k] for k in ("jobid", "jobname", "username", "active", "schedule")}
        evidence["role_exists"] = False
        yield ctx.found("JOB_OWNER_MISSING", job=row["label"], message=message, evidence=evidence, fix=fix)


@check(
    "JOBS_UNDECLARED_IN_SCHEMAS", Severity.WARNING,
    "A supabase/schemas directory (declarative schemas) near the manifest does not mention some of its cron jobs: "
    "a diff or schema apply from it may plan cron.unschedule for them (pg-delta; supabase/pg-toolbelt#318).",
    "Ship cron jobs as a migration (`cronkit export migration cronkit.toml --env prod`) and keep them out of the "
    "declarative flow, or declare each job in the directory (e.g. `-- cronkit job: NAME`); see docs/migrations.md.",
)
def _jobs_undeclared_in_schemas(ctx: Context) -> Iterator[Finding]:
    from cronkit.declarative import declarative_gap

    if ctx.manifest is None:
        return
    gap = declarative_gap(ctx.manifest.path, [spec.name for spec in ctx.specs()])
    if gap is None:
        return
    yield ctx.found("JOBS_UNDECLARED_IN_SCHEMAS", job=None, message=gap.message(), fix=gap.fix,
                    evidence={"directory": str(gap.directory), "undeclared": list(gap.undeclared)})
