"""Sandbox engines: which PostgreSQL and pg_cron the sandbox runs, and where they come from.

Supabase runs pg_cron 1.6 on PostgreSQL 15 and 17 (new projects get 17). Two kinds of engine:

- ``host``: the machine's own Debian packages (``postgresql-15`` + ``postgresql-15-cron`` = pg_cron
  1.4.2 on bookworm; ``postgresql-17`` + ``postgresql-17-cron`` = pg_cron 1.6 on trixie);
- ``root``: PostgreSQL 17 + pg_cron 1.6 from Debian trixie, in a root made once by ``debootstrap``
  and cached outside the checkout (``CRONKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/cronkit``, else
  ``~/.cache/cronkit``). Its server runs with ``chroot`` as the root's own ``postgres`` user, on
  loopback, so it needs root. A root is built in a temporary directory and renamed only when
  complete, so a killed build never looks finished.

The default is the newest engine this machine can have; ``--postgres 15|17`` or
``CRONKIT_SANDBOX_POSTGRES`` choose one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cronkit.errors import SandboxError, UsageError

SUPPORTED = (15, 17)
ROOT_SUITE = "trixie"
ROOT_MAJOR = 17
ROOT_PACKAGES = ("postgresql-17", "postgresql-17-cron", "tzdata")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
ROOT_NAME = f"{ROOT_SUITE}-pg{ROOT_MAJOR}"
COMPLETE_MARKER = "etc/cronkit-root-complete"
BUILDING = ".building-"

Progress = Callable[[str], None]


class EngineKind(StrEnum):
    HOST = "host"
    ROOT = "root"


@dataclass(frozen=True)
class Engine:
    kind: EngineKind
    major: int
    root: Path | None = None

    @property
    def bindir(self) -> Path:
        """Where the server binaries are, as the server sees its filesystem."""
        return Path(f"/usr/lib/postgresql/{self.major}/bin")

    def on_host(self, path: Path) -> Path:
        """A path as the server sees it, as this process sees it."""
        return self.root / path.relative_to("/") if self.root else path

    def describe(self) -> str:
        if self.kind is EngineKind.ROOT:
            return f"PostgreSQL {self.major} from Debian {ROOT_SUITE}, in the cached root {self.root}"
        return f"PostgreSQL {self.major} from this machine's packages"

    def as_dict(self) -> dict[str, object]:
        return {"kind": str(self.kind), "postgres": self.major, "root": str(self.root) if self.root else None,
                "describe": self.describe()}


def cache_dir(environ: dict[str, str]) -> Path:
    if environ.get("CRONKIT_CACHE_DIR"):
        return Path(environ["CRONKIT_CACHE_DIR"]).absolute()
    if environ.get("XDG_CACHE_HOME"):
        return Path(environ["XDG_CACHE_HOME"]).absolute() / "cronkit"
    return Path(environ.get("HOME") or Path.home()).absolute() / ".cache" / "cronkit"


def root_path(environ: dict[str, str]) -> Path:
    return cache_dir(environ) / "roots" / ROOT_NAME


def host_has(major: int) -> bool:
    """Whether this machine's own packages provide PostgreSQL ``major`` with pg_cron."""
    return Path(f"/usr/lib/postgresql/{major}/bin/postgres").is_file() and Path(
        f"/usr/lib/postgresql/{major}/lib/pg_cron.so"
    ).is_file()


def root_is_complete(root: Path) -> bool:
    return (root / COMPLETE_MARKER).is_file()


def _can_build_root(environ: dict[str, str]) -> bool:
    return os.geteuid() == 0 and (root_is_complete(root_path(environ)) or debootstrap() is not None)


def debootstrap() -> str | None:
    return shutil.which("debootstrap") or next(
        (p for p in ("/usr/sbin/debootstrap", "/sbin/debootstrap") if Path(p).is_file()), None
    )


