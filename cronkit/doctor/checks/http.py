"""Checks of HTTP outcomes: what the endpoints answered to the requests jobs queued through pg_net.

Requests are cronkit's ledger joined to ``net._http_response`` (and to the copies cronkit's harvest
keeps), plus responses no cronkit wrapper queued. Each is classified by :func:`cronkit.outcomes.classify`,
the one rule of every view: only 2xx is a success, and a 3xx is a failure (pg_net does not follow
redirects). The doctor names one refinement apart: a 4xx that :func:`~cronkit.outcomes.is_unauthorized`.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from itertools import takewhile
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cronkit.doctor.catalogue import CATALOGUE, check
from cronkit.doctor.context import Context, backend_label, store_command
from cronkit.doctor.hosts import container_hints, is_local_url
from cronkit.doctor.model import Finding, Severity, Skip
from cronkit.manifest import TEMPLATE
from cronkit.outcomes import Outcome, classify, is_unauthorized
from cronkit.recover import MissingSecret, Recovered
from cronkit.redact import fingerprint
from cronkit.secrets import SecretState
from cronkit.text import human_duration

# a copy of responses before pg_net.ttl: cronkit's harvest job, or an insert of one's own
_HARVEST = re.compile(
    r'\bcronkit\s*\.\s*harvest_responses\s*\(|\binsert\s+into\s+"?cronkit"?\s*\.\s*"?http_responses"?', re.IGNORECASE)
#: outcomes that say nothing about whether the endpoint works now
_UNDECIDED = (Outcome.PENDING, Outcome.EXPIRED, Outcome.OTHER)


def _outcome(ctx: Context, r: Mapping[str, Any]) -> Outcome:
    """The outcome of one request; one without any response is pending while pg_net may still
    answer (the job's timeout plus 5 minutes), expired after that or when the harvest says so."""
    if r.get("harvested_outcome") == Outcome.EXPIRED:
        return Outcome.EXPIRED
    outcome = classify(r["status_code"], r["timed_out"], r["error_msg"])
    if outcome is Outcome.OTHER and r["status_code"] is None and not r.get("answered"):
        spec = ctx.spec_for(r["jobname"]) if r.get("jobname") else None
        timeout = timedelta(milliseconds=spec.timeout_ms if spec else 5000)
        return Outcome.PENDING if r["created_at"] > ctx.now - timeout - timedelta(minutes=5) else Outcome.EXPIRED
    return outcome


def _classified(ctx: Context) -> tuple[str | None, list[list[dict[str, Any]]]]:
    """Why cronkit's requests could not be read (or None), and the requests and the unattributed
    responses, each row with its ``outcome``."""
    def compute() -> tuple[str | None, list[list[dict[str, Any]]]]:
        skipped = None
        try:
            attributed = ctx.http_requests()
        except Skip as exc:
            attributed, skipped = [], str(exc)
        groups = [[{**r, "outcome": _outcome(ctx, r)} for r in rows]
                  for rows in (attributed, ctx.unattributed_responses())]
        return skipped, groups
    return ctx.memo("http_classified", compute)


#: which requests each HTTP check reports
_SELECT: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "HTTP_UNAUTHORIZED": lambda r: r["outcome"] is Outcome.CLIENT_ERROR and is_unauthorized(r["status_code"]),
    "HTTP_SERVER_ERROR": lambda r: r["outcome"] is Outcome.SERVER_ERROR,
    "HTTP_CLIENT_ERROR": lambda r: r["outcome"] is Outcome.CLIENT_ERROR and not is_unauthorized(r["status_code"]),
    "HTTP_REDIRECT": lambda r: r["outcome"] is Outcome.REDIRECT,
    "HTTP_TIMEOUT": lambda r: r["outcome"] is Outcome.TIMEOUT,
    "HTTP_UNREACHABLE": lambda r: r["outcome"] is Outcome.TRANSPORT_ERROR,
}


@dataclass(frozen=True)
class _HttpGroup:
    job: str | None  # None: responses no cronkit wrapper queued
    failing: list[dict[str, Any]]  # the requests the check reports, newest first
    counts: dict[str, int]  # every outcome of the job's requests in the window
    recovered_at: datetime | None  # the newest answer is a success after the last failure


