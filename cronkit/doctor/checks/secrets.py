"""Checks of the secrets jobs read: missing, placeholders, keys written into commands, app.* settings."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from cronkit.db import DatabaseError
from cronkit.doctor.catalogue import check
from cronkit.doctor.context import Context, backend_label, ident, store_command
from cronkit.doctor.model import Finding, Severity, Skip
from cronkit.recover import MissingSecret
from cronkit.redact import KEY_PATTERN, fingerprint, key_kind, mask


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
        where = backend_label(need.backend)
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
        set_cmd = store_command(need.backend, need.name, ctx.manifest)
        if need.backend[0] == "vault":
            manual = f"select vault.create_secret('<value>', '{need.name}');"
        elif need.backend[0] == "table":
            manual = f"insert into {need.backend[1]} ({need.backend[2]}, {need.backend[3]}) values ('{need.name}', '<value>');"
        else:
            manual = f"as a superuser: alter database {ident(ctx.database)} set {need.backend[1]}{need.name} = '<value>';"
        if state == "missing":
            message = f"Secret {need.name!r} is missing from {where}, and the jobs read it when firing: " + _consequences(ctx, need.jobs)
            evidence["when_missing"] = {job: str(ctx.on_missing_secret(job)) for job in need.jobs}
        else:
            message = (f"Secret {need.name!r} in {where} holds a placeholder (length {status.length}, fingerprint "
                       f"{status.fingerprint}), not a real value; {jobs} send(s) it instead of a key.")
        yield ctx.found(code, job=job, message=message, evidence=evidence, fix=f"`{set_cmd}` (value from stdin) or {manual}")


#: what a missing secret does to a run, as a person would say it
_CONSEQUENCE = {
    MissingSecret.FAILS: "{jobs} fail(s) every run without calling anything, naming the secret",
    MissingSecret.CALLS_NOTHING: "{jobs} return(s) early: every run is recorded as succeeded and calls nothing",
    MissingSecret.SENDS_NULL: "{jobs} send(s) NULL, which pg_net drops from a header (→ 401) or which makes the URL NULL",
}


def _consequences(ctx: Context, jobs: tuple[str, ...]) -> str:
    by_kind: dict[MissingSecret, list[str]] = {}
    for job in jobs:
        by_kind.setdefault(ctx.on_missing_secret(job), []).append(repr(job))
    parts = [_CONSEQUENCE[kind].format(jobs=", ".join(names[:6]) + (" …" if len(names) > 6 else ""))
             for kind, names in sorted(by_kind.items(), key=lambda kv: list(MissingSecret).index(kv[0]))]
    return "; ".join(parts) + "."


def _secret_failures(ctx: Context) -> list[dict[str, Any]]:
    if not ctx.facts.pg_cron:
        return []
    try:
        runs = ctx.runs()
    except (Skip, DatabaseError):
        return []
    return [{**r, "label": ctx.job_label(r["jobid"])} for r in runs
            if r["status"] == "failed" and "cronkit: secret" in (r["return_message"] or "")]


@check(
    "SECRET_MISSING", Severity.CRITICAL,
    "A secret a job reads when it fires (Vault, secrets table or app.* setting) does not exist.",
    "Store it: `cronkit secrets set NAME` (the value is read from stdin, never from argv), or re-run `cronkit apply` "
    "when the manifest names a source for it.",
)
def _secret_missing(ctx: Context) -> Iterator[Finding]:
    yield from _secret_findings(ctx, "missing", "SECRET_MISSING")


@check(
    "SECRET_PLACEHOLDER", Severity.CRITICAL,
    "A secret holds a value copied from a guide and never filled in (placeholder, your-..., [SERVICE_ROLE_KEY]...).",
    "Store the real value: `cronkit secrets set NAME`.",
)
def _secret_placeholder(ctx: Context) -> Iterator[Finding]:
    yield from _secret_findings(ctx, "placeholder", "SECRET_PLACEHOLDER")


@check(
    "SECRET_INLINED", Severity.CRITICAL,
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
                hits.append({"where": where, "kind": key_kind(key), "fingerprint": fingerprint(key),
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
                        severity=Severity.CRITICAL if privileged else "warning")




@check(
    "SECRET_EXPOSED", Severity.WARNING,
    "Jobs read secrets from a place other roles can read: app.* database settings (every role: pg_db_role_setting, current_setting()) or a secrets table with row level security off and SELECT granted to PUBLIC, anon or authenticated.",
    "Move the secrets to Vault: set backend = \"vault\" under [secrets], `cronkit secrets set NAME`, re-apply (for a "
    "hand-made job: `cronkit import` writes the manifest); then reset the old copies (ALTER DATABASE ... RESET, or "
    "DELETE from the table) and rotate the keys.",
)
def _secret_exposed(ctx: Context) -> Iterator[Finding]:
    by_backend: dict[tuple[str, ...], list[Any]] = {}
    for need in ctx.secret_needs():
        if need.backend[0] in ("guc", "table"):
            by_backend.setdefault(need.backend, []).append(need)
    for backend, needs in sorted(by_backend.items()):
        if backend[0] == "guc":
            readers = ["every role that can connect (pg_db_role_setting, current_setting())"]
        else:
            found = ctx.optional("doctor/table_exposure", {"table": backend[1]})
            if not found:
                continue  # no such table, or this role may not look: SECRET_MISSING / privileges say so
            if found[0]["rls"] or not found[0]["readers"]:
                continue  # row level security on (no policy: no rows), or nobody but its owner may SELECT
            readers = [f"{r} (SELECT granted, row level security off)" for r in found[0]["readers"]]
        jobs = sorted({j for n in needs for j in n.jobs})
        names = sorted({n.name for n in needs})
        where = backend_label(backend)
        message = (f"{len(names)} secret(s) in {where} ({', '.join(names[:6])}) that {len(jobs)} job(s) read are "
                   f"readable by {'; '.join(readers)}: anyone with those rights can take the keys.")
        yield ctx.found("SECRET_EXPOSED", job=jobs[0] if len(jobs) == 1 else None, message=message,
                        evidence={"backend": where, "secrets": names, "jobs": jobs, "readable_by": readers})


@check(
    "GUC_SECRETS_UNSUPPORTED", Severity.WARNING,
    "Jobs read secrets from app.* database settings, which only a superuser can set (hosted Supabase refuses: 42501) and every role can read in pg_db_role_setting.",
    "Move the secrets to Vault: set backend = \"vault\" under [secrets], `cronkit secrets set NAME`, re-apply; for "
    "hand-written jobs read vault.decrypted_secrets instead of current_setting('app.settings....').",
)
def _guc_secrets_unsupported(ctx: Context) -> Iterator[Finding]:
    needs = [n for n in ctx.secret_needs() if n.backend[0] == "guc"]
    if not needs or ctx.facts.superuser:
        return
    statuses = ctx.safe_statuses()
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
                    severity=Severity.WARNING if unusable else "info")