def requested_major(environ: dict[str, str], given: int | None = None) -> int | None:
    """``--postgres`` wins over ``CRONKIT_SANDBOX_POSTGRES``; None means "the newest this machine can have"."""
    raw = str(given) if given is not None else (environ.get("CRONKIT_SANDBOX_POSTGRES") or "").strip()
    if not raw:
        return None
    if raw not in {str(m) for m in SUPPORTED}:
        raise UsageError(
            f"The sandbox runs PostgreSQL {' or '.join(map(str, SUPPORTED))}, not {raw!r}.",
            remedy="Use --postgres 15 or --postgres 17 (or CRONKIT_SANDBOX_POSTGRES=15|17).",
        )
    return int(raw)


def choose(environ: dict[str, str], major: int | None) -> Engine:
    """The engine for a new sandbox: the one asked for, else the newest this machine can have."""
    if major is None:
        for candidate in sorted(SUPPORTED, reverse=True):
            if host_has(candidate):
                return Engine(EngineKind.HOST, candidate)
            if candidate == ROOT_MAJOR and _can_build_root(environ):
                return Engine(EngineKind.ROOT, ROOT_MAJOR, root_path(environ))
        raise SandboxError(
            "No PostgreSQL with pg_cron for the sandbox on this machine.",
            remedy="On Debian bookworm: apt-get install postgresql-15 postgresql-15-cron debootstrap (./dev does "
            "this); on trixie: apt-get install postgresql-17 postgresql-17-cron.",
        )
    if host_has(major):
        return Engine(EngineKind.HOST, major)
    if major == ROOT_MAJOR:
        return Engine(EngineKind.ROOT, ROOT_MAJOR, root_path(environ))
    raise SandboxError(
        f"PostgreSQL {major} with pg_cron is not installed on this machine.",
        remedy=f"apt-get install postgresql-{major} postgresql-{major}-cron (./dev does this on bookworm), "
        f"or use --postgres {ROOT_MAJOR}.",
    )


def recorded(kind: str, major: int, environ: dict[str, str]) -> Engine:
    """The engine an existing sandbox was made with (its data directory only runs there)."""
    engine_kind = EngineKind(kind)
    root = root_path(environ) if engine_kind is EngineKind.ROOT else None
    return Engine(engine_kind, major, root)


# -- the cached trixie root -------------------------------------------------------------------------


def prepare(engine: Engine, environ: dict[str, str], progress: Progress) -> None:
    """Make sure the engine can run: for a root engine, build the root the first time."""
    if engine.kind is EngineKind.HOST:
        return
    assert engine.root is not None
    if os.geteuid() != 0:
        raise SandboxError(
            f"The PostgreSQL {engine.major} engine runs inside a Debian {ROOT_SUITE} root with chroot, "
            "which needs root.",
            remedy="Run as root (or with sudo), or use this machine's own PostgreSQL: --postgres 15.",
        )
    if root_is_complete(engine.root):
        return
    parent = engine.root.parent
    for leftover in sorted(parent.glob(f".{ROOT_NAME}{BUILDING}*")) if parent.is_dir() else []:
        pid = leftover.name.rpartition("-")[2]
        if pid.isdigit() and _alive(int(pid)):
            raise SandboxError(
                f"Another run (process {pid}) is building the {ROOT_SUITE} root in {leftover}.",
                remedy="Wait for it to finish, then run this again.",
            )
        raise SandboxError(
            f"A {ROOT_SUITE} root was left half-built by an interrupted run: {leftover}.",
            remedy=f"Remove it (rm -rf {leftover}) and run this again; the next run builds it afresh.",
        )
    if engine.root.exists():
        raise SandboxError(
            f"{engine.root} exists but is not a complete {ROOT_SUITE} root made by cronkit (no {COMPLETE_MARKER}).",
            remedy=f"Remove it (rm -rf {engine.root}) and run this again.",
        )
    tool = debootstrap()
    if tool is None:
        raise SandboxError(
            f"Building the PostgreSQL {engine.major} engine needs debootstrap, which is not installed.",
            remedy="apt-get install debootstrap (./dev does this), or use --postgres 15.",
        )
    mirror = environ.get("CRONKIT_DEBIAN_MIRROR", DEFAULT_MIRROR).rstrip("/")
    _check_reachable(mirror)
    build(engine.root, tool, mirror, progress)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_reachable(mirror: str) -> None:
    url = f"{mirror}/dists/{ROOT_SUITE}/Release"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=15):  # noqa: S310
            return
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise SandboxError(
            f"Debian's archive is unreachable ({url}: {reason}), so the {ROOT_SUITE} root cannot be built.",
            remedy="Check the network or proxy, or set CRONKIT_DEBIAN_MIRROR to a reachable Debian mirror; "
            "--postgres 15 needs no download.",
        ) from None


