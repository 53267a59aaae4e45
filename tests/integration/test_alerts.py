"""Alerts from inside the database, end to end on the sandbox (issue 13, part 1).

Local HTTP receivers play Slack, Discord and a JSON webhook; their URLs live in Vault like real
webhook URLs (the path is the token). A job calls a sandbox Edge Function with a key from Vault.
The alerts job is evaluated by running its command (what pg_cron would run), so the test waits for
answers by polling, never for the clock:

- a stale key gives exactly one "down" message per channel for the incident, however many times
  the rules are evaluated, and one recovery once the key is fixed;
- Discord's first answer is 429 with retry_after: the message is sent again, not before then;
- a silenced window sends nothing;
- the webhook URLs appear in no table, job command, function source, run message or CLI output.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cronkit import alerts
from cronkit import db as cdb
from cronkit import jobs
from cronkit.secrets import VaultBackend
from tests.helpers import wait_for
from tests.jobs_support import Project, cronkit_schema, output, project  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("cronkit_schema")


class Receiver:
    """A webhook on 127.0.0.1 that records every body; ``rate_limit_first`` answers the first call 429."""

    def __init__(self, rate_limit_first: float | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.rate_limit_first = rate_limit_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                received = time.monotonic()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
                limited = receiver.rate_limit_first is not None and not receiver.requests
                answer = json.dumps({"retry_after": receiver.rate_limit_first} if limited else {"ok": True}).encode()
                self.send_response(429 if limited else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                receiver.requests.append({"body": body, "received": received, "answered": time.monotonic(),
                                          "status": 429 if limited else 200, "path": self.path})

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, token: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{token}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    made = {"slack": Receiver(), "discord": Receiver(rate_limit_first=1.5), "hook": Receiver()}
    yield made
    for receiver in made.values():
        receiver.close()


def _answered(conn: Any, request_id: int) -> Any:
    return conn.execute("select status_code from net._http_response where id = %s", (request_id,)).fetchone()


class World:
    def __init__(self, p: Project, receivers: dict[str, Receiver]) -> None:
        self.p = p
        self.receivers = receivers
        self.canary = "canary" + uuid.uuid4().hex
        self.health = p.job("health")
        self.key = p.job("key")
        self.alerts_job = f"cronkit-alerts:{p.name}"
        self.right_key = p.target.service_key
        fn = p.function("fn")
        with cdb.connect(p.dsn) as conn:
            vault = VaultBackend()
            vault.set(conn, self.key, self.right_key)
            for name, receiver in receivers.items():
                vault.set(conn, p.job(name), receiver.url(f"{self.canary}-{name}"))
            conn.commit()
        self.data = p.data(
            {"name": self.health, "schedule": "0 0 1 1 *", "url": f"{p.target.supabase_url}/functions/v1/{fn}",
             "headers": {"Authorization": "Bearer {secret:" + self.key + "}"}},
            alerts={
                "schedule": "0 0 1 1 *",  # the test evaluates by hand
                "realert": False,
                "channels": {
                    "slack": {"kind": "slack", "url": "{secret:" + p.job("slack") + "}"},
                    "discord": {"kind": "discord", "url": "{secret:" + p.job("discord") + "}"},
                    "hook": {"kind": "webhook", "url": "{secret:" + p.job("hook") + "}"},
                },
                "rules": [{"check": "http_failures", "jobs": [self.health]}],
            },
        )
        p.write(self.data)
        p.apply(self.data)

    def set_key(self, value: str) -> None:
        with cdb.connect(self.p.dsn) as conn:
            VaultBackend().set(conn, self.key, value)
            conn.commit()

    def call(self, expect: int) -> None:
        """Run the job once and wait for the Edge Function's answer."""
        with cdb.connect(self.p.dsn) as conn:
            request = jobs.run_job_now(conn, self.health).request_id
            assert request is not None
            answer = wait_for(lambda: _answered(conn, request), message=f"the answer to request {request}")
            conn.rollback()
        assert answer["status_code"] == expect

    def evaluate(self) -> None:
        with cdb.connect(self.p.dsn) as conn:
            jobs.run_job_now(conn, self.alerts_job)

    def settle(self) -> list[dict[str, Any]]:
        """Evaluate until every delivery has its answer and no 429 waits for its re-send."""
        def done() -> list[dict[str, Any]] | None:
            self.evaluate()
            rows = self.deliveries()
            return None if any(r["status"] in ("sent", "rate_limited") and not r["resent"] for r in rows) else rows or [{}]
        wait_for(done, timeout=30, interval=0.3, message="every alert delivery answered")
        return self.deliveries()

    def deliveries(self) -> list[dict[str, Any]]:
        with cdb.connect(self.p.dsn) as conn:
            return conn.execute(
                "select d.*, exists (select 1 from cronkit.alert_deliveries n where n.retry_of = d.id) as resent "
                "from cronkit.alert_deliveries d where project = %s order by id", (self.p.name,)).fetchall()

    def events(self, name: str) -> list[str]:
        bodies = [r["body"] for r in self.receivers[name].requests if r["status"] == 200]
        if name == "hook":
            return [b["event"] for b in bodies]
        text = [b["text"] if name == "slack" else b["content"] for b in bodies]
        return ["down" if "] DOWN:" in t else "up" if "] RECOVERED:" in t else t for t in text]

    def cleanup(self) -> None:
        with cdb.connect(self.p.dsn) as conn:
            for table in ("alert_state", "alert_deliveries", "alert_silences"):
                conn.execute(f"delete from cronkit.{table} where project = %s", (self.p.name,))  # type: ignore[arg-type]
            conn.commit()


