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

# Children started by this process, kept so they are reaped (no zombies, no ResourceWarning).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


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
        _CHILDREN[proc.pid] = proc
        self.pidfile.write_text(f"{proc.pid}\n")
        # Until the child has exec'd, /proc shows our own command line: wait for it (bounded),
        # so pid() and exited_early() describe the daemon, not the fork.
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and proc.poll() is None and self.pid() is None:
            time.sleep(0.01)
        return proc.pid

    def exited_early(self) -> bool:
        """True when the process we started is already gone (it logged why)."""
        return self.pid() is None

    def stop(self, timeout: float = 5.0) -> None:
        pid = self.pid()
        if pid:
            _kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, timeout):
                _kill(pid, signal.SIGKILL)
                _wait_gone(pid, 5.0)
        self.pidfile.unlink(missing_ok=True)

    def stop_strays(self, timeout: float = 5.0) -> int:
        """Stop processes of this daemon that write to this log but are not in the pidfile — left by
        an earlier sandbox of the same path whose state was deleted by hand. Returns how many."""
        mine, found = self.pid(), []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == mine:
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if self.module.encode() in argv and str(self.logfile).encode() in argv:
                found.append(int(proc.name))
        for pid in found:
            _kill(pid, signal.SIGTERM)
        for pid in found:
            if not _wait_gone(pid, timeout):
                _kill(pid, signal.SIGKILL)
                _wait_gone(pid, 5.0)
        return len(found)

    def log_tail(self, lines: int = 10) -> str:
        try:
            text = self.logfile.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join("  " + line for line in text.strip().splitlines()[-lines:])


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` has exited; reap it when it is our child (no zombie, no ResourceWarning)."""
    child = _CHILDREN.get(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None:
            if child.poll() is not None:
                del _CHILDREN[pid]
                return True
        elif not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
