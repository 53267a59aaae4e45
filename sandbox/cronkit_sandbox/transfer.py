"""One HTTP transfer as libcurl performs it for pg_net 0.20: the request and response records,
URL and header handling, redirects, TLS, deadlines and curl's error texts.

:mod:`cronkit_sandbox.networker` takes requests from the queue and hands them to :func:`deliver`;
nothing here touches the database.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

PG_NET_VERSION = "0.20.0"
USER_AGENT = f"pg_net/{PG_NET_VERSION}"
#: libcurl >= 8.3 default (CURLOPT_MAXREDIRS); pg_net does not set it
MAX_REDIRECTS = 30
#: how long past a request's deadline the coordinator waits for its thread's own timeout
DEADLINE_GRACE_SECONDS = 0.05

# curl_easy_strerror() texts for the failures a transfer can have
COULDNT_RESOLVE_HOST = "Couldn't resolve host name"
COULDNT_CONNECT = "Couldn't connect to server"
GOT_NOTHING = "Server returned nothing (no headers, no data)"
UNSUPPORTED_PROTOCOL = "Unsupported protocol"
URL_MALFORMAT = "URL using bad/illegal format or missing URL"
WEIRD_SERVER_REPLY = "Weird server reply"
RECV_ERROR = "Failure when receiving data from the peer"
SEND_ERROR = "Failed sending data to the peer"
PARTIAL_FILE = "Transferred a partial file"
TOO_MANY_REDIRECTS = "Number of redirects hit maximum amount"
PEER_FAILED_VERIFICATION = "SSL peer certificate or SSH remote key was not OK"
SSL_CONNECT_ERROR = "SSL connect error"
BAD_FUNCTION_ARGUMENT = "A libcurl function was given a bad argument"

# A child of the worker's logger, so its log file gets these lines too.
log = logging.getLogger("cronkit_sandbox.networker.transfer")

# -------------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class QueuedRequest:
    """A row taken from ``net.http_request_queue``."""

    id: int
    method: str
    url: str
    #: ``name: value`` lines as sent, pg_net's User-Agent last
    header_lines: tuple[str, ...]
    body: bytes | None
    timeout_ms: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> QueuedRequest:
        lines = tuple(line for line in row["header_lines"] if line is not None)
        return cls(
            id=row["id"],
            method=row["method"].upper(),
            url=row["url"],
            header_lines=(*lines, f"User-Agent: {USER_AGENT}"),
            # pg_net hands the body to curl as a C string
            body=None if row["body"] is None else _c_string(row["body"]),
            timeout_ms=row["timeout_milliseconds"],
        )


@dataclass(frozen=True)
class ResponseRow:
    """A ``net._http_response`` row: an HTTP response (any status) or a transport failure."""

    status_code: int | None = None
    content_type: str | None = None
    headers: dict[str, str] | None = None
    content: str | None = None
    timed_out: bool = False
    error_msg: str | None = None

    def row(self, request_id: int) -> dict[str, Any]:
        return {
            "id": request_id,
            "status_code": self.status_code,
            "content_type": self.content_type,
            "headers": None if self.headers is None else json.dumps(self.headers),
            "content": self.content,
            "timed_out": self.timed_out,
            "error_msg": self.error_msg,
        }


@dataclass(frozen=True)
class Delivery:
    """What became of one request, and how long it took."""

    request: QueuedRequest
    outcome: ResponseRow
    duration_ms: float

    def log_line(self) -> str:
        result = str(self.outcome.status_code) if self.outcome.error_msg is None else self.outcome.error_msg
        return (
            f"request {self.request.id} {self.request.method} {loggable_url(self.request.url)} "
            f"-> {result} ({self.duration_ms:.1f} ms)"
        )


class TransferError(Exception):
    """A transport failure; the message is curl's text for it."""


# -------------------------------------------------------------------------------------------------
# HTTP, as libcurl does it for pg_net


