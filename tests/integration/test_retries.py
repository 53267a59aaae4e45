"""``retry = { attempts, backoff, on }``: a failed call is sent again with one idempotency key, and a
call that keeps failing lands in the dead letter with its evidence.

The retry job ``cronkit-retries:<project>`` is driven here by ``run_job_now``, polled until the
effect shows, instead of waiting for pg_cron's minute. The sandbox's Edge Function is told to answer
a sequence of statuses (``statuses=[503, 503]``: two failures, then 200).
"""

from __future__ import annotations

import json
from typing import Any

from cronkit import db as cdb
from cronkit.jobs import run_job_now
from cronkit.redact import mask
from tests.helpers import wait_for
from tests.jobs_support import ROOT, Project, cronkit_schema, output, project  # noqa: F401  (fixtures)


def _retried_job(project: Project, function: str, attempts: int) -> tuple[str, str]:
    name = project.job("flaky")
    project.apply(project.data({
        "name": name, "schedule": "0 0 1 1 *", "timeout_ms": 5000,
        "url": f"{project.target.supabase_url}/functions/v1/{function}",
        "retry": {"attempts": attempts, "backoff": "1 second", "on": ["5xx", "timeout", "transport"]},
    }))
    return name, f"cronkit-retries:{project.name}"


def _chain(conn: Any, name: str) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT l.request_id, l.attempt, l.idempotency_key, l.first_request_id, a.outcome, a.status_code "
        "FROM cronkit.request_ledger l LEFT JOIN LATERAL cronkit.http_answer(l.request_id) a ON true "
        "WHERE l.jobname = %s ORDER BY l.attempt", (name,)).fetchall()


def _drive(project: Project, retries_job: str, done: Any, *, timeout: float = 60) -> Any:
    """Run the retry job until ``done(conn)`` holds (each evaluation sends at most one attempt per chain)."""
    with cdb.connect(project.dsn) as conn:
        def step() -> Any:
            run_job_now(conn, retries_job)
            found = done(conn)
            conn.commit()
            return found

        return wait_for(step, timeout=timeout, interval=0.5, message="the retry job's effect")


