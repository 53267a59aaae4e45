"""Generated plpgsql wrappers: one function per job, the only thing ``cron.job.command`` calls.

A wrapper, when pg_cron fires it:

0. with ``overlap = "skip"``, skips (and records the skip) while another run of the job is still
   going or its previous call has no response yet (:func:`_overlap_guard`);
1. evaluates the job's guard (skips quietly when there is nothing to do);
2. reads each secret it needs from the backend, and fails the run (RAISE EXCEPTION, so
   ``cron.job_run_details`` says *failed* and names the secret) when one is missing, NULL or a
   placeholder — instead of pg_net silently dropping a NULL header and the function answering 401;
3. calls ``net.http_post/get/delete``;
4. records ``(request id, job, backend pid, url)`` in ``cronkit.request_ledger``.

A job with ``retry`` (:func:`_retry_prologue`) sends ``Idempotency-Key: <job>:<slot>`` (the run's
start, UTC) and records the attempt and its chain in the ledger; ``cronkit.send_attempt``
(``sql/schema_retries.sql``) calls the same wrapper for a retry, with the key and attempt number in
the transaction-local setting ``cronkit.retry``, and the wrapper then skips steps 0 and 1.

An ``sql`` job's wrapper runs the job's SQL instead of 3, then records every request that SQL
queued through pg_net (hand-made functions adopted as they are): the rows of
``net.http_request_queue`` this very transaction inserted, which no other session can see yet.
Their URL is cut to scheme and host, plus ``/functions/v1/<slug>`` for an Edge Function: a path
the user's SQL built may carry a token (a webhook URL kept in Vault), so it is never copied.

Every value (URL parts, body, header names, messages) is composed with ``psycopg.sql.Literal``;
the job's ``cron.job.command`` is ``SELECT cronkit.<wrapper>()`` and never holds a secret.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from cronkit.db import AdaptContext
from cronkit.manifest import TEMPLATE, JobSpec, Overlap
from cronkit.secrets import SecretBackend, placeholder_check

SCHEMA = "cronkit"


def wrapper_name(job_name: str) -> str:
    """A stable identifier for the job's wrapper (job names may hold any character)."""
    slug = re.sub(r"[^a-z0-9]+", "_", job_name.lower()).strip("_")[:40] or "job"
    return f"job_{slug}_{hashlib.sha256(job_name.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class Wrapper:
    job: str
    function: str  # unqualified function name in schema cronkit
    body: str  # plpgsql source as stored in pg_proc.prosrc
    comment: str

    @property
    def qualified(self) -> sql.Identifier:
        return sql.Identifier(SCHEMA, self.function)

    @property
    def regprocedure(self) -> str:
        return f"{SCHEMA}.{self.function}()"

    def create_statement(self) -> sql.Composed:
        return sql.SQL(
            "CREATE OR REPLACE FUNCTION {fn}() RETURNS bigint LANGUAGE plpgsql SET search_path = public AS {body}"
        ).format(fn=self.qualified, body=sql.Literal(self.body))

    def comment_statement(self) -> sql.Composed:
        return sql.SQL("COMMENT ON FUNCTION {fn}() IS {c}").format(fn=self.qualified, c=sql.Literal(self.comment))

    def drop_statement(self) -> sql.Composed:
        return sql.SQL("DROP FUNCTION IF EXISTS {fn}()").format(fn=self.qualified)

    def command(self, context: AdaptContext | None = None) -> str:
        """The text stored in ``cron.job.command``."""
        return sql.SQL("SELECT {fn}()").format(fn=self.qualified).as_string(context)


