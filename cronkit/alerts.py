"""Alerts from inside the database: ``[alerts]`` in the manifest, evaluated by pg_cron, sent by pg_net.

The maintenance job ``cronkit-alerts:<project>`` runs one statement::

    SELECT cronkit.evaluate_alerts(<project>, <the validated [alerts] table as JSON>,
                                   jsonb_build_object(<channel>, jsonb_build_object('url', <secret read>, ...), ...))

The secret reads are the backend's own expressions (:meth:`SecretBackend.value_expression`): a
webhook URL is a secret (its path is the token), so it is read when the job fires and never stored
in ``cron.job.command``, the wrapper's source, ``cronkit.alert_deliveries`` or an error message.
Everything else — the checks, the state machine, the payload shapes, Discord's 429 handling —
is SQL in ``cronkit/sql/schema_alerts.sql``: the checks reuse the doctor's and the monitor's
definitions (pg_cron's run status, ``cronkit.http_outcome``, ``cronkit.queue_snapshots``).

This module validates the table, builds the job, and reads or changes alert state for the CLI
and the monitor (silences, a test message).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from psycopg import sql

from cronkit import audit
from cronkit.audit import AuditAction
from cronkit.db import Conn, translated
from cronkit.errors import CronkitError, ManifestError, UsageError
from cronkit.monitor.history import failed_in_a_row_query
from cronkit.manifest import INLINED_KEY, TEMPLATE, JobSpec, Manifest
from cronkit.queries import query
from cronkit.secrets import SecretBackend, backend_for
from cronkit.statement import Statement
from cronkit.text import human_duration


class ChannelKind(StrEnum):
    """Where a message goes, and the body it gets."""

    SLACK = "slack"  # incoming webhook: {"text"}
    DISCORD = "discord"  # webhook: {"content"}, at most 2000 characters; 429 retry_after honoured
    WEBHOOK = "webhook"  # any JSON webhook: {"event", "message", "project", "rule", ...}
    FUNCTION = "function"  # an Edge Function: the webhook body, with `key` as the Bearer token


class AlertCheck(StrEnum):
    """What a rule watches (each is the doctor's / monitor's definition, evaluated in SQL)."""

    FAILED_RUNS = "failed_runs"  # pg_cron status 'failed', `threshold` final runs in a row
    HTTP_FAILURES = "http_failures"  # cronkit.http_outcome not 2xx, `threshold` answered requests in a row
    QUEUE_BACKLOG = "queue_backlog"  # newest queue snapshot: pending > threshold or oldest > max_age
    #: Healthchecks' period + grace: no run started (nor an apply) for longer than the job's schedule
    #: ever leaves between two starts (Schedule.longest_gap) plus ``grace``
    SILENT = "silent"


class AlertEvent(StrEnum):
    """What a message says (``cronkit.alert_deliveries.event``; the last one sent is ``alert_state``'s)."""

    DOWN = "down"
    UP = "up"
    REALERT = "realert"
    TEST = "test"


class DeliveryStatus(StrEnum):
    """A message's fate as far as it is known (``cronkit.alert_deliveries.status``)."""

    SENT = "sent"  # queued in pg_net, no answer yet
    DELIVERED = "delivered"  # the receiver answered 2xx
    RATE_LIMITED = "rate_limited"  # 429: sent again after retry_after
    FAILED = "failed"  # another answer, or none within pg_net.ttl
    NOT_SENT = "not_sent"  # the URL secret was missing or not a URL: nothing left the database

    @property
    def words(self) -> str:
        """As a person reads it: never claims more than is known."""
        return "sent, no answer yet" if self is DeliveryStatus.SENT else self.value.replace("_", " ")


DEFAULT_SCHEDULE = "* * * * *"
DEFAULT_REALERT = "1 hour"
DEFAULT_WITHIN = "1 day"

_TOP = {"enabled": bool, "schedule": (str, bool), "realert": (str, bool), "channels": dict, "rules": list}
_CHANNEL = {"kind": str, "url": str, "key": str}
_RULE = {"name": str, "check": str, "jobs": list, "queues": list, "threshold": int, "max_age": str,
         "within": str, "grace": str, "channels": list}
DEFAULT_GRACE = "1 minute"
#: a silent rule judges jobs whose schedule leaves at most this between starts (longer look-backs
#: would scan too much run history at every evaluation)
SILENT_HORIZON = timedelta(days=8)
#: every key of [alerts], for the documentation test
KEYS = {"": tuple(_TOP), "channels": tuple(_CHANNEL), "rules": tuple(_RULE)}


@dataclass(frozen=True)
class Channel:
    name: str
    kind: ChannelKind
    url: str  # "{secret:NAME}"
    key: str | None = None  # "{secret:NAME}" (function channels)

    @property
    def secret_names(self) -> dict[str, str]:
        """{"url": secret, "key": secret} of this channel."""
        found = {"url": _secret_name(self.url)}
        if self.key is not None:
            found["key"] = _secret_name(self.key)
        return found


@dataclass(frozen=True)
class Rule:
    name: str
    check: AlertCheck
    subjects: tuple[str, ...]  # jobs, or queues (empty: every queue of the project)
    channels: tuple[str, ...]
    threshold: int
    within: timedelta
    max_age: timedelta | None = None
    grace: timedelta | None = None
    #: silent rules: each schedule the rule's jobs have in any environment → its longest gap (s)
    gaps: Mapping[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "check": str(self.check), "subjects": list(self.subjects),
                "channels": list(self.channels), "threshold": self.threshold,
                "within_s": int(self.within.total_seconds()),
                "max_age_s": int(self.max_age.total_seconds()) if self.max_age else None,
                **({"grace_s": int(self.grace.total_seconds()), "gaps": dict(self.gaps),
                    "horizon_s": int(SILENT_HORIZON.total_seconds())} if self.check == AlertCheck.SILENT else {})}


@dataclass(frozen=True)
class AlertSettings:
    schedule: str | None
    realert: timedelta | None
    channels: Mapping[str, Channel] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()

    def config_json(self) -> dict[str, Any]:
        """What cronkit.evaluate_alerts receives: kinds and rules, no secret names or values."""
        return {"realert_s": int(self.realert.total_seconds()) if self.realert else None,
                "channels": {name: {"kind": str(c.kind)} for name, c in sorted(self.channels.items())},
                "rules": [r.as_json() for r in self.rules]}


def _secret_name(template: str) -> str:
    match = TEMPLATE.fullmatch(template)
    assert match and match.group(1) == "secret", template
    return match.group(2)


def alert_settings(manifest: Manifest) -> AlertSettings | None:
    """The validated ``[alerts]`` table, or None when the manifest has none (or ``enabled = false``)."""
    from cronkit.maintenance import parse_interval

    raw: Mapping[str, Any] = manifest.alerts
    if not raw:
        return None
    where = f"{manifest.path}: alerts"

    def fail(key: str, problem: str, remedy: str | None = None) -> ManifestError:
        return ManifestError(f"{where}.{key}: {problem}", remedy=remedy)

    def check(table: Mapping[str, Any], schema: Mapping[str, Any], prefix: str) -> None:
        for key, value in table.items():
            if key not in schema:
                raise fail(prefix + key, "unknown key", f"Known keys here: {', '.join(sorted(schema))}.")
            expected = schema[key]
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                names = expected.__name__ if isinstance(expected, type) else "/".join(t.__name__ for t in expected)
                raise fail(prefix + key, f"expected {names}, got {type(value).__name__} {value!r}")

    def one_of(table: Mapping[str, Any], key: str, vocabulary: type[StrEnum], prefix: str, remedy: str = "") -> Any:
        """The value of a required key that must be one of ``vocabulary``."""
        words = ", ".join(v.value for v in vocabulary)
        if key not in table:
            raise fail(prefix + key, "missing", f"Add {key} = one of {words}.")
        if table[key] not in set(vocabulary):
            raise fail(prefix + key, f"{table[key]!r} is not one of {words}", remedy or None)
        return vocabulary(table[key])

    def interval(value: Any, key: str) -> timedelta:
        try:
            parsed = parse_interval(value)
        except ValueError as exc:
            raise fail(key, str(exc), 'e.g. "15 minutes" or "1 hour"') from None
        if parsed <= timedelta(0):
            raise fail(key, "must be positive")
        return parsed

    check(raw, _TOP, "")
    if raw.get("enabled", True) is False:
        return None
    schedule = raw.get("schedule", DEFAULT_SCHEDULE)
    if schedule is True:
        raise fail("schedule", "expected a schedule string or false", 'e.g. "* * * * *" (every minute)')
    if isinstance(schedule, str):
        from cronkit.schedules import parse_schedule

        try:
            parsed_schedule = parse_schedule(schedule)
        except CronkitError as exc:
            raise fail("schedule", exc.message, exc.remedy) from None
        if parsed_schedule.kind == "reboot" or parsed_schedule.never_runs:
            raise fail("schedule", f"{schedule!r} does not run regularly", 'Use a recurring schedule, e.g. "* * * * *".')
    realert_raw = raw.get("realert", DEFAULT_REALERT)
    if realert_raw is True:
        raise fail("realert", "expected an interval string or false", 'e.g. "1 hour", or false for one alert per incident')
    realert = None if realert_raw is False else interval(realert_raw, "realert")

    channels: dict[str, Channel] = {}
    for name, table in raw.get("channels", {}).items():
        prefix = f"channels.{name}."
        if not isinstance(table, dict):
            raise fail(f"channels.{name}", "expected a table ([alerts.channels.NAME])")
        check(table, _CHANNEL, prefix)
        one_of(table, "kind", ChannelKind, prefix)
        for key in ("url", "key"):
            if key not in table:
                if key == "url":
                    raise fail(prefix + "url", "missing", 'Add url = "{secret:NAME}" and store the webhook URL with '
                               "`cronkit secrets set NAME`.")
                continue
            value = table[key]
            match = TEMPLATE.fullmatch(value)
            if not match or match.group(1) != "secret":
                what = "looks like a literal key" if INLINED_KEY.search(value) else f"is {value!r}, not a secret reference"
                raise fail(prefix + key, f"{what}: a webhook URL or key is a secret (its path is the token)",
                           f'Write {key} = "{{secret:NAME}}" and store the value with `cronkit secrets set NAME`.')
        if "key" in table and table["kind"] != ChannelKind.FUNCTION:
            raise fail(prefix + "key", f"only a function channel sends a key (this one is {table['kind']})",
                       "Remove it: Slack, Discord and webhook URLs carry their token themselves.")
        channels[name] = Channel(name, ChannelKind(table["kind"]), table["url"], table.get("key"))

    job_names = [job["name"] for job in manifest.raw_jobs]
    rules: list[Rule] = []
    for index, table in enumerate(raw.get("rules", [])):
        prefix = f"rules[{index}]."
        if not isinstance(table, dict):
            raise fail(f"rules[{index}]", "expected a table ([[alerts.rules]])")
        check(table, _RULE, prefix)
        kind = one_of(table, "check", AlertCheck, prefix,
                      "Missed runs, stuck runs and a stopped scheduler are the doctor's for now (`cronkit doctor`).")
        name = table.get("name", kind.value)
        if any(r.name == name for r in rules):
            raise fail(prefix + "name", f"duplicate rule name {name!r}", "Give each rule of the same check a `name`.")
        for key in ("jobs", "queues", "channels"):
            if not all(isinstance(v, str) for v in table.get(key, [])):
                raise fail(prefix + key, f"expected a list of names, got {table[key]!r}")
        if kind == AlertCheck.QUEUE_BACKLOG:
            if "jobs" in table:
                raise fail(prefix + "jobs", "a queue_backlog rule watches queues", "Use queues = [...] (default: all).")
            subjects = tuple(table.get("queues", []))
        else:
            if "queues" in table or "max_age" in table:
                key = "queues" if "queues" in table else "max_age"
                raise fail(prefix + key, f"applies to queue_backlog rules only, not {kind}")
            unknown = [j for j in table.get("jobs", []) if j not in job_names]
            if unknown:
                raise fail(prefix + "jobs", f"no job named {unknown[0]!r} in this manifest",
                           f"Jobs are: {', '.join(job_names) or '(none)'}.")
            subjects = tuple(table.get("jobs", job_names))
        rule_channels = tuple(table.get("channels", sorted(channels)))
        missing = [c for c in rule_channels if c not in channels]
        if missing or not rule_channels:
            raise fail(prefix + "channels", f"no channel named {missing[0]!r}" if missing else "no channel to send to",
                       "Declare it as [alerts.channels.NAME] with kind and url.")
        threshold = table.get("threshold", 1 if kind != AlertCheck.QUEUE_BACKLOG else 0)
        if threshold < (1 if kind != AlertCheck.QUEUE_BACKLOG else 0):
            raise fail(prefix + "threshold", f"{threshold} is too small",
                       "Failures in a row start at 1; a backlog threshold is a number of pending items (>= 0).")
        max_age = interval(table["max_age"], prefix + "max_age") if "max_age" in table else None
        within = interval(table.get("within", DEFAULT_WITHIN), prefix + "within")
        if "grace" in table and kind != AlertCheck.SILENT:
            raise fail(prefix + "grace", f"applies to silent rules only, not {kind}")
        grace = interval(table.get("grace", DEFAULT_GRACE), prefix + "grace") if kind == AlertCheck.SILENT else None
        gaps = _schedule_gaps(manifest, subjects) if kind == AlertCheck.SILENT else {}
        rules.append(Rule(name, kind, subjects, rule_channels, threshold, within, max_age, grace, gaps))
    if rules and not channels:
        raise fail("channels", "no channel declared", "Add [alerts.channels.NAME] with kind and url.")
    return AlertSettings(schedule=schedule if isinstance(schedule, str) else None, realert=realert,
                         channels=channels, rules=tuple(rules))


def _schedule_gaps(manifest: Manifest, jobs: tuple[str, ...]) -> dict[str, int]:
    """Every schedule ``jobs`` have in the manifest or one of its environments → the longest time
    between two of its starts (the schedule engine's; in seconds). A local-time job (``at``) has
    its schedule computed per apply and is judged only when it also writes ``schedule``."""
    from cronkit.schedules import parse_schedule

    written = [raw.get("schedule") for raw in manifest.raw_jobs if raw["name"] in jobs]
    for env in manifest.environments.values():
        written += [overrides.get("schedule") for name, overrides in env.get("jobs", {}).items() if name in jobs]
    gaps: dict[str, int] = {}
    for expr in filter(None, written):
        try:
            gap = parse_schedule(expr).longest_gap()
        except CronkitError:
            continue  # the plan reports a schedule it cannot read
        if gap is not None:
            gaps[expr] = int(gap.total_seconds())
    return gaps


def targets_expression(settings: AlertSettings, backend: SecretBackend) -> sql.Composable:
    """``jsonb_build_object(channel, jsonb_build_object('url', <read>, ...), ...)``: secret reads, no values."""
    pairs: list[sql.Composable] = []
    for name, channel in sorted(settings.channels.items()):
        reads = [sql.SQL("{}, {}").format(sql.Literal(part), backend.value_expression(secret))
                 for part, secret in channel.secret_names.items()]
        pairs.append(sql.SQL("{}, jsonb_build_object({})").format(sql.Literal(name), sql.SQL(", ").join(reads)))
    return sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(pairs))


