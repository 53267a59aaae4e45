"""Where the database runs: is ``localhost`` in a job's URL the developer's machine or a container?"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, ip_address, ip_network
from typing import Any


def is_local_url(url: str) -> bool:
    match = re.match(r"^[a-z]+://(?:[^@/]*@)?(\[[^\]]+\]|[^:/?#]+)", url or "", re.IGNORECASE)
    if not match:
        return False
    host = match.group(1).strip("[]").lower()
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def container_hints(*, client_host: str | None, client_port: int | None, server_addr: str | None,
                    client_addr: str | None, server_port: int | None, supabase: bool, supabase_cli: bool) -> dict[str, Any]:
    """Does the database run in a container (where ``localhost`` is not the developer's machine)?

    Evidence any role can read: the address the client dialled versus the address the server saw
    itself answering on (``inet_server_addr()``). A loopback dial answered on a non-loopback address
    went through port forwarding — Docker's. Verdict: ``likely`` | ``unlikely`` | ``hosted`` | ``unknown``.
    """
    hints: list[str] = []
    dialled_local = _is_loopback_host(client_host)
    if client_host and re.search(r"\.supabase\.(co|com|net|in)$|pooler\.supabase", client_host):
        return {"verdict": "hosted", "hints": [f"connected to {client_host}"]}
    if supabase_cli:
        hints.append("schema supabase_functions exists (created by the Supabase CLI's local stack)")
    if supabase:
        hints.append("Supabase roles exist (supabase_admin)")
    if dialled_local and client_port == 54322:
        hints.append("connected to port 54322, the Supabase CLI's database port")
    if server_addr is None:
        verdict = "unlikely" if client_host is None or (client_host or "").startswith("/") else "unknown"
        hints.append("connected over a Unix socket" if verdict == "unlikely" else "server address not visible")
        return {"verdict": verdict, "hints": hints}
    if dialled_local and not _is_loopback_host(server_addr):
        hints.append(f"dialled {client_host}:{client_port} but the server answered on {server_addr}:{server_port} (port forwarding)")
        return {"verdict": "likely", "hints": hints}
    if dialled_local and _is_loopback_host(server_addr):
        hints.append(f"dialled {client_host} and the server answered on {server_addr}: same network namespace")
        return {"verdict": "unlikely", "hints": hints}
    if client_addr and _in_docker_range(client_addr):
        hints.append(f"the server sees this client as {client_addr} (a Docker bridge address)")
        return {"verdict": "likely", "hints": hints}
    if supabase_cli and dialled_local:
        return {"verdict": "likely", "hints": hints}
    return {"verdict": "unknown", "hints": hints or [f"connected to {client_host}"]}


def _is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host in ("localhost",):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _in_docker_range(addr: str) -> bool:
    try:
        ip = ip_address(addr)
    except ValueError:
        return False
    return isinstance(ip, IPv4Address) and ip in ip_network("172.16.0.0/12")
