"""A Supabase migration from a manifest (``cronkit export migration``), and a seed snippet for local secrets.

A migration is applied to a database in an unknown state — fresh, already migrated, or holding an
older version of the manifest — so it cannot be a plan's diff against one database. It converges
from any state, idempotently, with the statements ``apply`` runs (one definition):
:func:`cronkit.plan.schema_statements`, then for every job :func:`cronkit.plan.desired_job`
(``CREATE OR REPLACE FUNCTION`` of its wrapper, the named ``cron.schedule`` upsert,
``cron.alter_job`` for ``active``, the registry upsert), then
:func:`cronkit.registry.prune_statements` for the project's jobs the manifest no longer has.
Checks ``apply`` makes against the live database are made by the server when the file runs: the
extensions are there, and no job of the manifest's names belongs to anyone but this project.

It is environment-independent: written offline (no database), its URLs and keys come only from
the secret backend when a job fires (``{secret:NAME}``). A job whose URL would embed a value of
the environment that writes the file (``{env:NAME}``) is refused. No secret value is ever in it:
``seed.sql`` gets a snippet that stores placeholders for the local stack, for a person to fill in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from psycopg import sql

from cronkit import __version__, schedules
from cronkit.errors import CronkitError, ManifestError, UsageError
from cronkit.maintenance import maintenance_jobs
from cronkit.manifest import LOCAL_API_URL, TEMPLATE, JobSpec, Manifest
from cronkit.plan import APPLY_LOCK, desired_job, schema_statements
from cronkit.audit import AuditAction, record_statement
from cronkit.registry import prune_statements
from cronkit.secrets import TableBackend, backend_for
from cronkit.statement import Statement

#: where ``supabase migration new`` writes, relative to the project
MIGRATIONS_DIR = Path("supabase") / "migrations"
#: Supabase's migration version: UTC ``YYYYMMDDHHMMSS`` (files must match ``^([0-9]+)_(.*)\.sql$``)
TIMESTAMP = re.compile(r"[0-9]{14}")
#: the dollar-quote tag of the DO blocks this module writes
_TAG = "$cronkit$"
_MARK = "\x00env:"


class _Unresolved(Mapping[str, str]):
    """An environment in which every variable reads as a marker: a manifest resolved with it shows
    which values would come from the environment of the machine that writes the migration."""

    def __getitem__(self, name: str) -> str:
        return f"{_MARK}{name}\x00"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@dataclass(frozen=True)
class Migration:
    """An exported migration: its SQL, the seed snippet, and what they hold (names only)."""

    project: str
    environment: str
    timestamp: str
    jobs: tuple[str, ...]
    secrets: tuple[str, ...]
    backend: str
    sql: str
    seed: str

    @property
    def filename(self) -> str:
        return f"{self.timestamp}_cronkit_{_slug(self.project)}.sql"

    @property
    def seed_filename(self) -> str:
        return f"cronkit_{_slug(self.project)}.sql"

    def as_dict(self) -> dict[str, Any]:
        return {"project": self.project, "environment": self.environment, "timestamp": self.timestamp,
                "filename": self.filename, "jobs": list(self.jobs), "secrets": list(self.secrets),
                "backend": self.backend}


def _slug(project: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", project.lower()).strip("_") or "project"


def timestamp_now(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d%H%M%S")


def environment_independent_specs(manifest: Manifest, environment: str | None) -> list[JobSpec]:
    """The manifest's jobs for ``environment`` (maintenance jobs included, as plan has them), or
    :class:`ManifestError` naming every job whose URL would embed an ``{env:...}`` value."""
    specs = manifest.resolve(environment, _Unresolved()) + maintenance_jobs(manifest)
    embedded = []
    for spec in specs:
        names = re.findall(re.escape(_MARK) + r"([^\x00]*)\x00", spec.url or "")
        if names:
            embedded.append(f"{spec.name!r} ({', '.join('{env:' + n + '}' for n in names)})")
    if embedded:
        raise ManifestError(
            f"{manifest.path}: a migration runs unchanged on every environment, but the URL of job(s) "
            f"{', '.join(embedded)} would embed a value of the environment that writes it.",
            remedy="Read the URL from the secret backend when the job fires: base_url = \"{secret:supabase_url}\" "
                   "(store it per environment with `cronkit secrets set supabase_url`; locally in seed.sql).",
        )
    return specs


def export_migration(manifest: Manifest, environment: str | None = None, *, timestamp: str | None = None) -> Migration:
    """The migration for ``manifest`` in ``environment``; reads no database, changes nothing."""
    env_name = environment or manifest.default_environment
    if timestamp is not None and not TIMESTAMP.fullmatch(timestamp):
        raise UsageError(f"--timestamp {timestamp!r} is not a migration version.",
                         remedy="Use UTC YYYYMMDDHHMMSS, e.g. 20261206120000 (the default is now).")
    specs = environment_independent_specs(manifest, env_name)
    if any(_TAG in name for name in (manifest.project, *(spec.name for spec in specs))):
        raise ManifestError(f"{manifest.path}: a name contains {_TAG}, which quotes the migration's generated blocks.",
                            remedy="Rename the project or the job.")
    for spec in specs:
        try:
            # the server's pg_cron is not known yet: the newest's rules, strictly (as plan refuses)
            schedules.parse_schedule(spec.schedule, None, strict=True)
        except CronkitError as exc:
            raise type(exc)(f"job {spec.name!r}: {exc.message}", remedy=exc.remedy) from None
    backend = backend_for(manifest.secrets)
    jobs = [desired_job(spec, backend, manifest.project, None) for spec in specs]
    secrets = sorted({name for spec in specs for name in spec.secret_names})
    stamp = timestamp or timestamp_now()

    sections: list[tuple[str, tuple[Statement, ...]]] = [
        ("one apply at a time (the lock `cronkit apply` takes)",
         (Statement(sql.SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(sql.Literal(APPLY_LOCK))),)),
        ("the extensions the jobs need", (_preconditions(manifest, specs),)),
        ("schema cronkit (registry, request ledger, monitoring); idempotent", schema_statements()),
    ]
    if isinstance(backend, TableBackend) and backend.create_table and secrets:
        sections.append((f"the secrets table {backend.schema}.{backend.table}, when it is missing",
                         (_when_missing(backend),)))
    sections.append(("refuse to take over a job cronkit did not create (as `cronkit apply` does)",
                     (_no_foreign_clash(manifest.project, [s.name for s in specs]),)))
    for job in jobs:
        state = "" if job.spec.active else ", paused"
        sections.append((f"job {job.spec.name} ({job.spec.schedule}{state})", job.statements))
    sections.append((f"remove the jobs of project {manifest.project} that the manifest no longer has",
                     prune_statements(manifest.project, [s.name for s in specs])))
    sections.append(("on the record (cronkit.audit_log), like every change cronkit makes", (record_statement(
        AuditAction.MIGRATION, f"ran migration {stamp} of project {manifest.project!r} ({len(specs)} job(s))",
        project=manifest.project, details={"migration": stamp, "environment": env_name,
                                           "jobs": sorted(s.name for s in specs)}),)))

    header = [
        f"-- cronkit {__version__}: jobs of project {manifest.project!r}, environment {env_name!r}",
        f"-- Generated by `cronkit export migration {manifest.path.name} --env {env_name}`; edit the manifest, not this file.",
        "-- Converges any database to the manifest, idempotently: the same statements `cronkit apply` runs.",
        "-- No URL or key is in it: jobs read them from the secret backend "
        f"({manifest.secrets.backend}) when they fire"
        + (f": {', '.join(secrets)}." if secrets else "."),
        "-- Supabase runs a migration in one transaction; with psql: psql -1 -v ON_ERROR_STOP=1 -f FILE",
    ]
    lines = list(header)
    for title, statements in sections:
        lines += ["", f"-- {title}"]
        for statement in statements:
            text = statement.display(None).rstrip()
            lines.append(text if text.endswith(";") else text + ";")
    return Migration(
        project=manifest.project, environment=env_name, timestamp=stamp, jobs=tuple(s.name for s in specs),
        secrets=tuple(secrets), backend=manifest.secrets.backend, sql="\n".join(lines) + "\n",
        seed=seed_snippet(manifest, specs),
    )


def _do(body: sql.Composable) -> Statement:
    """A DO block in dollar quotes, readable in review (no name holds the tag: see export_migration)."""
    return Statement(sql.SQL("DO {tag} BEGIN\n{body}\nEND {tag}").format(tag=sql.SQL(_TAG), body=body))


def _raise_unless(condition: sql.Composable, message: str, hint: str) -> sql.Composable:
    return sql.SQL("  IF NOT ({c}) THEN\n    RAISE EXCEPTION USING MESSAGE = {m}, HINT = {h};\n  END IF;").format(
        c=condition, m=sql.Literal(message), h=sql.Literal(hint))


def _preconditions(manifest: Manifest, specs: list[JobSpec]) -> Statement:
    """What ``make_plan`` checks before planning (pg_cron, pg_net, Vault), checked by the server."""
    checks = [_raise_unless(sql.SQL("to_regnamespace('cron') IS NOT NULL"),
                            "cronkit: pg_cron is not installed in this database",
                            "Enable it in an earlier migration: create extension if not exists pg_cron with schema pg_catalog;")]
    if any(spec.kind == "http" for spec in specs):
        checks.append(_raise_unless(sql.SQL("to_regproc('net.http_post') IS NOT NULL"),
                                    "cronkit: pg_net is not installed; HTTP jobs need it",
                                    "Enable it in an earlier migration: create extension if not exists pg_net with schema extensions;"))
    if manifest.secrets.backend == "vault" and any(spec.secret_names for spec in specs):
        checks.append(_raise_unless(sql.SQL("to_regclass('vault.decrypted_secrets') IS NOT NULL"),
                                    "cronkit: Supabase Vault is not installed; the manifest's secrets use it",
                                    "Enable Vault (supabase_vault), or choose backend = \"table\" under [secrets]."))
    return _do(sql.SQL("\n").join(checks))


def _when_missing(backend: TableBackend) -> Statement:
    """The secrets table ``apply`` creates when it is missing; an existing table is used as it is."""
    executes = sql.SQL("\n").join(
        sql.SQL("    EXECUTE {};").format(sql.Literal(statement.as_string(None))) for statement in backend.create_statements())
    return _do(sql.SQL("  IF to_regclass({t}) IS NULL THEN\n{e}\n  END IF;").format(
        t=sql.Literal(f"{backend.schema}.{backend.table}"), e=executes))


def _no_foreign_clash(project: str, names: list[str]) -> Statement:
    """Stop the migration when a job of these names is not this project's own: another role's, one
    re-created by hand, one cronkit never created, or another project's (``apply`` plans a problem)."""
    body = sql.SQL(
        "  DECLARE clash text;\n  BEGIN\n"
        "    SELECT string_agg(format('%s (jobid %s, owner %s)', j.jobname, j.jobid, j.username), ', ') INTO clash\n"
        "      FROM cron.job j LEFT JOIN cronkit.managed_jobs m ON m.jobname = j.jobname\n"
        "     WHERE j.jobname = ANY({names}::text[])\n"
        "       AND (m.jobname IS NULL OR m.project <> {project}\n"
        "            OR (m.jobid IS NOT NULL AND m.jobid <> j.jobid)\n"
        "            OR (m.jobid IS NULL AND j.username <> current_user));\n"
        "    IF clash IS NOT NULL THEN\n"
        "      RAISE EXCEPTION USING MESSAGE = 'cronkit: job(s) ' || clash || ' exist and are not project ' || {project} "
        "|| '''s: the migration leaves them alone and stops',\n"
        "        HINT = {hint};\n"
        "    END IF;\n  END;"
    ).format(names=sql.Literal(names), project=sql.Literal(project), hint=sql.Literal(
        "Rename the job in the manifest, or adopt it first: cronkit apply MANIFEST --adopt (see cronkit import)."))
    return _do(body)


