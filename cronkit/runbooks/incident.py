"""The incident runbook's data and views: the verdict first, then the doctor's findings with
readable evidence, cause and fix, mapped to the guides.

The diagnosis is :func:`cronkit.doctor.diagnose` (read-only); this module scopes it to the
manifest, scrubs it with the one scrubber, reads the root cause and its chain from the doctor's
table of causes (:mod:`cronkit.doctor.causes`) and shows it. Every fix comes from the findings
(their ``fix`` and the ``store_with`` commands the doctor built for the job's real backend).
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import marimo as mo
import polars as pl

from cronkit import doctor
from cronkit.doctor import causes
from cronkit.doctor.catalogue import SECTIONS
from cronkit.doctor.context import backend_key, backend_label
from cronkit.manifest import Manifest
from cronkit.runbooks.context import RunbookContext, scrubber
from cronkit.runbooks.monitor import monitor_scope
from cronkit.runbooks.runtime import esc, prose, say
from cronkit.text import ago, human_duration

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


# -- the verdict ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fix:
    """What to do about the root cause: commands to copy, the runbook that does it, and the prose."""

    #: shell commands, exact for this job's backend and manifest (the findings' own commands)
    commands: tuple[str, ...]
    #: the runbook that performs the fix, with its parameters filled in, or None
    runbook: str | None
    #: the finding's fix as the doctor words it
    text: str


@dataclass(frozen=True)
class Verdict:
    """The incident in one sentence: the most likely root cause, its chain of consequences, the fix.

    Built from the (already scrubbed) findings only; ``root`` is None when there is no problem.
    """

    sentence: str
    #: cause first, then each consequence it leads to ("stale key in …" → "401 on …" → "queue … backlog")
    chain: tuple[str, ...]
    fix: Fix | None
    root: doctor.Finding | None
    #: every other finding the root cause explains
    explains: tuple[doctor.Finding, ...] = ()

    @property
    def healthy(self) -> bool:
        return self.root is None


def problems(report: doctor.Report, scope: Collection[str] | None = None) -> list[doctor.Finding]:
    """The report's findings above info, most severe first, about ``scope``'s jobs or the server."""
    wanted = None if scope is None else set(scope)
    return [f for f in report.findings if f.severity is not doctor.Severity.INFO
            and (wanted is None or not causes.jobs_of(f) or bool(causes.jobs_of(f) & wanted))]


def verdict(report: doctor.Report, scope: Collection[str] | None = None, manifest: Manifest | None = None) -> Verdict:
    """The most likely root cause of ``report``: its most severe finding that no other finding
    explains (:mod:`cronkit.doctor.causes`), with the chain it starts and its fix. ``scope`` (job
    names) leaves out findings about other jobs; ``manifest`` fills in the runbook that fixes it."""
    found = problems(report, scope)
    if not found:
        return _calm(report, len(problems(report)) if scope is not None else 0)
    root = next((f for f in found if not causes.is_consequence(f, found)), found[0])
    steps = causes.chain(root, found)
    links = [*_origin(root), *(_link(f) for f in steps)]
    return Verdict(sentence=_sentence(root), chain=tuple(links), fix=_fix(root, manifest), root=root,
                   explains=causes.consequences(root, found))


def _calm(report: doctor.Report, elsewhere: int) -> Verdict:
    window = human_duration(report.window)
    sections = ", ".join(SECTIONS)
    sentence = (f"No problem found in the last {window}: {len(report.checked)} checks ran ({sections}), "
                f"{len(report.skipped)} could not run here.")
    if report.missing_privileges:
        sentence = (f"No problem found in what this role can read over the last {window} ({len(report.checked)} checks "
                    f"ran); {len(report.missing_privileges)} section(s) could not be read, so nothing is claimed about them.")
    if elsewhere:
        sentence += f" {elsewhere} finding(s) concern jobs outside this manifest (listed below)."
    return Verdict(sentence=sentence, chain=(), fix=None, root=None)


def _auth_secrets(finding: doctor.Finding) -> list[Mapping[str, Any]]:
    """The secrets a 401's job sends, the stale ones (differing from their source) first."""
    evidence = finding.evidence if isinstance(finding.evidence, Mapping) else {}
    sent = [a for a in evidence.get("auth_secrets") or [] if isinstance(a, Mapping)]
    return sorted(sent, key=lambda a: a.get("matches_source") is not False)


def _auth_cause(finding: doctor.Finding) -> str | None:
    counts = finding.evidence.get("causes") if isinstance(finding.evidence, Mapping) else None
    return max(counts, key=lambda c: counts[c]) if isinstance(counts, Mapping) and counts else None


def _where(secret: Mapping[str, Any]) -> str:
    return f"{secret.get('backend')} ({secret.get('secret')})"


def _origin(root: doctor.Finding) -> list[str]:
    """Links before the root finding's own: what in the job's setup the evidence blames."""
    if root.code != "HTTP_UNAUTHORIZED":
        return []
    sent, cause = _auth_secrets(root), _auth_cause(root)
    if cause == "missing_authorization_header":
        return ["no Authorization header (a NULL value pg_net drops)"]
    if not sent:
        return []
    if cause == "invalid_jwt":
        return [f"stale key in {_where(sent[0])}"]
    return [f"the function's shared secret differs from {_where(sent[0])}"]


