"""Where a runbook works: the database, the manifest and the environment; read-only reads, one write path.

Each helper opens its own short connection, so a cell can be re-run at any time. Reads run in a
READ ONLY transaction with a ``statement_timeout`` (:meth:`RunbookContext.read`); changes go
through :meth:`RunbookContext.write` and the modules that own them (plan, jobs, secrets).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import marimo as mo

from cronkit import config, db, registry
from cronkit.errors import ConfigError, CronkitError
from cronkit.manifest import Manifest, load_manifest, parse_manifest
from cronkit.redact import Scrubber
from cronkit.registry import ManagedJob
from cronkit.runbooks.runtime import esc, in_marimo, say
from cronkit.secrets import SecretStatus, backend_for

#: statement_timeout of every read a runbook does
READ_TIMEOUT_MS = 15_000


@dataclass(frozen=True, repr=False)
class RunbookContext:
    """The database, the manifest and the environment a runbook works on."""

    dsn: str
    manifest: Manifest
    environment: str
    environ: Mapping[str, str] = field(default_factory=dict)  # .env + os.environ, for {env:...}
    #: False when no manifest was given (monitor and incident then look at every job)
    has_manifest: bool = True

    def __repr__(self) -> str:
        return f"RunbookContext({db.redact_dsn(self.dsn)!r}, project={self.project!r}, environment={self.environment!r})"

    @property
    def project(self) -> str:
        return self.manifest.project

    @contextlib.contextmanager
    def read(self, timeout_ms: int | None = READ_TIMEOUT_MS) -> Iterator[db.Conn]:
        """A connection inside a READ ONLY transaction whose statements time out."""
        with db.connect(self.dsn, autocommit=True) as conn, db.read_only(conn, timeout_ms=timeout_ms):
            yield conn

    @contextlib.contextmanager
    def write(self, *, autocommit: bool = False) -> Iterator[db.Conn]:
        """A connection for changes (apply, rotation, removal): in transaction mode, the caller
        commits; ``autocommit`` for steps that must not share one (each ``CREATE EXTENSION``)."""
        with db.connect(self.dsn, autocommit=autocommit) as conn:
            yield conn


def resolve(p: Mapping[str, Any], *, environ: Mapping[str, str] | None = None,
            manifest_required: bool = True) -> RunbookContext:
    """Resolve the parameters ``p`` into a :class:`RunbookContext`; :class:`ConfigError` says what is missing.

    With ``manifest_required=False`` and no manifest, the context stands for every job in the
    database (an empty manifest of project ``*``).
    """
    settings = config.load(dsn=p.get("dsn") or None, environ=environ)
    path = p.get("manifest") or settings.manifest
    if not path and not manifest_required:
        empty = parse_manifest({"project": "*"}, Path("<no manifest>"))
        return RunbookContext(dsn=settings.database_url, manifest=empty, environment=empty.default_environment,
                              environ=settings.values, has_manifest=False)
    if not path:
        raise ConfigError(
            "No manifest: this runbook works on the jobs a manifest declares.",
            remedy="Pass --manifest path/to/cronkit.toml (or set CRONKIT_MANIFEST in the environment or .env).",
        )
    manifest = load_manifest(path)
    environment = p.get("env") or settings.environment or manifest.default_environment
    if manifest.environments and environment not in manifest.environments:
        raise ConfigError(
            f"Environment {environment!r} is not in {manifest.path}.",
            remedy=f"Pass --env with one of: {', '.join(sorted(manifest.environments))}.",
        )
    return RunbookContext(dsn=settings.database_url, manifest=manifest, environment=environment, environ=settings.values)


def resolve_or_stop(p: Mapping[str, Any], *, manifest_required: bool = True) -> RunbookContext:
    """:func:`resolve`, and in marimo a clear stop instead of an error cell when it cannot be done
    (no manifest, a broken one, an unknown environment): the message and its fix, and every cell
    that needs the context waits (no empty sections, no live buttons)."""
    try:
        return resolve(p, manifest_required=manifest_required)
    except CronkitError as exc:
        if not in_marimo():
            raise
        mo.stop(True, say(f"❌ {esc(exc.message)}\n\n**Fix:** {esc(exc.remedy or '')}"))
        raise  # mo.stop raises; this line is for type checkers


def view(ctx: RunbookContext) -> mo.Html:
    """One sentence: which manifest, project, environment and database the runbook works on."""
    if not ctx.has_manifest:
        return say(f"No manifest: looking at every job in the database `{db.redact_dsn(ctx.dsn)}` "
                   "(pass `--manifest` to add its queues, secrets and schedules, and to focus on its jobs).")
    m = ctx.manifest
    return say(
        f"Manifest `{m.path}`: project **{m.project}**, environment **{ctx.environment}**, "
        f"{len(m.raw_jobs)} job(s), secrets in **{m.secrets.backend}**, {len(m.queues)} queue(s); "
        f"database `{db.redact_dsn(ctx.dsn)}`."
    )


def specs(ctx: RunbookContext) -> list[Any]:
    """The manifest's jobs resolved for the environment (``{env:...}`` filled in)."""
    return ctx.manifest.resolve(ctx.environment, ctx.environ)


def registered_jobs(ctx: RunbookContext) -> list[ManagedJob]:
    """The project's jobs as cronkit registered them (:mod:`cronkit.registry`), with their ``cron.job`` row."""
    with ctx.read() as conn:
        return registry.managed_jobs(conn, ctx.project)


# -- secrets: names, states and the scrubber -----------------------------------------------------


def secret_names(ctx: RunbookContext) -> list[str]:
    """Every secret the manifest's jobs read."""
    return sorted({n for s in specs(ctx) for n in s.secret_names})


def jobs_reading(ctx: RunbookContext, name: str | None) -> list[str]:
    """The manifest's jobs that read secret ``name``."""
    return sorted(s.name for s in specs(ctx) if name and name in s.secret_names)


def secret_statuses(ctx: RunbookContext, names: list[str]) -> list[SecretStatus]:
    """Present / missing / placeholder of each secret (length and fingerprint, never the value)."""
    backend = backend_for(ctx.manifest.secrets)
    with ctx.read() as conn:
        return backend.status(conn, names)


def stored_mask(status: SecretStatus) -> str:
    """``<secret len=N fp=...>`` of a stored secret, ``<missing>`` when absent (as :func:`cronkit.redact.mask`)."""
    if status.length is None:
        return "<missing>"
    return f"<secret len={status.length} fp={status.fingerprint}>"


def scrubber(ctx: RunbookContext) -> Scrubber:
    """The one scrubber (:class:`cronkit.redact.Scrubber`) for the secrets the manifest's jobs read.

    Defence in depth for text that comes back from the database: an HTTP job whose URL is a secret
    leaves that URL in ``cronkit.request_ledger`` and in pg_net's tables, and the doctor's evidence
    quotes it. Helpers build one per call and drop it. Without readable secrets it still masks
    key-shaped text.
    """
    names = secret_names(ctx)
    if not names:
        return Scrubber()
    backend = backend_for(ctx.manifest.secrets)
    try:
        with ctx.read() as conn:
            return Scrubber.for_values(backend.values(conn, names))
    except (CronkitError, db.DatabaseError):  # e.g. Vault not installed yet: nothing stored to scrub
        return Scrubber()
