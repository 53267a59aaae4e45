"""The manifest: one reviewed TOML file that declares a project's jobs, secrets and queues.

See docs/manifest.md for every key. Loading validates everything it can without a database:
unknown keys, wrong types, duplicate names, templates, inlined keys. Errors name the file and
the key path (``jobs[2].headers.Authorization``). Environment-specific values are resolved by
:func:`Manifest.resolve`, which gives the :class:`JobSpec` list that plan/apply work on.

Templates in ``url``, ``base_url`` and header values:

- ``{secret:NAME}`` — read from the secret backend *when the job fires* (never stored in
  ``cron.job.command`` or the wrapper's source);
- ``{env:NAME}`` — an environment variable read when planning (only in ``url``/``base_url``:
  URLs are configuration, keys are secrets).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronkit.errors import ManifestError
from cronkit.outcomes import Outcome

TEMPLATE = re.compile(r"\{(secret|env):([A-Za-z_][A-Za-z0-9_.-]*)\}")
# What a pasted key looks like: a JWT, or Supabase's new secret/publishable keys.
INLINED_KEY = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}|sb_(secret|publishable)_[A-Za-z0-9_-]{8,}")
#: what starts a template: every occurrence must be a whole, well-formed reference
TEMPLATE_START = re.compile(r"\{(secret|env):")
#: unquoted, lower-case SQL identifiers (optionally schema-qualified): what the secrets table may be called
PLAIN_TABLE = re.compile(r"[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?")
PLAIN_COLUMN = re.compile(r"[a-z_][a-z0-9_]{0,62}")
GUC_PREFIX = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*\.")
METHODS = ("POST", "GET", "DELETE")
BACKENDS = ("vault", "table", "guc")
MAX_JOBNAME_BYTES = 63  # pg_cron < 1.5 stores jobname as `name`, which silently truncates
# Statements PostgreSQL refuses inside a function: a job's SQL runs in its generated wrapper
# (EXECUTE in plpgsql), so a job made of one of these would fail on every run.
NOT_IN_FUNCTION = re.compile(
    r"(?:^|;)\s*(vacuum\b|(?:create|drop)\s+(?:unique\s+)?index\s+concurrently\b|reindex\b[^;]*\bconcurrently\b"
    r"|(?:create|drop)\s+database\b|alter\s+system\b|(?:create|drop)\s+tablespace\b)",
    re.IGNORECASE,
)


class Overlap(StrEnum):
    """What a job does when it fires while its previous call is still in flight (``overlap``)."""

    #: call again (pg_cron's behaviour: runs may pile up behind a slow endpoint)
    ALLOW = "allow"
    #: skip the run, recorded as "skipped (overlap)", so at most one call is ever in flight
    SKIP = "skip"


#: the outcomes a ``retry`` may name in ``on``: answers that did not do the job's work (a pending or
#: expired call has no answer to retry on)
RETRYABLE: tuple[Outcome, ...] = (Outcome.REDIRECT, Outcome.CLIENT_ERROR, Outcome.SERVER_ERROR, Outcome.TIMEOUT,
                                  Outcome.TRANSPORT_ERROR, Outcome.OTHER)
#: spellings of ``on`` accepted beside the outcome names
RETRY_ALIASES = {"transport": Outcome.TRANSPORT_ERROR}
RETRY_ON_DEFAULT: tuple[Outcome, ...] = (Outcome.SERVER_ERROR, Outcome.TIMEOUT, Outcome.TRANSPORT_ERROR)
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class RetryPolicy:
    """A job's ``retry``: send a failed call again, up to ``attempts`` calls in all (the first included),
    waiting ``backoff`` after the first failed answer and twice as long after each further one."""

    attempts: int
    backoff: timedelta
    on: tuple[Outcome, ...] = RETRY_ON_DEFAULT

    def wait_before(self, attempt: int) -> timedelta:
        """How long after the answer of attempt ``attempt - 1`` attempt ``attempt`` (>= 2) goes out."""
        return self.backoff * 2 ** (attempt - 2)

    def as_config(self) -> dict[str, Any]:
        """What ``cronkit.retry_calls`` (sql/schema_retries.sql) reads, and what the registry stores:
        the waits before attempts 2..attempts come from :meth:`wait_before` (the SQL only reads them)."""
        return {"attempts": self.attempts,
                "waits_s": [self.wait_before(n).total_seconds() for n in range(2, self.attempts + 1)],
                "on": [str(outcome) for outcome in self.on]}


@dataclass(frozen=True)
class SecretsConfig:
    backend: str = "vault"
    table: str = "public.cron_secrets"
    key_column: str = "key"
    value_column: str = "value"
    create_table: bool = True
    guc_prefix: str = "app.settings."
    #: where apply may take values from: secret name -> "env:VAR" or a "{env:VAR}/path" template
    sources: Mapping[str, str] = field(default_factory=dict)

    def source_value(self, name: str, environ: Mapping[str, str]) -> tuple[str, str | None] | None:
        """(description, value) of a secret's source; value is None when a variable is unset."""
        source = self.sources.get(name)
        if source is None:
            return None
        template = "{" + source + "}" if TEMPLATE.fullmatch("{" + source + "}") else source
        names = [n for kind, n in TEMPLATE.findall(template) if kind == "env"]
        if any(not environ.get(n) for n in names):
            return ", ".join(names), None
        return ", ".join(names), TEMPLATE.sub(lambda m: environ[m.group(2)], template)


