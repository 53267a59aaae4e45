"""The sandbox Edge Functions server behaves like Supabase's gateway and never writes a secret down.

The first part needs no database: the server runs in-process on a free port with small test
handlers. The drainer tests at the end run the seed systems' demo functions against the test
database (``db`` / ``sandbox`` fixtures) on the tables from ``examples/<system>/``.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from cronkit.errors import SandboxError
from cronkit.redact import fingerprint
from cronkit_sandbox.demo_functions import HANDLERS, item_fails
from cronkit_sandbox.behaviour import Behaviour
from cronkit_sandbox.edge import EdgeAdmin, EdgeServer, _is_loopback, start_server
from cronkit_sandbox.keys import make_jwt, verify_jwt

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SECRET = "sandbox-test-jwt-secret-with-at-least-32-characters"
SERVICE_KEY = make_jwt(SECRET, "service_role")
ANON_KEY = make_jwt(SECRET, "anon")
FOREIGN_KEY = make_jwt("another-projects-secret-with-32-characters!!", "service_role")


@dataclass
class Edge:
    server: EdgeServer
    admin: EdgeAdmin
    log_path: Path
    calls: list[Any] = field(default_factory=list)

    def call(
        self,
        name: str,
        body: Any = None,
        *,
        key: str | None = SERVICE_KEY,
        headers: dict[str, str] | None = None,
        method: str = "POST",
        query: str = "",
        timeout: float = 5.0,
    ) -> tuple[int, Any]:
        """Invoke ``/functions/v1/<name>`` the way pg_net does; returns (status, parsed body)."""
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        data = None if body is None else json.dumps(body).encode()
        return _http(self.server, method, f"/functions/v1/{name}{query}", data, all_headers, timeout)


def _http(
    server: EdgeServer, method: str, path: str, data: bytes | None, headers: dict[str, str], timeout: float = 5.0
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read().decode()
        if response.getheader("Content-Type", "").startswith("application/json"):
            return response.status, json.loads(raw)
        return response.status, raw
    finally:
        conn.close()


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[Edge]:
    log_path = tmp_path / "edge.log"
    calls: list[Any] = []

    def echo(body: Any, db_url: str | None, behaviour: Behaviour) -> tuple[int, Any]:
        calls.append(body)
        return 200, {"echo": body}

    def crash(body: Any, db_url: str | None, behaviour: Behaviour) -> tuple[int, Any]:
        raise RuntimeError("the function crashed")

    server = start_server(jwt_secret=SECRET, log_path=log_path, handlers={"echo": echo, "crash": crash})
    try:
        yield Edge(server, EdgeAdmin(server.url, SERVICE_KEY), log_path, calls)
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# Keys


def test_a_key_made_with_the_secret_verifies_and_carries_its_role() -> None:
    claims = verify_jwt(SERVICE_KEY, SECRET)
    assert claims is not None
    assert claims["role"] == "service_role"
    assert claims["iss"] == "cronkit-sandbox"
    assert claims["exp"] > time.time() + 50 * 365 * 86400


def _swap_payload(token: str, payload_from: str) -> str:
    header, _, signature = token.split(".")
    return ".".join([header, payload_from.split(".")[1], signature])


UNSIGNED_HEADER = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()


# The shape of Supabase's new secret keys (not JWTs). Assembled at run time so no file in the
# repository looks like a committed key to secret scanners.
NEW_STYLE_KEY = "sb_" + "secret_" + "0" * 8 + "-sandbox-test-only"

@pytest.mark.parametrize(
    ("case", "token"),
    [
        ("signed with another secret", FOREIGN_KEY),
        ("expired", make_jwt(SECRET, "service_role", expires_at=int(time.time()) - 1)),
        ("anon key with a service_role payload", _swap_payload(ANON_KEY, SERVICE_KEY)),
        ("alg none", f"{UNSIGNED_HEADER}.{SERVICE_KEY.split('.')[1]}."),
        ("not a JWT", NEW_STYLE_KEY),
        ("garbage segments", "a.b.c"),
    ],
)
def test_verify_jwt_rejects(case: str, token: str) -> None:
    assert verify_jwt(token, SECRET) is None, case


# --------------------------------------------------------------------------------------------
# The verify_jwt gate


def test_a_call_without_authorization_is_401_missing_header_and_the_function_does_not_run(edge: Edge) -> None:
    status, body = edge.call("echo", {"x": 1}, key=None)
    assert (status, body) == (401, {"code": 401, "message": "Missing authorization header"})
    assert edge.calls == []
    [record] = edge.admin.invocations("echo")
    assert record["auth"] == "missing"
    assert record["status"] == 401


@pytest.mark.parametrize(
    ("case", "authorization"),
    [
        ("key of another project", f"Bearer {FOREIGN_KEY}"),
        ("new-style secret key as Bearer", f"Bearer {NEW_STYLE_KEY}"),
        ("no Bearer scheme", SERVICE_KEY),
        ("lowercase scheme", f"bearer {SERVICE_KEY}"),
    ],
)
def test_a_wrong_key_is_401_invalid_jwt(edge: Edge, case: str, authorization: str) -> None:
    status, body = edge.call("echo", {}, key=None, headers={"Authorization": authorization})
    assert (status, body) == (401, {"code": 401, "message": "Invalid JWT"}), case
    assert edge.calls == []
    assert edge.admin.invocations("echo")[-1]["auth"] == "invalid"


def test_the_service_key_passes_and_the_record_names_its_role_and_fingerprint(edge: Edge) -> None:
    status, body = edge.call("echo", {"limit": 5, "runs": 1})
    assert (status, body) == (200, {"echo": {"limit": 5, "runs": 1}})
    [record] = edge.admin.invocations("echo")
    assert record["auth"] == "ok"
    assert record["auth_role"] == "service_role"
    assert record["auth_fingerprint"] == fingerprint(SERVICE_KEY)
    assert record["body"] == {"limit": 5, "runs": 1}
    assert record["method"] == "POST"
    assert record["path"] == "/functions/v1/echo"
    assert record["response"] == {"echo": {"limit": 5, "runs": 1}}
    assert record["received_at"].endswith("Z")


def test_the_anon_key_passes_the_gate_too_like_on_supabase(edge: Edge) -> None:
    assert edge.call("echo", {}, key=ANON_KEY)[0] == 200
    assert edge.admin.invocations("echo")[-1]["auth_role"] == "anon"


def test_with_verify_jwt_off_no_key_is_needed(edge: Edge) -> None:
    edge.admin.configure("echo", verify_jwt=False)
    assert edge.call("echo", {}, key=None)[0] == 200
    assert edge.admin.invocations("echo")[-1]["auth"] == "none_required"


# --------------------------------------------------------------------------------------------
# Custom auth (seed 003: CRON_SECRET, scheduler token)

CRON_SECRET = "cron-secret-value-for-tests"
CRON_AUTH = {"header": "authorization", "scheme": "Bearer", "secret": CRON_SECRET}


@pytest.mark.parametrize(
    ("authorization", "status", "verdict"),
    [
        (f"Bearer {CRON_SECRET}", 200, "custom_ok"),
        ("Bearer not-the-cron-secret", 401, "custom_failed"),
        (None, 401, "custom_failed"),
    ],
)
def test_a_cron_secret_function_checks_the_bearer_secret_itself(
    edge: Edge, authorization: str | None, status: int, verdict: str
) -> None:
    edge.admin.configure("run-escalation-orchestration", verify_jwt=False, custom_auth=CRON_AUTH)
    headers = {"Authorization": authorization} if authorization else {}
    got_status, body = edge.call("run-escalation-orchestration", {"force": False}, key=None, headers=headers)
    assert got_status == status
    if status == 401:
        assert body == {"error": "Unauthorized"}
    assert edge.admin.invocations("run-escalation-orchestration")[-1]["auth"] == verdict


def test_a_cron_secret_is_rejected_by_the_gate_when_verify_jwt_was_left_on(edge: Edge) -> None:
    edge.admin.configure("run-escalation-orchestration", custom_auth=CRON_AUTH)
    status, body = edge.call("run-escalation-orchestration", {}, key=CRON_SECRET)
    assert (status, body["message"]) == (401, "Invalid JWT")


def test_a_scheduler_token_in_its_own_header_is_checked_after_the_gate(edge: Edge) -> None:
    edge.admin.configure(
        "schedule-create-zoom", custom_auth={"header": "x-scheduler-token", "scheme": None, "secret": "tok-123"}
    )
    assert edge.call("schedule-create-zoom", {}, headers={"X-Scheduler-Token": "tok-123"})[0] == 200
    record = edge.admin.invocations("schedule-create-zoom")[-1]
    assert (record["auth"], record["auth_role"]) == ("custom_ok", "service_role")
    assert edge.call("schedule-create-zoom", {}, headers={"X-Scheduler-Token": "tok-12"})[0] == 401
    assert edge.call("schedule-create-zoom", {})[0] == 401
    assert [r["auth"] for r in edge.admin.invocations("schedule-create-zoom")] == [
        "custom_ok",
        "custom_failed",
        "custom_failed",
    ]


# --------------------------------------------------------------------------------------------
# Forced behaviour


def test_a_forced_status_replaces_the_function(edge: Edge) -> None:
    edge.admin.configure("echo", status=503)
    assert edge.call("echo", {}) == (503, {"error": "sandbox: forced status 503"})
    edge.admin.configure("echo", status=None, body={"queued": 0})
    assert edge.call("echo", {}) == (200, {"queued": 0})
    assert edge.calls == []
    edge.admin.reset("echo")
    assert edge.call("echo", {"back": True}) == (200, {"echo": {"back": True}})


def test_latency_delays_the_answer_and_a_caller_that_gives_up_is_still_recorded(edge: Edge) -> None:
    edge.admin.configure("echo", latency_ms=300)
    started = time.monotonic()
    assert edge.call("echo", {})[0] == 200
    assert time.monotonic() - started >= 0.3
    assert edge.admin.invocations("echo")[-1]["duration_ms"] >= 300

    # like pg_net's timeout_milliseconds expiring before the function answers
    with pytest.raises(TimeoutError):
        edge.call("echo", {"late": True}, timeout=0.1)
    [late] = [r for r in edge.admin.wait_for_invocations("echo", 2, timeout=5) if r["body"] == {"late": True}]
    assert late["status"] == 200


def test_failure_rate_answers_500_without_running_the_function_and_repeats_after_reconfiguring(edge: Edge) -> None:
    def statuses() -> list[int]:
        edge.admin.configure("echo", failure_rate=0.5, seed=7)
        return [edge.call("echo", {})[0] for _ in range(20)]

    first = statuses()
    assert first == statuses()
    assert set(first) == {200, 500}
    assert len(edge.calls) == 2 * first.count(200)

    edge.admin.configure("echo", failure_rate=1.0)
    assert edge.call("echo", {}) == (500, {"error": "sandbox: injected failure"})


def test_a_crashing_function_is_a_500_worker_error(edge: Edge) -> None:
    status, body = edge.call("crash", {})
    assert (status, body["code"]) == (500, "WORKER_ERROR")
    assert "the function crashed" in edge.log_path.read_text()  # traceback for the operator


def test_a_configured_function_without_handler_answers_ok_until_reset(edge: Edge) -> None:
    assert edge.call("send-email", {})[0] == 404
    edge.admin.configure("send-email")
    assert edge.call("send-email", {}) == (200, {"ok": True})
    assert edge.admin.functions()["send-email"]["handler"] is False
    edge.admin.reset("send-email")
    assert edge.call("send-email", {})[0] == 404


@pytest.mark.parametrize(
    "behaviour",
    [{"retries": 3}, {"failure_rate": 2}, {"status": "500"}, {"verify_jwt": "no"}, {"custom_auth": {"secret": ""}}],
)
def test_an_invalid_behaviour_is_refused_with_400(edge: Edge, behaviour: dict[str, Any]) -> None:
    with pytest.raises(SandboxError, match="answered 400"):
        edge.admin.configure("echo", **behaviour)


# --------------------------------------------------------------------------------------------
# Recording and secrets


def test_no_secret_reaches_the_log_the_records_or_the_admin_api(edge: Edge) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    custom_canary = f"canary-{uuid.uuid4().hex}"
    edge.admin.configure(
        "guarded", custom_auth={"header": "x-scheduler-token", "scheme": None, "secret": custom_canary}
    )
    edge.call(
        "echo",
        {},
        key=canary,
        headers={"apikey": canary, "X-Scheduler-Token": canary, "X-Api-Secret": canary},
        query=f"?access_token={canary}&page=2",
    )
    edge.call("guarded", {}, headers={"X-Scheduler-Token": custom_canary})

    [record] = edge.admin.invocations("echo")
    assert record["headers"]["authorization"].startswith("Bearer <secret len=")
    assert f"fp={fingerprint(canary)}" in record["headers"]["authorization"]
    assert record["headers"]["apikey"] == f"<secret len={len(canary)} fp={fingerprint(canary)}>"
    assert record["auth_fingerprint"] == fingerprint(canary)
    assert record["query"]["page"] == "2"
    assert edge.admin.invocations("guarded")[0]["auth"] == "custom_ok"

    exposed = "\n".join(
        [
            edge.log_path.read_text(),
            json.dumps(edge.admin.invocations()),
            json.dumps(edge.admin.functions()),
            repr(edge.admin),
        ]
    )
    for secret in (canary, custom_canary, SERVICE_KEY):
        assert secret not in exposed


def test_each_invocation_is_one_json_line_in_the_log(edge: Edge) -> None:
    edge.call("echo", {"n": 1})
    edge.call("nope", {})
    lines = [json.loads(line) for line in edge.log_path.read_text().splitlines()]
    invocations = [line for line in lines if line["event"] == "invocation"]
    assert [(line["function"], line["status"]) for line in invocations] == [("echo", 200), ("nope", 404)]
    assert lines[0]["event"] == "start"


def test_invocations_filter_by_function_and_id_and_ids_survive_clear(edge: Edge) -> None:
    edge.call("echo", {"n": 1})
    edge.call("crash", {})
    edge.call("echo", {"n": 2})
    everything = edge.admin.invocations()
    assert [r["id"] for r in everything] == [1, 2, 3]
    assert [r["body"] for r in edge.admin.invocations("echo", after_id=1)] == [{"n": 2}]
    assert edge.admin.clear() == 3
    assert edge.admin.invocations() == []
    edge.call("echo", {"n": 3})
    assert [r["id"] for r in edge.admin.invocations()] == [4]


def test_wait_for_invocations_times_out_with_a_message_that_names_the_function(edge: Edge) -> None:
    edge.call("echo", {})
    assert len(edge.admin.wait_for_invocations("echo", 1, timeout=1)) == 1
    with pytest.raises(TimeoutError, match=r"expected 2 invocation\(s\) of 'echo'.*saw 1"):
        edge.admin.wait_for_invocations("echo", 2, timeout=0.3)


# --------------------------------------------------------------------------------------------
# Routes and limits


def test_an_unknown_function_is_404_function_not_found_and_recorded(edge: Edge) -> None:
    assert edge.call("some-scheduler-endpoint", {}) == (404, "Function not found")
    [record] = edge.admin.invocations("some-scheduler-endpoint")
    assert (record["status"], record["auth"]) == (404, None)


def test_the_runtime_health_route_answers_like_supabase_local(edge: Edge) -> None:
    assert _http(edge.server, "GET", "/functions/v1/_internal/health", None, {}) == (200, {"message": "ok"})
    assert edge.admin.invocations() == []


def test_a_body_over_one_mebibyte_is_refused_unread(edge: Edge) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", edge.server.server_port, timeout=5)
    try:
        conn.putrequest("POST", "/functions/v1/echo")
        conn.putheader("Authorization", f"Bearer {SERVICE_KEY}")
        conn.putheader("Content-Length", str(2 * 1024 * 1024))
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413
    finally:
        conn.close()
    assert edge.calls == []
    assert edge.admin.invocations("echo")[-1]["status"] == 413


def test_a_chunked_body_is_refused_with_411(edge: Edge) -> None:
    status, _ = _http(
        edge.server,
        "POST",
        "/functions/v1/echo",
        None,
        {"Authorization": f"Bearer {SERVICE_KEY}", "Transfer-Encoding": "chunked"},
    )
    assert status == 411
    assert edge.calls == []


def test_a_body_that_is_not_json_is_400(edge: Edge) -> None:
    status, body = _http(
        edge.server,
        "POST",
        "/functions/v1/echo",
        b"{not json",
        {"Authorization": f"Bearer {SERVICE_KEY}", "Content-Type": "application/json"},
    )
    assert status == 400
    assert "not valid JSON" in body["error"]
    assert edge.calls == []
    assert edge.admin.invocations("echo")[-1]["body"] == "{not json"


@pytest.mark.parametrize(
    ("case", "key"), [("no key", None), ("anon key", ANON_KEY), ("another project's key", FOREIGN_KEY)]
)
def test_the_admin_api_needs_this_servers_service_key(edge: Edge, case: str, key: str | None) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    status, _ = _http(edge.server, "GET", "/_sandbox/invocations", None, headers)
    assert status == 401, case
    with pytest.raises(SandboxError, match="answered 401"):
        EdgeAdmin(edge.server.url, key or "").invocations()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True), ("10.0.0.5", False)],
)
def test_the_admin_api_trusts_loopback_clients_only(host: str, loopback: bool) -> None:
    assert _is_loopback(host) is loopback


def test_admin_health_needs_no_key_and_reports_an_unreachable_server(edge: Edge) -> None:
    assert EdgeAdmin(edge.server.url, "").health() is True
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    assert EdgeAdmin(f"http://127.0.0.1:{closed_port}", SERVICE_KEY).health() is False


def test_the_admin_client_repr_hides_the_key() -> None:
    text = repr(EdgeAdmin("http://127.0.0.1:1", SERVICE_KEY))
    assert SERVICE_KEY not in text
    assert fingerprint(SERVICE_KEY) in text


def test_demo_functions_without_a_database_answer_500_saying_so(tmp_path: Path) -> None:
    server = start_server(jwt_secret=SECRET, log_path=tmp_path / "edge.log")
    try:
        status, body = _http(
            server,
            "POST",
            "/functions/v1/bubble_sync",
            json.dumps({"action": "process_queue_data_api", "payload": {}}).encode(),
            {"Authorization": f"Bearer {SERVICE_KEY}"},
        )
        assert status == 500
        assert "no database URL" in body["error"]
        assert "CRONKIT_EDGE_DB_URL" in body["error"]
        # the Instagram health check needs no database
        assert _http(
            server, "GET", "/functions/v1/process-instagram-imports", None, {"Authorization": f"Bearer {SERVICE_KEY}"}
        ) == (200, {"status": "ok", "queue": "instagram_imports"})
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# The command line: secrets from the environment, a ready line, clean SIGTERM


def _server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRONKIT_EDGE_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def test_the_server_process_prints_ready_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    log_path = tmp_path / "edge.log"
    with subprocess.Popen(
        [sys.executable, "-m", "cronkit_sandbox.edge", "--port", "0", "--log", str(log_path)],
        env=_server_env(CRONKIT_EDGE_JWT_SECRET=SECRET),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 15)
            assert ready, "the server printed no ready line within 15 s"
            line = proc.stdout.readline().strip()
            assert line.startswith("ready http://127.0.0.1:")
            admin = EdgeAdmin(line.removeprefix("ready "), SERVICE_KEY)
            assert admin.health()
            assert "bubble_sync" in admin.functions()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    events = [json.loads(line)["event"] for line in log_path.read_text().splitlines()]
    assert events == ["start", "stop"]


def test_the_server_refuses_to_start_without_the_jwt_secret() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cronkit_sandbox.edge", "--port", "0"],
        env=_server_env(),
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "CRONKIT_EDGE_JWT_SECRET" in result.stderr


# --------------------------------------------------------------------------------------------
# Demo functions against the test database

SYSTEM_TABLES = {
    "instagram-sync": ["instagram_imports"],
    "auto-sync": ["auto_sync_schedules"],
    "bubble-sync": ["sync_queue"],
    "scheduled-workflows": ["notifications", "invoices", "bookings", "customers"],
    "tasty-mangoes": ["refresh_queue", "scheduled_ingestion_log", "sync_state", "works"],
}
FAIL_ALL = Behaviour(item_failure_rate=1.0)


def _load(db: psycopg.Connection[dict[str, Any]], system: str, *, seed: bool = True) -> None:
    """The system's tables, emptied, then its seed rows."""
    db.execute((EXAMPLES / system / "schema.sql").read_text())
    tables = sql.SQL(", ").join(sql.Identifier(table) for table in SYSTEM_TABLES[system])
    db.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(tables))
    if seed:
        db.execute((EXAMPLES / system / "seed.sql").read_text())