def _http_groups(ctx: Context, code: str) -> Iterator[_HttpGroup]:
    """The requests check ``code`` reports, per job (and one group for unattributed responses)."""
    skipped, groups = _classified(ctx)
    if skipped:
        ctx.skip_part(code, f"requests of cronkit jobs: {skipped}")
    selected = _SELECT[code]
    for rows in groups:
        per_job: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            per_job[r["jobname"]].append(r)
        for job, job_rows in per_job.items():  # newest first
            failing = [r for r in job_rows if selected(r)]
            if not failing:
                continue
            newest = next((r for r in job_rows if r["outcome"] not in _UNDECIDED), None)
            recovered = newest["created_at"] if newest is not None and newest["outcome"] is Outcome.OK else None
            if job is None:
                recovered = None  # these responses mix every caller: one's success does not clear another
            yield _HttpGroup(job, failing, dict(Counter(str(r["outcome"]) for r in job_rows)), recovered)


def _http_found(ctx: Context, code: str, group: _HttpGroup, message: str, evidence: dict[str, Any],
                fix: str | None = None) -> Finding:
    """A finding for an HTTP group: critical when nothing got through, info once it recovered."""
    default = CATALOGUE[code].severity
    if group.recovered_at is not None:
        severity = Severity.INFO
        message += f" It has recovered since: the newest request ({group.recovered_at:%Y-%m-%d %H:%M} UTC) succeeded."
        evidence["recovered_at"] = group.recovered_at
    elif group.job is None:
        severity = Severity.WARNING if default is Severity.CRITICAL else default
        callers = _unledgered_callers(ctx)
        evidence["callers"] = callers
        if callers:
            names = ", ".join(repr(c["job"]) for c in callers[:6])
            message += (f" The jobs that call pg_net without a cronkit wrapper: {names}. pg_net keeps no URL or job "
                        "with a response, so these cannot be told apart, and a success of one clears no other.")
            adopt = ("Adopt them so each request is recorded with its job: `cronkit import --job NAME > cronkit.toml`, "
                     "review it, then `cronkit apply --adopt`.")
            fix = f"{fix or CATALOGUE[code].fix} {adopt}"
    elif (default is Severity.WARNING and group.counts.get(Outcome.OK, 0) == 0
          and len(group.failing) >= max(1, ctx.limits.consecutive_failures)):
        severity = Severity.CRITICAL  # nothing got through
    else:
        severity = default
    return ctx.found(code, job=group.job, message=message, evidence=evidence, fix=fix, severity=severity)


def _unledgered_callers(ctx: Context) -> list[dict[str, Any]]:
    """Jobs whose SQL calls pg_net without cronkit's ledger seeing it, each with the URL its SQL
    builds when :func:`cronkit.recover.recover` can read it (for the unattributed group)."""
    def compute() -> list[dict[str, Any]]:
        if not ctx.facts.pg_cron:
            return []
        callers = []
        for job in ctx.jobs():
            label = job["jobname"] or f"jobid {job['jobid']}"
            meaning = ctx.meanings().get(label)
            if meaning is None or not meaning.calls_http or ctx.ledgered(job["jobid"]):
                continue
            callers.append({"job": label, "url": meaning.url, "via": meaning.via})
        return callers
    return ctx.memo("unledgered_callers", compute)


def _http_evidence(failing: list[dict[str, Any]], counts: Mapping[str, int]) -> dict[str, Any]:
    return {
        "failed": len(failing),
        "outcomes": dict(counts),
        "first_at": failing[-1]["created_at"],
        "last_at": failing[0]["created_at"],
        "urls": sorted({r["url"] for r in failing if r["url"]})[:5],
        "samples": [
            {"request_id": r["request_id"], "at": r["created_at"], "status_code": r["status_code"],
             "body": (r["content"] or "")[:200] or None, "error_msg": r["error_msg"]}
            for r in failing[:3]
        ],
    }


def _status_evidence(group: _HttpGroup) -> tuple[Counter[int], dict[str, Any]]:
    """The status codes of a group's failing requests, and its evidence with them counted."""
    statuses = Counter(r["status_code"] for r in group.failing)
    evidence = _http_evidence(group.failing, group.counts)
    evidence["status_codes"] = {str(k): v for k, v in statuses.items()}
    return statuses, evidence