@dataclass(frozen=True)
class QueueSpec:
    table: str
    status_column: str = "status"
    pending: tuple[str, ...] = ("pending",)
    processing: tuple[str, ...] = ("processing",)
    failed: tuple[str, ...] = ("failed",)
    done: tuple[str, ...] = ("completed",)
    created_column: str = "created_at"
    updated_column: str | None = None
    retry_column: str | None = None
    max_retries: int | None = None


#: the environment that follows `supabase start`'s conventions: functions are reached from inside the
#: database container through Kong, never on localhost (the CLI's database is on port 54322)
LOCAL_ENVIRONMENT = "local"
LOCAL_API_URL = "http://api.supabase.internal:8000"
_LOOPBACK = re.compile(r"https?://(localhost|127\.\d+\.\d+\.\d+|\[::1\]|0\.0\.0\.0)(:\d+)?(/|$)", re.IGNORECASE)


def _loopback(url: str) -> bool:
    """Whether ``url`` names the calling machine itself (a container's own loopback)."""
    return bool(_LOOPBACK.match(url))


@dataclass(frozen=True)
class JobSpec:
    """One job, resolved for an environment. Holds secret *names*, never values."""

    name: str
    schedule: str
    kind: str  # "http" | "sql"
    active: bool = True
    method: str = "POST"
    url: str | None = None  # template; None for sql jobs
    headers: Mapping[str, str] = field(default_factory=dict)  # templates
    body: Any = None
    params: Mapping[str, str] = field(default_factory=dict)
    timeout_ms: int = 5000
    guard: str | None = None
    sql: str | None = None
    description: str = ""
    intended_local: tuple[str, str] | None = None  # ("03:00", "America/Los_Angeles") when given
    #: the local day-of-week field of ``at`` (``days``)
    local_days: str = "*"
    #: the schedule was computed from ``at`` + ``timezone``: the DST maintenance job reissues it
    schedule_from_local: bool = False
    overlap: Overlap = Overlap.ALLOW
    #: failed calls are sent again (http jobs only; see docs/manifest.md, "Retries")
    retry: RetryPolicy | None = None

    @property
    def secret_names(self) -> tuple[str, ...]:
        found: list[str] = []
        for text in [self.url or "", *self.headers.values()]:
            for kind, name in TEMPLATE.findall(text):
                if kind == "secret" and name not in found:
                    found.append(name)
        return tuple(found)