def streaks_expression(settings: AlertSettings) -> sql.Composable:
    """``jsonb_build_object(rule, {job: row})`` for each ``failed_runs`` rule: the shared "failed in
    a row" query (:func:`cronkit.monitor.history.failed_in_a_row_query`, also the doctor's
    CONSECUTIVE_FAILURES) over the rule's window, evaluated when the job fires."""
    pairs: list[sql.Composable] = []
    for rule in settings.rules:
        if rule.check != AlertCheck.FAILED_RUNS:
            continue
        since = sql.SQL("cronkit.runid_at(now() - {}::interval)").format(
            sql.Literal(f"{int(rule.within.total_seconds())} seconds"))
        rows = sql.SQL(
            "(SELECT coalesce(jsonb_object_agg(j.jobname, jsonb_build_object("
            "'failed_in_a_row', f.failed_in_a_row, 'has_success', f.has_success, 'last_message', f.last_message)), "
            "'{{}}') FROM ({streaks}) f JOIN cron.job j ON j.jobid = f.jobid AND j.username = current_user)"
        ).format(streaks=failed_in_a_row_query(since))
        pairs.append(sql.SQL("{}, {}").format(sql.Literal(rule.name), rows))
    return sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(pairs))


def evaluate_statement(manifest: Manifest, settings: AlertSettings) -> sql.Composed:
    """The alerts job's statement (also what a person may run by hand)."""
    return sql.SQL("SELECT cronkit.evaluate_alerts({project}, {config}::jsonb, {targets}, {streaks})").format(
        project=sql.Literal(manifest.project),
        config=sql.Literal(json.dumps(settings.config_json(), sort_keys=True)),
        targets=targets_expression(settings, backend_for(manifest.secrets)),
        streaks=streaks_expression(settings),
    )