def _who(job: str | None, count: int) -> str:
    if job is None:
        return f"{count} request(s) not queued by a cronkit wrapper (hand-written cron jobs, database webhooks)"
    return f"Job {job!r}: {count} request(s)"


@check(
    "HTTP_UNAUTHORIZED", Severity.CRITICAL,
    "The endpoint answered 401: no Authorization header arrived (a NULL value that pg_net dropped) or the key is stale/wrong.",
    "'Missing authorization header': make sure the header value can never be NULL and that the job sends "
    "Authorization: Bearer <JWT>. 'Invalid JWT': store the current key (`cronkit secrets set NAME`; "
    "locally from `supabase status -o env`); sb_secret_ keys are not JWTs — send them as apikey and deploy the "
    "function with verify_jwt = false.",
)
def _http_unauthorized(ctx: Context) -> Iterator[Finding]:
    for group in _http_groups(ctx, "HTTP_UNAUTHORIZED"):
        job, failing = group.job, group.failing
        causes = Counter(_auth_cause(r["content"]) for r in failing)
        evidence = _http_evidence(failing, group.counts)
        evidence["causes"] = dict(causes)
        auth = _auth_secrets(ctx, job) if job else []
        if auth:
            evidence["auth_secrets"] = auth
        main = causes.most_common(1)[0][0]
        codes = ", ".join(str(s) for s in sorted({r["status_code"] for r in failing}))
        head = f"{_who(job, len(failing))} answered {codes}"
        if main == "missing_authorization_header":
            message = (f"{head} 'Missing authorization header': the request reached the function's JWT gate without an "
                       "Authorization header. pg_net silently drops a header whose value is NULL (e.g. 'Bearer ' || a "
                       "missing secret), and a job that sends only apikey never has one.")
            fix = ("Send Authorization: Bearer <key> with a value that cannot be NULL (cronkit wrappers refuse NULL "
                   "secrets; in hand-written jobs check the Vault lookup returns a row), or deploy the function with "
                   "verify_jwt = false and check the key in the function.")
        elif main == "invalid_jwt" and (new_keys := [a for a in auth if str(a.get("header")).lower() == "authorization"
                                                     and a.get("key_kind") in ("sb_secret", "sb_publishable")]):
            message = (f"{head} 'Invalid JWT': the key it sends as Authorization: Bearer — secret "
                       f"{new_keys[0]['secret']!r} — is an {new_keys[0]['key_kind']}_ key, which is not a JWT: the "
                       "function's JWT gate (verify_jwt) refuses every such key, however current it is.")
            fix = ("Send the sb_secret_ key in the apikey header and deploy the function with verify_jwt = false "
                   "(checking the key in the function), or store the legacy service-role JWT (Dashboard → Project "
                   "Settings → API keys → Legacy) where the job reads it.")
        elif main == "invalid_jwt":
            stale = [a for a in auth if a.get("matches_source") is False]
            message = (f"{head} 'Invalid JWT': a header arrived but the gateway rejected the key — it is stale (rotated, "
                       "or a local CLI key that changed) or not a JWT at all (an sb_secret_/sb_publishable_ key sent as Bearer).")
            if stale:
                message += " " + "; ".join(
                    f"secret {a['secret']!r} ({a['fingerprint']}) differs from {a['source']} ({a['source_fingerprint']}): it is stale"
                    for a in stale) + "."
            sent = [a for a in auth if a.get("store_with")]
            if sent:
                message += " The key it sends: " + "; ".join(
                    f"secret {a['secret']!r} in {a['backend']} ({a['state']}, updated {a['updated_at'] or 'never'})"
                    for a in sent) + "."
            stores = " and ".join(f"`{a['store_with']}`" for a in sent) or "`cronkit secrets set NAME`"
            fix = (f"Store the current key where the job reads it: {stores} (or re-run `cronkit apply`, which re-syncs "
                   "secrets with [secrets.sources]); for sb_secret_ keys send apikey and set verify_jwt = false.")
        else:
            message = (f"{head} 401 from the function's own check (the body names neither a missing header nor an "
                       "invalid JWT): the shared secret it expects (CRON_SECRET, a scheduler token) does not match.")
            fix = "Store the value the function expects (its secret in the Edge Function's env and the secret cronkit sends must match)."
        yield _http_found(ctx, "HTTP_UNAUTHORIZED", group, message, evidence, fix)