@dataclass(frozen=True)
class Manifest:
    path: Path
    project: str
    default_environment: str
    secrets: SecretsConfig
    raw_jobs: tuple[Mapping[str, Any], ...]
    environments: Mapping[str, Mapping[str, Any]]
    queues: tuple[QueueSpec, ...] = ()
    monitoring: Mapping[str, Any] = field(default_factory=dict)
    alerts: Mapping[str, Any] = field(default_factory=dict)  # validated by cronkit.alerts

    def resolve(self, environment: str | None = None, environ: Mapping[str, str] | None = None) -> list[JobSpec]:
        """The job specs for one environment, with ``{env:...}`` filled in."""
        environ = os.environ if environ is None else environ
        env_name = environment or self.default_environment
        if self.environments and env_name not in self.environments:
            raise ManifestError(
                f"{self.path}: environment {env_name!r} is not defined.",
                remedy=f"Use one of: {', '.join(sorted(self.environments))}.",
            )
        env = self.environments.get(env_name, {})
        env_jobs = env.get("jobs", {})
        specs = []
        for index, raw in enumerate(self.raw_jobs):
            merged = {**raw, **env_jobs.get(raw["name"], {})}
            where = f"jobs[{index}] ({raw['name']})"
            specs.append(self._spec(merged, env, where, environ, env_name))
        return specs

    def _spec(self, job: Mapping[str, Any], env: Mapping[str, Any], where: str, environ: Mapping[str, str],
              env_name: str | None = None) -> JobSpec:
        def expand_env(text: str, key: str) -> str:
            def sub(match: re.Match[str]) -> str:
                kind, name = match.groups()
                if kind == "secret":
                    return match.group(0)
                value = environ.get(name)
                if not value:
                    raise ManifestError(
                        f"{self.path}: {where}.{key} needs the environment variable {name}, which is not set.",
                        remedy=f"Set {name} (see .env.example) or choose another environment with --env.",
                    )
                return value

            return TEMPLATE.sub(sub, text)

        schedule = job.get("schedule")
        intended = None
        local_days: str = job.get("days", "*")
        from_local = "at" in job and schedule is None
        overlap = Overlap(job.get("overlap", Overlap.ALLOW))
        if "at" in job:
            intended = (job["at"], job.get("timezone", "UTC"))
            if schedule is None:
                from cronkit.schedules import utc_schedule_for_local

                schedule = utc_schedule_for_local(job["at"], job.get("timezone", "UTC"), job.get("days", "*"))
        if schedule is None:
            raise ManifestError(f"{self.path}: {where} has no schedule.", remedy="Add `schedule = \"* * * * *\"` or `at = \"03:00\"` with `timezone`.")

        if "sql" in job:
            return JobSpec(
                name=job["name"], schedule=schedule, kind="sql", active=job.get("active", True),
                sql=job["sql"], guard=job.get("guard"), description=job.get("description", ""),
                intended_local=intended, local_days=local_days, schedule_from_local=from_local,
                overlap=overlap,
            )
        if "url" in job:
            url = expand_env(job["url"], "url")
        else:
            base = job.get("base_url", env.get("base_url"))
            if base is None and env_name == LOCAL_ENVIRONMENT:
                base = LOCAL_API_URL  # `supabase start`: Kong, as the database container reaches it
            if base is None:
                raise ManifestError(
                    f"{self.path}: {where} calls function {job['function']!r} but no base_url is set.",
                    remedy="Set base_url in [environments.<env>] (e.g. \"{env:SUPABASE_URL}\" or \"{secret:supabase_url}\").",
                )
            url = expand_env(base, "base_url").rstrip("/") + "/functions/v1/" + job["function"]
        if env_name == LOCAL_ENVIRONMENT and _loopback(url):
            raise ManifestError(
                f"{self.path}: {where} calls {url} in environment {LOCAL_ENVIRONMENT!r}: with `supabase start` the "
                "database runs in a container, where localhost is the container itself, so every call would fail.",
                remedy=f"Use {LOCAL_API_URL} (or http://kong:8000) — what the database container reaches — as base_url.")
        return JobSpec(
            name=job["name"],
            schedule=schedule,
            kind="http",
            active=job.get("active", True),
            method=job.get("method", "POST").upper(),
            url=url,
            headers=dict(job.get("headers", {})),
            body=job.get("body", {} if job.get("method", "POST").upper() == "POST" else None),
            params=dict(job.get("params", {})),
            timeout_ms=job.get("timeout_ms", 5000),
            guard=job.get("guard"),
            description=job.get("description", ""),
            intended_local=intended,
            local_days=local_days,
            schedule_from_local=from_local,
            overlap=overlap,
            retry=retry_policy(job["retry"]) if "retry" in job else None,
        )