@pytest.fixture
def world(project: Project, receivers: dict[str, Receiver]) -> Iterator[World]:
    made = World(project, receivers)
    yield made
    made.cleanup()


def test_a_stale_key_alerts_once_per_channel_recovers_once_and_discord_429_is_honoured(world: World) -> None:
    w = world
    w.call(200)
    w.evaluate()
    assert w.settle() == []  # healthy: nothing to say

    w.set_key("stale-key-" + uuid.uuid4().hex)
    w.call(401)
    w.settle()
    w.call(401)  # the incident goes on: more failures, more evaluations, no second "down"
    w.evaluate()
    rows = w.settle()
    assert {name: w.events(name) for name in w.receivers} == {"slack": ["down"], "discord": ["down"], "hook": ["down"]}
    hook = w.receivers["hook"].requests[0]["body"]
    assert (hook["subject"], hook["check"], hook["status"]) == (w.health, "http_failures", "down")
    assert "(last: 401)" in hook["message"]

    # Discord answered the first message 429 {"retry_after": 1.5}: sent again, and not before then
    first, again = w.receivers["discord"].requests
    assert (first["status"], again["status"]) == (429, 200) and first["body"] == again["body"]
    assert again["received"] - first["answered"] >= 1.5
    limited = [r for r in rows if r["channel"] == "discord" and r["status"] == "rate_limited"]
    assert [(r["status_code"], r["retry_after_s"], r["resent"]) for r in limited] == [(429, 1.5, True)]
    assert sorted((r["channel"], r["event"], r["status"]) for r in rows if r["status"] != "rate_limited") == [
        ("discord", "down", "delivered"), ("hook", "down", "delivered"), ("slack", "down", "delivered")]

    with cdb.connect(w.p.dsn) as conn:
        [open_alert] = alerts.open_alerts(conn, w.p.name)
        assert (open_alert.subject, open_alert.notified) == (w.health, True)

    w.set_key(w.right_key)
    w.call(200)
    w.settle()
    assert {name: w.events(name) for name in w.receivers} == {
        "slack": ["down", "up"], "discord": ["down", "up"], "hook": ["down", "up"]}
    with cdb.connect(w.p.dsn) as conn:
        assert alerts.open_alerts(conn, w.p.name) == []

    # a silenced window: the key breaks and is fixed again, and nobody hears of it
    with cdb.connect(w.p.dsn) as conn:
        alerts.silence(conn, w.p.name, None, timedelta(hours=1), "maintenance")
        [entry] = conn.execute("select action, summary from cronkit.audit_log where project = %s and action = %s",
                               (w.p.name, "alert-silence")).fetchall()
        assert entry["summary"] == "silenced alerts of the whole project for 60 min: maintenance"
    before = {name: len(r.requests) for name, r in w.receivers.items()}
    w.set_key("stale-key-" + uuid.uuid4().hex)
    w.call(401)
    w.settle()
    with cdb.connect(w.p.dsn) as conn:
        [silent] = alerts.open_alerts(conn, w.p.name)
        assert silent.notified is False
    w.set_key(w.right_key)
    w.call(200)
    w.settle()
    assert {name: len(r.requests) for name, r in w.receivers.items()} == before

    # the canary: no webhook URL anywhere cronkit writes or shows
    status = w.p.cli("alerts", "status", "cronkit.toml", "--json", "--dsn", w.p.dsn)
    assert status.returncode == 0, output(status)
    assert json.loads(status.stdout)["open"] == []
    with cdb.connect(w.p.dsn) as conn:
        stored = conn.execute(
            "select (select string_agg(d::text, ' ') from cronkit.alert_deliveries d where project = %(p)s) as deliveries,"
            " (select string_agg(s::text, ' ') from cronkit.alert_state s where project = %(p)s) as state,"
            " (select string_agg(command, ' ') from cron.job) as commands,"
            " (select string_agg(prosrc, ' ') from pg_proc where pronamespace = 'cronkit'::regnamespace) as functions,"
            " (select string_agg(url, ' ') from cronkit.request_ledger) as ledger,"
            " (select string_agg(coalesce(return_message, '') || command, ' ') from cron.job_run_details"
            "   where runid >= cronkit.runid_at(now() - interval '1 hour')) as runs",
            {"p": w.p.name}).fetchone()
    shown = json.dumps(stored, default=str) + output(status)
    assert stored["deliveries"] and w.canary not in shown