def _run(name: str, body: Any, sandbox: Any, behaviour: Behaviour | None = None) -> Any:
    status, answer = HANDLERS[name](body, sandbox.database_url, behaviour or Behaviour())
    assert status == 200, answer
    return answer


def _column(db: psycopg.Connection[dict[str, Any]], query: str | sql.Composed) -> list[Any]:
    return [next(iter(row.values())) for row in db.execute(query).fetchall()]


def _counts(db: psycopg.Connection[dict[str, Any]], system: str) -> dict[str, int]:
    return {
        table: _column(db, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))[0]
        for table in SYSTEM_TABLES[system]
    }


@pytest.mark.parametrize("system", sorted(SYSTEM_TABLES))
def test_each_example_schema_and_seed_can_be_applied_twice(db: psycopg.Connection[dict[str, Any]], system: str) -> None:
    _load(db, system)
    seeded = _counts(db, system)
    assert sum(seeded.values()) > 0
    db.execute((EXAMPLES / system / "schema.sql").read_text())
    db.execute((EXAMPLES / system / "seed.sql").read_text())
    assert _counts(db, system) == seeded


def test_instagram_worker_drains_pending_imports(db: psycopg.Connection[dict[str, Any]], sandbox: Any) -> None:
    _load(db, "instagram-sync")
    assert _run("process-instagram-imports", {"action": "health"}, sandbox) == {
        "status": "ok",
        "queue": "instagram_imports",
    }
    assert _run("process-instagram-imports", {"limit": 2}, sandbox)["completed"] == 2
    assert _column(db, "SELECT id FROM instagram_imports WHERE status = 'pending'") == [3]
    assert _run("process-instagram-imports", {}, sandbox, FAIL_ALL)["failed"] == 1
    row = db.execute("SELECT status, attempts, last_error FROM instagram_imports WHERE id = 3").fetchone()
    assert row is not None and (row["status"], row["attempts"]) == ("failed", 1) and "simulated" in row["last_error"]