def alerts_job(manifest: Manifest, name: str) -> JobSpec | None:
    """The maintenance job that evaluates the project's rules, or None without rules or a schedule."""
    settings = alert_settings(manifest)
    if settings is None or settings.schedule is None or not settings.rules:
        return None
    return JobSpec(name=name, schedule=settings.schedule, kind="sql",
                   sql=evaluate_statement(manifest, settings).as_string(None),
                   description="cronkit: evaluate the [alerts] rules and send alerts and recoveries")


# -- reading and changing alert state (CLI, monitor) ----------------------------------------------


@dataclass(frozen=True)
class OpenAlert:
    rule: str
    check: str
    subject: str
    since: datetime
    detail: str | None
    notified: bool  # a down message went out (False: silenced, or not yet evaluated after a change)

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "check": self.check, "subject": self.subject, "since": self.since,
                "detail": self.detail, "notified": self.notified}


def _ready(conn: Conn) -> bool:
    return bool(conn.execute(query("alerts/ready")).fetchone()["ready"])


def open_alerts(conn: Conn, project: str) -> list[OpenAlert]:
    """The subjects of ``project`` that are down now (empty when alerts were never applied)."""
    if not _ready(conn):
        return []
    rows = conn.execute(query("alerts/open"), {"project": project}).fetchall()
    return [OpenAlert(r["rule"], r["check_kind"], r["subject"], r["since"], r["detail"], r["notified"] == AlertEvent.DOWN)
            for r in rows]