def _auth_cause(body: str | None) -> str:
    text = (body or "").lower()
    if "missing authorization header" in text:
        return "missing_authorization_header"
    if "invalid jwt" in text or "jwt" in text:
        return "invalid_jwt"
    return "rejected_by_function"


def _auth_secrets(ctx: Context, job: str) -> list[dict[str, Any]]:
    """Status of the secrets a job sends in auth headers, compared with the manifest's sources when possible."""
    spec = ctx.spec_for(job)
    headers: Mapping[str, str] = {}
    if spec is not None:
        headers = spec.headers
    else:
        managed = ctx.managed().get(job)
        if managed is not None:
            headers = managed.spec.get("headers") or {}
    names = []
    sent_as: dict[str, str] = {}
    for header, template in headers.items():
        if header.lower() in ("authorization", "apikey") or any(p in header.lower() for p in ("token", "secret", "key")):
            found = [name for kind, name in TEMPLATE.findall(template) if kind == "secret"]
            names += found
            sent_as.update({name: header for name in found})
    if not names:
        return []
    # the backend this job reads each secret from (a Vault secret of the same name is another secret)
    backends = {need.name: need.backend for need in ctx.secret_needs() if job in need.jobs}
    statuses = ctx.safe_statuses()
    result = []
    for name in dict.fromkeys(names):
        key = backends.get(name)
        status = statuses.get((key, name)) if key is not None else None
        entry: dict[str, Any] = {"secret": name, "backend": backend_label(key) if key else "unknown",
                                 "store_with": store_command(key, name, ctx.manifest) if key else None,
                                 "state": status.state if status else "unknown",
                                 "length": status.length if status else None,
                                 "fingerprint": status.fingerprint if status else None,
                                 "updated_at": status.updated_at if status else None,
                                 "header": sent_as.get(name),
                                 "key_kind": status.key_kind if status else None}
        if ctx.manifest is not None and ctx.environ is not None:
            source = ctx.manifest.secrets.source_value(name, ctx.environ)
            if source is not None and source[1]:
                entry["source"] = source[0]
                entry["source_fingerprint"] = fingerprint(source[1])
                entry["matches_source"] = status is not None and status.fingerprint == entry["source_fingerprint"]
        result.append(entry)
    return result


@check(
    "HTTP_SERVER_ERROR", Severity.WARNING,
    "The endpoint answered 5xx (function crashed, 546 WORKER_LIMIT, 503 BOOT_ERROR, 504 idle timeout).",
    "Read the function's logs (Dashboard → Edge Functions → Logs, or `supabase functions serve` output) for the "
    "failing invocations; 546 means CPU/memory limits (smaller batches), 504 the 150 s idle timeout (answer early).",
)
def _http_server_error(ctx: Context) -> Iterator[Finding]:
    meanings = {500: "function error (WORKER_ERROR)", 502: "bad gateway", 503: "BOOT_ERROR: the function failed to start",
                504: "IDLE_TIMEOUT: no answer within 150 s", 546: "WORKER_LIMIT: CPU or memory limit hit"}
    for group in _http_groups(ctx, "HTTP_SERVER_ERROR"):
        job, failing = group.job, group.failing
        statuses = Counter(r["status_code"] for r in failing)
        evidence = _http_evidence(failing, group.counts)
        evidence["status_codes"] = {str(k): v for k, v in statuses.items()}
        named = "; ".join(f"{code}: {meanings[code]}" for code in statuses if code in meanings)
        message = f"{_who(job, len(failing))} answered {', '.join(str(s) for s in sorted(statuses))}" + (f" ({named})" if named else "") + \
            ". pg_cron still records these runs as succeeded: pg_net only queued the request."
        yield _http_found(ctx, "HTTP_SERVER_ERROR", group, message, evidence)