def test_auto_sync_runs_due_schedules_inside_their_window_and_moves_next_run(
    db: psycopg.Connection[dict[str, Any]], sandbox: Any
) -> None:
    _load(db, "auto-sync")
    answer = _run("auto-sync-cron", {}, sandbox)
    assert sorted(answer["synced"]) == ["00000000-0000-4000-8000-0000000000a1", "00000000-0000-4000-8000-0000000000a2"]
    assert answer["skipped_outside_window"] == 1
    moved = db.execute(
        "SELECT next_run_at = last_run_at + make_interval(mins => frequency_minutes) AS moved"
        " FROM auto_sync_schedules WHERE integration_id::text = ANY(%s)",
        (answer["synced"],),
    ).fetchall()
    assert moved == [{"moved": True}, {"moved": True}]
    assert _run("auto-sync-cron", {}, sandbox)["message"] == "No schedules due to run"


def test_a_new_auto_sync_schedule_is_due_at_once(db: psycopg.Connection[dict[str, Any]], sandbox: Any) -> None:
    _load(db, "auto-sync", seed=False)
    db.execute("INSERT INTO auto_sync_schedules (integration_id, frequency_minutes) VALUES (gen_random_uuid(), 10)")
    assert len(_run("auto-sync-cron", {}, sandbox)["synced"]) == 1