@pytest.mark.slow
def test_failed_runs_in_a_row_alert_once_with_the_doctors_own_count_and_recover(
        project: Project, receivers: dict[str, Receiver], pg_cron_version: Any) -> None:
    """A job that keeps failing (pg_cron's own runs): one "down" once it failed twice in a row —
    the streak the doctor's CONSECUTIVE_FAILURES reads from the same query — and one recovery
    after its first success."""
    if not pg_cron_version.supports_seconds:
        pytest.skip("needs a seconds schedule (pg_cron >= 1.5) to fail twice within the test")
    p, hook = project, receivers["hook"]
    job, channel = p.job("div"), p.job("hook")
    with cdb.connect(p.dsn) as conn:
        VaultBackend().set(conn, channel, hook.url("token-" + uuid.uuid4().hex))
        conn.commit()

    def manifest(statement: str) -> dict[str, Any]:
        return p.data({"name": job, "schedule": "1 seconds", "sql": statement},
                      alerts={"schedule": "0 0 1 1 *", "realert": False,
                              "channels": {"hook": {"kind": "webhook", "url": "{secret:" + channel + "}"}},
                              "rules": [{"check": "failed_runs", "jobs": [job], "threshold": 2}]})

    def heard(event: str) -> list[dict[str, Any]] | None:
        with cdb.connect(p.dsn) as conn:
            jobs.run_job_now(conn, f"cronkit-alerts:{p.name}")
        bodies = [r["body"] for r in hook.requests]
        return bodies if [b["event"] for b in bodies][-1:] == [event] else None

    try:
        p.apply(manifest("select 1/0"))
        [down] = wait_for(lambda: heard("down"), timeout=30, interval=0.5, message="the down alert")
        assert (down["subject"], down["check"]) == (job, "failed_runs")
        assert "run(s) failed in a row: ERROR:  division by zero" in down["message"]

        p.apply(manifest("select 1"))
        bodies = wait_for(lambda: heard("up"), timeout=30, interval=0.5, message="the recovery")
        assert [b["event"] for b in bodies] == ["down", "up"]
    finally:
        with cdb.connect(p.dsn) as conn:
            for table in ("alert_state", "alert_deliveries", "alert_silences"):
                conn.execute(f"delete from cronkit.{table} where project = %s", (p.name,))  # type: ignore[arg-type]
            conn.commit()


def test_a_silent_job_alerts_once_past_its_schedules_longest_gap_plus_grace_and_recovers(
        project: Project, receivers: dict[str, Receiver]) -> None:
    """Healthchecks' period + grace: a weekly job (its schedule leaves 7 days between starts) that
    has not run — nor been applied — for longer than that plus grace is silent; one "down", and one
    recovery once it shows a sign of life."""
    p, hook = project, receivers["hook"]
    job, channel = p.job("weekly"), p.job("hook")
    with cdb.connect(p.dsn) as conn:
        VaultBackend().set(conn, channel, hook.url("token-" + uuid.uuid4().hex))
        conn.commit()
    p.apply(p.data({"name": job, "schedule": "0 0 * * 0", "sql": "select 1"},
                   alerts={"schedule": "0 0 1 1 *", "realert": False,
                           "channels": {"hook": {"kind": "webhook", "url": "{secret:" + channel + "}"}},
                           "rules": [{"check": "silent", "jobs": [job], "grace": "1 hour"}]}))

    def evaluate_then_heard() -> list[str]:
        with cdb.connect(p.dsn) as conn:
            jobs.run_job_now(conn, f"cronkit-alerts:{p.name}")
        return [r["body"]["event"] for r in hook.requests]

    def last_sign_of_life(ago: str) -> None:
        with cdb.connect(p.dsn) as conn:  # as if the job was applied that long ago and never ran since
            conn.execute("update cronkit.managed_jobs set updated_at = now() - %s::interval where jobname = %s", (ago, job))
            conn.commit()

    try:
        assert evaluate_then_heard() == []  # applied just now: not silent
        last_sign_of_life("7 days 2 hours")  # the schedule allows 7 days, plus an hour of grace
        [down] = wait_for(lambda: evaluate_then_heard() or None, timeout=30, interval=0.5, message="the down alert")
        assert down == "down"
        body = hook.requests[0]["body"]
        assert (body["subject"], body["check"]) == (job, "silent") and "schedule allows 7 days 01:00:00" in body["message"]
        evaluate_then_heard()
        assert [r["body"]["event"] for r in hook.requests] == ["down"]  # once per incident
        last_sign_of_life("1 minute")
        assert wait_for(lambda: evaluate_then_heard()[1:] or None, timeout=30, interval=0.5,
                        message="the recovery") == ["up"]
    finally:
        with cdb.connect(p.dsn) as conn:
            for table in ("alert_state", "alert_deliveries", "alert_silences"):
                conn.execute(f"delete from cronkit.{table} where project = %s", (p.name,))  # type: ignore[arg-type]
            conn.commit()