@check(
    "HTTP_CLIENT_ERROR", Severity.WARNING,
    "The endpoint answered another 4xx (404 function not found / not deployed, 400 bad request, 405 method).",
    "404 'Function not found': deploy the function or fix the URL (…/functions/v1/<slug>); 400: the body the job "
    "sends is not what the function expects; 405: use POST or GET.",
)
def _http_client_error(ctx: Context) -> Iterator[Finding]:
    for group in _http_groups(ctx, "HTTP_CLIENT_ERROR"):
        job, failing = group.job, group.failing
        statuses, evidence = _status_evidence(group)
        message = f"{_who(job, len(failing))} answered {', '.join(str(s) for s in sorted(statuses))}"
        if 404 in statuses:
            message += " — 404 usually means the function is not deployed or the URL's slug is wrong"
        yield _http_found(ctx, "HTTP_CLIENT_ERROR", group, message + ".", evidence)


@check(
    "HTTP_REDIRECT", Severity.WARNING,
    "The endpoint answered 3xx that pg_net could not follow (no Location header, 304, a redirect loop): the function's work never ran.",
    "Call the final URL directly (https, the exact …/functions/v1/<slug>); `curl -sI URL` shows where the redirect points.",
)
def _http_redirect(ctx: Context) -> Iterator[Finding]:
    for group in _http_groups(ctx, "HTTP_REDIRECT"):
        job, failing = group.job, group.failing
        statuses, evidence = _status_evidence(group)
        message = (f"{_who(job, len(failing))} answered {', '.join(str(s) for s in sorted(statuses))}, a redirect pg_net "
                   "could not follow, so the function never ran (pg_cron still records the runs as succeeded).")
        yield _http_found(ctx, "HTTP_REDIRECT", group, message, evidence)


@check(
    "HTTP_TIMEOUT", Severity.WARNING,
    "pg_net gave up waiting (timed_out, or error_msg 'Timeout of N ms reached'): the function is slower than timeout_milliseconds.",
    "Raise the job's timeout_ms (pg_net's default is 5000 ms) or make the function answer first and work in "
    "EdgeRuntime.waitUntil(...); a slow request also delays the rest of pg_net's batch.",
)
def _http_timeout(ctx: Context) -> Iterator[Finding]:
    for group in _http_groups(ctx, "HTTP_TIMEOUT"):
        job, failing = group.job, group.failing
        evidence = _http_evidence(failing, group.counts)
        spec = ctx.spec_for(job) if job else None
        managed = ctx.managed().get(job or "") if job else None
        timeout = spec.timeout_ms if spec else managed.spec.get("timeout_ms") if managed else None
        evidence["timeout_ms"] = timeout
        message = f"{_who(job, len(failing))} timed out" + (f" after {timeout} ms" if timeout else "") + \
            f": {(failing[0]['error_msg'] or 'timed_out = true').split('. ')[0]}."
        yield _http_found(ctx, "HTTP_TIMEOUT", group, message, evidence)


@check(
    "HTTP_UNREACHABLE", Severity.WARNING,
    "pg_net could not reach the endpoint (DNS, connection refused, TLS) — including a localhost URL called from a database in a container.",
    "Use a URL the database server itself can reach. With `supabase start` the database runs in a container, where "
    "localhost is the container: use http://api.supabase.internal:8000 (or http://kong:8000, "
    "http://host.docker.internal:54321).",
)
def _http_unreachable(ctx: Context) -> Iterator[Finding]:
    for group in _http_groups(ctx, "HTTP_UNREACHABLE"):
        job, failing = group.job, group.failing
        evidence = _http_evidence(failing, group.counts)
        errors = Counter((r["error_msg"] or "").split(".")[0] for r in failing)
        evidence["errors"] = dict(errors)
        local = sorted({u for u in evidence["urls"] if is_local_url(u)})
        message = f"{_who(job, len(failing))} failed before any HTTP answer: {errors.most_common(1)[0][0]}."
        fix = None
        if local:
            hints = _container(ctx)
            evidence["localhost_urls"] = local
            evidence["database_in_container"] = hints
            verdict = hints["verdict"]
            if verdict == "likely":
                message += (f" The URL points at localhost, and the database looks like it runs in a container "
                            f"({'; '.join(hints['hints'])}): there localhost is the container itself, not your machine.")
            elif verdict == "hosted":
                message += " The URL points at localhost, but the database is hosted: localhost there is Supabase's server."
                fix = "Use the project's URL: https://<ref>.supabase.co/functions/v1/<slug> (store it in Vault per environment)."
            elif verdict == "unlikely":
                message += (" The URL points at localhost and the database runs on this machine (no container seen), "
                            "so nothing listens at that port — is the function server running?")
                fix = "Start the function server (or fix the port), then check again."
            else:
                message += (" The URL points at localhost; if the database runs in a container (supabase start), "
                            "localhost is the container itself — cronkit could not tell from here.")
        yield _http_found(ctx, "HTTP_UNREACHABLE", group, message, evidence, fix)

