"""Checks of the secrets jobs read: missing, placeholders, keys written into commands, app.* settings."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

from cronkit.db import DatabaseError
from cronkit.doctor.catalogue import check
from cronkit.doctor.context import Context, backend_label, ident
from cronkit.doctor.model import Finding, Severity, Skip
from cronkit.redact import KEY_PATTERN, fingerprint, mask


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
        set_cmd = f"cronkit secrets set {need.name}"
        if need.backend[0] == "vault":
            manual = f"select vault.create_secret('<value>', '{need.name}');"
        elif need.backend[0] == "table":
            manual = f"insert into {need.backend[1]} ({need.backend[2]}, {need.backend[3]}) values ('{need.name}', '<value>');"
        else:
            manual = f"as a superuser: alter database {ident(ctx.database)} set {need.backend[1]}{need.name} = '<value>';"
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
                        severity=Severity.CRITICAL if privileged else "warning")


def _key_kind(key: str) -> str:
    if key.startswith("sb_secret_"):
        return "sb_secret"
    if key.startswith("sb_publishable_"):
        return "sb_publishable"
    try:
        payload = key.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        role = claims.get("role") if isinstance(claims, dict) else None
        return f"jwt:{role}" if isinstance(role, str) and re.fullmatch(r"[a-z_]{1,40}", role) else "jwt"
    except (ValueError, IndexError):
        return "jwt"


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