def test_bubble_sync_completes_pending_signup_insert_update_but_not_delete(
    db: psycopg.Connection[dict[str, Any]], sandbox: Any
) -> None:
    _load(db, "bubble-sync")
    body = {"action": "process_queue_data_api", "payload": {"limit": 10, "batch_size": 5}}
    assert _run("bubble_sync", body, sandbox)["completed"] == 3
    assert _column(db, "SELECT id FROM sync_queue WHERE status = 'completed' ORDER BY id") == [1, 2, 3]
    assert _column(db, "SELECT id FROM sync_queue WHERE status = 'pending'") == [4]


def test_bubble_sync_failures_back_off_and_retry_failed_only_takes_ready_items(
    db: psycopg.Connection[dict[str, Any]], sandbox: Any
) -> None:
    _load(db, "bubble-sync")
    body = {"action": "process_queue_data_api", "payload": {"limit": 10, "batch_size": 5}}
    assert _run("bubble_sync", body, sandbox, FAIL_ALL)["failed"] == 3
    failed = db.execute(
        "SELECT id FROM sync_queue WHERE status = 'failed' AND retry_count = 1 AND next_retry_at > now()"
        " AND error_message LIKE '%simulated%' ORDER BY id"
    ).fetchall()
    assert [row["id"] for row in failed] == [1, 2, 3]

    # only item 5 is due for retry; 1-3 wait for their backoff, 6 used up its retries
    retry = {"action": "retry_failed", "payload": {}}
    assert _run("bubble_sync", retry, sandbox)["completed"] == 1
    db.execute("UPDATE sync_queue SET next_retry_at = now() - interval '1 second' WHERE status = 'failed'")
    assert _run("bubble_sync", retry, sandbox)["completed"] == 3
    assert _column(db, "SELECT id FROM sync_queue WHERE status = 'failed'") == [6]