def _container(ctx: Context) -> dict[str, Any]:
    """Whether the database runs in a container, from this connection's addresses (:mod:`.hosts`)."""
    row = ctx.network()
    return container_hints(
        client_host=ctx.conn.info.host, client_port=ctx.conn.info.port,
        server_addr=row["server_addr"], client_addr=row["client_addr"], server_port=row["server_port"],
        supabase=bool(row["supabase_roles"]), supabase_cli=bool(row["supabase_functions"]),
    )


@check(
    "RUNS_CALLED_NOTHING", Severity.CRITICAL,
    "Runs recorded as succeeded that made none of the HTTP calls the job exists to make: its SQL returned early "
    "(a missing secret it only warns about, or another early RETURN) — told apart from a guard that found no work.",
    "Make the job fail loudly instead of returning: store the missing secret, and let the function RAISE EXCEPTION "
    "when a secret is missing — or import the job (`cronkit import --job NAME`, then `cronkit apply --adopt`), "
    "whose wrapper fails a run that cannot call.",
)
def _runs_called_nothing(ctx: Context) -> Iterator[Finding]:
    ctx.require_cron()
    if not ctx.facts.pg_net:
        raise Skip("pg_net is not installed here")
    runs_by_job: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for run in ctx.runs():  # newest first
        if run["status"] == "succeeded":
            runs_by_job[run["jobid"]].append(run)
    pids = ctx.ledger_pids()
    for job in ctx.jobs():
        label = job["jobname"] or f"jobid {job['jobid']}"
        meaning = ctx.meanings().get(label)
        runs = runs_by_job.get(job["jobid"], [])
        if meaning is None or not meaning.calls_http or not job["active"] or not runs:
            continue
        if ctx.ledgered(job["jobid"]):
            called = pids.get(job["jobname"] or "", set())
            silent = list(takewhile(lambda r: r["job_pid"] not in called, runs))
        elif not _any_unattributed_since(ctx, runs[-1]["start_time"]):
            silent = runs  # nothing at all reached pg_net while these runs succeeded
        else:
            continue  # a hand-written job among other callers: its runs cannot be told apart (adopt it)
        if not silent:
            continue
        finding = _called_nothing(ctx, job["jobid"], label, meaning, silent, len(runs))
        if finding is not None:
            yield finding


def _any_unattributed_since(ctx: Context, since: datetime | None) -> bool:
    rows = ctx.unattributed_responses()  # newest first: one look, not a scan per job
    return since is None or (bool(rows) and rows[0]["created_at"] >= since)


