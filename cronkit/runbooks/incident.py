"""The incident runbook's data and views: the doctor's findings with evidence, cause and fix, mapped to the guides.

The diagnosis is :func:`cronkit.doctor.diagnose` (read-only); this module only scopes it to the
manifest, scrubs it with the one scrubber and shows it.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

import marimo as mo
import polars as pl

from cronkit import doctor
from cronkit.runbooks.context import RunbookContext, scrubber
from cronkit.runbooks.monitor import monitor_scope
from cronkit.runbooks.runtime import esc, prose, say
from cronkit.text import human_duration

_SEVERITY_MARK = {doctor.Severity.CRITICAL: "🔴", doctor.Severity.WARNING: "🟠", doctor.Severity.INFO: "🔵"}

#: the guides' troubleshooting items and the doctor checks that cover each
GUIDE_TROUBLESHOOTING = (
    ("000", "Job not executing: is pg_cron enabled?", ("PG_CRON_MISSING", "PG_CRON_NOT_PRELOADED", "SCHEDULER_DOWN", "WRONG_CRON_DATABASE")),
    ("000", "Edge Function not reachable (local URL from inside the database)", ("HTTP_UNREACHABLE",)),
    ("000", "Vault secrets missing", ("SECRET_MISSING",)),
    ("000", "Vault secret mismatch (401 errors): re-sync the key", ("HTTP_UNAUTHORIZED",)),
    ("000", "View job run history / HTTP failures", ("CONSECUTIVE_FAILURES", "HTTP_SERVER_ERROR", "HTTP_CLIENT_ERROR")),
    ("001", "Syncs not running: is the cron job enabled?", ("JOB_INACTIVE", "MISSED_RUNS")),
    ("001", "Check function logs for errors", ("HTTP_SERVER_ERROR", "CONSECUTIVE_FAILURES")),
    ("002", "Extension installation fails / pg_cron is not installed", ("PG_CRON_MISSING", "PG_NET_MISSING")),
    ("002", "Vault secrets not found", ("SECRET_MISSING", "SECRET_PLACEHOLDER")),
    ("003", "Common error: schema net does not exist", ("PG_NET_MISSING", "PG_NET_WORKER_DOWN")),
    ("003", "Still 401s: wrong key, placeholder, scheduler token", ("HTTP_UNAUTHORIZED", "SECRET_PLACEHOLDER", "SECRET_INLINED")),
    ("003", "Edge Function EarlyDrop / timeouts", ("HTTP_TIMEOUT", "OVERRUNS")),
    ("004", "app.settings.* not configured (Custom Config)", ("GUC_SECRETS_UNSUPPORTED", "SECRET_MISSING")),
    ("004", "Local-time schedules in UTC (03:00 Los Angeles)", ("DST_DRIFT",)),
    ("004", "Refresh queue processing", ("QUEUE_BACKLOG", "QUEUE_STUCK_ITEMS", "RETRIES_EXHAUSTED")),
)


def diagnosis(ctx: RunbookContext, hours: float = 6.0) -> doctor.Report:
    """``cronkit doctor`` for the manifest (or the whole database) over the last ``hours``, scrubbed.

    The doctor runs in the read's READ ONLY transaction (its checks in savepoints of it).
    """
    with ctx.read(timeout_ms=None) as conn:  # the doctor sets its own per-check timeout
        report = doctor.diagnose(conn, ctx.manifest if ctx.has_manifest else None, environment=ctx.environment,
                                 environ=ctx.environ, window=timedelta(hours=float(hours)))
    clean = scrubber(ctx)
    findings = [dataclasses.replace(f, message=clean.text(f.message), fix=clean.text(f.fix), evidence=clean.deep(f.evidence))
                for f in report.findings]
    return dataclasses.replace(report, findings=findings, skipped=[(c, clean.text(r)) for c, r in report.skipped])


FINDINGS_SCHEMA: dict[str, Any] = {"severity": pl.String, "code": pl.String, "job": pl.String, "message": pl.String,
                                   "in_scope": pl.Boolean}


def findings_frame(report: doctor.Report, ctx: RunbookContext) -> pl.DataFrame:
    """The findings, most severe first, and whether each concerns the manifest's jobs (or the server)."""
    scope = set(monitor_scope(ctx) or ())
    rows = [{"severity": f.severity, "code": f.code, "job": f.job, "message": f.message,
             "in_scope": (not ctx.has_manifest) or f.job is None or f.job in scope} for f in report.findings]
    return pl.DataFrame(rows, schema=FINDINGS_SCHEMA)