def render_wrapper(spec: JobSpec, backend: SecretBackend, project: str, context: AdaptContext | None = None) -> Wrapper:
    """The wrapper of one job; deterministic, so plan can compare it with ``pg_proc.prosrc``."""
    secrets = spec.secret_names
    variables = {name: sql.Identifier(f"_ck_secret_{i}") for i, name in enumerate(secrets, start=1)}
    job = sql.Literal(spec.name)

    declare = [sql.SQL("_ck_request_id bigint;")]
    declare += [sql.SQL("{} text; -- secret {}").format(v, sql.SQL(_comment_safe(n))) for n, v in variables.items()]

    body: list[sql.Composable] = []
    checks: list[sql.Composable] = []  # what a scheduled run checks first and a retry skips
    retried = spec.retry is not None and spec.kind == "http"
    if retried:
        declare += [sql.SQL("_ck_retry jsonb := nullif(current_setting('cronkit.retry', true), '')::jsonb;"),
                    sql.SQL("_ck_attempt integer := 1;"), sql.SQL("_ck_key text;"), sql.SQL("_ck_first bigint;")]
        body.append(_retry_prologue(spec))
    if spec.overlap == Overlap.SKIP:
        declare.append(sql.SQL("_ck_in_flight bigint;"))
        checks.append(_overlap_guard(spec))
    if spec.guard:
        skipped = f'cronkit: job "{spec.name}" skipped: its guard found nothing to do'
        checks.append(
            sql.SQL("IF NOT coalesce(({guard}), false) THEN\n    RAISE NOTICE USING MESSAGE = {msg};\n    RETURN NULL;\n  END IF;").format(
                guard=sql.SQL(spec.guard), msg=sql.Literal(skipped)
            )
        )
    if retried and checks:
        body.append(sql.SQL("IF _ck_retry IS NULL THEN\n  {}\n  END IF;").format(sql.SQL("\n  ").join(checks)))
    else:
        body += checks
    for name, variable in variables.items():
        missing = f'cronkit: secret "{name}" is missing ({backend.kind}); job "{spec.name}" did not call its endpoint'
        placeholder = f'cronkit: secret "{name}" holds a placeholder, not a real value ({backend.kind}); job "{spec.name}" did not call its endpoint'
        hint = f"Store the real value: cronkit secrets set {name}"
        body.append(backend.read_into(variable, name))
        body.append(
            sql.SQL(
                "IF {v} IS NULL THEN\n    RAISE EXCEPTION USING MESSAGE = {m}, HINT = {h};\n  END IF;\n"
                "  IF {check} THEN\n    RAISE EXCEPTION USING MESSAGE = {p}, HINT = {h};\n  END IF;"
            ).format(v=variable, m=sql.Literal(missing), p=sql.Literal(placeholder), h=sql.Literal(hint), check=placeholder_check(variable))
        )

    if spec.kind == "sql":
        assert spec.sql is not None
        body.append(sql.SQL("EXECUTE {};").format(sql.Literal(spec.sql)))
        body.append(_ledger_of_queued(job))
        body.append(sql.SQL("RETURN NULL;"))
    else:
        url = _template(spec.url or "", variables)
        headers = _headers(spec, variables)
        if retried:
            headers = sql.SQL("{} || jsonb_build_object('Idempotency-Key', _ck_key)").format(headers)
        params = sql.SQL("{}::jsonb").format(sql.Literal(json.dumps(dict(spec.params), sort_keys=True)))
        timeout = sql.Literal(spec.timeout_ms)
        if spec.method == "POST":
            call = sql.SQL(
                "net.http_post(url := {url}, body := {body}::jsonb, params := {params}, headers := {headers}, timeout_milliseconds := {t})"
            ).format(url=url, body=sql.Literal(json.dumps(spec.body if spec.body is not None else {}, sort_keys=True)),
                     params=params, headers=headers, t=timeout)
        else:
            fn = sql.SQL("net.http_get" if spec.method == "GET" else "net.http_delete")
            call = sql.SQL("{fn}(url := {url}, params := {params}, headers := {headers}, timeout_milliseconds := {t})").format(
                fn=fn, url=url, params=params, headers=headers, t=timeout
            )
        body.append(sql.SQL("_ck_request_id := {};").format(call))
        # The ledger keeps the URL as written in the manifest: a part read from a secret stays
        # `{secret:NAME}` (a worker URL in Vault is a secret too), and the query string is dropped.
        ledger_url = sql.Literal((spec.url or "").split("?", 1)[0])
        if retried:
            body.append(sql.SQL(
                "INSERT INTO cronkit.request_ledger (request_id, jobname, url, attempt, idempotency_key, first_request_id)\n"
                "    VALUES (_ck_request_id, {job}, {url}, _ck_attempt, _ck_key, coalesce(_ck_first, _ck_request_id));"
            ).format(job=job, url=ledger_url))
        else:
            body.append(sql.SQL(
                "INSERT INTO cronkit.request_ledger (request_id, jobname, url)\n"
                "    VALUES (_ck_request_id, {job}, {url});"
            ).format(job=job, url=ledger_url))
        body.append(sql.SQL("RETURN _ck_request_id;"))

    source = sql.SQL(
        "\n#variable_conflict use_column\n"
        "-- Generated by cronkit for job {name} (project {project}). Edit the manifest, not this function.\n"
        "DECLARE\n  {declare}\nBEGIN\n  {body}\nEND\n"
    ).format(
        name=sql.SQL(_comment_safe(spec.name)),
        project=sql.SQL(_comment_safe(project)),
        declare=sql.SQL("\n  ").join(declare),
        body=sql.SQL("\n  ").join(body),
    ).as_string(context)
    comment = f"cronkit wrapper of job {spec.name!r} (project {project!r}); generated, do not edit"
    return Wrapper(job=spec.name, function=wrapper_name(spec.name), body=source, comment=comment)