def _called_nothing(ctx: Context, jobid: int, label: str, meaning: Recovered, silent: list[dict[str, Any]],
                    succeeded: int) -> Finding | None:
    """A finding for a job whose newest ``silent`` runs succeeded without a call, or None when its
    guard explains them (it finds no work now) or cannot be evaluated."""
    statuses = ctx.safe_statuses()
    missing = list(dict.fromkeys(read.name for read in ctx.walks()[jobid].reads
                                 if (status := statuses.get((read.backend, read.name))) and status.state == SecretState.MISSING))
    evidence: dict[str, Any] = {"succeeded_runs": succeeded, "runs_without_call": len(silent),
                                "first_at": silent[-1]["start_time"], "last_at": silent[0]["start_time"],
                                "via": meaning.via, "guard": meaning.guard, "missing_secrets": missing}
    head = (f"Job {label!r}: its last {len(silent)} run(s) since {silent[-1]['start_time']:%Y-%m-%d %H:%M} UTC "
            "succeeded without an HTTP call")
    has_work = ctx.guard_has_work(meaning.guard) if meaning.guard is not None else None
    evidence["guard_has_work"] = has_work
    if has_work is False:
        return None  # a guard with nothing to do: the runs had no reason to call
    if missing and meaning.on_missing_secret is MissingSecret.CALLS_NOTHING:
        where = f"{meaning.via}()" if meaning.via else "its command"
        message = (f"{head}: {', '.join(map(repr, missing))} is missing, and {where} then only warns and returns — "
                   "pg_cron records success while nothing is called.")
        fix = (f"Store {', '.join(map(repr, missing))} where the job reads it, then make the function RAISE EXCEPTION "
               "instead of returning when a secret is missing (or import and adopt the job).")
        return ctx.found("RUNS_CALLED_NOTHING", job=label, message=message, evidence=evidence, fix=fix)
    if meaning.guard is not None:
        if has_work is None or len(silent) < 2:
            return None  # a guard that cannot be asked, or one run that may have raced new work: no alarm
        message = (f"{head}, although its guard finds work now ({meaning.guard}): something after the guard returns "
                   "early.")
    else:
        message = f"{head}: the job has no guard, so something in its SQL returned before the call."
    severity = Severity.CRITICAL if len(silent) == succeeded else Severity.WARNING
    return ctx.found("RUNS_CALLED_NOTHING", job=label, message=message, evidence=evidence, severity=severity)


@check(
    "RESPONSES_EXPIRING", Severity.WARNING,
    "Responses of cronkit's requests are (or are about to be) purged by pg_net.ttl before anything kept a copy.",
    "Keep outcomes beyond pg_net.ttl: enable cronkit's monitoring (`[monitoring]` with `enabled = true` in the "
    "manifest, then `cronkit apply`): its cronkit-harvest job copies net._http_response rows into "
    "cronkit.http_responses every minute. Keep that job active and succeeding.",
)
def _responses_expiring(ctx: Context) -> Iterator[Finding]:
    if not ctx.facts.pg_net:
        raise Skip("pg_net is not installed here")
    if not ctx.ledger_ready():
        raise Skip("cronkit.request_ledger does not exist (no cronkit-managed HTTP job was applied here)")
    ttl = ctx.pg_net_ttl()
    harvest = ctx.harvested()
    harvest_jobs = [j["jobname"] or f"jobid {j['jobid']}" for j in ctx.jobs_matching(_HARVEST)] if ctx.facts.pg_cron else []
    row = ctx.row(
        "doctor/responses_expiring_harvested" if harvest else "doctor/responses_expiring",
        {"expired": ctx.now - ttl, "expiring": ctx.now - ttl + ctx.limits.expiry_margin,
         "since": ctx.now - max(ctx.window, ttl + ctx.limits.expiry_margin + timedelta(hours=1))},
    )
    lost, expiring = row["lost"], row["expiring"]
    if not lost and not expiring:
        return
    if harvest and harvest_jobs and not lost:
        return  # the harvest job will pick them up
    evidence = {"pg_net.ttl": ttl, "lost": lost, "expiring_within": ctx.limits.expiry_margin, "expiring": expiring,
                "oldest_lost": row["oldest_lost"], "oldest_expiring": row["oldest_expiring"],
                "harvest_table": "cronkit.http_responses" if harvest else None, "harvest_jobs": harvest_jobs}
    parts = []
    if lost:
        parts.append(f"{lost} request(s) have no known outcome: no response within pg_net.ttl ({human_duration(ttl)}), or it was "
                     "purged before anything kept a copy")
    if expiring:
        parts.append(f"{expiring} response(s) will be purged within {human_duration(ctx.limits.expiry_margin)} and have no copy")
    if not harvest:
        reason = "cronkit's monitoring tables are not installed, so nothing harvests responses"
    elif not harvest_jobs:
        reason = "cronkit.http_responses exists but no active job copies responses into it"
    else:
        reason = (f"the harvest job(s) {', '.join(harvest_jobs)} did not copy them in time, or pg_net never answered "
                  "(see PG_NET_WORKER_DOWN)")
    message = "; ".join(parts) + f" — {reason}."
    yield ctx.found("RESPONSES_EXPIRING", job=None, message=message, evidence=evidence)