def test_bubble_sync_takes_at_most_limit_items(db: psycopg.Connection[dict[str, Any]], sandbox: Any) -> None:
    _load(db, "bubble-sync", seed=False)
    db.execute(
        "INSERT INTO sync_queue (table_name, record_id, operation)"
        " SELECT 'user', 'u-' || n, 'INSERT' FROM generate_series(1, 12) AS n"
    )
    body = {"action": "process_queue_data_api", "payload": {"limit": 10, "batch_size": 3}}
    assert _run("bubble_sync", body, sandbox)["processed"] == 10
    assert _column(db, "SELECT count(*) FROM sync_queue WHERE status = 'pending'") == [2]


def test_bubble_sync_refuses_an_unknown_action(sandbox: Any) -> None:
    status, body = HANDLERS["bubble_sync"]({"action": "sync_everything"}, sandbox.database_url, Behaviour())
    assert status == 400
    assert "process_queue_data_api" in body["error"]


def test_invoices_are_generated_once_per_period(db: psycopg.Connection[dict[str, Any]], sandbox: Any) -> None:
    _load(db, "scheduled-workflows")
    assert _run("generate-t5-invoices", {}, sandbox)["created"] == 2
    assert _run("generate-t5-invoices", {}, sandbox)["created"] == 0
    assert _column(db, "SELECT amount_cents FROM invoices WHERE kind = 't5' ORDER BY customer_id") == [4500, 6000]

    assert _run("generate-monthly-invoices", {"as_of": "2025-03-15"}, sandbox)["skipped"] is True
    db.execute("UPDATE bookings SET starts_at = '2025-02-10 10:00+00' WHERE id = 1")
    answer = _run("generate-monthly-invoices", {"as_of": "2025-03-01"}, sandbox)
    assert (answer["period"], answer["created"]) == (["2025-02-01", "2025-02-28"], 1)
    assert _run("generate-monthly-invoices", {"as_of": "2025-03-02"}, sandbox)["created"] == 0