# -- loading and validation ------------------------------------------------------------------------

_TOP = {
    "project": str, "default_environment": str, "secrets": dict, "environments": dict, "jobs": list, "queues": list,
    "monitoring": dict,  # validated by cronkit.maintenance
    "alerts": dict,  # validated by cronkit.alerts
}
_JOB = {
    "name": str, "schedule": str, "at": str, "timezone": str, "days": str, "active": bool,
    "function": str, "url": str, "base_url": str, "sql": str, "method": str, "headers": dict,
    "body": (dict, list), "params": dict, "timeout_ms": int, "guard": str, "description": str,
    "overlap": str, "retry": dict,
}
_ENV_JOB = {k: _JOB[k] for k in ("schedule", "at", "timezone", "days", "active", "base_url", "url", "timeout_ms", "body", "guard")}
_RETRY = {"attempts": int, "backoff": str, "on": list}
_SECRETS = {"backend": str, "table": str, "key_column": str, "value_column": str, "create_table": bool, "guc_prefix": str, "sources": dict}
_QUEUE = {
    "table": str, "status_column": str, "pending": list, "processing": list, "failed": list, "done": list,
    "created_column": str, "updated_column": str, "retry_column": str, "max_retries": int,
}


def retry_policy(raw: Mapping[str, Any]) -> RetryPolicy:
    """A job's ``retry`` table as a policy; ValueError ``"<key>: <problem>\n<fix>"`` when a value is wrong
    (types are checked by the loader)."""
    from cronkit.maintenance import parse_interval

    attempts = raw.get("attempts", 3)
    if not 2 <= attempts <= MAX_ATTEMPTS:
        raise ValueError(f"attempts: {attempts} is outside 2..{MAX_ATTEMPTS}\n"
                         "`attempts` counts every call, the first included: 3 means the first call and two retries.")
    try:
        backoff = parse_interval(raw.get("backoff", "30 seconds"))
    except ValueError as exc:
        raise ValueError(f"backoff: {exc}\nWrite e.g. \"30s\", \"30 seconds\" or \"5 minutes\".") from None
    if not timedelta(seconds=1) <= backoff <= timedelta(days=1):
        raise ValueError("backoff: must be between 1 second and 1 day\n"
                         "It is the wait before the first retry; each further retry waits twice as long.")
    on: list[Outcome] = []
    for name in raw.get("on", list(RETRY_ON_DEFAULT)):
        outcome = (RETRY_ALIASES.get(name) or next((o for o in RETRYABLE if o == name), None)
                   if isinstance(name, str) else None)
        if outcome is None:
            raise ValueError(f"on: {name!r} is not an outcome a call can be retried on\n"
                             f"Use some of: {', '.join(RETRYABLE)} (\"transport\" means transport_error).")
        if outcome not in on:
            on.append(outcome)
    if not on:
        raise ValueError("on: is empty\nName the outcomes to retry on, or remove `retry`.")
    return RetryPolicy(attempts=attempts, backoff=backoff, on=tuple(on))


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest; raise :class:`ManifestError` naming the file and key path."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"Manifest {path} does not exist.", remedy="Pass the path of your cronkit.toml.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: not valid TOML: {exc}") from None
    return parse_manifest(data, path)