def _retry_prologue(spec: JobSpec) -> sql.Composed:
    """Who is calling: ``cronkit.send_attempt`` with this job's key and attempt in ``cronkit.retry``, or
    pg_cron (and run-now), whose call is attempt 1 of a new chain keyed by the run's start."""
    job = sql.Literal(spec.name)
    return sql.SQL(
        "IF _ck_retry IS NOT NULL AND _ck_retry->>'job' = {job} THEN\n"
        "    _ck_attempt := (_ck_retry->>'attempt')::integer;\n"
        "    _ck_key := _ck_retry->>'key';\n"
        "    _ck_first := (_ck_retry->>'first_request_id')::bigint;\n"
        "  ELSE\n"
        "    _ck_retry := NULL;\n"
        "    _ck_key := {job} || ':' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"');\n"
        "  END IF;"
    ).format(job=job)


#: how much longer than its timeout a request without a response still blocks the next run: pg_net
#: stores a response a moment after the timeout; past this, the request is taken for lost
OVERLAP_MARGIN_SECONDS = 60


def _overlap_guard(spec: JobSpec) -> sql.Composed:
    """Skip the run while another run of the job holds its lock, or its previous call is in flight.

    The lock (transaction-level, keyed by the job's name) covers a run that has not committed its
    request yet, which no other session can see; ``cronkit.call_in_flight`` (``sql/schema_overlap.sql``)
    covers a committed request without a response. Either way the run calls nothing and leaves a
    row in ``cronkit.skipped_runs`` with the notice ``run_job_now`` reads as a skip."""
    job = sql.Literal(spec.name)
    running = f'cronkit: job "{spec.name}" skipped: overlap: another run of it is still running'
    pending = f'cronkit: job "{spec.name}" skipped: overlap: its previous call has no response yet (request '
    within = sql.Literal(f"{spec.timeout_ms + OVERLAP_MARGIN_SECONDS * 1000} milliseconds")
    return sql.SQL(
        "IF NOT pg_try_advisory_xact_lock(hashtext('cronkit.overlap'), hashtext({job})) THEN\n"
        "    INSERT INTO cronkit.skipped_runs (jobname, reason) VALUES ({job}, 'overlap');\n"
        "    RAISE NOTICE USING MESSAGE = {running};\n"
        "    RETURN NULL;\n"
        "  END IF;\n"
        "  _ck_in_flight := cronkit.call_in_flight({job}, {within}::interval);\n"
        "  IF _ck_in_flight IS NOT NULL THEN\n"
        "    INSERT INTO cronkit.skipped_runs (jobname, reason, blocking_request_id) VALUES ({job}, 'overlap', _ck_in_flight);\n"
        "    RAISE NOTICE USING MESSAGE = {pending} || _ck_in_flight || ')';\n"
        "    RETURN NULL;\n"
        "  END IF;"
    ).format(job=job, running=sql.Literal(running), pending=sql.Literal(pending), within=within)