def build(root: Path, tool: str, mirror: str, progress: Progress) -> None:
    """debootstrap into a temporary directory beside ``root``; rename only when complete."""
    root.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    work = root.parent / f".{ROOT_NAME}{BUILDING}{os.getpid()}"
    log = root.parent / f"{ROOT_NAME}.build.log"
    progress(
        f"building a Debian {ROOT_SUITE} root with PostgreSQL {ROOT_MAJOR} and pg_cron 1.6 in {root} "
        "(first time only; about a minute)"
    )
    started = time.monotonic()
    with open(log, "w", encoding="utf-8") as out, open(os.devnull, "rb") as devnull:
        result = subprocess.run(
            [tool, "--variant=minbase", f"--include={','.join(ROOT_PACKAGES)}", ROOT_SUITE, str(work), mirror],
            stdin=devnull, stdout=out, stderr=subprocess.STDOUT, env=_build_env(), check=False,
        )
    if result.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        tail = "\n".join("  " + line for line in log.read_text(errors="replace").strip().splitlines()[-8:])
        raise SandboxError(
            f"debootstrap could not build the {ROOT_SUITE} root (exit {result.returncode}):\n{tail}",
            remedy=f"Read {log}; run again once the cause is fixed (nothing half-built was kept).",
        )
    # Debian's postinst made a default cluster the sandbox never uses; cronkit runs its own.
    shutil.rmtree(work / "var/lib/postgresql" / str(ROOT_MAJOR), ignore_errors=True)
    versions = _package_versions(work)
    (work / COMPLETE_MARKER).write_text(
        f"made by cronkit sandbox with debootstrap {ROOT_SUITE} from {mirror}\n{versions}", encoding="utf-8"
    )
    os.replace(work, root)
    progress(f"built the {ROOT_SUITE} root in {time.monotonic() - started:.0f} s")


def _package_versions(root: Path) -> str:
    result = subprocess.run(
        chroot(root, "dpkg-query", "-W", *ROOT_PACKAGES[:2]),
        capture_output=True, text=True, env=_build_env(), check=False,
    )
    return result.stdout


def _build_env() -> dict[str, str]:
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}


def chroot(root: Path, *args: str, user: tuple[int, int] | None = None) -> list[str]:
    """The command line that runs ``args`` inside ``root`` (as ``user`` = uid, gid when given)."""
    tool = shutil.which("chroot", path="/usr/sbin:/usr/bin:/sbin:/bin") or "/usr/sbin/chroot"
    spec = [f"--userspec={user[0]}:{user[1]}"] if user else []
    return [tool, *spec, str(root), *args]


def root_user(root: Path, name: str = "postgres") -> tuple[int, int, str]:
    """uid, gid and home of ``name`` in the root's own /etc/passwd (not the host's)."""
    for line in (root / "etc/passwd").read_text(encoding="utf-8").splitlines():
        fields = line.split(":")
        if len(fields) >= 6 and fields[0] == name:
            return int(fields[2]), int(fields[3]), fields[5]
    raise SandboxError(
        f"The {ROOT_SUITE} root {root} has no {name!r} user.",
        remedy=f"Remove it (rm -rf {root}) so the next run builds it afresh.",
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m cronkit_sandbox.engines``: make the default engine ready (build the root the first time).

    Prints the chosen PostgreSQL major on stdout (``./dev`` uses it to pick the test lanes);
    progress and errors go to stderr.
    """
    import sys

    del argv
    environ = dict(os.environ)
    try:
        engine = choose(environ, requested_major(environ))
        prepare(engine, environ, lambda message: print(f"cronkit sandbox: {message}", file=sys.stderr))
    except (SandboxError, UsageError) as exc:
        print(f"cronkit sandbox: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    print(f"cronkit sandbox: engine {engine.kind}: {engine.describe()}", file=sys.stderr)
    print(engine.major)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
