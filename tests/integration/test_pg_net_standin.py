"""The sandbox's pg_net behaves like pg_net 0.20 wherever cronkit depends on it.

Three groups:

* the SQL surface (queue rows, errors raised in the caller's transaction) — checked against the
  ``db`` fixture, so they hold for real pg_net too when ``CRONKIT_TEST_DSN`` points at Supabase
  (except the checks of the stand-in's own URL parser, which need the sandbox);
* delivery through the sandbox's worker to its Edge Functions server (``sandbox_only``);
* the worker's HTTP and logging rules, in-process: a request is queued in a transaction that is
  rolled back afterwards, so the sandbox's own worker never sees it.

Reference: ../shared/reference/pg_cron_pg_net_vault.md §2.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from tests.helpers import wait_for
from psycopg.types.json import Jsonb

from cronkit import db as cdb
from cronkit.redact import fingerprint, mask
from cronkit_sandbox import networker
from cronkit_sandbox.transfer import QueuedRequest, Target, Timings, loggable_url, request_head, timeout_message

Conn = psycopg.Connection[dict[str, Any]]

#: pg_net's detailed timeout text (0.14+), as pg_net's own tests match it
TIMEOUT_MESSAGE = re.compile(
    r"Timeout of (?P<timeout>\d+) ms reached\. Total time: (?P<total>[0-9.]+) ms "
    r"\(DNS time: [0-9.]+ ms, TCP/SSL handshake time: [0-9.]+ ms, HTTP Request/Response time: [0-9.]+ ms\)"
)


# -------------------------------------------------------------------------------------------------
# Helpers


def _post(
    conn: Conn, url: str, *, body: Any = None, headers: dict[str, Any] | None = None, timeout_ms: int = 5000
) -> int:
    row = conn.execute(
        "select net.http_post(url := %s, body := %s, headers := %s, timeout_milliseconds := %s) as id",
        (url, Jsonb(body if body is not None else {}), Jsonb(headers or {}), timeout_ms),
    ).fetchone()
    assert row is not None
    return int(row["id"])


def _response(db: Conn, request_id: int, timeout: float = 20.0) -> dict[str, Any]:
    row = wait_for(
        lambda: db.execute("select * from net._http_response where id = %s", (request_id,)).fetchone(),
        timeout=timeout,
        message=f"the response to pg_net request {request_id}",
    )
    assert row is not None
    return row


def _stays_empty(fetch: Callable[[], list[Any]], seconds: float, what: str) -> None:
    """Fail as soon as ``fetch`` returns something within ``seconds`` (longer than the worker's 1 s tick)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = fetch()
        assert not found, f"{what}: {found!r}"
        time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RawServer:
    """A loopback TCP server that answers every connection with ``reply`` (bytes, or None to hang up)."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.requests: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                if self.reply is not None:
                    conn.sendall(self.reply)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()


@pytest.fixture
def function(sandbox_only: Any) -> Iterator[str]:
    """A fresh Edge Function behind the JWT gate that answers 200 ``{"ok": true}``."""
    name = f"standin_{uuid.uuid4().hex[:10]}"
    sandbox_only.edge.configure(name)
    yield name
    sandbox_only.edge.reset(name)


def _function_url(sandbox: Any, name: str) -> str:
    return f"{sandbox.supabase_url}/functions/v1/{name}"


# -------------------------------------------------------------------------------------------------
# The SQL surface


def test_http_post_queues_the_body_as_json_and_adds_the_json_content_type(sandbox: Any) -> None:
    with cdb.connect(sandbox.database_url) as tx:
        request_id = _post(tx, "http://example.invalid/p?x=1", body={"a": 1}, headers={"Authorization": "Bearer k"})
        row = tx.execute("select * from net.http_request_queue where id = %s", (request_id,)).fetchone()
        tx.rollback()
    assert row is not None
    assert row["method"] == "POST"
    assert row["headers"] == {"Authorization": "Bearer k", "Content-Type": "application/json"}
    assert json.loads(bytes(row["body"])) == {"a": 1}
    assert row["timeout_milliseconds"] == 5000


def test_a_content_type_header_in_any_case_is_kept_and_not_doubled(sandbox: Any) -> None:
    with cdb.connect(sandbox.database_url) as tx:
        request_id = _post(tx, "http://example.invalid/", headers={"content-type": "application/json"})
        row = tx.execute("select headers from net.http_request_queue where id = %s", (request_id,)).fetchone()
        tx.rollback()
    assert row == {"headers": {"content-type": "application/json"}}


@pytest.mark.parametrize("content_type", ["text/plain", "application/json; charset=utf-8"])
def test_http_post_refuses_a_content_type_other_than_application_json(db: Conn, content_type: str) -> None:
    with pytest.raises(psycopg.errors.RaiseException, match='Content-Type header must be "application/json"'):
        _post(db, "http://example.invalid/", headers={"Content-Type": content_type})


@pytest.mark.parametrize(
    "call", ["net.http_get(null)", 'net.http_post(null, \'{"hello": "world"}\')', "net.http_delete(null)"]
)
def test_a_null_url_fails_on_the_queues_not_null_column(db: Conn, call: str) -> None:
    with pytest.raises(psycopg.errors.NotNullViolation) as caught:
        db.execute(f"select {call}")
    assert caught.value.diag.table_name == "http_request_queue"
    assert caught.value.diag.column_name == "url"


def _queued(tx: Conn, call: str, params: tuple[Any, ...] = ()) -> dict[str, Any]:
    """The queue row of ``select <call>`` (run in ``tx``, which the caller rolls back)."""
    created = tx.execute(f"select {call} as id", params).fetchone()
    assert created is not None
    row = tx.execute("select * from net.http_request_queue where id = %s", (created["id"],)).fetchone()
    assert row is not None
    return row


def test_params_are_url_encoded_and_appended_to_the_query(sandbox: Any) -> None:
    with cdb.connect(sandbox.database_url) as tx:
        row = _queued(
            tx, "net.http_get(%s, params := %s)", ("http://example.invalid/path?x=1#top", Jsonb({"a b": "c&d"}))
        )
        tx.rollback()
    assert row["url"] == "http://example.invalid/path?x=1&a%20b=c%26d#top"


@pytest.mark.parametrize("method", ["get", "delete"])
def test_get_and_delete_keep_a_null_headers_value(sandbox: Any, method: str) -> None:
    with cdb.connect(sandbox.database_url) as tx:
        row = _queued(tx, f"net.http_{method}('http://example.invalid/', headers := null)")
        tx.rollback()
    assert (row["method"], row["headers"], row["body"]) == (method.upper(), None, None)


# The stand-in's own URL parser against what libcurl 7.88's curl_url() answers for the same input.
@pytest.mark.parametrize(
    "url, params, expected",
    [
        ("HTTP://Example.COM", [], "http://Example.COM/"),
        ("https://example.com/../a/./b", [], "https://example.com/a/b"),
        ("http://example.com/a/b/..", [], "http://example.com/a/"),
        ("http://example.com/x?y=1#frag", ["a=b", "c=d"], "http://example.com/x?y=1&a=b&c=d#frag"),
        ("http://example.com/x?y=1&", ["a=b"], "http://example.com/x?y=1&a=b"),
        ("http://example.com/x?#", ["a=b"], "http://example.com/x?a=b"),
        ("http://example.com:0080/", [], "http://example.com:80/"),
        ("http://[::1]:8080/x", [], "http://[::1]:8080/x"),
        ("http:///path", [], "http://path/"),
    ],
)
def test_urls_are_normalised_like_libcurl(
    sandbox_only: Any, db: Conn, url: str, params: list[str], expected: str
) -> None:
    row = db.execute("select net._encode_url_with_params_array(%s, %s) as url", (url, params)).fetchone()
    assert row == {"url": expected}


@pytest.mark.parametrize(
    "url, reason",
    [
        ("localhost:6666", "Unsupported URL scheme"),
        ("/malformed_url", "Bad scheme"),
        ("http:example.com", "Unsupported number of slashes following scheme"),
        ("http://", "No host part in the URL"),
        ("http://exa mple.com/", "Bad hostname"),
        ("http://example.com:65536/", "Port number was not a decimal number between 0 and 65535"),
        ("http://example.com/a b", "Bad path"),
        ("http://[zz]/", "Bad IPv6 address"),
    ],
)
def test_an_invalid_url_fails_in_the_calling_transaction_with_curls_reason(
    sandbox_only: Any, db: Conn, url: str, reason: str
) -> None:
    with pytest.raises(psycopg.errors.lookup("XX000"), match=re.escape(f'invalid URL "{url}": {reason}')):
        db.execute("select net.http_get(%s)", (url,))


def test_urlencode_string_escapes_every_byte_but_the_unreserved_ones(sandbox_only: Any, db: Conn) -> None:
    row = db.execute("select net._urlencode_string('a b&c=d/é~-._') as e, net._urlencode_string(null) as n").fetchone()
    assert row == {"e": "a%20b%26c%3Dd%2F%C3%A9~-._", "n": None}


def test_the_deprecated_http_collect_response_fails_as_in_every_release_since_0_7_1(db: Conn) -> None:
    with pytest.raises(psycopg.errors.SyntaxError, match="query has no destination for result data"):
        db.execute("select net.http_collect_response(1)")


def test_collecting_an_unknown_request_is_an_error_result(db: Conn) -> None:
    row = db.execute("select (net._http_collect_response(-1)).* ").fetchone()
    assert row == {"status": "ERROR", "message": "request matching request_id not found", "response": None}


# -------------------------------------------------------------------------------------------------
# The worker


def _worker_pids(db: Conn) -> list[int]:
    row = db.execute(
        "select coalesce(array_agg(pid order by pid), '{}') as pids from pg_stat_activity where application_name = %s",
        (networker.APPLICATION_NAME,),
    ).fetchone()
    assert row is not None
    return list(row["pids"])


def test_the_worker_is_up_under_pg_nets_application_name(sandbox_only: Any, db: Conn) -> None:
    db.execute("select net.check_worker_is_up()")
    assert len(_worker_pids(db)) == 1


def test_worker_restart_reconnects_the_worker_for_the_app_role(sandbox_only: Any, db: Conn) -> None:
    before = _worker_pids(db)
    row = db.execute("select net.worker_restart() as reloaded").fetchone()
    assert row == {"reloaded": True}

    def restarted() -> list[int]:
        pids = _worker_pids(db)
        return pids if pids != before else []

    after = wait_for(restarted, message="a new worker session")
    assert len(after) == 1
    db.execute("select net.check_worker_is_up()")


def test_a_post_reaches_the_function_with_its_headers_and_body_and_its_200_is_recorded(
    sandbox_only: Any, db: Conn, function: str
) -> None:
    body = {"job": "nightly", "items": [1, 2, 3], "note": "ünïcode"}
    request_id = _post(
        db,
        _function_url(sandbox_only, function),
        body=body,
        headers={"Authorization": f"Bearer {sandbox_only.service_key}", "X-Cronkit-Run": "42"},
    )

    [call] = sandbox_only.edge.wait_for_invocations(function, 1, timeout=20)
    assert call["method"] == "POST"
    assert call["body"] == body
    assert call["auth_fingerprint"] == fingerprint(sandbox_only.service_key)
    assert call["headers"]["x-cronkit-run"] == mask("42"), "custom headers are masked: any may carry a key"
    assert call["headers"]["content-type"] == "application/json"
    assert call["headers"]["user-agent"] == "pg_net/0.20.0"

    response = _response(db, request_id)
    assert response["status_code"] == 200
    assert response["timed_out"] is False
    assert response["error_msg"] is None
    assert response["content_type"] == "application/json"
    assert json.loads(response["content"]) == {"ok": True}


@pytest.mark.parametrize("method", ["get", "delete"])
def test_get_and_delete_reach_the_function_with_their_method_and_query(
    sandbox_only: Any, db: Conn, function: str, method: str
) -> None:
    db.execute(
        f"select net.http_{method}(%s, params := %s, headers := %s)",
        (
            _function_url(sandbox_only, function),
            Jsonb({"since": "2024-01-01 00:00"}),
            Jsonb({"Authorization": f"Bearer {sandbox_only.service_key}"}),
        ),
    )
    [call] = sandbox_only.edge.wait_for_invocations(function, 1, timeout=20)
    assert (call["method"], call["query"], call["status"]) == (method.upper(), {"since": "2024-01-01 00:00"}, 200)


def test_a_request_is_sent_only_when_its_transaction_commits(sandbox_only: Any, db: Conn, function: str) -> None:
    db.execute("select net.check_worker_is_up()")  # otherwise "nothing was sent" proves nothing
    url = _function_url(sandbox_only, function)
    headers = {"Authorization": f"Bearer {sandbox_only.service_key}"}

    def sent() -> list[Any]:
        return list(sandbox_only.edge.invocations(function))

    with cdb.connect(sandbox_only.database_url) as tx:
        rolled_back = _post(tx, url, body={"attempt": "rolled back"}, headers=headers)
        _stays_empty(sent, 1.5, "sent before COMMIT")
        tx.rollback()
        _stays_empty(sent, 1.5, "sent after ROLLBACK")

        committed = _post(tx, url, body={"attempt": "committed"}, headers=headers)
        _stays_empty(sent, 1.5, "sent before COMMIT")
        tx.commit()

    assert _response(db, committed)["status_code"] == 200
    assert [call["body"] for call in sent()] == [{"attempt": "committed"}]
    leftovers = db.execute(
        "select (select count(*) from net.http_request_queue where id = %(id)s)"
        " + (select count(*) from net._http_response where id = %(id)s) as n",
        {"id": rolled_back},
    ).fetchone()
    assert leftovers == {"n": 0}


def test_a_closed_port_is_couldnt_connect_to_server(sandbox_only: Any, db: Conn) -> None:
    request_id = db.execute("select net.http_get(%s) as id", (f"http://127.0.0.1:{_free_port()}/",)).fetchone()
    assert request_id is not None
    response = _response(db, request_id["id"])
    assert (response["status_code"], response["timed_out"], response["error_msg"]) == (
        None,
        False,
        "Couldn't connect to server",
    )


def test_a_server_that_hangs_up_is_server_returned_nothing(sandbox_only: Any, db: Conn) -> None:
    server = RawServer(reply=None)
    try:
        request_id = _post(db, server.url + "/hook")
        response = _response(db, request_id)
    finally:
        server.close()
    assert (response["status_code"], response["timed_out"], response["error_msg"]) == (
        None,
        False,
        "Server returned nothing (no headers, no data)",
    )


def test_a_slow_function_times_out_with_pg_nets_detailed_message(sandbox_only: Any, db: Conn, function: str) -> None:
    sandbox_only.edge.configure(function, latency_ms=2000, verify_jwt=False)
    request_id = _post(db, _function_url(sandbox_only, function), timeout_ms=300)
    response = _response(db, request_id)
    assert response["timed_out"] is True
    assert (response["status_code"], response["content"], response["content_type"]) == (None, None, None)
    match = TIMEOUT_MESSAGE.fullmatch(response["error_msg"])
    assert match is not None, response["error_msg"]
    assert match["timeout"] == "300"
    assert 300 <= float(match["total"]) < 1500


@pytest.mark.parametrize(
    "case, behaviour, authorization, status, content",
    [
        ("wrong key", {}, "Bearer not-this-projects-key", 401, {"code": 401, "message": "Invalid JWT"}),
        ("function fails", {"status": 500}, None, 500, {"error": "sandbox: forced status 500"}),
    ],
)
def test_an_http_error_is_a_response_with_its_status_and_body(
    sandbox_only: Any,
    db: Conn,
    function: str,
    case: str,
    behaviour: dict[str, Any],
    authorization: str | None,
    status: int,
    content: dict[str, Any],
) -> None:
    sandbox_only.edge.configure(function, **behaviour)
    request_id = _post(
        db,
        _function_url(sandbox_only, function),
        headers={"Authorization": authorization or f"Bearer {sandbox_only.service_key}"},
    )
    response = _response(db, request_id)
    assert (response["status_code"], response["timed_out"], response["error_msg"]) == (status, False, None)
    assert json.loads(response["content"]) == content


def test_a_header_whose_value_is_null_is_dropped_so_the_gate_answers_missing_authorization(
    sandbox_only: Any, db: Conn, function: str
) -> None:
    # The Supabase guide's pattern with a Vault secret that does not exist: 'Bearer ' || NULL.
    row = db.execute(
        "select net.http_post(%s, headers := jsonb_build_object("
        "  'Content-Type', 'application/json',"
        "  'Authorization', 'Bearer ' || (select decrypted_secret from vault.decrypted_secrets where name = %s)"
        ")) as id",
        (_function_url(sandbox_only, function), f"missing_{uuid.uuid4().hex}"),
    ).fetchone()
    assert row is not None

    [call] = sandbox_only.edge.wait_for_invocations(function, 1, timeout=20)
    assert "authorization" not in call["headers"]
    response = _response(db, row["id"])
    assert response["status_code"] == 401
    assert json.loads(response["content"]) == {"code": 401, "message": "Missing authorization header"}


def test_responses_older_than_pg_net_ttl_are_deleted_when_the_worker_wakes(
    sandbox_only: Any, db: Conn, su: Conn, function: str
) -> None:
    su.execute("alter system set pg_net.ttl = '1 second'")
    su.execute("select pg_reload_conf()")
    try:
        request_id = _post(
            db, _function_url(sandbox_only, function), headers={"Authorization": f"Bearer {sandbox_only.service_key}"}
        )
        _response(db, request_id)

        def age_past_ttl() -> bool:
            row = db.execute(
                "select now() - created > interval '1 second' as old from net._http_response where id = %s",
                (request_id,),
            ).fetchone()
            return row is None or bool(row["old"])

        wait_for(age_past_ttl, timeout=10, message="the response to be older than pg_net.ttl")
        db.execute("select net.wake()")  # 0.19+: the purge runs when the worker is awake
        wait_for(
            lambda: (
                db.execute("select count(*) as n from net._http_response where id = %s", (request_id,)).fetchone()
                == {"n": 0}
            ),
            timeout=10,
            message="the expired response to be deleted",
        )
    finally:
        su.execute("alter system reset pg_net.ttl")
        su.execute("select pg_reload_conf()")


# -------------------------------------------------------------------------------------------------
# The worker's rules, in-process


def test_one_log_line_per_request_names_method_url_and_status_but_no_secret(
    sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    secret = f"s3cret-{uuid.uuid4().hex}"
    server = RawServer(reply=b"HTTP/1.1 202 Accepted\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
    try:
        with cdb.connect(sandbox.database_url) as tx:
            # Queued in a transaction the sandbox's worker cannot see; rolled back below.
            request_id = _post(
                tx, f"{server.url}/hook?token={secret}&page=2", headers={"Authorization": f"Bearer {secret}"}
            )
            with caplog.at_level(logging.INFO, logger=networker.log.name):
                assert networker.run_pass(tx) is True
            response = tx.execute("select * from net._http_response where id = %s", (request_id,)).fetchone()
            tx.rollback()
    finally:
        server.close()

    assert response is not None
    assert (response["status_code"], response["content"]) == (202, "ok")
    assert f"Authorization: Bearer {secret}".encode() in server.requests[0]
    [line] = [r.getMessage() for r in caplog.records if f"request {request_id} " in r.getMessage()]
    assert re.fullmatch(
        rf"request {request_id} POST {re.escape(server.url)}/hook\?token=\*\*\*&page=\*\*\* -> 202 \(\d+\.\d ms\)", line
    )
    assert secret not in caplog.text


def test_the_worker_refuses_to_start_without_its_dsn_variable(capsys: pytest.CaptureFixture[str]) -> None:
    assert networker.main([], environ={}) == 2
    assert networker.DSN_ENV in capsys.readouterr().err


def _target(url: str = "http://api.example/fn?x=1") -> Target:
    return Target.parse(url)


def test_curls_default_headers_come_first_and_pg_nets_user_agent_last() -> None:
    request = QueuedRequest.from_row(
        {
            "id": 1,
            "method": "POST",
            "url": "http://api.example/fn?x=1",
            "header_lines": ["Content-Type: application/json", None, "X-A: 1"],
            "body": b'{"a": 1}',
            "timeout_milliseconds": 5000,
        }
    )
    head = request_head(request.method, _target(request.url), request.header_lines, request.body)
    assert head.decode().split("\r\n") == [
        "POST /fn?x=1 HTTP/1.1",
        "Host: api.example",
        "Accept: */*",
        "Content-Type: application/json",
        "X-A: 1",
        "User-Agent: pg_net/0.20.0",
        "Content-Length: 8",
        "",
        "",
    ]


@pytest.mark.parametrize(
    "header_lines, absent, present",
    [
        (["X-Empty: "], "X-Empty", "Accept: */*"),  # curl's "Name:" rule: a blank header is not sent
        (["accept: application/json"], "Accept: */*", "accept: application/json"),  # custom replaces curl's
        (["Host: other.example"], "Host: api.example", "Host: other.example"),
    ],
)
def test_custom_headers_follow_curls_rules(header_lines: list[str], absent: str, present: str) -> None:
    lines = request_head("GET", _target(), header_lines, None).decode().split("\r\n")
    assert present in lines
    assert not any(line.startswith(absent) for line in lines)


def test_a_post_without_body_or_content_type_gets_curls_form_defaults() -> None:
    lines = request_head("POST", _target(), [], None).decode().split("\r\n")
    assert "Content-Length: 0" in lines
    assert "Content-Type: application/x-www-form-urlencoded" in lines


def test_authorization_and_cookie_stay_behind_after_a_redirect_to_another_host() -> None:
    header_lines = ["Authorization: Bearer k", "Cookie: a=1", "X-Keep: 1"]
    lines = request_head("GET", _target(), header_lines, None, same_origin=False).decode().split("\r\n")
    assert "X-Keep: 1" in lines
    assert not [line for line in lines if line.startswith(("Authorization", "Cookie"))]


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://user:pw@h.example:8080/p?apikey=abc&x=&y#frag", "http://h.example:8080/p?apikey=***&x=***&y=***"),
        ("https://h.example/functions/v1/f", "https://h.example/functions/v1/f"),
    ],
)
def test_the_log_shows_urls_without_credentials_or_query_values(url: str, expected: str) -> None:
    assert loggable_url(url) == expected


@pytest.mark.parametrize(
    "timings, expected",
    [
        (
            Timings(),
            "(DNS time: 1000.000000 ms, TCP/SSL handshake time: 0.000000 ms, HTTP Request/Response time: 0.000000 ms)",
        ),
        (
            Timings(namelookup=0.1),
            "(DNS time: 100.000000 ms, TCP/SSL handshake time: 900.000000 ms, HTTP Request/Response time: 0.000000 ms)",
        ),
        (
            Timings(namelookup=0.1, connect=0.2, appconnect=0.25, pretransfer=0.25),
            "(DNS time: 100.000000 ms, TCP/SSL handshake time: 150.000000 ms, HTTP Request/Response time: 750.000000 ms)",
        ),
    ],
)
def test_a_timeout_message_says_which_step_took_the_time(timings: Timings, expected: str) -> None:
    message = timeout_message(1000, 1.0, timings)
    assert message == f"Timeout of 1000 ms reached. Total time: 1000.000000 ms {expected}"
