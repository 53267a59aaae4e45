"""Background helper processes of the sandbox (pg_net delivery worker, Edge Functions server).

Each runs as ``python -m <module>``, detached: its own session, stdin from /dev/null and its
output in a log file, so it never holds the caller's (or CI's) pipes open. Secrets reach it
through the environment, never argv (``ps`` shows argv to every user).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Daemon:
    name: str
    module: str
    pidfile: Path
    logfile: Path
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict, repr=False)

    def pid(self) -> int | None:
        """The pid of the running process, or None (a stale pidfile or a recycled pid count as not running)."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        return pid if self.module.encode() in cmdline else None

    def start(self) -> int:
        running = self.pid()
        if running:
            return running
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        self.pidfile.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        with open(os.devnull, "rb") as devnull, open(self.logfile, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", self.module, "--log", str(self.logfile), *self.args],
                stdin=devnull,
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        self.pidfile.write_text(f"{proc.pid}\n")
        return proc.pid

    def exited_early(self) -> bool:
        """True when the process we started is already gone (it logged why)."""
        return self.pid() is None

    def stop(self, timeout: float = 5.0) -> None:
        pid = self.pid()
        if pid:
            _signal(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.pid():
                time.sleep(0.05)
            if self.pid():
                _signal(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)

    def log_tail(self, lines: int = 10) -> str:
        try:
            text = self.logfile.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join("  " + line for line in text.strip().splitlines()[-lines:])


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    # Reap it if it is our child (started in this process), so it does not linger as a zombie.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