# -- seed.sql ---------------------------------------------------------------------------------------


def seed_snippet(manifest: Manifest, specs: list[JobSpec]) -> str:
    """SQL for ``supabase/seed.sql`` that stores each secret the jobs read — as a placeholder a person
    replaces (never a value; a job fails closed on a placeholder, naming the secret)."""
    readers: dict[str, list[str]] = {}
    url_bases: set[str] = set()
    for spec in specs:
        for name in spec.secret_names:
            readers.setdefault(name, []).append(spec.name)
        first = TEMPLATE.match(spec.url or "")
        if first and first.group(1) == "secret":
            url_bases.add(first.group(2))
    backend = backend_for(manifest.secrets)
    lines = [
        f"-- cronkit: the secrets of project {manifest.project!r} for the local stack (supabase start / db reset).",
        "-- Add to supabase/seed.sql (or list this file in [db.seed] sql_paths) and replace each placeholder;",
        "-- never commit a real key. In cloud environments store them once: cronkit secrets set NAME.",
    ]
    if not readers:
        return "\n".join([*lines, "-- (the jobs read no secrets)"]) + "\n"
    if manifest.secrets.backend == "vault":
        lines += ["-- Or let the CLI store them from the environment: in supabase/config.toml, [db.vault]",
                  *(f'--   {name} = "env({name.upper()})"' for name in readers)]
    for name, jobs in readers.items():
        placeholder = f"[{name}]"
        lines += ["", f"-- {name}: read by {', '.join(jobs)}"]
        if name in url_bases:
            lines.append(f"--   a URL base: on the local stack use {LOCAL_API_URL} (Kong, reachable from the database)")
        if manifest.secrets.backend == "vault":
            statement = sql.SQL(
                "SELECT vault.create_secret({value}, {name}, {description})\n"
                " WHERE NOT EXISTS (SELECT 1 FROM vault.secrets WHERE name = {name});"
            ).format(value=sql.Literal(placeholder), name=sql.Literal(name),
                     description=sql.Literal(f"cronkit: read by {', '.join(jobs)}"))
        elif isinstance(backend, TableBackend):
            statement = sql.SQL("INSERT INTO {t} ({k}, {v}) VALUES ({name}, {value}) ON CONFLICT ({k}) DO NOTHING;").format(
                t=backend.ident, k=backend.key, v=backend.value, name=sql.Literal(name), value=sql.Literal(placeholder))
        else:
            lines.append("--   only a superuser may set it (seeds run as postgres): prefer backend = \"vault\"")
            statement = sql.SQL("-- ALTER DATABASE postgres SET {} = {};").format(
                sql.Identifier(manifest.secrets.guc_prefix + name), sql.Literal(placeholder))
        lines.append(statement.as_string(None))
    return "\n".join(lines) + "\n"