def _forget(project: Project) -> None:
    with cdb.connect(project.dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM cronkit.dead_letters WHERE project = %s", (project.name,))


def test_an_endpoint_that_fails_twice_succeeds_on_the_third_attempt_with_one_key(project: Project) -> None:
    function = project.function("flaky", verify_jwt=False, statuses=[503, 503])
    name, retries_job = _retried_job(project, function, attempts=3)
    try:
        with cdb.connect(project.dsn) as conn:
            first = run_job_now(conn, name)
        assert first.request_id is not None

        def answered_ok(conn: Any) -> Any:
            chain = _chain(conn, name)
            return chain if chain and chain[-1]["outcome"] == "2xx" else None

        chain = _drive(project, retries_job, answered_ok)
        with cdb.connect(project.dsn) as conn:
            _drive(project, retries_job, lambda c: True)  # one more evaluation: nothing left to send
            chain = _chain(conn, name)
            dead = conn.execute("SELECT count(*) AS n FROM cronkit.dead_letters WHERE jobname = %s", (name,)).fetchone()
        assert [(r["attempt"], r["outcome"], r["status_code"]) for r in chain] == [
            (1, "5xx", 503), (2, "5xx", 503), (3, "2xx", 200)]
        keys = {r["idempotency_key"] for r in chain}
        assert len(keys) == 1 and next(iter(keys)).startswith(f"{name}:")
        assert {r["first_request_id"] for r in chain} == {first.request_id}
        assert dead["n"] == 0

        received = project.target.edge.invocations(function)
        assert [r["status"] for r in received] == [503, 503, 200]
        # the sandbox keeps header values masked, with a fingerprint of the value
        assert {r["headers"]["idempotency-key"] for r in received} == {mask(next(iter(keys)))}
    finally:
        _forget(project)


def test_an_endpoint_that_keeps_failing_lands_in_the_dead_letter_with_its_evidence(project: Project) -> None:
    function = project.function("down", verify_jwt=False, status=503)
    name, retries_job = _retried_job(project, function, attempts=3)
    try:
        with cdb.connect(project.dsn) as conn:
            first = run_job_now(conn, name)

        def dead_letter(conn: Any) -> Any:
            return conn.execute("SELECT * FROM cronkit.dead_letters WHERE jobname = %s", (name,)).fetchone()

        letter = _drive(project, retries_job, dead_letter)
        with cdb.connect(project.dsn) as conn:
            chain = _chain(conn, name)
        assert [(r["attempt"], r["status_code"]) for r in chain] == [(1, 503), (2, 503), (3, 503)]
        assert (letter["project"], letter["attempts"], letter["outcome"], letter["status_code"], letter["state"]) == (
            project.name, 3, "5xx", 503, "open")
        assert letter["first_request_id"] == first.request_id
        assert letter["last_request_id"] == chain[-1]["request_id"]
        assert letter["idempotency_key"] == chain[0]["idempotency_key"]
        assert "forced status 503" in letter["excerpt"]
        assert [(e["attempt"], e["request_id"], e["status_code"]) for e in letter["evidence"]] == [
            (r["attempt"], r["request_id"], r["status_code"]) for r in chain]
        assert len(project.target.edge.invocations(function)) == 3  # no fourth call
    finally:
        _forget(project)


def _run_runbook(p: dict[str, Any]) -> dict[str, Any]:
    from cronkit.runbooks.report import load_app

    app = load_app(ROOT / "runbooks" / "dead_letters.py")
    _outputs, defs = app.run(defs={"p": p})
    return dict(defs)


def test_a_dead_letter_is_replayed_from_the_runbook_and_another_dropped_from_the_cli_on_the_record(
        project: Project) -> None:
    function = project.function("later", verify_jwt=False, status=503)
    name, retries_job = _retried_job(project, function, attempts=2)
    try:
        with cdb.connect(project.dsn) as conn:
            run_job_now(conn, name)
        letter = _drive(project, retries_job, lambda c: c.execute(
            "SELECT * FROM cronkit.dead_letters WHERE jobname = %s", (name,)).fetchone())
        base = {"manifest": None, "env": None, "dsn": project.dsn, "action": "replay", "letter": letter["id"]}

        _run_runbook({**base, "apply": False})  # unconfirmed: nothing changes
        with cdb.connect(project.dsn) as conn:
            assert conn.execute("SELECT state FROM cronkit.dead_letters WHERE id = %s", (letter["id"],)).fetchone()[
                "state"] == "open"

        project.target.edge.configure(function, status=200)  # the endpoint is fixed
        defs = _run_runbook({**base, "apply": True})
        assert defs["chosen_letter"] == letter["id"]
        with cdb.connect(project.dsn) as conn:
            replayed = conn.execute("SELECT * FROM cronkit.dead_letters WHERE id = %s", (letter["id"],)).fetchone()
            assert replayed["state"] == "replayed" and replayed["replay_request_id"] is not None

            def answered(c: Any = conn) -> Any:
                row = c.execute("SELECT * FROM cronkit.http_answer(%s)", (replayed["replay_request_id"],)).fetchone()
                c.commit()
                return row
            answer = wait_for(answered, message="the replay's answer")
            ledger = conn.execute("SELECT attempt, idempotency_key, first_request_id FROM cronkit.request_ledger "
                                  "WHERE request_id = %s", (replayed["replay_request_id"],)).fetchone()
            entry = conn.execute("SELECT action, target, details FROM cronkit.audit_log WHERE action = 'dead-letter-replay' "
                                 "AND (details->>'dead_letter')::bigint = %s", (letter["id"],)).fetchone()
        assert (answer["outcome"], answer["status_code"]) == ("2xx", 200)
        assert ledger == {"attempt": 1, "idempotency_key": letter["idempotency_key"],
                          "first_request_id": replayed["replay_request_id"]}
        assert entry["target"] == name and entry["details"]["request_id"] == replayed["replay_request_id"]

        # a second dead letter, dropped from the command line: dry run first, then --yes
        project.target.edge.configure(function, status=503)
        with cdb.connect(project.dsn) as conn:
            run_job_now(conn, name)
        second = _drive(project, retries_job, lambda c: c.execute(
            "SELECT * FROM cronkit.dead_letters WHERE jobname = %s AND state = 'open'", (name,)).fetchone())
        dry = project.cli("dead-letter", "drop", str(second["id"]), "--dsn", project.dsn)
        assert dry.returncode == 3, output(dry)
        listed = project.cli("dead-letter", "list", "--project", project.name, "--json", "--dsn", project.dsn)
        assert [d["id"] for d in json.loads(listed.stdout)] == [second["id"]]
        done = project.cli("dead-letter", "drop", str(second["id"]), "--yes", "--json", "--dsn", project.dsn)
        assert done.returncode == 0, output(done)
        assert json.loads(done.stdout)["dead_letter"]["state"] == "dropped"
        with cdb.connect(project.dsn) as conn:
            dropped = conn.execute("SELECT count(*) AS n FROM cronkit.audit_log WHERE action = 'dead-letter-drop' "
                                   "AND (details->>'dead_letter')::bigint = %s", (second["id"],)).fetchone()
        assert dropped["n"] == 1
    finally:
        _forget(project)