def _strings(value: Any, where: str = "") -> list[tuple[str, str]]:
    """Every key and string value of the manifest, with its key path (``jobs[0].headers.x``)."""
    found: list[tuple[str, str]] = []
    if isinstance(value, str):
        found.append((where or "<top>", value))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            found.append((path, str(key)))
            found += _strings(item, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _strings(item, f"{where}[{index}]")
    return found


def url_problem(url: str) -> tuple[str, str] | None:
    """What pg_net (libcurl) would refuse in ``url``, with the fix; None when it would send it.

    Templates stand for values filled in later ({env:...} at plan time, {secret:...} when the job
    fires), so they are checked as placeholders.
    """
    text = TEMPLATE.sub("x", url)
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        return ("contains a space, a line break or another control character, which pg_net refuses",
                "Percent-encode it (a space is %20).")
    if not text.isascii():
        return ("contains non-ASCII characters, which pg_net sends as they are and servers refuse",
                "Percent-encode them in the path and query; write an international host name in its xn-- form.")
    if not TEMPLATE.match(url) and not re.match(r"https?://[^/?#]+", text):
        return ("is not an http:// or https:// URL with a host (pg_net sends nothing else)",
                "Write the whole URL, e.g. \"https://<ref>.supabase.co/functions/v1/name\", or start it with a "
                "template such as {secret:project_url}.")
    return None


def parse_manifest(data: Mapping[str, Any], path: Path = Path("<manifest>")) -> Manifest:
    def fail(where: str, problem: str, remedy: str | None = None) -> ManifestError:
        return ManifestError(f"{path}: {where}: {problem}", remedy=remedy)

    def check(table: Mapping[str, Any], schema: Mapping[str, Any], where: str) -> None:
        for key, value in table.items():
            if key not in schema:
                raise fail(f"{where}{key}", "unknown key", f"Known keys here: {', '.join(sorted(schema))}.")
            expected = schema[key]
            # bool is an int in Python; a timeout of `true` must not pass as 1.
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                names = expected.__name__ if isinstance(expected, type) else "/".join(t.__name__ for t in expected)
                raise fail(f"{where}{key}", f"expected {names}, got {type(value).__name__} {value!r}")

    def check_values(job: Mapping[str, Any], where: str) -> None:
        """Checks of values a job and an environment's override of it may both set."""
        if "at" in job and not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", job["at"]):
            raise fail(f"{where}at", f"expected HH:MM, got {job['at']!r}")
        if "timezone" in job:
            try:
                ZoneInfo(job["timezone"])
            except (ZoneInfoNotFoundError, ValueError, OSError):
                raise fail(f"{where}timezone", f"unknown time zone {job['timezone']!r}",
                           "Use an IANA zone name, e.g. \"America/Los_Angeles\" or \"UTC\".") from None
        if "overlap" in job and job["overlap"] not in tuple(Overlap):
            raise fail(f"{where}overlap", f"{job['overlap']!r} is not one of {', '.join(Overlap)}",
                       'Write "skip" to skip a run while the previous call is still in flight, or "allow".')
        timeout = job.get("timeout_ms", 5000)
        if not 1 <= timeout <= 3_600_000:
            raise fail(f"{where}timeout_ms", f"{timeout} is outside 1..3600000")
        for key in ("url", "base_url"):
            if INLINED_KEY.search(job.get(key, "")):
                raise fail(f"{where}{key}", "contains what looks like a literal key or JWT",
                           "Reference a secret with {secret:NAME}.")
            if key in job:
                problem = url_problem(job[key])
                if problem:
                    raise fail(f"{where}{key}", problem[0], problem[1])
        if "function" in job:
            problem = url_problem("http://host/functions/v1/" + job["function"])
            if problem or "/" in job["function"] or not job["function"]:
                raise fail(f"{where}function", f"{job['function']!r} is not an Edge Function name",
                           "Use the function's slug as deployed: letters, digits, - and _.")

    check(data, _TOP, "")
    for where, text in _strings(data):
        if "\x00" in text:
            raise fail(where, "contains a NUL character (\\u0000), which PostgreSQL text cannot hold",
                       "Remove it from the file.")
        for start in TEMPLATE_START.finditer(text):
            if not TEMPLATE.match(text, start.start()):
                end = text.find("}", start.start())
                shown = text[start.start(): end + 1 if end >= 0 else None]
                raise fail(where, f"{shown!r} is not a valid reference",
                           "Write {secret:NAME} or {env:NAME}: NAME starts with a letter or _, then letters, digits, "
                           "_ . or - (no spaces or quotes), and the braces close.")
    project = data.get("project")
    if not project:
        raise fail("project", "missing", 'Add `project = "my-app"` at the top: it marks the jobs this manifest owns.')

    secrets_raw = data.get("secrets", {})
    check(secrets_raw, _SECRETS, "secrets.")
    backend = secrets_raw.get("backend", "vault")
    if backend not in BACKENDS:
        raise fail("secrets.backend", f"{backend!r} is not one of {', '.join(BACKENDS)}")
    for name, source in secrets_raw.get("sources", {}).items():
        kinds = {kind for kind, _ in TEMPLATE.findall(source)} if isinstance(source, str) else set()
        if not (isinstance(source, str) and (source.startswith("env:") or kinds == {"env"})):
            raise fail(f"secrets.sources.{name}", f"expected \"env:VARIABLE\" or a \"{{env:VARIABLE}}/...\" template, got {source!r}")
    for key, pattern, example in (("table", PLAIN_TABLE, "public.cron_secrets"), ("key_column", PLAIN_COLUMN, "key"),
                                  ("value_column", PLAIN_COLUMN, "value"), ("guc_prefix", GUC_PREFIX, "app.settings.")):
        if key in secrets_raw and not pattern.fullmatch(secrets_raw[key]):
            raise fail(f"secrets.{key}", f"{secrets_raw[key]!r} is not a plain lower-case SQL name",
                       f"Use lower-case letters, digits and _ (at most 63 bytes), e.g. {example!r}.")
    secrets_cfg = SecretsConfig(**secrets_raw)

    jobs = data.get("jobs", [])
    seen: dict[str, int] = {}
    for index, job in enumerate(jobs):
        where = f"jobs[{index}]."
        if not isinstance(job, dict):
            raise fail(f"jobs[{index}]", "expected a table ([[jobs]])")
        check(job, _JOB, where)
        name = job.get("name")
        if not name:
            raise fail(f"jobs[{index}].name", "missing")
        if name in seen:
            raise fail(f"jobs[{index}].name", f"duplicate job name {name!r} (also jobs[{seen[name]}])",
                       "Job names are unique per database role; rename one of them.")
        seen[name] = index
        if len(name.encode()) > MAX_JOBNAME_BYTES:
            raise fail(f"jobs[{index}].name", f"longer than {MAX_JOBNAME_BYTES} bytes (pg_cron < 1.5 truncates it)")
        if any(ord(ch) < 32 for ch in name):
            raise fail(f"jobs[{index}].name", "contains control characters")
        targets = [key for key in ("function", "url", "sql") if key in job]
        if len(targets) != 1:
            raise fail(f"jobs[{index}]", f"needs exactly one target of function/url/sql, found {targets or 'none'}")
        if "schedule" not in job and "at" not in job:
            raise fail(f"jobs[{index}]", "needs `schedule` or `at` (+ `timezone`)")
        check_values(job, where)
        method = job.get("method", "POST").upper()
        if method not in METHODS:
            raise fail(f"jobs[{index}].method", f"{method!r} is not one of {', '.join(METHODS)} (pg_net's functions)")
        for header, value in job.get("headers", {}).items():
            if not isinstance(value, str):
                raise fail(f"jobs[{index}].headers.{header}", f"expected string, got {type(value).__name__}")
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", header):
                raise fail(f"jobs[{index}].headers.{header}", "is not a valid HTTP header name",
                           "Use letters, digits and - (e.g. x-scheduler-token).")
            if any(ord(ch) < 32 and ch != "\t" or ord(ch) == 127 for ch in value):
                raise fail(f"jobs[{index}].headers.{header}", "contains a line break or another control character",
                           "A header value is one line of text: remove it.")
            if "{env:" in value:
                raise fail(f"jobs[{index}].headers.{header}", "{env:...} is not allowed in headers",
                           "Headers carry keys: reference a secret with {secret:NAME} so it is read when the job fires.")
            if INLINED_KEY.search(value):
                raise fail(f"jobs[{index}].headers.{header}", "contains what looks like a literal key or JWT",
                           "Never paste keys into the manifest: store it with `cronkit secrets set NAME` and write {secret:NAME}.")
            if header.lower() == "content-type" and value != "application/json":
                raise fail(f"jobs[{index}].headers.{header}", "pg_net only sends Content-Type: application/json")
        if INLINED_KEY.search(job.get("sql", "")):
            raise fail(f"jobs[{index}].sql", "contains what looks like a literal key or JWT",
                       "Keys in SQL end up in cron.job.command and the wrapper's source; use an HTTP job with {secret:NAME}.")
        refused = NOT_IN_FUNCTION.search(job.get("sql", ""))
        if refused:
            raise fail(f"jobs[{index}].sql", f"{' '.join(refused.group(1).split()).upper()} cannot run inside a function, "
                       "and a job's SQL runs inside its generated wrapper",
                       "Schedule this command with cron.schedule() directly: cronkit shows it as a foreign job "
                       "and leaves it alone.")
        if "sql" in job and any(k in job for k in ("headers", "body", "method", "params")):
            raise fail(f"jobs[{index}]", "an sql job takes no headers/body/method/params")
        if "retry" in job:
            if "sql" in job:
                raise fail(f"jobs[{index}].retry", "only an HTTP job (function or url) can be retried",
                           "Remove `retry`, or make the SQL idempotent and let the next run pick up the work.")
            check(job["retry"], _RETRY, f"jobs[{index}].retry.")
            try:
                retry_policy(job["retry"])
            except ValueError as exc:
                key, _, problem = str(exc).partition(": ")
                raise fail(f"jobs[{index}].retry.{key}", *problem.split("\n", 1)) from None

    environments = data.get("environments", {})
    for env_name, env in environments.items():
        if not isinstance(env, dict):
            raise fail(f"environments.{env_name}", "expected a table")
        check(env, {"base_url": str, "jobs": dict}, f"environments.{env_name}.")
        check_values(env, f"environments.{env_name}.")
        for job_name, override in env.get("jobs", {}).items():
            where = f"environments.{env_name}.jobs.{job_name}"
            if job_name not in seen:
                raise fail(where, "no job with this name", f"Jobs are: {', '.join(seen)}.")
            if not isinstance(override, dict):
                raise fail(where, f"expected a table, got {type(override).__name__} {override!r}")
            check(override, _ENV_JOB, f"{where}.")
            check_values(override, f"{where}.")
            target = next(key for key in ("function", "url", "sql") if key in jobs[seen[job_name]])
            for key, needs in (("url", "url"), ("base_url", "function")):
                if key in override and target != needs:
                    raise fail(f"{where}.{key}", f"job {job_name!r} is a {target} job; {key} applies to {needs} jobs only")

    queues = []
    for index, queue in enumerate(data.get("queues", [])):
        if not isinstance(queue, dict):
            raise fail(f"queues[{index}]", "expected a table ([[queues]])")
        check(queue, _QUEUE, f"queues[{index}].")
        if "table" not in queue:
            raise fail(f"queues[{index}].table", "missing")
        for key in ("pending", "processing", "failed", "done"):
            if not all(isinstance(value, str) for value in queue.get(key, [])):
                raise fail(f"queues[{index}].{key}", f"expected a list of status strings, got {queue[key]!r}")
        queues.append(QueueSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in queue.items()}))

    default_env = data.get("default_environment") or (next(iter(environments)) if environments else "default")
    if environments and default_env not in environments:
        raise fail("default_environment", f"{default_env!r} is not defined in [environments]")
    return Manifest(
        path=path,
        project=project,
        default_environment=default_env,
        secrets=secrets_cfg,
        raw_jobs=tuple(jobs),
        environments=environments,
        queues=tuple(queues),
        monitoring=data.get("monitoring", {}),
        alerts=data.get("alerts", {}),
    )
