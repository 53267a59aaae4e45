"""One rule for HTTP outcomes: the SQL classifier, the Python classifier and every view agree on the same responses.

Real requests through pg_net to the sandbox's Edge Functions server, one job per class (2xx, 3xx,
4xx, 5xx, timeout, transport error, pending); then each consumer of the rule is asked what became
of each job's call, and all must give the answer of :func:`cronkit.outcomes.classify`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from cronkit import db as cdb
from cronkit import monitor
from cronkit.outcomes import FAILED, Outcome, classify
from tests.helpers import wait_for

Conn = cdb.Conn

#: what each job's function does, and the outcome that must be reported for it
CASES: dict[str, tuple[dict[str, Any] | None, Outcome]] = {
    "ok": ({"status": 200}, Outcome.OK),
    "moved": ({"status": 302}, Outcome.REDIRECT),  # no Location: pg_net cannot follow it
    "missing": ({"status": 404}, Outcome.CLIENT_ERROR),
    "broken": ({"status": 503}, Outcome.SERVER_ERROR),
    "slow": ({"status": 200, "latency_ms": 3000}, Outcome.TIMEOUT),
    "refused": (None, Outcome.TRANSPORT_ERROR),  # nothing listens
}


@pytest.fixture(scope="module")
def calls(sandbox_only: Any) -> Iterator[dict[str, Any]]:
    """One finished request per class plus one that never gets an answer, attributed in the ledger."""
    tag = uuid.uuid4().hex[:8]
    prefix = f"ck-agree-{tag}-"
    edge = sandbox_only.edge
    base = f"{sandbox_only.supabase_url}/functions/v1/"
    with cdb.connect(sandbox_only.superuser_url, autocommit=True) as su, \
            cdb.connect(sandbox_only.database_url, autocommit=True) as db:
        from cronkit.plan import schema_files

        if su.execute("SELECT to_regclass('cronkit.request_ledger') IS NULL AS missing").fetchone()["missing"]:  # type: ignore[index]
            for _name, text in schema_files():
                su.execute(text)  # type: ignore[arg-type]
        ids: dict[str, int] = {}
        for suffix, (behaviour, _expected) in CASES.items():
            function = prefix + suffix
            if behaviour is not None:
                edge.configure(function, verify_jwt=False, **behaviour)
            url = base + function if behaviour is not None else "http://127.0.0.1:9/"
            with db.transaction():
                row = db.execute("SELECT net.http_post(url := %s, timeout_milliseconds := 1000) AS id", (url,)).fetchone()
                assert row is not None
                db.execute("INSERT INTO cronkit.request_ledger (request_id, jobname, url) VALUES (%s, %s, %s)",
                           (row["id"], function, url))
            ids[function] = int(row["id"])
        pending = prefix + "pending"
        db.execute("INSERT INTO cronkit.request_ledger (request_id, jobname, url) VALUES (%s, %s, 'http://never')",
                   (-int(tag, 16) % 1_000_000_000 - 1, pending))
        wait_for(lambda: db.execute("SELECT count(*) AS n FROM net._http_response WHERE id = ANY(%s)",
                                    (list(ids.values()),)).fetchone()["n"] == len(ids),  # type: ignore[index]
                 timeout=30, message="pg_net's responses to every request")
        responses = {r["id"]: r for r in db.execute(
            "SELECT id, status_code, timed_out, error_msg, cronkit.http_outcome(status_code, timed_out, error_msg) AS sql_outcome "
            "FROM net._http_response WHERE id = ANY(%s)", (list(ids.values()),)).fetchall()}
        yield {"prefix": prefix, "ids": ids, "responses": responses, "pending": pending, "db_url": sandbox_only.database_url}
        for function in ids:
            edge.reset(function)
        su.execute("DELETE FROM cronkit.request_ledger WHERE jobname LIKE %s", (prefix + "%",))
        su.execute("DELETE FROM cronkit.http_responses WHERE jobname LIKE %s", (prefix + "%",))


def expected(calls: dict[str, Any]) -> dict[str, Outcome]:
    out = {calls["prefix"] + suffix: outcome for suffix, (_b, outcome) in CASES.items()}
    out[calls["pending"]] = Outcome.PENDING
    return out


def test_the_sql_and_python_classifiers_agree_on_every_response(calls: dict[str, Any]) -> None:
    want = expected(calls)
    for function, request_id in calls["ids"].items():
        response = calls["responses"][request_id]
        python = classify(response["status_code"], response["timed_out"], response["error_msg"])
        assert (function, response["sql_outcome"]) == (function, python.value)
        assert (function, python) == (function, want[function])


def test_the_sql_classifier_agrees_with_python_on_edge_cases(db: Conn) -> None:
    cases = [(None, None, None), (199, None, None), (200, None, None), (299, False, None), (300, None, None),
             (304, None, None), (399, None, None), (401, None, None), (499, None, None), (500, None, None),
             (599, None, None), (600, None, None), (None, True, "Timeout of 5000 ms reached"),
             (None, None, "Timeout of 5000 ms reached. Total time: 5001 ms"), (None, False, "Couldn't connect to server"),
             (200, True, None), (502, None, "partial")]
    for status, timed_out, error in cases:
        row = db.execute("SELECT cronkit.http_outcome(%s::int, %s::bool, %s::text) AS o", (status, timed_out, error)).fetchone()
        assert row is not None
        assert row["o"] == classify(status, timed_out, error).value, (status, timed_out, error)


def _monitor_view(calls: dict[str, Any]) -> dict[str, Outcome]:
    with cdb.connect(calls["db_url"], autocommit=True) as db:
        frame = monitor.http_outcomes(db, timedelta(minutes=10), jobs=sorted(expected(calls)))
    seen: dict[str, Outcome] = {}
    for row in frame.iter_rows(named=True):
        classes = [o for o in Outcome if row.get(o)]
        assert len(classes) == 1 and row["requests"] == 1, row
        seen[row["jobname"]] = classes[0]
    return seen


def _runbook_context(calls: dict[str, Any]) -> Any:
    from pathlib import Path

    from cronkit.manifest import parse_manifest
    from cronkit.runbooks.context import RunbookContext

    empty = parse_manifest({"project": "*"}, Path("<no manifest>"))
    return RunbookContext(dsn=calls["db_url"], manifest=empty, environment=empty.default_environment, has_manifest=False)


def _runbook_last_outcome(calls: dict[str, Any]) -> dict[str, Outcome]:
    """The runbooks' "last HTTP answer" column (its own query, runbooks/last_outcome.sql)."""
    from cronkit.runbooks.job_checks import last_outcomes

    since = {name: None for name in expected(calls)}
    return {name: Outcome(value) for name, value in last_outcomes(_runbook_context(calls), since).items()}