def status(conn: Conn, project: str, *, deliveries: int = 20) -> dict[str, Any]:
    """Open alerts, active silences and the newest deliveries of ``project``."""
    if not _ready(conn):
        return {"open": [], "silences": [], "deliveries": [], "applied": False}
    return {
        "applied": True,
        "open": [a.as_dict() for a in open_alerts(conn, project)],
        "silences": conn.execute(query("alerts/silences"), {"project": project}).fetchall(),
        "deliveries": conn.execute(query("alerts/deliveries"), {"project": project, "limit": deliveries}).fetchall(),
    }


def silence_statement(project: str, subject: str | None, duration: timedelta, reason: str) -> Statement:
    return Statement(
        sql.SQL("INSERT INTO cronkit.alert_silences (project, subject, ends_at, reason) "
                "VALUES (%s, %s, now() + %s, %s) RETURNING id, ends_at"),
        (project, subject, duration, reason),
    )


def silence(conn: Conn, project: str, subject: str | None, duration: timedelta, reason: str = "") -> dict[str, Any]:
    """Silence ``subject`` (None: the whole project) for ``duration``, and commit."""
    if duration <= timedelta(0):
        raise UsageError("A silence must last a positive time.", remedy='e.g. --for "2 hours"')
    statement = silence_statement(project, subject, duration, reason)
    with translated("silence alerts"):
        if not _ready(conn):
            raise UsageError(f"Alerts of project {project!r} were never applied.",
                             remedy="Add [alerts] to the manifest and run `cronkit apply`.")
        row = conn.execute(statement.query, statement.params).fetchone()
        audit.record(conn, AuditAction.ALERT_SILENCE, f"silenced alerts of {subject or 'the whole project'} for "
                     f"{human_duration(duration)}" + (f": {reason}" if reason else ""), project=project, target=subject,
                     details={"silence_id": row["id"] if row else None, "seconds": int(duration.total_seconds())})
        conn.commit()
    return dict(row)