def test_overdue_bookings_escalate_and_the_orchestration_raises_them(
    db: psycopg.Connection[dict[str, Any]], sandbox: Any
) -> None:
    _load(db, "scheduled-workflows")
    assert _run("escalate-overdue-bookings", {}, sandbox)["escalated"] == [3]
    assert _run("escalate-overdue-bookings", {}, sandbox)["escalated"] == []
    # booking 4 waited two days at level 1; booking 3 was escalated just now
    assert _run("run-escalation-orchestration", {"force": False}, sandbox)["escalated"] == [4]
    assert _run("run-escalation-orchestration", {"force": True}, sandbox)["escalated"] == [3, 4]
    assert _column(db, "SELECT escalation_level FROM bookings WHERE id IN (3, 4) ORDER BY id") == [2, 3]
    assert sorted(_column(db, "SELECT template FROM notifications WHERE id > 3")) == [
        "booking_overdue",
        "escalation_level_2",
        "escalation_level_2",
        "escalation_level_3",
    ]


def test_zoom_meetings_are_created_for_sessions_within_a_day_or_all_when_forced(
    db: psycopg.Connection[dict[str, Any]], sandbox: Any
) -> None:
    _load(db, "scheduled-workflows")
    assert _run("schedule-create-zoom", {}, sandbox)["created"] == [5]
    assert _run("schedule-create-zoom", {"force_invoke": True}, sandbox)["created"] == [6]
    assert _column(db, "SELECT count(*) FROM bookings WHERE requires_zoom AND zoom_join_url IS NULL") == [0]