def loggable_url(url: str) -> str:
    """``url`` without credentials, query values or fragment: what the log may show."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    query = "&".join(f"{pair.partition('=')[0]}=***" for pair in parts.query.split("&") if pair)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, query, ""))


@dataclass(frozen=True)
class Target:
    """Where one HTTP request of a transfer goes."""

    scheme: str
    host: str
    port: int
    #: path and query, as on the request line
    request_target: str
    host_header: str
    credentials: tuple[str, str] | None

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port

    @classmethod
    def parse(cls, url: str) -> Target:
        try:
            parts = urllib.parse.urlsplit(url)
            explicit_port = parts.port
        except ValueError:
            raise TransferError(URL_MALFORMAT) from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):  # pg_net: CURLOPT_PROTOCOLS_STR "http,https"
            raise TransferError(UNSUPPORTED_PROTOCOL)
        if not parts.hostname:
            raise TransferError(URL_MALFORMAT)
        default_port = 443 if scheme == "https" else 80
        port = default_port if explicit_port is None else explicit_port
        host_name = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        credentials = None
        if parts.username is not None:
            credentials = (urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or ""))
        return cls(
            scheme=scheme,
            host=parts.hostname,
            port=port,
            request_target=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
            host_header=host_name if port == default_port else f"{host_name}:{port}",
            credentials=credentials,
        )


def request_head(
    method: str, target: Target, header_lines: Sequence[str], body: bytes | None, *, same_origin: bool = True
) -> bytes:
    """The request line and headers libcurl would send.

    libcurl adds ``Host``, ``Accept: */*`` and, with a body (or any POST), ``Content-Length`` and
    ``Content-Type: application/x-www-form-urlencoded``, unless a custom header of that name exists.
    A custom header with a blank value is not sent (curl's ``Name:`` rule). After a redirect to
    another host, port or scheme, ``Authorization`` and ``Cookie`` are not sent.
    """
    custom = []
    for line in header_lines:
        name, _, value = line.partition(":")
        custom.append((name.strip().lower(), line, value.strip()))
    named = {name for name, _, _ in custom}

    lines = [f"{method} {target.request_target} HTTP/1.1"]
    if "host" not in named:
        lines.append(f"Host: {target.host_header}")
    if target.credentials is not None and "authorization" not in named:
        user_password = ":".join(target.credentials).encode("utf-8")
        lines.append(f"Authorization: Basic {base64.b64encode(user_password).decode('ascii')}")
    if "accept" not in named:
        lines.append("Accept: */*")
    for name, line, value in custom:
        if name and value and (same_origin or name not in ("authorization", "cookie")):
            lines.append(line)
    if body is not None or method == "POST":
        if "content-length" not in named:
            lines.append(f"Content-Length: {len(body or b'')}")
        if "content-type" not in named:
            lines.append("Content-Type: application/x-www-form-urlencoded")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


@dataclass
class Timings:
    """Seconds from the start of the transfer to the end of each step; 0 until it is reached.

    The same points as curl's CURLINFO_*_TIME, from which pg_net explains a timeout.
    """

    namelookup: float = 0.0
    connect: float = 0.0
    appconnect: float = 0.0
    pretransfer: float = 0.0


def timeout_message(timeout_ms: int, total: float, timings: Timings) -> str:
    """pg_net's timeout text (0.14+, ``src/errors.c``): which step the time went to, in ms."""
    if timings.namelookup == 0 and timings.connect == 0:  # still resolving the name
        dns, handshake, http_time = total, 0.0, 0.0
    elif timings.pretransfer == 0:  # connecting or in the TLS handshake
        dns, handshake, http_time = timings.namelookup, total - timings.namelookup, 0.0
    else:  # the request was sent
        dns = timings.namelookup
        tls = timings.appconnect - timings.connect if timings.appconnect > 0 else 0.0
        handshake = timings.connect - timings.namelookup + tls
        http_time = total - timings.pretransfer
    return (
        f"Timeout of {timeout_ms} ms reached. Total time: {total * 1000:f} ms "
        f"(DNS time: {dns * 1000:f} ms, TCP/SSL handshake time: {handshake * 1000:f} ms, "
        f"HTTP Request/Response time: {http_time * 1000:f} ms)"
    )