def test_statement(manifest: Manifest, channel: str) -> sql.Composed:
    """The statement that sends one test message to ``channel`` (its URL read from the backend)."""
    settings = alert_settings(manifest)
    if settings is None or channel not in settings.channels:
        known = ", ".join(sorted(settings.channels)) if settings else "(no [alerts] table)"
        raise UsageError(f"No alert channel {channel!r} in {manifest.path}.", remedy=f"Channels are: {known}.")
    kind = settings.channels[channel].kind
    message = f"[cronkit] test message from project {manifest.project} to channel {channel}"
    single = AlertSettings(schedule=None, realert=None, channels={channel: settings.channels[channel]})
    return sql.SQL(
        "SELECT cronkit.alert_deliver({project}, NULL, NULL, {channel}, {kind}, 'test', "
        "cronkit.alert_payload({kind}, 'test', {message}, jsonb_build_object('project', {project})), "
        "{targets} -> {channel}) AS request_id"
    ).format(project=sql.Literal(manifest.project), channel=sql.Literal(channel), kind=sql.Literal(str(kind)),
             message=sql.Literal(message), targets=targets_expression(single, backend_for(manifest.secrets)))


def send_test(conn: Conn, manifest: Manifest, channel: str) -> dict[str, Any]:
    """Send a test message now and commit; the delivery row says what became of it."""
    statement = test_statement(manifest, channel)
    with translated(f"send a test alert to {channel!r}"):
        if not _ready(conn):
            raise UsageError("cronkit's alert tables do not exist yet.", remedy="Run `cronkit apply` first.")
        row = conn.execute(statement).fetchone()
        audit.record(conn, AuditAction.ALERT_TEST, f"sent a test alert to channel {channel!r}", project=manifest.project,
                     target=channel, details={"request_id": row["request_id"] if row else None})
        conn.commit()
        delivery = conn.execute(query("alerts/latest_test"), {"project": manifest.project, "channel": channel}).fetchone()
    return dict(delivery) if delivery else {"channel": channel, "request_id": row["request_id"]}