def test_notification_worker_sends_up_to_limit_and_backs_off_failures(
    db: psycopg.Connection[dict[str, Any]], sandbox: Any
) -> None:
    _load(db, "scheduled-workflows")
    assert _run("notification-worker", {"limit": 2, "runs": 1}, sandbox)["sent"] == 2
    assert _run("notification-worker", {"limit": 5, "runs": 1}, sandbox, FAIL_ALL)["failed"] == 1
    row = db.execute("SELECT status, attempts, send_after > now() AS later FROM notifications WHERE id = 3").fetchone()
    assert row == {"status": "pending", "attempts": 1, "later": True}
    assert _run("notification-worker", {"limit": 5, "runs": 1}, sandbox) == {"success": True, "sent": 0, "failed": 0}


def test_notification_worker_refuses_a_long_running_request(sandbox: Any) -> None:
    status, body = HANDLERS["notification-worker"]({"limit": 5, "runs": 50}, sandbox.database_url, Behaviour())
    assert status == 400
    assert "runs" in body["error"]


def test_scheduled_ingest_logs_the_run(db: psycopg.Connection[dict[str, Any]], sandbox: Any) -> None:
    _load(db, "tasty-mangoes")
    behaviour = Behaviour(item_failure_rate=0.2, seed=3)
    expected_failed = sum(item_fails(behaviour, "scheduled_ingest", f"mixed_weekly:{n}", 0) for n in range(80))
    body = {"source": "mixed_weekly", "max_movies": 80, "trigger_type": "scheduled"}
    answer = _run("scheduled-ingest", body, sandbox, behaviour)
    row = db.execute("SELECT * FROM scheduled_ingestion_log WHERE id = %s", (answer["log_id"],)).fetchone()
    assert row is not None
    assert (row["source"], row["trigger_type"], row["movies_checked"]) == ("mixed_weekly", "scheduled", 80)
    assert (row["movies_ingested"], row["movies_failed"]) == (80 - expected_failed, expected_failed)
    assert 0 < expected_failed < 80
    status, _ = HANDLERS["scheduled-ingest"]({"source": "everything"}, sandbox.database_url, Behaviour())
    assert status == 400