def _c_string(data: bytes) -> bytes:
    """What pg_net stores from a C string: everything before the first NUL byte."""
    return data.split(b"\0", 1)[0]


def _header_text(value: str) -> str:
    """A header name or value as curl hands it over: raw bytes (http.client decoded them as
    Latin-1), trimmed, up to a NUL; stored as UTF-8 text."""
    return _c_string(value.strip().encode("latin-1")).decode("utf-8", "replace")


@cache
def _tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: dict[str, str]
    content_type: str | None
    location: str | None
    content: str | None


class Transfer:
    """One request on its own thread, within its ``timeout_milliseconds`` for the whole transfer.

    The thread keeps its socket timeouts at the time left, so it normally reports the timeout
    itself; :meth:`delivery` stops waiting just after the deadline anyway (a name lookup cannot be
    interrupted) and reports the timeout from the timings reached so far.
    """

    def __init__(self, request: QueuedRequest) -> None:
        self.request = request
        self.started = time.monotonic()
        self.deadline = self.started + request.timeout_ms / 1000 if request.timeout_ms > 0 else None
        self.timings = Timings()
        self._finished = threading.Event()
        self._lock = threading.Lock()
        self._outcome: ResponseRow | None = None
        self._duration_ms = 0.0

    def start(self) -> None:
        threading.Thread(target=self._run, name=f"pg_net request {self.request.id}", daemon=True).start()

    def delivery(self) -> Delivery:
        """Wait until the transfer is done or past its deadline (no deadline: as long as it takes)."""
        if self.deadline is None:
            self._finished.wait()
        elif not self._finished.wait(max(0.0, self.deadline + DEADLINE_GRACE_SECONDS - time.monotonic())):
            self._finish(self._timed_out())
        assert self._outcome is not None
        return Delivery(self.request, self._outcome, self._duration_ms)

    def _finish(self, outcome: ResponseRow) -> None:
        with self._lock:
            if self._outcome is None:
                self._outcome = outcome
                self._duration_ms = (time.monotonic() - self.started) * 1000
        self._finished.set()

    def _run(self) -> None:
        try:
            outcome = self._perform()
        except TimeoutError:
            outcome = self._timed_out()
        except TransferError as exc:
            outcome = ResponseRow(error_msg=str(exc))
        except Exception:  # a bug here must not stall the batch; its traceback goes to the log
            log.exception("request %d: unexpected error", self.request.id)
            outcome = ResponseRow(error_msg="Unknown error")
        self._finish(outcome)

    def _timed_out(self) -> ResponseRow:
        total = time.monotonic() - self.started
        return ResponseRow(timed_out=True, error_msg=timeout_message(self.request.timeout_ms, total, self.timings))

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

    def _time_left(self) -> float | None:
        """Seconds left for the next blocking step (None: no limit); TimeoutError when none are."""
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    def _perform(self) -> ResponseRow:
        if self.request.timeout_ms < 0:  # curl_easy_setopt(CURLOPT_TIMEOUT_MS) refuses it
            return ResponseRow(error_msg=BAD_FUNCTION_ARGUMENT)
        method, url, body = self.request.method, self.request.url, self.request.body
        first_origin: tuple[str, str, int] | None = None
        first_headers: dict[str, str] | None = None
        for redirects in range(MAX_REDIRECTS + 1):
            target = Target.parse(url)
            first_origin = first_origin or target.origin
            self.timings = Timings()
            reply = self._exchange(target, method, body, same_origin=target.origin == first_origin)
            # pg_net reads the headers of the first response (curl_easy_nextheader, request 0)
            # but the content type of the last one.
            if first_headers is None:
                first_headers = reply.headers
            if reply.location is None:
                return ResponseRow(
                    status_code=reply.status,
                    content_type=reply.content_type,
                    headers=first_headers,
                    content=reply.content,
                )
            if redirects == MAX_REDIRECTS:
                break
            url = urllib.parse.urljoin(url, reply.location)
            # libcurl: 301/302/303 drop the body and turn a POST into a GET (a custom method such
            # as DELETE stays); 307/308 repeat the request as it was.
            if reply.status in (301, 302, 303):
                body = None
                if method == "POST":
                    method = "GET"
        raise TransferError(TOO_MANY_REDIRECTS)

    def _exchange(self, target: Target, method: str, body: bytes | None, *, same_origin: bool) -> _Reply:
        sock = self._connect(target)
        try:
            self.timings.pretransfer = self._elapsed()
            sock.settimeout(self._time_left())
            try:
                sock.sendall(request_head(method, target, self.request.header_lines, body, same_origin=same_origin))
                if body:
                    sock.sendall(body)
            except TimeoutError:
                raise
            except OSError:
                raise TransferError(SEND_ERROR) from None
            return self._receive(sock, method)
        finally:
            sock.close()

    def _connect(self, target: Target) -> socket.socket:
        try:
            addresses = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise TransferError(COULDNT_RESOLVE_HOST) from None
        self.timings.namelookup = self._elapsed()
        for family, kind, proto, _, address in addresses:
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(self._time_left())
                sock.connect(address)
                break
            except TimeoutError:
                sock.close()
                raise
            except OSError:
                sock.close()
        else:
            raise TransferError(COULDNT_CONNECT)
        self.timings.connect = self._elapsed()
        if target.scheme == "http":
            return sock
        try:
            tls = _tls_context().wrap_socket(sock, server_hostname=target.host)
        except TimeoutError:
            sock.close()
            raise
        except ssl.SSLCertVerificationError:
            sock.close()
            raise TransferError(PEER_FAILED_VERIFICATION) from None
        except OSError:
            sock.close()
            raise TransferError(SSL_CONNECT_ERROR) from None
        self.timings.appconnect = self._elapsed()
        return tls

    def _receive(self, sock: socket.socket, method: str) -> _Reply:
        response = http.client.HTTPResponse(sock, method=method)
        try:
            response.begin()
        except TimeoutError:
            raise
        except http.client.RemoteDisconnected:
            raise TransferError(GOT_NOTHING) from None
        except http.client.BadStatusLine as exc:
            # Not "HTTP/...": curl takes it for HTTP/0.9, which it refuses.
            raise TransferError(WEIRD_SERVER_REPLY if str(exc).startswith("HTTP/") else UNSUPPORTED_PROTOCOL) from None
        except (http.client.HTTPException, ValueError):
            raise TransferError(WEIRD_SERVER_REPLY) from None
        except OSError:
            raise TransferError(RECV_ERROR) from None

        # Later duplicates win, as in the jsonb object pg_net builds.
        headers = {_header_text(name): _header_text(value) for name, value in response.msg.items()}
        content_type = response.msg.get("content-type")
        location = response.msg.get("location") if 300 <= response.status < 400 else None
        if location is not None:
            return _Reply(response.status, headers, None, _header_text(location), None)

        chunks = []
        try:
            while True:
                sock.settimeout(self._time_left())
                chunk = response.read1(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except TimeoutError:
            raise
        except http.client.IncompleteRead:
            raise TransferError(PARTIAL_FILE) from None
        except (http.client.HTTPException, OSError):
            raise TransferError(RECV_ERROR) from None
        if response.length:  # the connection closed before Content-Length bytes came
            raise TransferError(PARTIAL_FILE)
        content = _c_string(b"".join(chunks))
        return _Reply(
            status=response.status,
            headers=headers,
            content_type=None if content_type is None else _header_text(content_type),
            location=None,
            content=content.decode("utf-8", "replace") if content else None,
        )


def deliver(requests: Sequence[QueuedRequest]) -> list[Delivery]:
    """Perform all ``requests`` concurrently; return when each has finished or timed out."""
    transfers = [Transfer(request) for request in requests]
    for transfer in transfers:
        transfer.start()
    return [transfer.delivery() for transfer in transfers]