def scoped_findings(report: doctor.Report, ctx: RunbookContext) -> pl.DataFrame:
    """The findings about the manifest's own jobs (severity, code, job), most severe first.

    Server-wide findings (job None) depend on everything else in the database and are left out.
    """
    return findings_frame(report, ctx).filter(pl.col("in_scope") & pl.col("job").is_not_null()).select("severity", "code", "job")


def incident_summary(report: doctor.Report, ctx: RunbookContext) -> mo.Html:
    s = report.summary
    other = findings_frame(report, ctx).filter(~pl.col("in_scope")).height
    window = human_duration(report.window)
    head = (f"**{s['critical']} critical, {s['warning']} warning(s), {s['info']} info** in the last "
            f"{window}; {len(report.checked)} checks ran, {len(report.skipped)} skipped.")
    if not report.findings and not report.missing_privileges:
        head = f"✅ No problems found in the last {window} ({len(report.checked)} checks ran, {len(report.skipped)} skipped)."
    if other:
        head += f" {other} finding(s) concern jobs outside this manifest (shown last)."
    # Sections this role cannot read: never "no problems" about what was not looked at.
    head += "".join(f"\n\n⚠️ {esc(line)}" for line in report.missing_privileges)
    return say(head)


def _evidence_view(evidence: Any) -> mo.Html:
    if isinstance(evidence, list) and evidence and all(isinstance(r, dict) for r in evidence):
        keys = list(dict.fromkeys(k for r in evidence for k in r))
        table = pl.DataFrame({k: [_cell(r.get(k)) for r in evidence] for k in keys})
        return mo.vstack([mo.md("**Evidence**"), table])
    text = json.dumps(evidence, indent=2, default=str, sort_keys=True)
    if len(text) > 4000:
        text = text[:4000] + "\n…"
    return mo.md(f"**Evidence**\n\n```json\n{text}\n```")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, sort_keys=True)
    return str(value)


def finding_view(finding: doctor.Finding, in_scope: bool = True) -> mo.Html:
    """One finding: what, the evidence, the likely cause (the check's description), the fix, and
    where the guides talk about it."""
    entry = doctor.CATALOGUE.get(finding.code)
    guides = [f"guide {g}: *{esc(item)}*" for g, item, codes in GUIDE_TROUBLESHOOTING if finding.code in codes]
    where = f" — job **{esc(finding.job)}**" if finding.job else ""
    scope = "" if in_scope else " _(not a job of this manifest)_"
    parts = [
        mo.md(f"### {_SEVERITY_MARK.get(finding.severity, '')} {finding.severity.upper()} `{finding.code}`{where}{scope}"),
        mo.Html(f"<p>{prose(finding.message)}</p>"),
        _evidence_view(finding.evidence),
        mo.Html(f"<p><strong>Likely cause.</strong> {prose(entry.description) if entry else ''}</p>"
                f"<p><strong>Fix.</strong> {prose(finding.fix)}</p>"),
    ]
    if guides:
        parts.append(mo.md(f"In the guides: {'; '.join(guides)}."))
    return mo.vstack(parts)


def walk_view(report: doctor.Report, ctx: RunbookContext) -> mo.Html:
    """Every finding, most severe first; this manifest's (and server-wide) ones before others."""
    if not report.findings:
        return mo.md("Nothing to walk through: no findings.")
    flags = findings_frame(report, ctx)["in_scope"].to_list()
    ordered = sorted(zip(report.findings, flags, strict=True), key=lambda pair: not pair[1])
    return mo.vstack([finding_view(f, scoped) for f, scoped in ordered])


def skipped_frame(report: doctor.Report) -> pl.DataFrame:
    return pl.DataFrame([{"check": c, "reason": r} for c, r in report.skipped], schema={"check": pl.String, "reason": pl.String})


def guide_coverage(report: doctor.Report) -> pl.DataFrame:
    """Each troubleshooting item of the guides: found (by which check), clear, or not checked here."""
    found = {f.code for f in report.findings}
    skipped = {c for c, _ in report.skipped}
    rows = []
    for guide, item, codes in GUIDE_TROUBLESHOOTING:
        hits = [c for c in codes if c in found]
        if hits:
            status = "found: " + ", ".join(hits)
        elif all(c in skipped for c in codes):
            status = "not checked (skipped)"
        else:
            status = "clear"
        rows.append({"guide": guide, "troubleshooting": item, "checks": ", ".join(codes), "status": status})
    return pl.DataFrame(rows, schema={"guide": pl.String, "troubleshooting": pl.String, "checks": pl.String, "status": pl.String})
