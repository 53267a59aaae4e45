"""The doctor's records: severities, findings, the report (with its exit code) and the thresholds."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from cronkit.db import ConnectionMode
from cronkit.errors import ExitCode
from cronkit.text import human_duration


class Severity(StrEnum):
    """How bad a finding is; the most severe one decides the exit status."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for the most severe: findings sort by it."""
        return list(Severity).index(self)


#: every severity, most severe first (the order of :attr:`Report.summary`)
SEVERITIES: tuple[Severity, ...] = tuple(Severity)


@dataclass(frozen=True)
class Finding:
    """One problem, with the rows that show it and what to do about it. JSON-ready, secret-free."""

    code: str
    severity: Severity
    job: str | None
    evidence: Any  # a dict, or a list of rows as dicts
    fix: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": str(self.severity),
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
    #: one "missing privilege" line per section the role cannot read (cronkit.privileges), with the GRANT
    missing_privileges: tuple[str, ...] = ()
    #: what sits between cronkit and the server (cronkit.db.connection_mode): a fact, not a finding
    connection: ConnectionMode = ConnectionMode.DIRECT

    @property
    def exit_code(self) -> ExitCode:
        """OK when nothing is above info, PROBLEMS (1) with warnings or with sections the role could not
        read (nothing was claimed about them), CRITICAL (2) with anything critical."""
        severities = {f.severity for f in self.findings}
        if Severity.CRITICAL in severities:
            return ExitCode.CRITICAL
        if Severity.WARNING in severities or self.missing_privileges:
            return ExitCode.PROBLEMS
        return ExitCode.OK

    @property
    def summary(self) -> dict[str, int]:
        counts = Counter(str(f.severity) for f in self.findings)
        return {str(name): counts.get(name, 0) for name in SEVERITIES}

    def codes(self, severity: str | None = None) -> set[str]:
        return {f.code for f in self.findings if severity is None or f.severity == severity}

    def find(self, code: str, job: str | None = None) -> list[Finding]:
        return [f for f in self.findings if f.code == code and (job is None or f.job == job)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "window_seconds": int(self.window.total_seconds()),
            "exit_code": int(self.exit_code),
            "summary": self.summary,
            "server": self.server,
            "connection": {"mode": str(self.connection), "limits": self.connection.limits},
            "findings": [f.as_dict() for f in self.findings],
            "skipped": [{"check": check, "reason": reason} for check, reason in self.skipped],
            "missing_privileges": list(self.missing_privileges),
            "checked": self.checked,
        }

    def render(self) -> str:
        """The report for a terminal: each finding with its evidence (abridged) and fix."""
        server = self.server
        lines = [
            (f"cronkit doctor: database {server.get('database')!r} as {server.get('role')!r} "
             f"(pg_cron {server.get('pg_cron') or '-'}, pg_net {server.get('pg_net') or '-'}, "
             f"Vault {server.get('vault') or '-'}), last {human_duration(self.window)}"),
            f"connection: {self.connection.describe()}",
            "",
        ]
        for finding in self.findings:
            where = f"  [{finding.job}]" if finding.job else ""
            lines.append(f"{finding.severity.upper():<8} {finding.code}{where}")
            lines.append(f"  {finding.message}")
            for evidence_line in abridge(finding.evidence):
                lines.append(f"    {evidence_line}")
            lines.append(f"  fix: {finding.fix}")
            lines.append("")
        if not self.findings:
            lines += ["no problems found", ""]
        lines += list(self.missing_privileges)
        for check, reason in self.skipped:
            lines.append(f"skipped  {check}: {reason}")
        s = self.summary
        lines.append(
            f"{s['critical']} critical, {s['warning']} warning(s), {s['info']} info; "
            f"{len(self.checked)} checks ran, {len(self.skipped)} skipped; exit status {int(self.exit_code)}"
        )
        return "\n".join(lines)


class Skip(Exception):
    """Raised by a check (or a shared read it needs) that cannot run here; the message says why."""


@dataclass(frozen=True)
class Thresholds:
    """When something counts as a problem. Every field is a keyword of :func:`cronkit.doctor.diagnose`."""

    #: a run in starting/connecting/sending/running for longer than this is stuck
    stuck_after: timedelta = timedelta(minutes=10)
    #: this many failed runs in a row (most recent first) make CONSECUTIVE_FAILURES: two, because a
    #: second failure is no longer a blip, and the monitor already shows the job as failing then
    consecutive_failures: int = 2
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


def jsonable(value: Any) -> Any:
    """Rows and values as JSON types: datetimes as ISO 8601, durations as seconds."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v) for v in items]
    if isinstance(value, StrEnum):
        return str(value)
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


def abridge(evidence: Any, limit: int = 6) -> list[str]:
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