def test_daily_refresh_enqueues_stale_movies_once_and_records_the_sync(
    db: psycopg.Connection[dict[str, Any]], sandbox: Any
) -> None:
    _load(db, "tasty-mangoes")
    assert _run("daily-refresh", {}, sandbox)["enqueued"] == [1, 3, 5]  # 6 is already queued
    assert _run("daily-refresh", {}, sandbox)["enqueued"] == []
    synced = db.execute("SELECT last_sync_at > now() - interval '1 minute' AS recent FROM sync_state").fetchone()
    assert synced == {"recent": True}


def test_refresh_worker_completes_claimed_items_and_refreshes_their_movies(
    db: psycopg.Connection[dict[str, Any]], sandbox: Any
) -> None:
    _load(db, "tasty-mangoes")
    _run("daily-refresh", {}, sandbox)
    assert _run("refresh-worker", {}, sandbox)["completed"] == 4
    assert _column(db, "SELECT count(*) FROM refresh_queue WHERE status <> 'completed'") == [0]
    assert _column(db, "SELECT count(*) FROM works WHERE is_stale(release_date, last_refreshed_at)") == [0]


def test_refresh_worker_retries_three_times_then_gives_up(db: psycopg.Connection[dict[str, Any]], sandbox: Any) -> None:
    _load(db, "tasty-mangoes")  # one queued item, for work 6
    for attempt in range(1, 4):
        assert _run("refresh-worker", {}, sandbox, FAIL_ALL)["requeued"] == 1
        row = db.execute("SELECT status, retry_count, next_attempt_at > now() AS later FROM refresh_queue").fetchone()
        assert row == {"status": "queued", "retry_count": attempt, "later": True}
        assert _run("refresh-worker", {}, sandbox)["claimed"] == 0  # backing off
        db.execute("UPDATE refresh_queue SET next_attempt_at = now() - interval '1 second'")
    assert _run("refresh-worker", {}, sandbox, FAIL_ALL)["failed"] == 1
    row = db.execute("SELECT status, retry_count, last_error FROM refresh_queue").fetchone()
    assert row is not None and (row["status"], row["retry_count"]) == ("failed", 4)
    assert "ingest-movie" in row["last_error"]


def test_a_demo_function_drains_its_queue_over_http_with_the_service_key(
    db: psycopg.Connection[dict[str, Any]], sandbox: Any, tmp_path: Path
) -> None:
    _load(db, "bubble-sync")
    server = start_server(jwt_secret=SECRET, db_url=sandbox.database_url, log_path=tmp_path / "edge.log")
    try:
        body = {"action": "process_queue_data_api", "payload": {"limit": 10, "batch_size": 5}}
        status, answer = _http(
            server,
            "POST",
            "/functions/v1/bubble_sync",
            json.dumps(body).encode(),
            {"Authorization": f"Bearer {SERVICE_KEY}", "Content-Type": "application/json"},
        )
        assert (status, answer["completed"]) == (200, 3)
        [record] = EdgeAdmin(server.url, SERVICE_KEY).invocations("bubble_sync")
        assert (record["auth_role"], record["response"]["completed"]) == ("service_role", 3)
    finally:
        server.stop()
    assert _column(db, "SELECT count(*) FROM sync_queue WHERE status = 'completed'") == [3]