#: what an sql job's ledger keeps of a URL its SQL built: scheme, host and an Edge Function's slug
_URL_KEPT = r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*@)?([^/?#]*)(/functions/v1/[A-Za-z0-9_-]+)?.*$"


def _ledger_of_queued(job: sql.Literal) -> sql.Composed:
    """Record the requests this transaction queued (an sql job's own ``net.http_post`` calls).

    Rows another session queued are invisible until it commits, and those it committed since have
    a committed ``xmin``: only this transaction's rows (its subtransactions' too) are
    ``in progress`` — ``pg_xact_status`` needs the xid with its epoch, taken from ours.
    A request already in the ledger was recorded by the wrapper of the job that sent it (the SQL
    called another job's wrapper, as ``cronkit.retry_calls`` does): it stays that job's.
    Without pg_net, or without the right to read its queue (pg_net before 0.12), nothing is
    recorded and the job runs as before."""
    return sql.SQL(
        "IF coalesce(has_table_privilege(to_regclass('net.http_request_queue'), 'SELECT'), false) THEN\n"
        "    INSERT INTO cronkit.request_ledger (request_id, jobname, url)\n"
        "    SELECT q.id, {job}, regexp_replace(q.url, {kept}, '\\1\\3\\4')\n"
        "      FROM net.http_request_queue q,\n"
        "           (SELECT pg_current_xact_id_if_assigned()::text::bigint AS top) me\n"
        "     WHERE q.xmin::text::bigint >= (me.top & 4294967295)\n"
        "       AND pg_xact_status(((me.top >> 32 << 32) | q.xmin::text::bigint)::text::xid8) = 'in progress'\n"
        "       AND NOT EXISTS (SELECT 1 FROM cronkit.request_ledger l WHERE l.request_id = q.id);\n"
        "  END IF;"
    ).format(job=job, kept=sql.Literal(_URL_KEPT))


def _comment_safe(text: str) -> str:
    """Text for a ``--`` comment line: no newline can end the comment early."""
    return json.dumps(text)[1:-1]


def _template(text: str, variables: dict[str, sql.Identifier]) -> sql.Composable:
    """``'https://' || _ck_secret_1 || '/functions/v1/x'`` for a template string."""
    parts: list[sql.Composable] = []
    position = 0
    for match in TEMPLATE.finditer(text):
        if match.start() > position:
            parts.append(sql.Literal(text[position : match.start()]))
        parts.append(variables[match.group(2)])
        position = match.end()
    if position < len(text) or not parts:
        parts.append(sql.Literal(text[position:]))
    return sql.SQL(" || ").join(parts) if len(parts) > 1 else parts[0]


def _headers(spec: JobSpec, variables: dict[str, sql.Identifier]) -> sql.Composable:
    if not spec.headers:
        return sql.SQL("'{}'::jsonb")
    pairs = [sql.SQL("{}, {}").format(sql.Literal(k), _template(v, variables)) for k, v in sorted(spec.headers.items())]
    return sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(pairs))


def spec_hash(wrapper: Wrapper, schedule: str, active: bool, retry: Mapping[str, Any] | None = None) -> str:
    """What apply compares: a change to any of these re-applies the job (``retry`` only when set, so
    the hashes of jobs without it stay as they were)."""
    fields: dict[str, Any] = {"body": wrapper.body, "schedule": schedule, "active": active}
    if retry is not None:
        fields["retry"] = retry
    payload = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