# -- writing the files ------------------------------------------------------------------------------


class SeedOutcome(StrEnum):
    """What became of the seed snippet: it is the person's file once they fill in the placeholders."""

    WRITTEN = "written"
    UNCHANGED = "unchanged"
    KEPT = "kept"  # it exists and differs (filled in, or from an older manifest): left alone without --force


@dataclass(frozen=True)
class Written:
    migration: Path
    seed: Path
    seed_outcome: SeedOutcome


def write_migration(migration: Migration, directory: Path, *, seed_directory: Path, force: bool = False) -> Written:
    """Write the migration into ``directory`` — never over an existing file without ``force`` — and
    the seed snippet into ``seed_directory`` when it is not there yet (or with ``force``): a snippet
    whose placeholders a person filled in is theirs."""
    target = directory / migration.filename
    if target.exists() and not force:
        raise CronkitError(f"{target} already exists; nothing was written.",
                           remedy="Use another --timestamp (the default is now), or --force to overwrite it.")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(migration.sql, encoding="utf-8")
    seed = seed_directory / migration.seed_filename
    if seed.exists() and seed.read_text(encoding="utf-8") == migration.seed:
        outcome = SeedOutcome.UNCHANGED
    elif seed.exists() and not force:
        outcome = SeedOutcome.KEPT
    else:
        seed.parent.mkdir(parents=True, exist_ok=True)
        seed.write_text(migration.seed, encoding="utf-8")
        outcome = SeedOutcome.WRITTEN
    return Written(target, seed, outcome)
