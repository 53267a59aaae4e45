"""The sandbox's local Edge Functions server: Supabase's gateway rules, recorded invocations.

pg_net in the sandbox posts to ``http://127.0.0.1:PORT/functions/v1/<name>``. This server answers
the way hosted Supabase does where it matters to cronkit:

* the per-function ``verify_jwt`` gate (default on) with hosted 401 bodies, so a stale or wrong key
  fails exactly like in production and the function never runs;
* optional custom auth checked "in the function" (seed 003: ``CRON_SECRET`` as a Bearer token with
  ``verify_jwt`` off, a scheduler token in its own header);
* behaviour that tests can force per function: a status, a sequence of statuses answered in turn
  (``statuses=[503, 503]``: two failures, then as configured), latency (to make pg_net time out),
  a deterministic failure rate, a body.

Every invocation is recorded in memory and as one JSON line in the log file, with secret header
values masked (:func:`cronkit.redact.mask`) and fingerprinted, so a test can check that the right
key arrived without the key ever being written down.

Run it as ``python -m cronkit_sandbox.edge --port N --log FILE``; secrets come only from the
environment (``CRONKIT_EDGE_JWT_SECRET``, ``CRONKIT_EDGE_DB_URL``), never from argv, which ``ps``
shows. :class:`EdgeAdmin` is the client for the admin API under ``/_sandbox/``. The keys are
:mod:`cronkit_sandbox.keys`; per-function settings :mod:`cronkit_sandbox.behaviour`.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import ipaddress
import json
import os
import re
import signal
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, cast

from cronkit.errors import ConfigError, CronkitError, SandboxError
from cronkit.manifest import INLINED_KEY
from cronkit.redact import fingerprint, mask
from cronkit_sandbox.behaviour import Behaviour, FunctionTable, Handler
from cronkit_sandbox.demo_functions import HANDLERS as DEMO_HANDLERS
from cronkit_sandbox.keys import bearer_token, verify_jwt

JWT_SECRET_ENV = "CRONKIT_EDGE_JWT_SECRET"
DB_URL_ENV = "CRONKIT_EDGE_DB_URL"
MAX_BODY_BYTES = 1024 * 1024
#: Bodies above this are counted but not kept, so 10 000 records stay a few MB at most.
RECORDED_BODY_MAX = 64 * 1024
RING_SIZE = 10_000
FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]+")
AUTH_SCHEMES = ("bearer", "basic", "token")
SENSITIVE_NAME_PARTS = ("secret", "token", "key")


# --------------------------------------------------------------------------------------------
# Invocation records


def _is_sensitive(name: str) -> bool:
    name = name.lower()
    return name in ("authorization", "apikey") or any(part in name for part in SENSITIVE_NAME_PARTS)


def _masked(value: str) -> str:
    """``Bearer <secret len=… fp=…>`` keeps the scheme visible (a wrong scheme is a common bug)."""
    scheme, sep, rest = value.partition(" ")
    if sep and scheme.lower() in AUTH_SCHEMES:
        return f"{scheme} {mask(rest)}"
    return mask(value)


# Request headers that never carry a credential: only these are recorded in clear. Any other
# header may hold a key under a name nobody can guess (x-extra-1), so it is masked by default.
CLEAR_HEADERS = frozenset({
    "accept", "accept-encoding", "connection", "content-length", "content-type", "host",
    "transfer-encoding", "user-agent",
})


def _redact_headers(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Headers as a dict (names lowercased); every value not known to be harmless is masked."""
    return {name.lower(): value if name.lower() in CLEAR_HEADERS else _masked(value) for name, value in pairs}