def _runbook_table(calls: dict[str, Any]) -> dict[str, Outcome]:
    """The setup/rotate runbooks' verification columns: ``http`` text and the failed-call count."""
    from cronkit.runbooks.job_checks import failed_calls, http_since, outcome_text

    counts = http_since(_runbook_context(calls), {name: None for name in expected(calls)})
    seen = {}
    for name, row in counts.items():
        (shown,) = [o for o in Outcome if outcome_text(row) == f"{o} ×1"]
        assert failed_calls(row) == (1 if shown.failed else 0), (name, row)
        seen[name] = shown
    return seen


def _demo_report(calls: dict[str, Any]) -> dict[str, Outcome]:
    """The demo report's per-job HTTP columns (http_2xx / http_failed / pending)."""
    from cronkit_sandbox.demo import http_counts

    with cdb.connect(calls["db_url"], autocommit=True) as db:
        frame = monitor.http_outcomes(db, timedelta(minutes=10), jobs=sorted(expected(calls)))
    seen = {}
    for row in frame.to_dicts():
        report = http_counts(row)
        (shown,) = [Outcome(o) for o, n in report["http"].items() if n]
        assert (report["http_2xx"], report["http_failed"], report["pending"]) == (
            int(shown.succeeded), int(shown.failed), int(shown is Outcome.PENDING)), (row["jobname"], report)
        seen[row["jobname"]] = shown
    return seen


_HTTP_CHECKS = ("HTTP_UNAUTHORIZED", "HTTP_SERVER_ERROR", "HTTP_CLIENT_ERROR", "HTTP_REDIRECT", "HTTP_TIMEOUT",
                "HTTP_UNREACHABLE")


def _doctor_evidence(calls: dict[str, Any]) -> dict[str, Outcome]:
    """The doctor's HTTP findings: their ``outcomes`` evidence per job. A job without a finding must
    be one whose call did not fail; it is reported as the class the rule gives, so a failure the
    doctor misses (or an alarm on a success) shows up as a disagreement."""
    from cronkit.doctor import diagnose

    with cdb.connect(calls["db_url"], autocommit=True) as db:
        report = diagnose(db, checks=_HTTP_CHECKS, window=timedelta(minutes=10))
    mine = set(expected(calls))
    seen: dict[str, Outcome] = {}
    for finding in report.findings:
        if finding.job in mine:
            (shown,) = [Outcome(o) for o, n in finding.evidence["outcomes"].items() if n]
            assert finding.job not in seen or seen[finding.job] == shown
            seen[finding.job] = shown
    assert set(seen) == {job for job, o in expected(calls).items() if o.failed and o is not Outcome.EXPIRED}, seen
    for job, outcome in expected(calls).items():
        if job not in seen and not outcome.failed:
            seen[job] = outcome
    return seen


#: every view that reports what became of a job's HTTP call: name → (calls → {job: outcome})
VIEWS: dict[str, Callable[[dict[str, Any]], dict[str, Outcome]]] = {
    "monitor frame": _monitor_view,
    "runbook last answer": _runbook_last_outcome,
    "runbook verification table": _runbook_table,
    "demo report": _demo_report,
    "doctor evidence": _doctor_evidence,
}


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_every_view_reports_the_outcome_the_rule_gives(view: str, calls: dict[str, Any]) -> None:
    assert VIEWS[view](calls) == expected(calls)


def test_only_2xx_is_success_and_pending_is_not_yet_a_failure() -> None:
    assert [o for o in Outcome if o.succeeded] == [Outcome.OK]
    assert Outcome.REDIRECT in FAILED and Outcome.PENDING not in FAILED and Outcome.EXPIRED in FAILED