def _count(finding: doctor.Finding, key: str) -> Any:
    return finding.evidence.get(key) if isinstance(finding.evidence, Mapping) else None


#: a link of the chain per code: how one finding reads as a step (``{job}``, ``{n}``, ``{table}``)
_LINKS: Mapping[str, str] = {
    "HTTP_UNAUTHORIZED": "401 on {job} ({n} call(s))",
    "HTTP_SERVER_ERROR": "5xx on {job} ({n} call(s))",
    "HTTP_CLIENT_ERROR": "4xx on {job} ({n} call(s))",
    "HTTP_REDIRECT": "unfollowed redirect on {job} ({n} call(s))",
    "HTTP_TIMEOUT": "timeouts on {job} ({n} call(s))",
    "HTTP_UNREACHABLE": "{job} cannot reach its endpoint ({n} call(s))",
    "CONSECUTIVE_FAILURES": "{job} failed {n} run(s) in a row",
    "MISSED_RUNS": "missed runs of {job}",
    "QUEUE_BACKLOG": "queue {table} backlog ({n} pending)",
    "RETRIES_EXHAUSTED": "queue {table}: {n} item(s) out of retries",
    "QUEUE_STUCK_ITEMS": "queue {table}: {n} item(s) stuck",
    "SECRET_MISSING": "secret {secret} missing from {backend}",
    "SECRET_PLACEHOLDER": "placeholder in {backend} ({secret})",
    "SCHEDULER_DOWN": "pg_cron scheduler not running",
    "PG_NET_WORKER_DOWN": "pg_net worker not running",
}
#: which evidence field counts what a link's ``{n}`` says
_COUNTED = {"CONSECUTIVE_FAILURES": "failed_in_a_row", "QUEUE_BACKLOG": "pending", "RETRIES_EXHAUSTED": "exhausted",
            "QUEUE_STUCK_ITEMS": "stuck", "MISSED_RUNS": "not_started"}


def _link(finding: doctor.Finding) -> str:
    template = _LINKS.get(finding.code)
    job = finding.job or "several jobs"
    if template is None:
        return finding.code.lower().replace("_", " ") + (f" on {finding.job}" if finding.job else "")
    return template.format(job=job, n=_count(finding, _COUNTED.get(finding.code, "failed")) or "?",
                           table=_count(finding, "table") or "?", secret=_count(finding, "secret") or "?",
                           backend=_count(finding, "backend") or "?")


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def _sentence(root: doctor.Finding) -> str:
    """The root cause in one sentence: said directly for a 401 whose key the evidence names, else
    the first sentence of the finding's message."""
    sent, cause = _auth_secrets(root), _auth_cause(root)
    if root.code == "HTTP_UNAUTHORIZED" and root.job and sent and cause == "invalid_jwt":
        secret = sent[0]
        return (f"Job {root.job!r} is refused with 401 because the key it sends — secret {secret.get('secret')!r} "
                f"in {secret.get('backend')} — is stale or wrong.")
    first = _SENTENCE_END.split(root.message.strip(), maxsplit=1)[0]
    return first if first.endswith((".", "!", "?")) else first + "."


_COMMAND = re.compile(r"`(cronkit [^`]+)`")


def _fix(root: doctor.Finding, manifest: Manifest | None) -> Fix:
    """The root finding's fix: the store commands the doctor built for the job's own backend (a
    401) or the ``cronkit …`` commands its fix names, NAME filled in with the job; and the
    rotate-secret runbook when the secret lives in the manifest's backend."""
    runbook = None
    stores = [str(a["store_with"]) for a in _auth_secrets(root) if a.get("store_with")]
    if root.code == "HTTP_UNAUTHORIZED" and stores:
        commands = tuple(dict.fromkeys(stores))
        secret = _auth_secrets(root)[0]
        if manifest is not None and secret.get("backend") == backend_label(backend_key(manifest.secrets)):
            runbook = f"marimo run runbooks/rotate_secret.py -- --manifest {manifest.path} --secret {secret.get('secret')}"
    else:
        found = [c.strip() for c in _COMMAND.findall(root.fix)]
        if root.job:
            found = [re.sub(r"\bNAME\b", root.job, c) if c.startswith(("cronkit run-now", "cronkit import")) else c
                     for c in found]
        commands = tuple(c for c in dict.fromkeys(found) if not re.search(r"\bNAME\b", c))
        if len(commands) < len(dict.fromkeys(found)):
            commands = ()  # a step would be missing (a name only the reader knows): the fix's own words say it whole
    return Fix(commands=commands, runbook=runbook, text=root.fix)


def verdict_for(report: doctor.Report, ctx: RunbookContext) -> Verdict:
    """:func:`verdict` for the runbook's manifest (its jobs; every job without one)."""
    return verdict(report, monitor_scope(ctx), ctx.manifest if ctx.has_manifest else None)