def _redact_pairs(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Query pairs as a dict (names lowercased), values of sensitive names or key-like values masked."""
    return {
        name.lower(): _masked(value) if _is_sensitive(name) or INLINED_KEY.search(value) else value
        for name, value in pairs
    }


class InvocationLog:
    """A bounded ring of invocation records, mirrored as JSON lines into a log file."""

    def __init__(self, path: Path | None, capacity: int = RING_SIZE) -> None:
        self._records: collections.deque[dict[str, Any]] = collections.deque(maxlen=capacity)
        self._next_id = 1
        self._lock = threading.Lock()
        # Open for the server's lifetime (one flushed line per invocation); close() closes it.
        self._file: IO[str] | None = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        # Ids are given when the response is done, not when the request arrives: a poller that
        # saw id N must never miss a slower invocation that started earlier and finishes later.
        with self._lock:
            record = {"id": self._next_id, **record}
            self._next_id += 1
            self._records.append(record)
            self._write({"event": "invocation", **record})
        return record

    def event(self, name: str, **fields: Any) -> None:
        with self._lock:
            self._write({"event": name, "at": _now_iso(), **fields})

    def _write(self, line: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(line, default=str) + "\n")
            self._file.flush()

    def list(self, function: str | None = None, after_id: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self._records if r["id"] > after_id and (function is None or r["function"] == function)]

    def clear(self) -> int:
        """Forget all records; ids keep increasing so ``after_id`` cursors stay valid."""
        with self._lock:
            count = len(self._records)
            self._records.clear()
            return count

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------
# The server


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    #: JSON unless a str body should go out as text (Supabase's 404 is plain text)
    text: bool = False


MISSING_AUTH = Reply(401, {"code": 401, "message": "Missing authorization header"})
INVALID_JWT = Reply(401, {"code": 401, "message": "Invalid JWT"})
UNAUTHORIZED = Reply(401, {"error": "Unauthorized"})
FUNCTION_NOT_FOUND = Reply(404, "Function not found", text=True)


class EdgeServer(ThreadingHTTPServer):
    """Serves ``/functions/v1/*`` and ``/_sandbox/*``; start it with :func:`start_server`."""

    daemon_threads = True  # a sleeping (latency) request must not hold up shutdown

    def __init__(
        self,
        address: tuple[str, int],
        *,
        jwt_secret: str,
        db_url: str | None,
        handlers: Mapping[str, Handler],
        log_path: Path | None,
    ) -> None:
        super().__init__(address, _RequestHandler)
        #: with the real port when 0 was asked for
        self.url = f"http://{address[0]}:{self.server_port}"
        self.jwt_secret = jwt_secret
        self.db_url = db_url
        self.functions = FunctionTable(handlers)
        try:
            self.invocations = InvocationLog(log_path)
        except OSError:
            self.server_close()
            raise

    def stop(self) -> None:
        """Stop serving, close the socket and the log file. Call from a thread other than the server's."""
        self.shutdown()
        self.server_close()
        self.invocations.event("stop")
        self.invocations.close()

    def call_function(self, name: str, headers: Mapping[str, str], raw: bytes) -> tuple[Reply, dict[str, Any]]:
        """Run the gateway and the function; returns the reply and the auth facts for the record."""
        found = self.functions.lookup(name)
        if found is None:
            return FUNCTION_NOT_FOUND, {"auth": None}
        behaviour, handler = found
        reply, auth = self._authorize(behaviour, headers)
        if reply is not None:
            return reply, auth
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return Reply(400, {"error": "Request body is not valid JSON"}), auth
        if behaviour.latency_ms:
            time.sleep(behaviour.latency_ms / 1000)
        return self._answer(name, behaviour, handler, body), auth

    def _authorize(self, behaviour: Behaviour, headers: Mapping[str, str]) -> tuple[Reply | None, dict[str, Any]]:
        header = headers.get("authorization")
        token = bearer_token(header)
        claims = verify_jwt(token, self.jwt_secret) if token is not None else None
        auth: dict[str, Any] = {
            "auth": "none_required",
            "auth_role": claims.get("role") if claims else None,
            "auth_fingerprint": fingerprint(token if token is not None else header) if header is not None else None,
        }
        if behaviour.verify_jwt:
            if header is None:
                return MISSING_AUTH, {**auth, "auth": "missing"}
            if claims is None:
                return INVALID_JWT, {**auth, "auth": "invalid"}
            auth["auth"] = "ok"
        if behaviour.custom_auth is not None:
            if not behaviour.custom_auth.accepts(headers):
                return UNAUTHORIZED, {**auth, "auth": "custom_failed"}
            auth["auth"] = "custom_ok"
        return None, auth

    def _answer(self, name: str, behaviour: Behaviour, handler: Handler | None, body: Any) -> Reply:
        forced = self.functions.next_status(name, behaviour)
        if forced is not None:
            return Reply(forced, {"ok": True} if forced < 400 else {"error": f"sandbox: forced status {forced}"})
        if behaviour.status is not None or behaviour.body is not None:
            status = behaviour.status or 200
            default = {"ok": True} if status < 400 else {"error": f"sandbox: forced status {status}"}
            return Reply(status, default if behaviour.body is None else behaviour.body)
        if self.functions.injects_failure(name, behaviour.failure_rate):
            return Reply(500, {"error": "sandbox: injected failure"})
        if handler is None:
            return Reply(200, {"ok": True})
        try:
            status, payload = handler(body, self.db_url, behaviour)
        except CronkitError as exc:
            # cronkit errors are written to be shown: no secrets, DSNs redacted.
            return Reply(500, {"error": str(exc)})
        except Exception as exc:  # a crashing function is a 500, like the Edge runtime's WORKER_ERROR
            self.invocations.event("handler_error", function=name, traceback=traceback.format_exc())
            return Reply(500, {"code": "WORKER_ERROR", "message": f"{type(exc).__name__} in function {name}"})
        return Reply(status, payload)

    def admin(self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], raw: bytes) -> Reply:
        if path == "/_sandbox/health" and method == "GET":
            return Reply(200, {"status": "ok"})
        claims = verify_jwt(bearer_token(headers.get("authorization")) or "", self.jwt_secret)
        if not claims or claims.get("role") != "service_role":
            return Reply(401, {"error": "The admin API needs Authorization: Bearer <service_role key>"})
        if path == "/_sandbox/invocations":
            if method == "GET":
                try:
                    after_id = int(query.get("after_id", "0"))
                except ValueError:
                    return Reply(400, {"error": "after_id must be an integer"})
                return Reply(200, self.invocations.list(query.get("function"), after_id))
            if method == "DELETE":
                return Reply(200, {"cleared": self.invocations.clear()})
        if path == "/_sandbox/functions" and method == "GET":
            return Reply(200, self.functions.describe())
        name = path.removeprefix("/_sandbox/functions/")
        if name != path and FUNCTION_NAME.fullmatch(name):
            if method == "PUT":
                try:
                    changes = json.loads(raw) if raw else {}
                    if not isinstance(changes, dict):
                        raise ValueError("the behaviour must be a JSON object")
                    behaviour = self.functions.configure(name, changes)
                except ValueError as exc:
                    return Reply(400, {"error": str(exc)})
                return Reply(200, {name: behaviour.public()})
            if method == "DELETE":
                self.functions.reset(name)
                return Reply(200, {"reset": name})
        return Reply(404, {"error": f"no admin route {method} {path}"})


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


class _RequestHandler(BaseHTTPRequestHandler):
    server: EdgeServer
    # Close each connection after one response: no keep-alive state to get wrong after a
    # rejected (unread) body, and pg_net opens a connection per request anyway.
    protocol_version = "HTTP/1.0"
    timeout = 30  # a client that stops sending must not hold a thread forever

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: invocations are recorded as JSON lines instead of stderr access logs."""

    def _dispatch(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        if url.path.startswith("/_sandbox/"):
            self._admin(url.path, dict(query))
        elif url.path == "/functions/v1/_internal/health":
            self._send(Reply(200, {"message": "ok"}))
        elif url.path.startswith("/functions/v1/"):
            self._function(url.path, query)
        else:
            self._send(Reply(404, "Not found", text=True))

    def _admin(self, path: str, query: dict[str, str]) -> None:
        if not _is_loopback(self.client_address[0]):
            self._send(Reply(403, {"error": "the admin API answers loopback clients only"}))
            return
        raw, error = self._read_body()
        self._send(error or self.server.admin(self.command, path, query, self._lowercase_headers(), raw))

    def _function(self, path: str, query: list[tuple[str, str]]) -> None:
        started = time.monotonic()
        received_at = _now_iso()
        name = path.removeprefix("/functions/v1/").split("/", 1)[0]
        raw, error = self._read_body()
        if error is not None:
            reply, auth = error, {"auth": None}
        elif not FUNCTION_NAME.fullmatch(name):
            reply, auth = FUNCTION_NOT_FOUND, {"auth": None}
        else:
            reply, auth = self.server.call_function(name, self._lowercase_headers(), raw)
        # Recorded before the reply goes out: a caller that has its answer can already see the record.
        self.server.invocations.append(
            {
                "received_at": received_at,
                "function": name,
                "method": self.command,
                "path": path,
                "query": _redact_pairs(query),
                "headers": _redact_headers(list(self.headers.items())),
                "body": _recorded_body(raw),
                "body_bytes": len(raw),
                "auth": auth["auth"],
                "auth_role": auth.get("auth_role"),
                "auth_fingerprint": auth.get("auth_fingerprint"),
                "status": reply.status,
                "response": reply.body,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            }
        )
        self._send(reply)

    def _lowercase_headers(self) -> dict[str, str]:
        return {key.lower(): value for key, value in self.headers.items()}

    def _read_body(self) -> tuple[bytes, Reply | None]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return b"", Reply(411, {"error": "Send a Content-Length; chunked bodies are not accepted"})
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return b"", Reply(400, {"error": "Content-Length is not a number"})
        if length > MAX_BODY_BYTES:
            # Not read: the connection closes after the reply (HTTP/1.0).
            return b"", Reply(413, {"error": f"Request body is larger than {MAX_BODY_BYTES} bytes"})
        return self.rfile.read(length) if length > 0 else b"", None

    def _send(self, reply: Reply) -> None:
        if reply.text:
            data, content_type = str(reply.body).encode("utf-8"), "text/plain; charset=utf-8"
        else:
            data, content_type = json.dumps(reply.body, default=str).encode("utf-8"), "application/json"
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the caller gave up (e.g. pg_net's timeout); the invocation is still recorded


def _recorded_body(raw: bytes) -> Any:
    if not raw or len(raw) > RECORDED_BODY_MAX:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def start_server(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    jwt_secret: str,
    db_url: str | None = None,
    log_path: Path | None = None,
    handlers: Mapping[str, Handler] | None = None,
) -> EdgeServer:
    """Bind (port 0 picks a free one) and serve in a daemon thread; stop with ``server.stop()``.

    ``handlers`` defaults to the demo functions of the five seed systems.
    """
    if handlers is None:
        handlers = DEMO_HANDLERS
    server = EdgeServer((host, port), jwt_secret=jwt_secret, db_url=db_url, handlers=handlers, log_path=log_path)
    server.invocations.event("start", url=server.url, functions=sorted(handlers), database=db_url is not None)
    # A short poll interval keeps stop() quick (shutdown waits for the loop to notice).
    threading.Thread(target=server.serve_forever, args=(0.1,), name="cronkit-edge", daemon=True).start()
    return server


# --------------------------------------------------------------------------------------------
# Admin client


class EdgeAdmin:
    """Client of the admin API, for tests and demos. ``base_url`` is the server root (no /functions/v1)."""

    def __init__(self, base_url: str, service_key: str, *, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._service_key = service_key
        self._timeout = timeout
        # No proxies: an http_proxy variable would send the service key to the proxy for a
        # loopback URL, and the proxy cannot reach the sandbox anyway.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __repr__(self) -> str:
        return f"EdgeAdmin({self.base_url!r}, service_key={mask(self._service_key)})"

    def health(self) -> bool:
        try:
            return bool(self._request("GET", "/_sandbox/health", auth=False) == {"status": "ok"})
        except SandboxError:
            return False

    def invocations(self, function: str | None = None, after_id: int = 0) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"after_id": after_id}
        if function is not None:
            query["function"] = function
        return cast(
            list[dict[str, Any]], self._request("GET", "/_sandbox/invocations?" + urllib.parse.urlencode(query))
        )

    def clear(self) -> int:
        """Forget recorded invocations; returns how many there were."""
        return cast(int, self._request("DELETE", "/_sandbox/invocations")["cleared"])

    def functions(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._request("GET", "/_sandbox/functions"))

    def configure(self, name: str, **behaviour: Any) -> dict[str, Any]:
        """Merge ``behaviour`` (status, statuses, latency_ms, failure_rate, item_failure_rate, body, verify_jwt,
        custom_auth, seed) into the function's; returns the result with secrets masked."""
        answer = self._request("PUT", f"/_sandbox/functions/{urllib.parse.quote(name)}", behaviour)
        return cast(dict[str, Any], answer[name])

    def reset(self, name: str) -> None:
        self._request("DELETE", f"/_sandbox/functions/{urllib.parse.quote(name)}")

    def wait_for_invocations(
        self, function: str, count: int, timeout: float = 30.0, *, after_id: int = 0
    ) -> list[dict[str, Any]]:
        """Poll until ``function`` has at least ``count`` invocations after ``after_id``."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.invocations(function, after_id)
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                statuses = [r["status"] for r in found]
                raise TimeoutError(
                    f"expected {count} invocation(s) of {function!r} after id {after_id} within {timeout:g}s, "
                    f"saw {len(found)} (statuses {statuses}); is the cron job active and is its URL "
                    f"{self.base_url}/functions/v1/{function}?"
                )
            time.sleep(0.1)

    def _request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self._service_key}"
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace")[:300]
            raise SandboxError(f"{method} {path} on the edge server answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SandboxError(f"The edge server at {self.base_url} is not reachable: {reason}") from None


# --------------------------------------------------------------------------------------------
# Command line


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cronkit_sandbox.edge",
        description=(
            "cronkit sandbox Edge Functions server. Secrets come from the environment only: "
            f"{JWT_SECRET_ENV} (HS256 secret of the anon/service_role keys, required) and the "
            "app-role database URL for the demo functions (variable named by --db-url-env)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (see the ready line)")
    parser.add_argument("--log", type=Path, help="append one JSON line per invocation to this file")
    parser.add_argument(
        "--db-url-env", default=DB_URL_ENV, help=f"variable holding the database URL (default {DB_URL_ENV})"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT. Prints one line to stdout: ``ready <url>``."""
    args = _parse_args(argv)
    env = os.environ if environ is None else environ
    secret = env.get(JWT_SECRET_ENV)
    if not secret:
        print(ConfigError(f"{JWT_SECRET_ENV} is not set: the edge server cannot check keys."), file=sys.stderr)
        return 2
    try:
        server = start_server(
            args.host, args.port, jwt_secret=secret, db_url=env.get(args.db_url_env) or None, log_path=args.log
        )
    except OSError as exc:  # port in use, log directory missing...
        print(SandboxError(f"The edge server could not start on {args.host}:{args.port}: {exc}"), file=sys.stderr)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"ready {server.url}", flush=True)
    while not stop.wait(0.5):  # short waits keep the main thread responsive to signals
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
