"""``cronkit import``: a manifest for the jobs cronkit does not manage, as HTTP jobs where it can.

Each foreign job's command (and the wrapper function it calls) is read by :mod:`cronkit.recover`.
A job that calls an Edge Function becomes an HTTP job with ``{secret:NAME}`` references, its guard
and its queue; the project's ``[secrets]`` backend is the one its jobs read. Jobs that read another
backend, or do what an HTTP job cannot say, stay ``sql`` with a comment saying why. Keys written
literally become references to a secret to store first: no value is ever written. Applying the
result with ``--adopt`` keeps each job's id; the jobs then run through cronkit's wrappers.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronkit.db import Conn
from cronkit.errors import UsageError
from cronkit.manifest import INLINED_KEY, NOT_IN_FUNCTION
from cronkit.queries import query
from cronkit.recover import VAULT, BackendKey, Function, Recovered, recover
from cronkit.registry import CronJob

#: backends in the order cronkit recommends them when jobs use several equally often
_PREFERENCE = {"vault": 0, "table": 1, "guc": 2}


@dataclass(frozen=True)
class Selection:
    """Which foreign jobs to import: by name (``--job``), by a regular expression (``--match``), or all."""

    names: tuple[str, ...] = ()
    match: str | None = None

    def __post_init__(self) -> None:
        if self.match is not None:
            try:
                re.compile(self.match)
            except re.error as exc:
                raise UsageError(f"--match {self.match!r} is not a regular expression: {exc}.",
                                 remedy="Quote it for the shell, e.g. --match '^bubble-'.") from None

    def wants(self, name: str) -> bool:
        if self.names and name in self.names:
            return True
        if self.match is not None and re.search(self.match, name):
            return True
        return not self.names and self.match is None


@dataclass
class Imported:
    """One job as it goes into the manifest."""

    job: CronJob
    recovered: Recovered
    reason: str | None = None  # set: stays sql (or commented out) for this reason
    commented: bool = False
    local: tuple[str, str, str] | None = None  # (at, days, timezone) from --timezone


@dataclass
class ImportResult:
    text: str
    jobs: list[Imported] = field(default_factory=list)
    backend: BackendKey | None = None
    missing: tuple[str, ...] = ()  # names asked for with --job that are not foreign jobs here

    def as_dict(self) -> dict[str, Any]:
        return {
            "manifest": self.text,
            "backend": list(self.backend) if self.backend else None,
            "jobs": [{"name": i.job.jobname, "kind": "sql" if i.reason or i.commented else "http",
                      "via": i.recovered.via, "reason": i.reason, "commented_out": i.commented,
                      "secrets_to_store": list(i.recovered.literal_keys)} for i in self.jobs],
            "not_found": list(self.missing),
            "systems": systems(self.jobs),
        }


def import_manifest(conn: Conn, jobs: Sequence[CronJob], project: str, selection: Selection = Selection(),
                    timezone: str | None = None) -> ImportResult:
    """The manifest text for the foreign jobs among ``jobs`` that ``selection`` picks."""
    zone = _zone(timezone)
    chosen = [j for j in jobs if j.managed_by is None and j.jobname and selection.wants(j.jobname)]
    missing = tuple(n for n in selection.names if n not in {j.jobname for j in chosen})
    functions: dict[tuple[str | None, str], Function | None] = {}
    schemas: dict[str, str | None] = {}

    def lookup(schema: str | None, name: str) -> Function | None:
        if (schema, name) not in functions:
            row = conn.execute(query("catalog/function"), {"schema": schema, "name": name}).fetchone()
            functions[(schema, name)] = Function(**row) if row else None
        return functions[(schema, name)]

    def resolve(name: str) -> str | None:
        if name not in schemas:
            row = conn.execute(query("catalog/relation_schema"), {"name": name}).fetchone()
            schemas[name] = row["schema"] if row else None
        return schemas[name]

    items = [Imported(job, recover(job.command, job.jobname, lookup, resolve)) for job in chosen]
    backend = _backend(items)
    for item in items:
        _decide(item, backend)
        if zone is not None and not item.commented:
            item.local = _local_intent(item.job.schedule, zone)
    return ImportResult(_render(project, items, backend), items, backend, missing)


def _decide(item: Imported, backend: BackendKey | None) -> None:
    job, recovered = item.job, item.recovered
    if recovered.url is not None:
        if backend is not None and not recovered.backends <= {backend}:
            others = ", ".join(sorted(_backend_label(b) for b in recovered.backends - {backend}))
            item.reason = (f"it reads secrets from {others}, and this manifest's [secrets] backend is "
                           f"{_backend_label(backend)}: import it on its own (--job {job.jobname!r} --project NAME)")
        return
    if INLINED_KEY.search(job.command):
        item.commented = True
        item.reason = (f"its command holds a key written literally, and {recovered.reason}: store the key with "
                       "`cronkit secrets set NAME` and declare the job with {secret:NAME} (SECRET_INLINED)")
    elif NOT_IN_FUNCTION.search(job.command) or re.search(r"(?:^|;)\s*call\b", job.command, re.IGNORECASE):
        # An sql job runs inside its wrapper function, where VACUUM & co. are refused and a
        # procedure may not COMMIT: adopting this job would make every run fail.
        item.commented = True
        item.reason = ("it runs a command that may not work inside a function (VACUUM, CALL, CONCURRENTLY, ...); "
                       "it is left as it is (cronkit shows it as foreign and never changes it)")
    elif recovered.calls_http:
        item.reason = f"it stays an sql job: {recovered.reason}"


def _backend(items: Iterable[Imported]) -> BackendKey | None:
    counts = Counter(b for i in items if i.recovered.url is not None for b in i.recovered.backends)
    if not counts:
        return VAULT if any(i.recovered.literal_keys for i in items) else None
    return min(counts, key=lambda b: (-counts[b], _PREFERENCE.get(b[0], 9), b))


def _backend_label(backend: BackendKey) -> str:
    if backend[0] == "table":
        return f"the table {backend[1]}"
    if backend[0] == "guc":
        return f"{backend[1]}* settings"
    return "Vault"


# -- local time ------------------------------------------------------------------------------------


def _zone(name: str | None) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"--timezone {name!r} is not an IANA time zone.",
                         remedy="Use a name like America/Los_Angeles or Europe/Berlin (see `timedatectl list-timezones`).") from None


def _local_intent(schedule: str, zone: ZoneInfo) -> tuple[str, str, str] | None:
    """``(at, days, zone)`` for a daily/weekly GMT schedule read as local standard time, else None."""
    fields = schedule.split()
    if len(fields) != 5 or not fields[0].isdigit() or not fields[1].isdigit() or fields[2:4] != ["*", "*"]:
        return None
    minute, hour = int(fields[0]), int(fields[1])
    # the zone's standard (winter) offset: what a guide means by "03:00 Los Angeles (11:00 UTC)"
    probe = datetime(datetime.now(UTC).year, 1, 15, tzinfo=zone)
    standard = (probe.utcoffset() or timedelta()) - (probe.dst() or timedelta())
    if probe.dst():  # southern hemisphere: January is summer
        probe = probe.replace(month=7)
        standard = (probe.utcoffset() or timedelta()) - (probe.dst() or timedelta())
    local = datetime(2000, 1, 3, hour, minute) + standard  # a Monday, to see a shift across midnight
    shift = (local.date() - datetime(2000, 1, 3).date()).days
    days = fields[4]
    if days != "*":
        try:
            numbers = sorted({(int(d) % 7 + shift) % 7 for d in days.split(",")})
        except ValueError:
            return None  # ranges and names: left as written
        days = ",".join(str(d) for d in numbers)
    elif shift:
        days = "*"
    return f"{local.hour:02d}:{local.minute:02d}", days, zone.key


# -- the manifest ----------------------------------------------------------------------------------


def _render(project: str, items: list[Imported], backend: BackendKey | None) -> str:
    lines = [
        "# Written by `cronkit import` from cron.job. Review it, then `cronkit plan` / `cronkit apply --adopt`.",
        "# Jobs that call an Edge Function are HTTP jobs here: after adoption they run through cronkit's",
        "# wrappers (a missing secret fails the run loudly; every request is recorded). The functions they",
        "# called before are left in place, unused.",
    ]
    lines += _split_advice(items)
    lines += [f"project = {toml_value(project)}", ""]
    if backend is not None:
        lines.append("[secrets]")
        if backend[0] == "table":
            lines += [f"backend = {toml_value('table')}", f"table = {toml_value(backend[1])}",
                      f"key_column = {toml_value(backend[2])}", f"value_column = {toml_value(backend[3])}"]
        elif backend[0] == "guc":
            lines += [f"backend = {toml_value('guc')}", f"guc_prefix = {toml_value(backend[1])}",
                      "# app.* settings are readable by every role (pg_db_role_setting): move them to Vault"]
        else:
            lines.append(f"backend = {toml_value('vault')}")
        lines.append("")
    for item in items:
        lines += _job_lines(item) + [""]
    queues: dict[str, Any] = {}
    for item in items:
        queue = item.recovered.queue
        if queue is not None and not item.reason:
            entry = queues.setdefault(queue.table, {"status_column": queue.status_column, "states": []})
            entry["states"] += [s for s in queue.states if s not in entry["states"]]
    for table, entry in queues.items():
        pending = [s for s in entry["states"] if s not in ("failed", "error", "dead")] or ["pending"]
        lines += ["[[queues]]", f"table = {toml_value(table)}"]
        if entry["status_column"] != "status":
            lines.append(f"status_column = {toml_value(entry['status_column'])}")
        lines += [f"pending = {toml_value(pending)}",
                  "# review processing/failed/done states and the retry column: the guard only shows the above", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _job_lines(item: Imported) -> list[str]:
    job, recovered = item.job, item.recovered
    head = [f"name = {toml_value(job.jobname)}", f"schedule = {toml_value(job.schedule)}"]
    if item.local is not None:
        at, days, zone = item.local
        head += [f"at = {toml_value(at)}", f"timezone = {toml_value(zone)}"] + ([f"days = {toml_value(days)}"] if days != "*" else [])
    if item.commented:
        return [f"# Job {job.jobname!r} is not imported: {item.reason}.", "# [[jobs]]"] + [f"# {line}" for line in head]
    lines = []
    if item.reason:
        lines.append(f"# {item.reason}.")
    lines += ["[[jobs]]"] + head
    if not job.active:
        lines.append("active = false")
    if item.reason or recovered.url is None:
        return lines + [f"sql = {toml_value(job.command.strip())}"]
    for name in recovered.literal_keys:
        lines.insert(0, f"# A key was written literally in this job's command: store it first with "
                        f"`cronkit secrets set {name}` (then rotate it: cron.job and its run history showed it).")
    for note in recovered.notes:
        lines.insert(0, f"# {note}.")
    if recovered.via:
        lines.insert(0, f"# From {recovered.via}(), which {job.jobname!r} called.")
    if recovered.method != "POST":
        lines.append(f"method = {toml_value(recovered.method)}")
    lines.append(f"url = {toml_value(recovered.url)}")
    if recovered.headers:
        lines.append(f"headers = {toml_value(dict(recovered.headers))}")
    if recovered.params:
        lines.append(f"params = {toml_value(dict(recovered.params))}")
    if recovered.body is not None and not (recovered.method == "POST" and recovered.body == {}):
        lines.append(f"body = {toml_value(recovered.body)}")
    if recovered.timeout_ms is not None and recovered.timeout_ms != 5000:
        lines.append(f"timeout_ms = {toml_value(recovered.timeout_ms)}")
    if recovered.guard:
        lines.append(f"guard = {toml_value(recovered.guard)}")
    return lines


def systems(items: list[Imported]) -> list[list[str]]:
    """The imported HTTP jobs grouped into systems: jobs that share a secret or a wrapper belong together."""
    groups: list[tuple[set[str], set[Any]]] = []
    for item in items:
        if item.recovered.url is None:
            continue
        links = {("secret", s.backend, s.name) for s in item.recovered.secrets if s.backend != ("literal",)}
        links |= {("via", item.recovered.via)} if item.recovered.via else set()
        names = {item.job.jobname}
        for group in [g for g in groups if g[1] & links]:
            groups.remove(group)
            names |= group[0]
            links |= group[1]
        groups.append((names, links))
    return sorted(sorted(names) for names, _links in groups)


def _split_advice(items: list[Imported]) -> list[str]:
    found = systems(items)
    if len(found) < 2:
        return []
    advice = [f"# These jobs form {len(found)} systems (they share no secret or function). A project per system keeps",
              "# `teardown` of one from removing the others: `cronkit import --project NAME --job A --job B` each."]
    return advice + ["#   " + " ".join(f"--job {toml_value(n)}" for n in names) for names in found]


def toml_value(value: Any) -> str:
    """TOML for a string, number, boolean, list or (inline) table that reads back as exactly ``value``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    if value is None:
        raise ValueError("TOML has no null")
    return _toml_str(json.dumps(value))


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_str(key)


def _toml_str(value: str) -> str:
    """A TOML string that reads back as exactly ``value``.

    Multi-line commands stay readable as a literal string, unless they hold ``'''`` or a control
    character other than newline and tab (TOML forbids those there, and reads CR LF as LF).
    """
    if "\n" in value and "'''" not in value and not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", value):
        return "'''\n" + value + "'''"
    # JSON's escapes are TOML's, except that TOML also forbids a raw DEL.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