def verdict_view(v: Verdict) -> mo.Html:
    """The verdict as the runbook opens with it: the cause in bold, the chain as arrows, the fix
    as a block to copy."""
    head = ("✅ " if v.healthy else "🔴 ") + f"**{esc(v.sentence)}**"
    parts = [mo.md(head)]
    if v.chain:
        parts.append(mo.md(" → ".join(esc(link) for link in v.chain)))
    if v.fix is not None:
        if v.fix.commands:
            stores = any(c.startswith("cronkit secrets set") for c in v.fix.commands)
            note = " (the value from stdin, a hidden prompt or `--from-env VARIABLE`; never an argument)" if stores else ""
            block = "\n".join(v.fix.commands)
            parts.append(mo.md(f"**Fix**{note}:\n\n```sh\n{block}\n```"))
        else:
            parts.append(mo.Html(f"<p><strong>Fix.</strong> {prose(v.fix.text)}</p>"))
        if v.fix.runbook:
            parts.append(mo.md("Or the rotate-secret runbook, which stores it and checks the job's next call:"
                               f"\n\n```sh\n{v.fix.runbook}\n```"))
    if v.explains:
        parts.append(mo.md(f"This also explains {len(v.explains)} other finding(s): "
                           + ", ".join(f"`{f.code}`" + (f" ({esc(f.job)})" if f.job else "") for f in v.explains) + "."))
    return mo.vstack(parts)


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


# -- evidence as a person reads it -----------------------------------------------------------------

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?")
_CELL = "white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word;vertical-align:top;text-align:left"
_TABLE = "border-collapse:collapse;table-layout:auto;max-width:100%"


def _moment(value: Any) -> datetime | None:
    """A timestamp the evidence carries (a datetime, or ISO 8601 text as :func:`doctor.model.jsonable`
    writes it), or None."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO.fullmatch(value.strip()):
        try:
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def evidence_text(value: Any, now: datetime) -> str:
    """One evidence value as text: times relative to ``now`` ("3 min ago"), messages as written
    (real line breaks, no escaping), lists joined, small mappings as ``key: value`` lines."""
    if value is None:
        return ""
    moment = _moment(value)
    if moment is not None and moment.tzinfo is not None:
        return ago(moment, now) or ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return "\n".join(f"{k}: {evidence_text(v, now)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        if all(not isinstance(v, Mapping | list | tuple) for v in value):
            return ", ".join(evidence_text(v, now) for v in value)
        return "\n".join(evidence_text(v, now) for v in value)
    return str(value)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    cell = f"style='{_CELL};padding:2px 8px;border-bottom:1px solid #ddd'"
    head = "".join(f"<th {cell}>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td {cell}>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table style='{_TABLE}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _rows_table(rows: Sequence[Mapping[str, Any]], now: datetime) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return _html_table(keys, [[evidence_text(r.get(k), now) for k in keys] for r in rows])


def evidence_html(evidence: Any, now: datetime) -> str:
    """A finding's evidence as HTML tables that wrap instead of clipping: rows as a table, a
    mapping as what/value lines, each list of rows in it as a table of its own."""
    if isinstance(evidence, list) and evidence and all(isinstance(r, Mapping) for r in evidence):
        return _rows_table(evidence, now)
    if not isinstance(evidence, Mapping):
        return f"<div style='{_CELL}'>{html.escape(evidence_text(evidence, now))}</div>"
    plain, nested = [], []
    for key, value in evidence.items():
        if isinstance(value, list) and value and all(isinstance(r, Mapping) for r in value):
            nested.append(f"<p style='margin:6px 0 2px'><em>{html.escape(str(key))}</em></p>{_rows_table(value, now)}")
        else:
            plain.append([str(key), evidence_text(value, now)])
    return (_html_table(["what", "value"], plain) if plain else "") + "".join(nested)


def _evidence_view(evidence: Any, now: datetime) -> mo.Html:
    return mo.vstack([mo.md("**Evidence**"), mo.Html(evidence_html(evidence, now))])


def finding_view(finding: doctor.Finding, in_scope: bool = True, now: datetime | None = None) -> mo.Html:
    """One finding: what, the evidence, the likely cause (the check's description), the fix, and
    where the guides talk about it."""
    entry = doctor.CATALOGUE.get(finding.code)
    guides = [f"guide {g}: *{esc(item)}*" for g, item, codes in GUIDE_TROUBLESHOOTING if finding.code in codes]
    where = f" — job **{esc(finding.job)}**" if finding.job else ""
    scope = "" if in_scope else " _(not a job of this manifest)_"
    parts = [
        mo.md(f"### {_SEVERITY_MARK.get(finding.severity, '')} {finding.severity.upper()} `{finding.code}`{where}{scope}"),
        mo.Html(f"<p>{prose(finding.message)}</p>"),
        _evidence_view(finding.evidence, now or datetime.now().astimezone()),
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
    return mo.vstack([finding_view(f, scoped, report.generated_at) for f, scoped in ordered])


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
