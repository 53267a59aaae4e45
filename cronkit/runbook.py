"""What the runbooks in ``runbooks/`` call: parameters, the apply gate, each step's data and view.

The runbooks are marimo notebooks that walk the guides' procedures (set up, monitor, incident,
rotate a secret, roll back). They stay thin glue: every query and decision lives here, typed and
tested; a notebook cell calls one helper for the data and one for the view. Each helper opens its
own short connection (reads with a ``statement_timeout``), so a cell can be re-run at any time.

Rules every runbook keeps, enforced here:

* **Parameters** come from :func:`params`: defaults < ``.env`` (``find_dotenv(usecwd=True)``) <
  ``CRONKIT_<NAME>`` / ``DATABASE_URL`` variables < marimo command-line arguments
  (``python runbooks/setup.py --manifest m.toml --apply true``). Tests replace the whole config
  cell with ``app.run(defs={"p": {...}})``.
* **Nothing changes unless confirmed**: a state-changing step runs only when its
  ``mo.ui.run_button`` was pressed or ``apply`` is true (:func:`confirmed`). :func:`gate` stops the
  cell with ``mo.stop`` inside marimo; in Jupyter (no marimo runtime: nbval, ``jupyter execute``)
  it cannot stop a cell without an error, so the effect helpers themselves change nothing when
  not confirmed and say so (:data:`JUPYTER_GATE`).
* **Secrets never appear**: values are read from a masked input or an environment variable and
  passed straight to the secret backend; only :func:`cronkit.redact.mask` forms are shown.

``python -m cronkit.runbook`` has three commands for CI and demos: ``export-ipynb`` (a Jupyter
rendition executed in a kernel, the nbval golden), ``check-golden`` (is a golden's code still the
runbook's) and ``report`` (a self-contained offline HTML report of a headless run, charts as
inline SVG rendered with vl-convert).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import html
import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import marimo as mo
import polars as pl
import psycopg
from dotenv import dotenv_values, find_dotenv

from cronkit import config, db, jobs, schedules
from cronkit.errors import ConfigError, CronkitError
from cronkit.facts import ServerFacts, server_facts
from cronkit.manifest import Manifest, QueueSpec, load_manifest
from cronkit.plan import Statement, active_statement, removal_statements
from cronkit.redact import mask
from cronkit.secrets import SecretStatus, backend_for

Conn = psycopg.Connection[Any]

#: statement_timeout of every read a runbook does
READ_TIMEOUT_MS = 15_000
#: what a state-changing step says in Jupyter, where there is no button to press
JUPYTER_GATE = "apply is only available in marimo or with apply=true"
#: the longest look-back a verification uses (monitor windows are capped at 400 days)
MAX_LOOKBACK = timedelta(days=399)

# =================================================================================================
# Parameters and the runtime
# =================================================================================================

#: variables read for a parameter besides ``CRONKIT_<NAME>`` (libpq conventions first)
_EXTRA_VARIABLES = {"dsn": ("DATABASE_URL",)}
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}


def variables_for(name: str) -> tuple[str, ...]:
    """The environment variables a parameter is read from, strongest first."""
    return (f"CRONKIT_{name.upper()}", *_EXTRA_VARIABLES.get(name, ()))


def params(
    *,
    environ: Mapping[str, str] | None = None,
    env_file: str | Path | None = None,
    cli: Mapping[str, Any] | None = None,
    **defaults: Any,
) -> dict[str, Any]:
    """A runbook's parameters: ``defaults`` < ``.env`` < environment < marimo CLI arguments.

    Only the names given as ``defaults`` are parameters; each value is converted to the type of
    its default (``"true"`` → ``True`` for a bool, ``"30"`` → ``30.0`` for a float; a ``None``
    default takes text). Outside marimo (Jupyter, plain Python) there are no CLI arguments, and
    reading them never raises. An unconvertible value raises :class:`ConfigError` naming where it
    came from.
    """
    env = dict(os.environ if environ is None else environ)
    path = str(env_file) if env_file is not None else find_dotenv(usecwd=True)
    file_values = {k: v for k, v in (dotenv_values(path) if path else {}).items() if v is not None}
    args = {str(k).replace("-", "_"): v for k, v in (marimo_cli_args() if cli is None else cli).items()}
    result: dict[str, Any] = {}
    for name, default in defaults.items():
        value = default
        for source, label in ((file_values, ".env"), (env, "the environment")):
            for variable in reversed(variables_for(name)):  # the CRONKIT_ name wins over its alias
                if source.get(variable, "") != "":
                    value = _coerce(source[variable], default, f"{variable} in {label}")
        if name in args:
            raw = args[name]
            value = _coerce(raw[-1] if isinstance(raw, list) else raw, default, f"--{name.replace('_', '-')}")
        result[name] = value
    return result


def marimo_cli_args() -> dict[str, Any]:
    """``mo.cli_args()`` as a dict; empty outside a marimo runtime (where it raises)."""
    try:
        return dict(mo.cli_args())
    except Exception:  # noqa: BLE001 - ContextNotInitializedError and friends: not in marimo
        return {}


def _coerce(raw: Any, default: Any, where: str) -> Any:
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConfigError(f"{where}: expected true or false, got {raw!r}.", remedy="Use true/false (or 1/0).")
    if isinstance(default, int | float) and not isinstance(default, bool):
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {raw!r}.") from None
        return int(number) if isinstance(default, int) and number.is_integer() else number
    if raw is None:
        return None
    return str(raw)


def runtime_mode() -> str | None:
    """marimo's mode (``edit``, ``run``, ``script``), or None outside marimo (Jupyter, plain Python)."""
    try:
        return mo.app_meta().mode
    except Exception:  # noqa: BLE001 - no marimo context
        return None


def in_marimo() -> bool:
    """True inside a marimo runtime (editor, app, script or ``app.run()``), where ``mo.stop`` works.

    marimo reports mode ``test`` whenever ``PYTEST_CURRENT_TEST`` is set — also in a Jupyter kernel
    started under pytest (nbval) — without any runtime; that does not count.
    """
    return runtime_mode() in ("edit", "run", "script")


def confirmed(button: Any, p: Mapping[str, Any]) -> bool:
    """True when ``apply`` is set or the run button was pressed (its value is True for that run)."""
    return bool(p.get("apply")) or bool(getattr(button, "value", False))


#: set while :func:`report` runs a runbook: it shows the outputs itself
_REPORTING = False


def _script_main() -> bool:
    """True for ``python runbooks/x.py``: marimo's script mode started from the runbook's own file
    (not ``app.run()`` from a test, a script or the report command, which use the outputs)."""
    if _REPORTING or runtime_mode() != "script" or not sys.argv or not sys.argv[0]:
        return False
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    try:
        same = main is not None and Path(main).resolve() == Path(sys.argv[0]).resolve()
    except OSError:
        return False
    return same and _is_notebook(str(Path(sys.argv[0]).resolve()))


@functools.lru_cache(maxsize=8)
def _is_notebook(path: str) -> bool:
    try:
        return "marimo.App(" in Path(path).read_text(encoding="utf-8")
    except OSError:
        return False


def say(text: str) -> mo.Html:
    """``mo.md(text)``; run as a script, also print it, so a headless run tells what it did."""
    if _script_main():
        print(html.unescape(text).strip() + "\n", flush=True)
    return mo.md(text)


def not_confirmed_note(action: str) -> mo.Html:
    if in_marimo():
        return say(
            f"**Not applied.** Review the preview above, then press **{action}** "
            "(headless: `--apply true`). Nothing was changed."
        )
    return say(f"**Not applied:** {JUPYTER_GATE}. Nothing was changed.")


@dataclass(frozen=True)
class Gate:
    """The answer of :func:`gate`: truthy when the step may change the database."""

    ok: bool
    action: str
    needed: bool = True
    idle: str = "Nothing to do."

    def __bool__(self) -> bool:
        return self.ok


def gate(go: bool, action: str, *, needed: bool = True, idle: str = "Nothing to do.") -> Gate:
    """The apply gate: inside marimo, ``mo.stop`` the cell (and its descendants) unless ``go``.

    ``needed=False`` (the preview found nothing to change) lets the cell go on without stopping;
    the effect helper then changes nothing and shows ``idle``. Outside marimo ``mo.stop`` would
    raise into the cell, so the gate only answers, and the effect helper called with it does
    nothing when it is falsy (and says why: :data:`JUPYTER_GATE`).
    """
    if not go and needed and in_marimo():
        mo.stop(True, not_confirmed_note(action))
    return Gate(bool(go), action, needed, idle)


@dataclass(frozen=True)
class NotApplied:
    """What an effect helper returns when its step was not confirmed (or had nothing to do)."""

    action: str
    needed: bool = True
    idle: str = "Nothing to do."

    @classmethod
    def of(cls, ok: bool | Gate, action: str) -> NotApplied:
        if isinstance(ok, Gate):
            return cls(ok.action, ok.needed, ok.idle)
        return cls(action)

    def view(self) -> mo.Html:
        if not self.needed:
            return say(f"✅ {self.idle}")
        return not_confirmed_note(self.action)


def esc(text: Any) -> str:
    """Free text for ``mo.md``: ``<secret len=...>`` and error messages must not become HTML tags,
    nor ``$...$`` in SQL become maths."""
    return html.escape(str(text), quote=False).replace("$", "&#36;")


def param_rows(p: Mapping[str, Any]) -> pl.DataFrame:
    """The parameters for display: the DSN without its password, nothing else secret in ``p``."""
    rows = []
    for name, value in sorted(p.items()):
        shown = db.redact_dsn(value) if name == "dsn" and value else value
        rows.append({"parameter": name, "value": "" if shown is None else str(shown),
                     "variable": " / ".join(variables_for(name)), "cli": f"--{name.replace('_', '-')}"})
    return pl.DataFrame(rows, schema={"parameter": pl.String, "value": pl.String, "variable": pl.String, "cli": pl.String})


def one(conn: Conn, query: Any, params: Any = None) -> dict[str, Any]:
    """The single row of a query that always returns one (``SELECT ... AS ok``)."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, "the query returns exactly one row"
    return row


# =================================================================================================
# Context: where the runbook works
# =================================================================================================


@dataclass(frozen=True, repr=False)
class Context:
    """The database, the manifest and the environment a runbook works on."""

    dsn: str
    manifest: Manifest
    environment: str
    environ: Mapping[str, str] = field(default_factory=dict)  # .env + os.environ, for {env:...}
    #: False when no manifest was given (monitor and incident then look at every job)
    has_manifest: bool = True

    def __repr__(self) -> str:
        return f"Context({db.redact_dsn(self.dsn)!r}, project={self.project!r}, environment={self.environment!r})"

    @property
    def project(self) -> str:
        return self.manifest.project

    @contextlib.contextmanager
    def read(self, timeout_ms: int = READ_TIMEOUT_MS) -> Iterator[Conn]:
        """An autocommit connection whose statements time out (reads)."""
        with db.connect(self.dsn, autocommit=True, options=f"-c statement_timeout={int(timeout_ms)}") as conn:
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Conn]:
        """A connection in transaction mode (apply, rotation, removal)."""
        with db.connect(self.dsn, autocommit=False) as conn:
            yield conn


def context(p: Mapping[str, Any], *, environ: Mapping[str, str] | None = None, manifest_required: bool = True) -> Context:
    """Resolve ``p`` into a :class:`Context`; :class:`ConfigError` says what is missing.

    With ``manifest_required=False`` and no manifest, the context stands for every job in the
    database (an empty manifest of project ``*``).
    """
    from cronkit.manifest import parse_manifest

    settings = config.load(dsn=p.get("dsn") or None, environ=environ)
    path = p.get("manifest") or settings.manifest
    if not path and not manifest_required:
        empty = parse_manifest({"project": "*"}, Path("<no manifest>"))
        return Context(dsn=settings.database_url, manifest=empty, environment=empty.default_environment,
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
    return Context(dsn=settings.database_url, manifest=manifest, environment=environment, environ=settings.values)


def context_view(ctx: Context) -> mo.Html:
    if not ctx.has_manifest:
        return say(f"No manifest: looking at every job in the database `{db.redact_dsn(ctx.dsn)}` "
                     "(pass `--manifest` to add its queues, secrets and schedules, and to focus on its jobs).")
    m = ctx.manifest
    return say(
        f"Manifest `{m.path}`: project **{m.project}**, environment **{ctx.environment}**, "
        f"{len(m.raw_jobs)} job(s), secrets in **{m.secrets.backend}**, {len(m.queues)} queue(s); "
        f"database `{db.redact_dsn(ctx.dsn)}`."
    )


def specs(ctx: Context) -> list[Any]:
    """The manifest's jobs resolved for the environment (``{env:...}`` filled in)."""
    return ctx.manifest.resolve(ctx.environment, ctx.environ)


# =================================================================================================
# Step 1: the server
# =================================================================================================


def facts(ctx: Context) -> ServerFacts:
    with ctx.read() as conn:
        return server_facts(conn)


def facts_rows(f: ServerFacts) -> pl.DataFrame:
    rows = [
        ("PostgreSQL", f.postgresql), ("database", f.database), ("role", f.role),
        ("superuser", "yes" if f.superuser else "no (like Supabase's postgres role)"),
        ("bypass RLS", "yes" if f.bypassrls else "no"),
        ("pg_cron", f.pg_cron or "not installed"), ("pg_net", f.pg_net or "not installed"),
        ("Vault", f.vault or "not installed"), ("cron.database_name", f.cron_database or "(not readable)"),
    ]
    return pl.DataFrame({"fact": [r[0] for r in rows], "value": [str(r[1]) for r in rows]})


# =================================================================================================
# Step 2: the tables the jobs need
# =================================================================================================

TABLES_SCHEMA: dict[str, Any] = {"table": pl.String, "needed_by": pl.String, "exists": pl.Boolean, "problem": pl.String}
_MISSING_RELATION = re.compile(r'relation "([^"]+)" does not exist')


def _guard_relations(conn: Conn, guard: str) -> tuple[list[str], str | None]:
    """Tables a guard reads, as PostgreSQL's planner sees them; or the relation it cannot find."""
    try:
        row = conn.execute(f"EXPLAIN (VERBOSE, FORMAT JSON) SELECT ({guard})").fetchone()  # type: ignore[arg-type]
    except psycopg.errors.UndefinedTable as exc:
        missing = _MISSING_RELATION.search(exc.diag.message_primary or str(exc))
        return [missing.group(1) if missing else "?"], f"does not exist ({exc.diag.message_primary})"
    except psycopg.Error as exc:
        return [], f"the guard does not compile: {exc.diag.message_primary or exc}"
    assert row is not None
    plan = next(iter(row.values()))
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "Relation Name" in node:
                name = f"{node.get('Schema', 'public')}.{node['Relation Name']}"
                if name not in found:
                    found.append(name)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(plan)
    return found, None


def _queue_problem(conn: Conn, queue: QueueSpec) -> tuple[bool, str]:
    if one(conn, "SELECT to_regclass(%s) AS oid", (queue.table,))["oid"] is None:
        return False, "does not exist"
    columns = {r["attname"] for r in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (queue.table,),
    ).fetchall()}
    wanted = [c for c in (queue.status_column, queue.created_column, queue.updated_column, queue.retry_column) if c]
    missing = [c for c in wanted if c not in columns]
    return True, (f"missing column(s) {', '.join(missing)} named in [[queues]]" if missing else "")


def required_tables(ctx: Context) -> pl.DataFrame:
    """Every table the jobs need: the ``[[queues]]`` tables and the tables guards read (guide 002 step 2)."""
    rows: dict[str, dict[str, Any]] = {}
    with ctx.read() as conn:
        for queue in ctx.manifest.queues:
            exists, problem = _queue_problem(conn, queue)
            rows[queue.table] = {"table": queue.table, "needed_by": "[[queues]]", "exists": exists, "problem": problem}
        for spec in specs(ctx):
            if not spec.guard:
                continue
            relations, trouble = _guard_relations(conn, spec.guard)
            problem = trouble or ""
            for name in relations:
                entry = rows.setdefault(name, {"table": name, "needed_by": "", "exists": not problem, "problem": problem})
                entry["needed_by"] = ", ".join(filter(None, [entry["needed_by"], f"guard of {spec.name}"]))
            if problem and not relations:
                rows[f"guard of {spec.name}"] = {"table": "?", "needed_by": f"guard of {spec.name}", "exists": False, "problem": problem}
    return pl.DataFrame(sorted(rows.values(), key=lambda r: r["table"]), schema=TABLES_SCHEMA)


def tables_view(tables: pl.DataFrame) -> mo.Html:
    if tables.is_empty():
        return mo.md("No queue tables declared and no guards: no tables to check.")
    missing = tables.filter(~pl.col("exists") | (pl.col("problem") != ""))
    verdict = ("✅ every table exists" if missing.is_empty()
               else f"❌ {missing.height} table(s) missing or incomplete: create them with your migrations first "
                    "(jobs would fail on every run)")
    return mo.vstack([say(verdict), tables])


# =================================================================================================
# Step 3: extensions
# =================================================================================================

#: extension, the schema Supabase puts it in, what it is for, where to click on Supabase
EXTENSIONS = (
    ("pg_cron", "pg_catalog", "schedules the jobs",
     "Dashboard → Integrations → Cron → Enable (or Database → Extensions → pg_cron)"),
    ("pg_net", "extensions", "HTTP calls of the jobs",
     "Dashboard → Database → Extensions → search pg_net → enable it in schema `extensions`"),
    ("supabase_vault", "vault", "secrets in Vault",
     "Dashboard → Integrations → Vault (on by default in new projects)"),
)
EXTENSIONS_SCHEMA: dict[str, Any] = {
    "extension": pl.String, "needed_for": pl.String, "state": pl.String, "version": pl.String,
    "schema": pl.String, "sql": pl.String, "dashboard": pl.String,
}


def _needed_extensions(ctx: Context) -> list[str]:
    all_specs = specs(ctx)
    needed = ["pg_cron"]
    if any(s.kind == "http" for s in all_specs):
        needed.append("pg_net")
    if ctx.manifest.secrets.backend == "vault" and any(s.secret_names for s in all_specs):
        needed.append("supabase_vault")
    return needed


def extensions_needed(ext: pl.DataFrame) -> bool:
    """True when some extension is missing (so enabling would change something)."""
    return not ext.filter(pl.col("state") == "missing").is_empty()


def extension_sql(name: str, schema: str) -> str:
    if name == "supabase_vault":  # not relocatable: its objects always live in schema vault
        return "CREATE EXTENSION IF NOT EXISTS supabase_vault CASCADE;"
    return f"CREATE EXTENSION IF NOT EXISTS {name} WITH SCHEMA {schema};"


def extensions(ctx: Context) -> pl.DataFrame:
    """Each extension the manifest needs: enabled (version, schema), missing, or not on the server."""
    needed = _needed_extensions(ctx)
    with ctx.read() as conn:
        rows = conn.execute(
            "SELECT a.name, e.extversion, n.nspname, a.name IS NOT NULL AS available "
            "FROM pg_available_extensions a LEFT JOIN pg_extension e ON e.extname = a.name "
            "LEFT JOIN pg_namespace n ON n.oid = e.extnamespace WHERE a.name = ANY(%s) ORDER BY a.name",
            (needed,),
        ).fetchall()
    found = {r["name"]: r for r in rows}
    out = []
    for name, schema, purpose, dashboard in EXTENSIONS:
        if name not in needed:
            continue
        row = found.get(name)
        if row is None:
            state, version, where, statement = "not on this server", None, None, ""
        elif row["extversion"] is None:
            state, version, where, statement = "missing", None, None, extension_sql(name, schema)
        else:
            state, version, where, statement = "enabled", row["extversion"], row["nspname"], ""
        out.append({"extension": name, "needed_for": purpose, "state": state, "version": version,
                    "schema": where, "sql": statement, "dashboard": dashboard if state != "enabled" else ""})
    return pl.DataFrame(out, schema=EXTENSIONS_SCHEMA)


def extensions_view(ext: pl.DataFrame, f: ServerFacts) -> mo.Html:
    todo = ext.filter(pl.col("state") != "enabled")
    if todo.is_empty():
        return mo.vstack([say("✅ every extension the jobs need is enabled."), ext.drop("sql", "dashboard")])
    statements = "\n".join(s for s in todo["sql"].to_list() if s)
    lines = [f"❌ {todo.height} extension(s) to enable. The SQL (guide 002 step 3):", f"```sql\n{statements}\n```"]
    if not f.superuser:
        lines.append(
            f"Role `{f.role}` is not a superuser. On Supabase the SQL above works from the SQL Editor or this "
            "runbook (the platform allows these extensions); if it is refused, click instead:"
        )
        lines += [f"- **{r['extension']}**: {r['dashboard']}" for r in todo.iter_rows(named=True)]
    unavailable = todo.filter(pl.col("state") == "not on this server")["extension"].to_list()
    if unavailable:
        lines.append(f"Not installed on the server at all: {', '.join(unavailable)} (self-hosted: install the package, "
                     "e.g. Debian `postgresql-15-cron`, and add pg_cron to `shared_preload_libraries`).")
    return mo.vstack([say("\n\n".join(lines)), ext.drop("dashboard")])


@dataclass(frozen=True)
class ExtensionChange:
    results: tuple[tuple[str, str], ...]  # (extension, what happened)

    def view(self) -> mo.Html:
        if not self.results:
            return say("Nothing to do: every extension was already enabled.")
        return say("\n".join(f"- **{name}**: {esc(outcome)}" for name, outcome in self.results))


def enable_extensions(ctx: Context, ok: bool | Gate) -> ExtensionChange | NotApplied:
    """Run ``CREATE EXTENSION`` for each missing extension (when confirmed); a refusal is explained."""
    if not ok:
        return NotApplied.of(ok, "Enable extensions")
    todo = extensions(ctx).filter(pl.col("state") == "missing")
    results = []
    with db.connect(ctx.dsn, autocommit=True) as conn:
        for row in todo.iter_rows(named=True):
            try:
                with db.translated(f"enable {row['extension']}"):
                    conn.execute(row["sql"])  # type: ignore[arg-type]
                results.append((row["extension"], "enabled"))
            except CronkitError as exc:
                results.append((row["extension"], f"refused: {exc.message} — click instead: {row['dashboard']}"))
    return ExtensionChange(tuple(results))


# =================================================================================================
# Step 4: secrets
# =================================================================================================

SECRETS_SCHEMA: dict[str, Any] = {
    "secret": pl.String, "state": pl.String, "stored": pl.String, "updated_at": pl.Datetime("us", "UTC"),
    "used_by": pl.String, "source": pl.String, "source_state": pl.String,
}


def secret_names(ctx: Context) -> list[str]:
    return sorted({n for s in specs(ctx) for n in s.secret_names})


def _secret_statuses(ctx: Context, names: list[str]) -> list[SecretStatus]:
    backend = backend_for(ctx.manifest.secrets)
    with ctx.read() as conn:
        return backend.status(conn, names)


def secrets(ctx: Context) -> pl.DataFrame:
    """Each secret the jobs read: present / missing / placeholder, as length and fingerprint only;
    which jobs use it; and whether its ``[secrets.sources]`` variable holds the same value."""
    names = secret_names(ctx)
    if not names:
        return pl.DataFrame(schema=SECRETS_SCHEMA)
    users = {n: sorted(s.name for s in specs(ctx) if n in s.secret_names) for n in names}
    try:
        statuses = _secret_statuses(ctx, names)
    except CronkitError as exc:  # e.g. Vault not installed yet: say so instead of failing the runbook
        return pl.DataFrame([{"secret": n, "state": "unreadable", "stored": "", "updated_at": None,
                              "used_by": ", ".join(users[n]), "source": "", "source_state": exc.message} for n in names],
                            schema=SECRETS_SCHEMA)
    rows = []
    for status in statuses:
        source = ctx.manifest.secrets.source_value(status.name, ctx.environ)
        if source is None:
            source_text, source_state = "", "no source (set it here or with `cronkit secrets set`)"
        elif source[1] is None:
            source_text, source_state = source[0], "variable not set"
        else:
            source_text = source[0]
            source_state = "in sync" if status.fingerprint and mask(source[1]) == _mask_of(status) else "differs: apply stores it"
        rows.append({
            "secret": status.name, "state": status.state, "stored": _mask_of(status),
            "updated_at": status.updated_at, "used_by": ", ".join(users[status.name]),
            "source": source_text, "source_state": source_state,
        })
    return pl.DataFrame(rows, schema=SECRETS_SCHEMA)


def _mask_of(status: SecretStatus) -> str:
    if status.length is None:
        return "<missing>"
    return f"<secret len={status.length} fp={status.fingerprint}>"


def secrets_view(table: pl.DataFrame) -> mo.Html:
    if table.is_empty():
        return mo.md("The jobs read no secrets.")
    bad = table.filter(pl.col("state") != "present")
    pending = table.filter(pl.col("source_state").str.starts_with("differs"))
    if bad.is_empty():
        verdict = "✅ every secret is present (values are never shown: length and fingerprint only)."
    else:
        verdict = (f"❌ {bad.height} secret(s) {', '.join(f'`{s}` ({esc(st)})' for s, st in zip(bad['secret'], bad['state'], strict=True))}: "
                   "store them below, or set their `[secrets.sources]` variable so apply stores them.")
    if not pending.is_empty():
        verdict += f" {pending.height} will be updated by apply from their source."
    return mo.vstack([say(verdict), table])


def default_secret_to_store(ctx: Context, wanted: str | None) -> str | None:
    """The secret the form starts on: the one asked for, else the first not present, else the first."""
    names = secret_names(ctx)
    if wanted:
        if wanted not in names:
            raise ConfigError(f"No job of project {ctx.project!r} reads a secret named {wanted!r}.",
                              remedy=f"Choose one of: {', '.join(names) or '(none)'}.")
        return wanted
    if not names:
        return None
    try:
        absent = [s.name for s in _secret_statuses(ctx, names) if s.state != "present"]
    except CronkitError:
        absent = []
    return (absent or names)[0]


def secret_value(typed: str | None, from_env: str | None, ctx: Context) -> str | None:
    """The value to store: the masked input if filled, else the named variable (never a CLI argument)."""
    if typed:
        return typed
    if from_env:
        value = ctx.environ.get(from_env)
        if not value:
            raise ConfigError(f"{from_env} is not set, so there is no value to store.",
                              remedy=f"Set {from_env} in the environment or .env, or type the value into the masked field.")
        return value
    return None


def store_statement(ctx: Context, name: str, value: str | None) -> str:
    """The statement the backend runs to store ``name``, with the value shown masked."""
    cfg = ctx.manifest.secrets
    shown = mask(value) if value else "<value>"
    if cfg.backend == "vault":
        return (f"-- id := (SELECT id FROM vault.decrypted_secrets WHERE name = '{name}')\n"
                f"SELECT vault.update_secret(id, {shown});  -- or, when absent:\n"
                f"SELECT vault.create_secret({shown}, '{name}', '');")
    if cfg.backend == "table":
        return (f"UPDATE {cfg.table} SET {cfg.value_column} = {shown} WHERE {cfg.key_column} = '{name}';  -- or, when absent:\n"
                f"INSERT INTO {cfg.table} ({cfg.key_column}, {cfg.value_column}) VALUES ('{name}', {shown});")
    return f"ALTER DATABASE current_database() SET \"{cfg.guc_prefix}{name}\" = {shown};  -- superuser only"


def secret_preview(ctx: Context, name: str | None, value: str | None) -> mo.Html:
    if not name:
        return mo.md("Choose a secret to store.")
    try:
        current = _secret_statuses(ctx, [name])[0]
    except CronkitError as exc:
        return mo.md(f"❌ The secrets cannot be read here: {esc(exc.message)}")
    users = sorted(s.name for s in specs(ctx) if name in s.secret_names)
    if not value:
        change = "_no value given yet (type it into the masked field, or pass `--secret-from-env VAR`)_"
    elif current.fingerprint and mask(value) == _mask_of(current):
        change = f"unchanged: the stored value already is `{mask(value)}`"
    else:
        change = f"`{_mask_of(current)}` → `{mask(value)}`"
    return mo.md(
        f"Secret **{name}** in **{ctx.manifest.secrets.backend}** ({current.state}): {change}. "
        f"Read by: {', '.join(users) or 'no job'}.\n\n```sql\n{store_statement(ctx, name, value)}\n```"
    )


@dataclass(frozen=True)
class SecretChange:
    name: str
    outcome: str  # created / updated / unchanged / nothing to store
    before: str
    after: str

    def view(self) -> mo.Html:
        if self.outcome == "nothing to store":
            return say(f"Nothing stored for **{self.name}**: no value was given.")
        return say(f"Secret **{esc(self.name)}**: {self.outcome} (`{self.before}` → `{self.after}`).")


def store_secret(ctx: Context, name: str | None, value: str | None, ok: bool | Gate) -> SecretChange | NotApplied:
    """Store ``value`` as secret ``name`` (one transaction) when confirmed; returns masks only."""
    if not ok:
        return NotApplied.of(ok, "Store secret")
    if not name or not value:
        return SecretChange(name or "(none)", "nothing to store", "", "")
    backend = backend_for(ctx.manifest.secrets)
    with ctx.write() as conn:
        before = _mask_of(backend.status(conn, [name])[0])
        outcome = backend.set(conn, name, value, "managed by cronkit")
        conn.commit()
    return SecretChange(name, outcome, before, mask(value))


@dataclass(frozen=True, repr=False)
class Scrubber:
    """Replaces the current values of the manifest's secrets with their mask in displayed text.

    Defence in depth for text that comes back from the database: an HTTP job whose URL is a secret
    leaves that URL in ``cronkit.request_ledger`` and in pg_net's tables, and the doctor's evidence
    quotes it. Helpers build one per call and drop it; a runbook never holds one as a global.
    """

    pairs: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        return f"Scrubber({len(self.pairs)} secret(s))"

    def text(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        for secret, shown in self.pairs:
            value = value.replace(secret, shown)
        return value

    def deep(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self.deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.deep(v) for v in value)
        return value

    def frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        if not self.pairs:
            return frame
        columns = [name for name, dtype in frame.schema.items() if dtype == pl.String]
        if not columns:
            return frame
        exprs = []
        for name in columns:
            expr = pl.col(name)
            for secret, shown in self.pairs:
                expr = expr.str.replace_all(secret, shown, literal=True)
            exprs.append(expr.alias(name))
        return frame.with_columns(exprs)


#: values shorter than this are not scrubbed (they would mangle unrelated text)
MIN_SCRUB_LENGTH = 6


def scrubber(ctx: Context) -> Scrubber:
    """A :class:`Scrubber` for the secrets the manifest's jobs read (none without a manifest)."""
    names = secret_names(ctx)
    if not names:
        return Scrubber()
    cfg = ctx.manifest.secrets
    backend = backend_for(cfg)
    values: dict[str, str] = {}
    try:
        with ctx.read() as conn:
            if cfg.backend == "vault":
                rows = conn.execute("SELECT name, decrypted_secret AS value FROM vault.decrypted_secrets "
                                    "WHERE name = ANY(%s) ORDER BY name", (names,)).fetchall()
            elif cfg.backend == "table":
                from psycopg import sql as _sql

                if one(conn, "SELECT to_regclass(%s) IS NULL AS gone", (cfg.table,))["gone"]:
                    rows = []
                else:
                    rows = conn.execute(_sql.SQL("SELECT {k} AS name, {v} AS value FROM {t} WHERE {k} = ANY(%s) ORDER BY 1").format(
                        k=backend.key, v=backend.value, t=backend.ident), (names,)).fetchall()  # type: ignore[attr-defined]
            else:
                rows = conn.execute(
                    "SELECT substr(split_part(cfg, '=', 1), length(%s) + 1) AS name, substr(cfg, strpos(cfg, '=') + 1) AS value "
                    "FROM pg_db_role_setting s, unnest(s.setconfig) cfg "
                    "WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) AND s.setrole = 0 "
                    "AND starts_with(cfg, %s) ORDER BY 1", (cfg.guc_prefix, cfg.guc_prefix)).fetchall()
    except (CronkitError, psycopg.Error):
        return Scrubber()
    for row in rows:
        if row["name"] in names and row["value"] and len(row["value"]) >= MIN_SCRUB_LENGTH:
            values[row["value"]] = f"<secret {row['name']}>"
    # longest first, so a value that contains another is replaced whole
    return Scrubber(tuple(sorted(values.items(), key=lambda kv: -len(kv[0]))))


# =================================================================================================
# Step 5: the plan and apply
# =================================================================================================


@dataclass(frozen=True)
class PlanPreview:
    """A plan as shown before applying: summary, problems, warnings, each step's exact SQL."""

    project: str
    environment: str
    summary: Mapping[str, int]
    problems: tuple[str, ...]
    warnings: tuple[str, ...]
    steps: tuple[Mapping[str, Any], ...]
    foreign: tuple[str, ...]
    error: str | None = None

    @property
    def changes(self) -> int:
        return sum(1 for s in self.steps if s["action"] != "unchanged")

    def rows(self) -> pl.DataFrame:
        return pl.DataFrame(
            [{"action": s["action"], "job": s["job"] or "", "detail": s["detail"], "statements": len(s["sql"])} for s in self.steps],
            schema={"action": pl.String, "job": pl.String, "detail": pl.String, "statements": pl.Int64},
        )


def preview_plan(ctx: Context) -> PlanPreview:
    """``cronkit plan``: read-only. A database that cannot be planned yet (no pg_cron) gives ``error``."""
    from cronkit.plan import make_plan

    try:
        with ctx.read() as conn:
            plan = make_plan(conn, ctx.manifest, ctx.environment, environ=ctx.environ)
            data = plan.as_dict(conn)
    except CronkitError as exc:
        return PlanPreview(ctx.project, ctx.environment, {}, (), (), (), (), error=str(exc))
    return PlanPreview(
        project=data["project"], environment=data["environment"], summary=data["summary"],
        problems=tuple(data["problems"]), warnings=tuple(data["warnings"]), steps=tuple(data["steps"]),
        foreign=tuple(sorted(j["jobname"] for j in data["foreign_jobs"])),
    )


def plan_view(plan: PlanPreview) -> mo.Html:
    if plan.error:
        return say(f"❌ No plan yet:\n\n```\n{plan.error}\n```\n\nFix the steps above first.")
    s = plan.summary
    head = (f"**{plan.changes} change(s)**: {s['create']} to create, {s['update']} to update, {s['remove']} to remove, "
            f"{s['setup'] + s['secret']} setup/secret step(s); {s['unchanged']} job(s) already match the manifest.")
    if not plan.changes:
        head = f"✅ **Nothing to do**: the database already matches the manifest ({s['unchanged']} job(s) unchanged)."
    parts = [head]
    parts += [f"- ❌ problem: {esc(problem)}" for problem in plan.problems]
    parts += [f"- ⚠️ warning: {esc(warning)}" for warning in plan.warnings]
    if plan.foreign:
        parts.append(f"Jobs cronkit did not create (left alone): {esc(', '.join(plan.foreign))}.")
    blocks = []
    for step in plan.steps:
        if step["action"] == "unchanged":
            continue
        title = html.escape(f"{step['action']} {step['job'] or ''} — {step['detail']}", quote=False)
        body = html.escape("\n".join(step["sql"]) or "(runs through the secret backend; the value is a bind parameter)",
                           quote=False)
        blocks.append(f"<details><summary>{title}</summary><pre><code class='language-sql'>{body}</code></pre></details>")
    summary = say("\n\n".join(parts))
    return mo.vstack([summary, mo.Html("\n".join(blocks))] if blocks else [summary])


@dataclass(frozen=True)
class ApplyOutcome:
    applied: tuple[str, ...]  # one line per step run
    remaining: int  # changes left after applying (0 = converged)
    error: str | None = None

    def view(self) -> mo.Html:
        if self.error:
            return say(f"❌ Nothing was applied:\n\n```\n{self.error}\n```")
        if not self.applied:
            return say("✅ Nothing to do: the database already matched the manifest; nothing was changed.")
        lines = "\n".join(f"- {esc(line)}" for line in self.applied)
        verdict = ("✅ verified: a new plan finds nothing left to do." if self.remaining == 0
                   else f"⚠️ a new plan still finds {self.remaining} change(s).")
        return say(f"Applied {len(self.applied)} step(s) in one transaction:\n\n{lines}\n\n{verdict}")


def apply_plan(ctx: Context, ok: bool | Gate) -> ApplyOutcome | NotApplied:
    """``cronkit apply`` (one transaction, advisory lock, re-planned under the lock), then re-plan."""
    from cronkit.plan import apply

    if not ok:
        return NotApplied.of(ok, "Apply")
    try:
        with ctx.write() as conn:
            result = apply(conn, ctx.manifest, ctx.environment, environ=ctx.environ)
    except CronkitError as exc:
        return ApplyOutcome((), -1, error=str(exc))
    lines = tuple(f"{s.action} {s.job or ''} {s.detail}".replace("  ", " ").strip() for s in result.plan.changes)
    return ApplyOutcome(lines, preview_plan(ctx).changes)


# =================================================================================================
# Step 6: verification
# =================================================================================================

_MANAGED_SQL = """
SELECT m.jobname, m.spec ->> 'kind' AS kind, m.updated_at, m.wrapper,
       to_regprocedure(m.wrapper) IS NOT NULL AS wrapper_exists,
       j.jobid, j.schedule, j.active
  FROM cronkit.managed_jobs m
  LEFT JOIN cron.job j ON j.jobname = m.jobname
 WHERE m.project = %s
 ORDER BY m.jobname
"""


def managed_jobs(ctx: Context) -> list[dict[str, Any]]:
    """The project's rows of ``cronkit.managed_jobs`` with their ``cron.job`` row (if any)."""
    with ctx.read() as conn:
        if not one(conn, "SELECT to_regclass('cronkit.managed_jobs') IS NOT NULL AS ok")["ok"]:
            return []
        return conn.execute(_MANAGED_SQL, (ctx.project,)).fetchall()  # type: ignore[arg-type]


def _since(moment: datetime | None, now: datetime) -> datetime:
    floor = now - MAX_LOOKBACK
    return max(moment, floor) if moment else floor


def http_since(ctx: Context, since: Mapping[str, datetime | None]) -> dict[str, dict[str, Any]]:
    """Per job, the HTTP outcome counts of its requests since the given moment (cronkit.monitor)."""
    from cronkit import monitor

    out: dict[str, dict[str, Any]] = {}
    if not since:
        return out
    now = datetime.now(UTC)
    with ctx.read() as conn:
        if not monitor.has_monitoring_schema(conn):
            return out
        for name, moment in sorted(since.items()):
            frame = monitor.http_outcomes(conn, _since(moment, now), now + timedelta(seconds=1), jobs=[name])
            rows = frame.filter(pl.col("jobname") == name).to_dicts()
            if rows:
                out[name] = rows[0]
    return out


def outcome_text(counts: Mapping[str, Any] | None) -> str:
    """``2xx ×1`` style text of one job's outcome counts; ``no request yet`` when there are none."""
    if not counts or not counts.get("requests"):
        return "no request yet"
    from cronkit.monitor import OUTCOMES

    return ", ".join(f"{o} ×{counts[o]}" for o in OUTCOMES if counts.get(o))


def last_outcomes(ctx: Context, since: Mapping[str, datetime | None]) -> dict[str, str]:
    """Per job, the outcome class of its newest request since the given moment: ``2xx``, ``4xx``,
    ``timeout``…, ``pending`` (no answer yet), or ``none`` (no request)."""
    out = {name: "none" for name in since}
    if not since:
        return out
    now = datetime.now(UTC)
    names = sorted(since)
    with ctx.read() as conn:
        ok = one(conn,
                 "SELECT to_regclass('cronkit.http_responses') IS NOT NULL AND to_regprocedure("
                 "'cronkit.http_outcome(integer, boolean, text)') IS NOT NULL AS monitoring, "
                 "to_regclass('net._http_response') IS NOT NULL AS net")
        if not ok["monitoring"]:
            return out
        live = ("LEFT JOIN net._http_response r ON r.id = l.request_id" if ok["net"] else
                "LEFT JOIN (SELECT NULL::bigint AS id, NULL::int AS status_code, NULL::boolean AS timed_out, "
                "NULL::text AS error_msg) r ON false")
        rows = conn.execute(
            "SELECT j.name AS jobname, last.outcome FROM unnest(%s::text[], %s::timestamptz[]) AS j(name, since) "
            "LEFT JOIN LATERAL (SELECT coalesce(h.outcome, CASE WHEN r.id IS NOT NULL THEN "
            "cronkit.http_outcome(r.status_code, r.timed_out, r.error_msg) END, 'pending') AS outcome "
            "FROM cronkit.request_ledger l LEFT JOIN cronkit.http_responses h ON h.request_id = l.request_id "
            f"{live} WHERE l.jobname = j.name AND l.created_at >= j.since "
            "ORDER BY l.created_at DESC, l.request_id DESC LIMIT 1) last ON true ORDER BY 1",  # type: ignore[arg-type]
            (names, [_since(since[n], now) for n in names]),
        ).fetchall()
    out.update({r["jobname"]: r["outcome"] or "none" for r in rows})
    return out


@dataclass(frozen=True)
class ManualRun:
    rows: tuple[tuple[str, str], ...]  # (job, result)

    def view(self) -> mo.Html:
        if not self.rows:
            return say("No HTTP job to test.")
        return say("Manual test run (guide 002 step 12, `cronkit run-now`):\n\n"
                     + "\n".join(f"- **{esc(job)}**: {esc(result)}" for job, result in self.rows))


def manual_run(ctx: Context, ok: bool | Gate) -> ManualRun | NotApplied:
    """Run each HTTP job of the project once now, unless it already had a 2xx answer since it was
    (re)applied: re-running the runbook does not call the functions again."""
    if not ok:
        return NotApplied.of(ok, "Run each job once now")
    managed, skip, _work = _untested(ctx)
    rows = []
    for m in managed:
        name = m["jobname"]
        if name in skip:
            rows.append((name, skip[name]))
            continue
        try:
            with ctx.write() as conn:
                request_id = jobs.run_now(conn, name)
        except CronkitError as exc:
            rows.append((name, f"failed: {scrubber(ctx).text(exc.message)}"))
            continue
        rows.append((name, f"queued HTTP request {request_id}" if request_id is not None
                     else "ran; its guard found nothing to do (no HTTP call)"))
    return ManualRun(tuple(rows))


def _untested(ctx: Context) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, str]]:
    """HTTP jobs of the project, and for each: why it needs no test run (absent: it needs one)."""
    managed = [m for m in managed_jobs(ctx) if m["kind"] == "http" and m["jobid"] is not None]
    latest = last_outcomes(ctx, {m["jobname"]: m["updated_at"] for m in managed})
    work = guard_states(ctx)
    skip = {}
    for m in managed:
        name = m["jobname"]
        if latest.get(name) == "2xx":
            skip[name] = "already verified: its last call since it was applied was answered 2xx (not run again)"
        elif work.get(name) == "nothing to do":
            skip[name] = "not run: its guard finds nothing to do now, so it would call nothing"
    return managed, skip, work


def manual_run_needed(ctx: Context) -> bool:
    """True when an HTTP job of the project has no 2xx answer to its last call since it was
    (re)applied and its guard (if any) has work for it."""
    managed, skip, _work = _untested(ctx)
    return any(m["jobname"] not in skip for m in managed)


VERIFY_SCHEMA: dict[str, Any] = {
    "job": pl.String, "kind": pl.String, "schedule": pl.String, "active": pl.Boolean, "wrapper": pl.Boolean,
    "scheduled_runs": pl.Int64, "last_run": pl.String, "http": pl.String, "http_2xx": pl.Int64,
    "http_failed": pl.Int64, "http_pending": pl.Int64, "last_http": pl.String, "work": pl.String,
    "next_run": pl.Datetime("us", "UTC"),
}
#: outcome classes that mean the endpoint did not do its work
FAILED_OUTCOMES = ("3xx", "4xx", "5xx", "timeout", "transport_error", "other", "expired")


def verify(ctx: Context, wait_seconds: float = 0.0, *, poll: float = 0.5) -> pl.DataFrame:
    """Per job of the project: scheduled and active, wrapper present, scheduled runs and HTTP
    outcomes since it was applied, next run time. Waits up to ``wait_seconds`` for HTTP requests
    that have no answer yet (bounded; pg_net answers asynchronously after commit)."""
    from cronkit import monitor

    deadline = time.monotonic() + max(0.0, float(wait_seconds))
    while True:
        managed = managed_jobs(ctx)
        http = http_since(ctx, {m["jobname"]: m["updated_at"] for m in managed if m["kind"] == "http"})
        pending = any(v.get("pending") for v in http.values())
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(poll)
    runs: dict[str, dict[str, Any]] = {}
    now = datetime.now(UTC)
    with ctx.read() as conn:
        version = server_facts(conn).pg_cron
        names = [m["jobname"] for m in managed if m["jobid"] is not None]
        if names:
            since = min(_since(m["updated_at"], now) for m in managed)
            frame = monitor.run_summary(conn, since, now + timedelta(seconds=1), jobs=names, use_rollups=False)
            runs = {r["jobname"]: r for r in frame.to_dicts() if r["jobname"]}
    parsed_version = schedules.parse_pg_cron_version(version) if version else None
    work = guard_states(ctx)
    latest = last_outcomes(ctx, {m["jobname"]: m["updated_at"] for m in managed if m["kind"] == "http"})
    rows = []
    for m in managed:
        run = runs.get(m["jobname"], {})
        counts = http.get(m["jobname"]) or {}
        next_run = _next_run(m["schedule"], parsed_version, now) if m["schedule"] else None
        last = (f"{run.get('last_status')} at {run['last_start']:%Y-%m-%d %H:%M:%S}" if run.get("last_start")
                else "none yet")
        rows.append({
            "job": m["jobname"], "kind": m["kind"], "schedule": m["schedule"], "active": m["active"],
            "wrapper": m["wrapper_exists"], "scheduled_runs": run.get("runs", 0), "last_run": last,
            "http": outcome_text(http.get(m["jobname"])) if m["kind"] == "http" else "(sql job)",
            "http_2xx": counts.get("2xx", 0), "http_failed": sum(counts.get(o, 0) for o in FAILED_OUTCOMES),
            "http_pending": counts.get("pending", 0), "last_http": latest.get(m["jobname"], ""),
            "work": work.get(m["jobname"], ""), "next_run": next_run,
        })
    return pl.DataFrame(rows, schema=VERIFY_SCHEMA)


def _next_run(expr: str, version: schedules.PgCronVersion | None, after: datetime) -> datetime | None:
    """The next time pg_cron starts a cron-syntax schedule (GMT), or None ('N seconds', @reboot, invalid)."""
    try:
        schedule = schedules.parse_schedule(expr, version)
    except CronkitError:
        return None
    if schedule.kind != "cron":
        return None
    upcoming = schedule.next_runs(after, 1)
    return upcoming[0] if upcoming else None


def guard_states(ctx: Context) -> dict[str, str]:
    """Per guarded job: ``work waiting`` when its guard is true now, ``nothing to do`` when false."""
    out: dict[str, str] = {}
    with ctx.read() as conn:
        for spec in specs(ctx):
            if not spec.guard:
                continue
            try:
                row = one(conn, f"SELECT coalesce(({spec.guard}), false) AS open")
                out[spec.name] = "work waiting" if row["open"] else "nothing to do"
            except psycopg.Error as exc:
                out[spec.name] = f"guard fails: {exc.diag.message_primary or exc}"
    return out


def verify_view(verification: pl.DataFrame) -> mo.Html:
    if verification.is_empty():
        return mo.md("No job of this project is in the database yet: apply the plan first.")
    return mo.vstack([
        mo.md("Each job as pg_cron has it, with what happened since it was (re)applied "
              "(guide 002 step 9, guide 000 *Verify Setup* and *Monitor Execution*):"),
        verification.drop("http_2xx", "http_failed", "http_pending"),
    ])


CHECKLIST_SCHEMA: dict[str, Any] = {"step": pl.String, "status": pl.String, "detail": pl.String}
_MARK = {"done": "✅", "todo": "❌", "waiting": "⏳"}


def checklist(ctx: Context, verification: pl.DataFrame) -> pl.DataFrame:
    """The guides' success checklist, re-read from the database (status: done / todo / waiting)."""
    items: list[tuple[str, str, str]] = []
    tables = required_tables(ctx)
    for row in tables.iter_rows(named=True):
        ok = row["exists"] and not row["problem"]
        items.append((f"table {row['table']} exists", "done" if ok else "todo", row["problem"] or row["needed_by"]))
    for row in extensions(ctx).iter_rows(named=True):
        items.append((f"{row['extension']} extension enabled", "done" if row["state"] == "enabled" else "todo",
                      row["schema"] or row["state"]))
    try:
        secret_rows = secrets(ctx).iter_rows(named=True)
        for row in secret_rows:
            items.append((f"secret {row['secret']} stored", "done" if row["state"] == "present" else "todo", row["state"]))
    except CronkitError as exc:
        items.append(("secrets readable", "todo", exc.message))
    by_job: dict[str, dict[str, Any]] = {r["job"]: r for r in verification.iter_rows(named=True)}
    for spec in specs(ctx):
        row = by_job.get(spec.name) or {}
        items.append((f"wrapper of {spec.name} created", "done" if row and row["wrapper"] else "todo", ""))
        items.append((f"{spec.name} scheduled and {'active' if spec.active else 'paused'}",
                      "done" if row and row["active"] == spec.active and row["schedule"] else "todo",
                      row["schedule"] if row and row["schedule"] else "not in cron.job"))
        if spec.kind == "http":
            detail = f"last call: {row['last_http']} ({row['http']} since applied)" if row else "not scheduled"
            last = row["last_http"] if row else "none"
            if not row or last in FAILED_OUTCOMES:
                state = "todo"
            elif last == "2xx":
                state = "done"
            elif last == "none" and row["work"] == "nothing to do":
                state, detail = "done", "its guard finds nothing to do, so it calls nothing until there is work"
            else:
                state = "waiting"
            items.append((f"{spec.name} answered by its endpoint", state, detail))
        runs = row["scheduled_runs"] if row else 0
        items.append((f"{spec.name} ran on schedule", "done" if runs else "waiting",
                      row["last_run"] if row and runs else "no scheduled run yet (pg_cron fires on the minute)"))
    plan = preview_plan(ctx)
    items.append(("plan: nothing left to do", "done" if not plan.error and plan.changes == 0 else "todo",
                  plan.error or f"{plan.changes} change(s) pending"))
    return pl.DataFrame([{"step": s, "status": st, "detail": d} for s, st, d in items], schema=CHECKLIST_SCHEMA)


def checklist_view(items: pl.DataFrame) -> mo.Html:
    lines = [f"- {_MARK[r['status']]} {esc(r['step'])}" for r in items.iter_rows(named=True)]
    todo = items.filter(pl.col("status") == "todo").height
    waiting = items.filter(pl.col("status") == "waiting").height
    verdict = ("**All done.**" if not todo and not waiting else
               f"**{todo} to do, {waiting} waiting** (waiting items complete on their own: pg_cron fires on the minute).")
    return say("### Success checklist\n\n" + "\n".join(lines) + "\n\n" + verdict)


# =================================================================================================
# Rotating a secret (guide 003 "Key rotation", guide 000 "vault sync")
# =================================================================================================


def jobs_using(ctx: Context, name: str | None) -> list[str]:
    return sorted(s.name for s in specs(ctx) if name and name in s.secret_names)


def default_secret(ctx: Context, wanted: str | None) -> str | None:
    """The secret to rotate: the one asked for, else the one most jobs read."""
    names = secret_names(ctx)
    if wanted:
        if wanted not in names:
            raise ConfigError(f"No job of project {ctx.project!r} reads a secret named {wanted!r}.",
                              remedy=f"Choose one of: {', '.join(names) or '(none)'}.")
        return wanted
    if not names:
        return None
    return max(names, key=lambda n: (len(jobs_using(ctx, n)), n == "service_role_key", n))


@dataclass(frozen=True)
class Rotation:
    secret: str
    change: SecretChange
    runs: tuple[tuple[str, str], ...]  # (job, manual run result)

    def view(self) -> mo.Html:
        lines = [self.change.view().text]
        if self.change.outcome == "nothing to store":
            return say(lines[0])
        if self.change.outcome == "unchanged":
            lines.append("The stored value already was this one: no job was run again.")
        lines += [f"- manual run of **{esc(job)}**: {esc(result)}" for job, result in self.runs]
        return say("\n\n".join(lines[:1]) + "\n\n" + "\n".join(lines[1:]))


def rotate(ctx: Context, name: str | None, value: str | None, ok: bool | Gate) -> Rotation | NotApplied:
    """Store the new value (one transaction), then run every HTTP job that reads it once now
    (guide 003: "verify behaviour by manually invoking the job")."""
    if not ok:
        return NotApplied.of(ok, "Rotate")
    change = store_secret(ctx, name, value, True)
    assert isinstance(change, SecretChange)
    if change.outcome in ("nothing to store", "unchanged"):
        return Rotation(change.name, change, ())
    by_name = {s.name: s for s in specs(ctx)}
    runs = []
    for job in jobs_using(ctx, name):
        if by_name[job].kind != "http":
            continue
        try:
            with ctx.write() as conn:
                request_id = jobs.run_now(conn, job)
        except CronkitError as exc:
            runs.append((job, f"failed: {scrubber(ctx).text(exc.message)}"))
            continue
        runs.append((job, f"queued HTTP request {request_id}" if request_id is not None else "guard found nothing to do"))
    return Rotation(change.name, change, tuple(runs))


ROTATION_SCHEMA: dict[str, Any] = {
    "job": pl.String, "since": pl.Datetime("us", "UTC"), "manual_check": pl.String, "http": pl.String,
    "scheduled_runs": pl.Int64, "next_scheduled": pl.String, "next_run": pl.Datetime("us", "UTC"),
}


def rotation_check(ctx: Context, name: str | None, wait_seconds: float = 0.0, *, poll: float = 0.5) -> pl.DataFrame:
    """For each job reading ``name``: HTTP outcomes and scheduled runs since the secret was last
    stored. ``manual_check`` is ok / failed / waiting; ``next_scheduled`` says whether a scheduled
    run after the rotation succeeded. Waits up to ``wait_seconds`` (bounded) for pending answers
    and for the first scheduled run."""
    from cronkit import monitor

    if not name:
        return pl.DataFrame(schema=ROTATION_SCHEMA)
    users = [s for s in specs(ctx) if name in s.secret_names]
    started = datetime.now(UTC)
    deadline = time.monotonic() + max(0.0, float(wait_seconds))
    with ctx.read() as conn:
        version = server_facts(conn).pg_cron
    parsed = schedules.parse_pg_cron_version(version) if version else None
    upcoming = {s.name: _next_run(s.schedule, parsed, started) for s in users}
    # Wait for a scheduled run only when one is due (plus pg_cron's start-up slack) within the wait.
    horizon = started + timedelta(seconds=max(0.0, float(wait_seconds)) - 15)
    while True:
        now = datetime.now(UTC)
        status = _secret_statuses(ctx, [name])[0]
        # A backend without updated_at (app.settings) gives no rotation time: look at the last 15 minutes.
        since = status.updated_at or now - timedelta(minutes=15)
        http = http_since(ctx, {s.name: since for s in users if s.kind == "http"})
        with ctx.read() as conn:
            frame = monitor.run_summary(conn, _since(since, now), now + timedelta(seconds=1),
                                        jobs=[s.name for s in users], use_rollups=False)
        runs = {r["jobname"]: r for r in frame.to_dicts() if r["jobname"]}
        due = [s for s in users if not runs.get(s.name, {}).get("runs") and (upcoming[s.name] or horizon) < horizon]
        if not (any(v.get("pending") for v in http.values()) or due) or time.monotonic() >= deadline:
            break
        time.sleep(poll)
    work = guard_states(ctx)
    clean = scrubber(ctx)
    latest = last_outcomes(ctx, {s.name: since for s in users if s.kind == "http"})
    rows = []
    for spec in users:
        counts = http.get(spec.name)
        run = runs.get(spec.name, {})
        last = latest.get(spec.name, "none")
        if spec.kind != "http":
            manual = "sql job: verified by its scheduled run"
        elif last == "none" and work.get(spec.name) == "nothing to do":
            manual = "skipped: its guard finds nothing to do now, so it calls nothing yet"
        elif last == "none":
            manual = "waiting: no request since the rotation"
        elif last == "pending":
            manual = "waiting: request sent, no answer yet"
        elif last == "2xx":
            manual = "ok" if not any((counts or {}).get(o) for o in FAILED_OUTCOMES) else "ok (an earlier call after the rotation failed)"
        elif last == "4xx":
            manual = "failed: the endpoint rejected the call (a 401 means it does not accept this key)"
        else:
            manual = f"failed: the last call ended {last}"
        next_run = _next_run(spec.schedule, parsed, now)
        if run.get("runs"):
            good = run.get("last_status") == "succeeded" and (spec.kind != "http" or manual.startswith("ok"))
            scheduled = "succeeded" if good else f"failed: {clean.text(run.get('last_failure_message')) or run.get('last_status')}"
        else:
            scheduled = "waiting for the next scheduled run"
        rows.append({"job": spec.name, "since": since, "manual_check": manual,
                     "http": outcome_text(counts) if spec.kind == "http" else "(sql job)",
                     "scheduled_runs": run.get("runs", 0), "next_scheduled": scheduled, "next_run": next_run})
    return pl.DataFrame(rows, schema=ROTATION_SCHEMA)


def secret_usage(ctx: Context, name: str | None) -> pl.DataFrame:
    """The secret's state, who reads it, and whether its source variable (if any) holds the same value."""
    table = secrets(ctx)
    return table.filter(pl.col("secret") == (name or "")).select("secret", "state", "used_by", "source", "source_state")


def usage_view(ctx: Context, name: str | None) -> mo.Html:
    if not name:
        return mo.md("The jobs read no secret: nothing to rotate.")
    row = secrets(ctx).filter(pl.col("secret") == name).to_dicts()[0]
    lines = [(f"Secret **{esc(name)}** ({ctx.manifest.secrets.backend}) is {row['state']}: `{row['stored']}`, "
              f"read by {esc(row['used_by'])} when they fire.")]
    if row["source"]:
        lines.append(f"Its source `{esc(row['source'])}`: {esc(row['source_state'])}. A key that differs from its source "
                     "is stale (guide 000: the local CLI makes a new key on every `supabase start`): re-sync it with "
                     f"`--secret-from-env {esc(row['source'].split(',')[0])}`.")
    return mo.md("\n\n".join(lines))


def rotation_view(check: pl.DataFrame, name: str | None) -> mo.Html:
    if not name:
        return mo.md("The jobs read no secret: nothing to rotate.")
    if check.is_empty():
        return mo.md(f"No job reads **{name}**.")
    failed = check.filter(pl.col("manual_check").str.starts_with("failed") | pl.col("next_scheduled").str.starts_with("failed"))
    waiting = check.filter(pl.col("manual_check").str.starts_with("waiting") | pl.col("next_scheduled").str.starts_with("waiting"))
    if not failed.is_empty():
        verdict = ("❌ A job fails with the stored value. Put the previous value back (rotate again with it) or fix the key, "
                   "and do **not** revoke the old key at the provider yet.")
    elif not waiting.is_empty():
        verdict = ("⏳ So far so good; waiting for "
                   + ", ".join(f"{r['job']} ({r['next_scheduled'] if r['manual_check'] == 'ok' else r['manual_check']})"
                               for r in waiting.iter_rows(named=True))
                   + ". Re-run this cell after the next scheduled run.")
    else:
        verdict = "✅ Every job works with the new value, manually and on schedule. Now revoke the old key at the provider (guide 003 step 5)."
    return mo.vstack([say(verdict), check])


# =================================================================================================
# Rolling back (guide 000 "Rollback / Feature Removal", guide 004 "Management")
# =================================================================================================

ROLLBACK_ACTIONS = ("disable", "enable", "remove", "teardown")
#: the job dropdown's entry for "every job of the project"
ALL_JOBS = "(all jobs)"


def job_choices(ctx: Context, wanted: str | None = None) -> list[str]:
    """The job dropdown: every job of the project; a job asked for that is not there stays in the
    list (the preview then says so) rather than silently becoming "all jobs"."""
    names = project_jobs(ctx)["job"].to_list()
    return [ALL_JOBS, *names, *([wanted] if wanted and wanted not in names else [])]


def rollback_action(wanted: str | None) -> str:
    """The action parameter, checked: one of :data:`ROLLBACK_ACTIONS`."""
    action = (wanted or "disable").strip().lower()
    if action not in ROLLBACK_ACTIONS:
        raise ConfigError(f"--action {wanted!r} is not a rollback action.", remedy=f"Use one of: {', '.join(ROLLBACK_ACTIONS)}.")
    return action


def chosen_job(value: str | None) -> str | None:
    return None if not value or value == ALL_JOBS else value
PROJECT_JOBS_SCHEMA: dict[str, Any] = {
    "job": pl.String, "jobid": pl.Int64, "schedule": pl.String, "active": pl.Boolean,
    "wrapper": pl.String, "wrapper_exists": pl.Boolean,
}


def project_jobs(ctx: Context) -> pl.DataFrame:
    """The project's jobs as cronkit registered them, with their live ``cron.job`` state."""
    rows = [{"job": m["jobname"], "jobid": m["jobid"], "schedule": m["schedule"], "active": m["active"],
             "wrapper": m["wrapper"], "wrapper_exists": m["wrapper_exists"]} for m in managed_jobs(ctx)]
    return pl.DataFrame(rows, schema=PROJECT_JOBS_SCHEMA)


def job_state(jobs_frame: pl.DataFrame) -> pl.DataFrame:
    """The stable part of :func:`project_jobs` (no jobid): what a rollback changes."""
    return jobs_frame.select("job", "schedule", "active", "wrapper_exists")


@dataclass(frozen=True)
class RollbackPlan:
    action: str
    job: str | None
    steps: tuple[tuple[str, str], ...]  # (what, exact SQL)
    skipped: tuple[str, ...]  # targets already in the wanted state
    with_secrets: bool = False
    error: str | None = None  # the request cannot be carried out as asked

    @property
    def nothing_to_do(self) -> bool:
        return not self.steps and self.error is None


def _secret_delete_sql(ctx: Context, name: str) -> str:
    cfg = ctx.manifest.secrets
    if cfg.backend == "vault":
        return f"DELETE FROM vault.secrets WHERE name = '{name}';"
    if cfg.backend == "table":
        return f"DELETE FROM {cfg.table} WHERE {cfg.key_column} = '{name}';"
    return f"ALTER DATABASE current_database() RESET \"{cfg.guc_prefix}{name}\";  -- superuser only"


def rollback_plan(ctx: Context, action: str, job: str | None = None, with_secrets: bool = False) -> RollbackPlan:
    """What ``action`` would do, with the exact SQL, and what is already in the wanted state.

    ``disable``/``enable``: ``cron.alter_job(active := ...)`` (history and jobid kept); ``remove``:
    unschedule one job and drop its wrapper; ``teardown``: everything the project created, and with
    ``with_secrets`` the secrets only its jobs read. ``job`` narrows disable/enable to one job.
    """
    if action not in ROLLBACK_ACTIONS:
        raise ConfigError(f"Unknown action {action!r}.", remedy=f"Use one of: {', '.join(ROLLBACK_ACTIONS)}.")
    frame = project_jobs(ctx)
    if job and job not in frame["job"].to_list() and action != "teardown":
        known = ", ".join(frame["job"].to_list()) or "(none)"
        return RollbackPlan(action, job, (), (), error=f"{job!r} is not a job of project {ctx.project!r} in this database "
                                                     f"(its jobs: {known}).")
    if action == "remove" and not job:
        return RollbackPlan(action, None, (), (), error="Choose the job to remove (or use teardown for all of them).")
    targets = [r for r in frame.iter_rows(named=True) if action == "teardown" or not job or r["job"] == job]
    steps: list[tuple[str, str]] = []
    skipped: list[str] = []
    # The very statements cronkit.jobs runs, rendered with their parameters (one connection for all).
    with ctx.read() as conn:
        def shown(statements: Sequence[Statement]) -> str:
            return "\n".join(st.display(conn) + ";" for st in statements)

        if action in ("disable", "enable"):
            want = action == "enable"
            for r in targets:
                if r["jobid"] is None:
                    skipped.append(f"{r['job']}: not in cron.job")
                elif r["active"] == want:
                    skipped.append(f"{r['job']}: already {'active' if want else 'inactive'}")
                else:
                    steps.append((f"{action} {r['job']}", shown([active_statement(r["jobid"], want)])))
        else:
            for r in targets:
                steps.append((f"remove job {r['job']} and its wrapper {r['wrapper']}",
                              shown(removal_statements(r["job"], r["jobid"], r["wrapper"]))))
            if action == "teardown" and with_secrets:
                others = _secrets_used_elsewhere(ctx)
                for status in _secret_statuses(ctx, secret_names(ctx)):
                    if status.state == "missing":
                        skipped.append(f"secret {status.name}: already absent")
                    elif status.name in others:
                        skipped.append(f"secret {status.name}: kept, other projects' jobs read it ({', '.join(others[status.name])})")
                    else:
                        steps.append((f"delete secret {status.name} ({ctx.manifest.secrets.backend})", _secret_delete_sql(ctx, status.name)))
            if not steps and not skipped:
                skipped.append(f"project {ctx.project!r} has no jobs in this database")
    return RollbackPlan(action, job, tuple(steps), tuple(skipped), with_secrets)


def _secrets_used_elsewhere(ctx: Context) -> dict[str, list[str]]:
    """Secrets the project's jobs read that jobs of *other* cronkit projects read too."""
    names = secret_names(ctx)
    with ctx.read() as conn:
        if not one(conn, "SELECT to_regclass('cronkit.managed_jobs') IS NOT NULL AS ok")["ok"]:
            return {}
        rows = conn.execute(
            "SELECT s.name, m.jobname FROM cronkit.managed_jobs m, jsonb_array_elements_text(m.spec -> 'secrets') AS s(name) "
            "WHERE m.project <> %s AND s.name = ANY(%s) ORDER BY s.name, m.jobname",
            (ctx.project, names),
        ).fetchall()
    out: dict[str, list[str]] = {}
    for row in rows:
        out.setdefault(row["name"], []).append(row["jobname"])
    return out


def rollback_view(plan: RollbackPlan) -> mo.Html:
    head = f"**{plan.action}**" + (f" of **{esc(plan.job)}**" if plan.job else "")
    parts = []
    if plan.error:
        parts.append(f"❌ {esc(plan.error)}")
    elif plan.nothing_to_do:
        parts.append(f"✅ Nothing to do for {head}.")
    else:
        parts.append(f"{head} would run {len(plan.steps)} step(s) in one transaction:")
        parts += [f"**{what}**\n```sql\n{statement}\n```" for what, statement in plan.steps]
    parts += [f"- skipped: {esc(s)}" for s in plan.skipped]
    if plan.action == "teardown" and not plan.with_secrets:
        parts.append("Secrets are kept (tick *also delete secrets* to remove them; run history in cron.job_run_details stays either way).")
    return say("\n\n".join(parts))


@dataclass(frozen=True)
class RollbackOutcome:
    action: str
    done: tuple[str, ...]
    error: str | None = None
    skipped: tuple[str, ...] = ()

    def view(self) -> mo.Html:
        if self.error:
            return say(f"❌ Nothing was changed:\n\n```\n{self.error}\n```")
        if not self.done:
            why = "".join(f"\n- {esc(s)}" for s in self.skipped)
            return say(f"✅ Nothing to do: {self.action} was already in effect; nothing was changed.{why}")
        return say("Done:\n\n" + "\n".join(f"- {esc(line)}" for line in self.done))


def rollback(ctx: Context, action: str, job: str | None, with_secrets: bool, ok: bool | Gate) -> RollbackOutcome | NotApplied:
    """Carry out :func:`rollback_plan` with :mod:`cronkit.jobs` when confirmed."""
    if not ok:
        return NotApplied.of(ok, action.capitalize() if action else "Roll back")
    plan = rollback_plan(ctx, action, job, with_secrets)
    if plan.error:
        return RollbackOutcome(action, (), error=plan.error)
    if plan.nothing_to_do:
        return RollbackOutcome(action, (), skipped=plan.skipped)
    done: list[str] = []
    try:
        if action in ("disable", "enable"):
            with ctx.read() as conn:
                for what, _sql in plan.steps:
                    name = what.split(" ", 1)[1]
                    row = jobs.set_active(conn, name, action == "enable")
                    done.append(f"{name}: {'active' if row.active else 'inactive'}")
        elif action == "remove":
            with ctx.write() as conn:
                jobs.remove_job(conn, job or "")
                conn.commit()
            done.append(f"removed job {job} and its wrapper")
        else:
            # Secrets go one by one (only those the plan lists: a secret other projects read stays),
            # in the same transaction as the jobs.
            doomed = [what.split()[2] for what, _sql in plan.steps if what.startswith("delete secret ")]
            backend = backend_for(ctx.manifest.secrets)
            with ctx.write() as conn:
                done += jobs.teardown(conn, ctx.manifest, secrets=False, dry_run=False)
                for name in doomed:
                    with db.translated(f"delete secret {name!r}"):
                        backend.delete(conn, name)
                    done.append(f"delete secret {name!r} ({backend.kind})")
                conn.commit()
    except CronkitError as exc:
        return RollbackOutcome(action, tuple(done), error=str(exc))
    return RollbackOutcome(action, tuple(done))


# =================================================================================================
# Monitoring (guide 000 "Monitor Execution", guide 002 step 11, guide 003 "View job history")
# =================================================================================================


@dataclass(frozen=True)
class MonitorData:
    """Every frame the monitor runbook shows, read in one go for one window."""

    since: datetime
    until: datetime
    jobs: tuple[str, ...] | None  # None: every job in cron.job
    summary: pl.DataFrame  # cronkit.monitor.run_summary
    runs: pl.DataFrame  # run_timeline (long windows) or recent_runs (per run)
    http: pl.DataFrame  # http_outcomes
    http_timeline: pl.DataFrame
    missed: pl.DataFrame  # cronkit.monitor.missed: summary per job
    slots: pl.DataFrame  # cronkit.monitor.missed: every expected slot
    queues: pl.DataFrame  # cronkit.monitor.queues.queue_health
    trend: pl.DataFrame  # cronkit.monitor.queues.queue_trend
    notes: tuple[str, ...] = ()


#: windows up to this long chart every run; longer ones chart hourly percentiles
PER_RUN_WINDOW = timedelta(hours=48)


def monitor_scope(ctx: Context, job: str | None = None) -> tuple[str, ...] | None:
    """The jobs to look at: ``job``; else the manifest's jobs (and cronkit's maintenance jobs of
    the project); else None (every job)."""
    if job:
        return (job,)
    if not ctx.has_manifest:
        return None
    names = {s.name for s in specs(ctx)}
    names.update(m["jobname"] for m in managed_jobs(ctx))
    return tuple(sorted(names))


def monitor_data(ctx: Context, hours: float = 24.0, job: str | None = None) -> MonitorData:
    """Run history, HTTP outcomes, missed runs and queue health of the scope over the last ``hours``.

    Parts that need cronkit's monitoring schema (outcomes, queue trend) come back empty with a
    note when it is absent, instead of failing the whole view.
    """
    from cronkit import monitor
    from cronkit.monitor import missed, queues

    until = datetime.now(UTC) + timedelta(seconds=1)
    since = until - timedelta(hours=float(hours))
    scope = monitor_scope(ctx, job)
    names = list(scope) if scope is not None else None
    notes: list[str] = []

    def empty(schema: Mapping[str, Any]) -> pl.DataFrame:
        return pl.DataFrame(schema=dict(schema))

    with db.connect(ctx.dsn, autocommit=False) as conn:
        summary = monitor.run_summary(conn, since, until, jobs=names)
        if until - since > PER_RUN_WINDOW and monitor.has_monitoring_schema(conn):
            runs = monitor.run_timeline(conn, since, until, jobs=names)
        else:
            runs = monitor.recent_runs(conn, since, until, jobs=names)
        if monitor.has_monitoring_schema(conn):
            http = monitor.http_outcomes(conn, since, until, jobs=names)
            http_timeline = monitor.http_timeline(conn, since, until, jobs=names)
            trend = queues.queue_trend(conn, since, until, project=ctx.project if ctx.has_manifest else None)
        else:
            notes.append("cronkit's monitoring tables are not in this database yet (run the setup runbook / "
                         "`cronkit apply`): HTTP outcomes and queue trends are empty.")
            http, http_timeline, trend = empty(monitor.HTTP_SCHEMA), empty(monitor.HTTP_TIMELINE_SCHEMA), empty(queues.TREND_SCHEMA)
        report = missed.detect_missed(conn, max(since, until - timedelta(days=31)), until, jobs=names)
        try:
            health = queues.queue_health(conn, list(ctx.manifest.queues))
        except CronkitError as exc:
            notes.append(f"queue health could not be read: {exc.message}")
            health = empty(queues.HEALTH_SCHEMA)
        conn.rollback()
    clean = scrubber(ctx)
    summary, runs, http = clean.frame(summary), clean.frame(runs), clean.frame(http)
    if trend.is_empty() and ctx.manifest.queues:
        notes.append("No queue snapshots in the window: add `[monitoring]` to the manifest so the "
                     "`cronkit-queues` job records depth and age every few minutes.")
    return MonitorData(since, until, scope, summary, runs, http, http_timeline,
                       clean.frame(report.summary), report.slots, health, trend, tuple(notes))


REFRESH_OPTIONS = ("10s", "30s", "1m", "5m")


def refresh_options(wanted: str | None) -> list[str]:
    """The refresh control's intervals, with the one asked for (``--refresh 2m``) among them."""
    if wanted and not re.fullmatch(r"\d+(\.\d+)?(s|m|h|d)", wanted):
        raise ConfigError(f"--refresh {wanted!r} is not an interval.", remedy="Use e.g. 30s, 1m, 5m or 1h.")
    return [*REFRESH_OPTIONS, *([wanted] if wanted and wanted not in REFRESH_OPTIONS else [])]


def monitor_header(data: MonitorData) -> mo.Html:
    scope = "every job" if data.jobs is None else f"{len(data.jobs)} job(s): {', '.join(data.jobs)}"
    notes = "".join(f"\n\n⚠️ {esc(n)}" for n in data.notes)
    return say(f"Window: the last **{_human(data.until - data.since)}** (UTC), {esc(scope)}.{notes}")


def _human(delta: timedelta) -> str:
    seconds = round(delta.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400} day(s)"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hour(s)"
    return f"{seconds // 60} minute(s)"


def run_table(data: MonitorData) -> pl.DataFrame:
    """Runs per job: counts, failures, p50/p95/max duration (ms), last failure and its message."""
    return data.summary.select(
        "jobname", "active", "schedule", "runs", "succeeded", "failed", "running",
        pl.col("p50_ms").round(1), pl.col("p95_ms").round(1), pl.col("max_ms").round(1),
        "last_start", "last_status", "last_failure_at", "last_failure_message",
    ).sort("jobname", nulls_last=True)


def http_table(data: MonitorData) -> pl.DataFrame:
    """HTTP outcomes of each job's calls; only the outcome columns that occur (plus 2xx and pending)."""
    from cronkit.monitor import OUTCOMES

    keep = [o for o in OUTCOMES if o in ("2xx", "pending") or data.http.get_column(o).sum()]
    # An answer is an error only with an error time (monitor may fill last_error from a 2xx body).
    error = pl.when(pl.col("last_error_at").is_not_null()).then(pl.col("last_error")).otherwise(None)
    return data.http.select("jobname", "requests", *keep, "last_error_at", error.alias("last_error")).sort("jobname")


def missed_table(data: MonitorData) -> pl.DataFrame:
    """Expected versus actual runs per job: on time, late, queued, missed, downtime; silent jobs."""
    return data.missed.select(
        "jobname", "schedule", "active", "status", "expected", "on_time", "late", "queued", "missed", "downtime",
        "pending", "overruns", pl.col("max_delay_s").round(1), "silent_since",
    ).sort("jobname", nulls_last=True)


def queue_table(data: MonitorData) -> pl.DataFrame:
    return data.queues.select(
        "queue", "kind", "pending", "processing", "failed", "done", pl.col("oldest_pending_age_s").round(1),
        "stuck_processing", "exhausted", "retries", pl.col("drain_per_min").round(2),
    ).sort("queue")


def health_view(data: MonitorData) -> mo.Html:
    """One line per problem the frames show, most urgent first (details: the incident runbook)."""
    lines = []
    for row in data.summary.iter_rows(named=True):
        if row["failed"]:
            lines.append(f"❌ **{esc(row['jobname'])}**: {row['failed']} of {row['runs']} run(s) failed; last: "
                         f"{esc((row['last_failure_message'] or '').strip()[:160])}")
    for row in data.http.iter_rows(named=True):
        bad = {k: row[k] for k in ("3xx", "4xx", "5xx", "timeout", "transport_error", "other", "expired") if row.get(k)}
        if bad:
            lines.append(f"❌ **{esc(row['jobname'])}**: HTTP {', '.join(f'{k} ×{v}' for k, v in bad.items())}; last: "
                         f"{esc((row['last_error'] or '').strip()[:160])}")
    for row in data.missed.iter_rows(named=True):
        if row["missed"] or row["status"] == "stopped":
            lines.append(f"⚠️ **{esc(row['jobname'])}**: {row['missed']} missed run(s), status {row['status']}")
    for row in data.queues.iter_rows(named=True):
        if row["stuck_processing"] or row["exhausted"]:
            lines.append(f"⚠️ queue **{esc(row['queue'])}**: {row['stuck_processing'] or 0} stuck, "
                         f"{row['exhausted'] or 0} out of retries")
    if not lines:
        return say("✅ No failed runs, failed HTTP calls, missed runs or stuck queue items in the window.")
    return say("\n\n".join(lines) + "\n\nWalk through causes and fixes with `runbooks/incident.py`.")


def duration_chart(data: MonitorData) -> Any:
    from cronkit.monitor import charts

    return charts.duration_chart(data.runs, title="Run duration")


def outcome_chart(data: MonitorData) -> Any:
    from cronkit.monitor import charts

    return charts.outcome_chart(data.http_timeline, title="HTTP outcomes per hour")


def missed_chart(data: MonitorData) -> Any:
    from cronkit.monitor import charts

    return charts.missed_chart(data.slots, title="Expected runs: on time, late, missed")


def queue_chart(data: MonitorData) -> Any:
    from cronkit.monitor import charts

    return charts.queue_chart(data.trend, title="Queues")


# =================================================================================================
# Incidents (the guides' troubleshooting sections, through cronkit.doctor)
# =================================================================================================

_SEVERITY_MARK = {"critical": "🔴", "warning": "🟠", "info": "🔵"}

#: the guides' troubleshooting items and the doctor checks that cover each
GUIDE_TROUBLESHOOTING = (
    ("000", "Job not executing: is pg_cron enabled?", ("PG_CRON_MISSING", "PG_CRON_NOT_PRELOADED", "SCHEDULER_DOWN", "WRONG_CRON_DATABASE")),
    ("000", "Edge Function not reachable (local URL from inside the database)", ("HTTP_UNREACHABLE",)),
    ("000", "Vault secrets missing", ("SECRET_MISSING",)),
    ("000", "Vault secret mismatch (401 errors): re-sync the key", ("HTTP_UNAUTHORIZED",)),
    ("000", "View job run history / HTTP failures", ("CONSECUTIVE_FAILURES", "HTTP_SERVER_ERROR", "HTTP_CLIENT_ERROR")),
    ("001", "Syncs not running: is the cron job enabled?", ("JOB_INACTIVE", "MISSED_RUNS")),
    ("001", "Check function logs for errors", ("HTTP_SERVER_ERROR", "CONSECUTIVE_FAILURES")),
    ("002", "Extension installation fails / pg_cron is not installed", ("PG_CRON_MISSING", "PG_NET_MISSING")),
    ("002", "Vault secrets not found", ("SECRET_MISSING", "SECRET_PLACEHOLDER")),
    ("003", "Common error: schema net does not exist", ("PG_NET_MISSING", "PG_NET_WORKER_DOWN")),
    ("003", "Still 401s: wrong key, placeholder, scheduler token", ("HTTP_UNAUTHORIZED", "SECRET_PLACEHOLDER", "SECRET_INLINED")),
    ("003", "Edge Function EarlyDrop / timeouts", ("HTTP_TIMEOUT", "OVERRUNS")),
    ("004", "app.settings.* not configured (Custom Config)", ("GUC_SECRETS_UNSUPPORTED", "SECRET_MISSING")),
    ("004", "Local-time schedules in UTC (03:00 Los Angeles)", ("DST_DRIFT",)),
    ("004", "Refresh queue processing", ("QUEUE_BACKLOG", "QUEUE_STUCK_ITEMS", "RETRIES_EXHAUSTED")),
)


def diagnose(ctx: Context, hours: float = 6.0) -> Any:
    """``cronkit doctor`` for the manifest (or the whole database): read-only, rolled back."""
    import dataclasses

    from cronkit import doctor

    with db.connect(ctx.dsn, autocommit=True) as conn:
        report = doctor.diagnose(conn, ctx.manifest if ctx.has_manifest else None, environment=ctx.environment,
                                 environ=ctx.environ, window=timedelta(hours=float(hours)))
    clean = scrubber(ctx)
    if not clean.pairs:
        return report
    findings = [dataclasses.replace(f, message=clean.text(f.message), fix=clean.text(f.fix), evidence=clean.deep(f.evidence))
                for f in report.findings]
    return dataclasses.replace(report, findings=findings, skipped=[(c, clean.text(r)) for c, r in report.skipped])


FINDINGS_SCHEMA: dict[str, Any] = {"severity": pl.String, "code": pl.String, "job": pl.String, "message": pl.String, "in_scope": pl.Boolean}


def findings_frame(report: Any, ctx: Context) -> pl.DataFrame:
    """The findings, most severe first, and whether each concerns the manifest's jobs (or the server)."""
    scope = set(monitor_scope(ctx) or ())
    rows = [{"severity": f.severity, "code": f.code, "job": f.job, "message": f.message,
             "in_scope": (not ctx.has_manifest) or f.job is None or f.job in scope} for f in report.findings]
    return pl.DataFrame(rows, schema=FINDINGS_SCHEMA)


def scoped_findings(report: Any, ctx: Context) -> pl.DataFrame:
    """The findings about the manifest's own jobs (severity, code, job), most severe first.

    Server-wide findings (job None) depend on everything else in the database and are left out.
    """
    return findings_frame(report, ctx).filter(pl.col("in_scope") & pl.col("job").is_not_null()).select("severity", "code", "job")


def incident_summary(report: Any, ctx: Context) -> mo.Html:
    s = report.summary
    frame = findings_frame(report, ctx)
    other = frame.filter(~pl.col("in_scope")).height
    head = (f"**{s['critical']} critical, {s['warning']} warning(s), {s['info']} info** in the last "
            f"{_human(report.window)}; {len(report.checked)} checks ran, {len(report.skipped)} skipped.")
    if not report.findings:
        head = f"✅ No problems found in the last {_human(report.window)} ({len(report.checked)} checks ran, {len(report.skipped)} skipped)."
    if other:
        head += f" {other} finding(s) concern jobs outside this manifest (shown last)."
    return say(head)


def prose(text: str) -> str:
    """Text with `code` spans as HTML, everything else escaped: SQL with ``$$`` or ``<...>`` in a
    message must not turn into markdown maths or tags."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text, quote=False))


def _evidence_view(evidence: Any) -> mo.Html:
    if isinstance(evidence, list) and evidence and all(isinstance(r, dict) for r in evidence):
        keys = list(dict.fromkeys(k for r in evidence for k in r))
        table = pl.DataFrame({k: [_cell(r.get(k)) for r in evidence] for k in keys})
        return mo.vstack([mo.md("**Evidence**"), table])
    text = json.dumps(evidence, indent=2, default=str, sort_keys=True)
    if len(text) > 4000:
        text = text[:4000] + "\n…"
    return mo.md(f"**Evidence**\n\n```json\n{text}\n```")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, sort_keys=True)
    return str(value)


def finding_view(finding: Any, in_scope: bool = True) -> mo.Html:
    """One finding: what, the evidence, the likely cause (the check's description), the fix, and
    where the guides talk about it."""
    from cronkit import doctor

    entry = doctor.CATALOGUE.get(finding.code)
    guides = [f"guide {g}: *{esc(item)}*" for g, item, codes in GUIDE_TROUBLESHOOTING if finding.code in codes]
    where = f" — job **{esc(finding.job)}**" if finding.job else ""
    scope = "" if in_scope else " _(not a job of this manifest)_"
    parts = [
        mo.md(f"### {_SEVERITY_MARK.get(finding.severity, '')} {finding.severity.upper()} `{finding.code}`{where}{scope}"),
        mo.Html(f"<p>{prose(finding.message)}</p>"),
        _evidence_view(finding.evidence),
        mo.Html(f"<p><strong>Likely cause.</strong> {prose(entry.description) if entry else ''}</p>"
                f"<p><strong>Fix.</strong> {prose(finding.fix)}</p>"),
    ]
    if guides:
        parts.append(mo.md(f"In the guides: {'; '.join(guides)}."))
    return mo.vstack(parts)


def walk_view(report: Any, ctx: Context) -> mo.Html:
    """Every finding, most severe first; this manifest's (and server-wide) ones before others."""
    if not report.findings:
        return mo.md("Nothing to walk through: no findings.")
    frame = findings_frame(report, ctx)
    flags = frame["in_scope"].to_list()
    ordered = sorted(zip(report.findings, flags, strict=True), key=lambda pair: not pair[1])
    return mo.vstack([finding_view(f, scoped) for f, scoped in ordered])


def skipped_frame(report: Any) -> pl.DataFrame:
    return pl.DataFrame([{"check": c, "reason": r} for c, r in report.skipped], schema={"check": pl.String, "reason": pl.String})


def guide_coverage(report: Any) -> pl.DataFrame:
    """Each troubleshooting item of the guides: found (by which check), clear, or not checked here."""
    found = {f.code for f in report.findings}
    skipped = {c for c, _ in report.skipped}
    rows = []
    for guide, item, codes in GUIDE_TROUBLESHOOTING:
        hits = [c for c in codes if c in found]
        if hits:
            status = "found: " + ", ".join(hits)
        elif all(c in skipped for c in codes):
            status = "not checked (skipped)"
        else:
            status = "clear"
        rows.append({"guide": guide, "troubleshooting": item, "checks": ", ".join(codes), "status": status})
    return pl.DataFrame(rows, schema={"guide": pl.String, "troubleshooting": pl.String, "checks": pl.String, "status": pl.String})


# =================================================================================================
# Command line: Jupyter renditions (nbval goldens) and offline HTML reports
# =================================================================================================


def load_app(path: str | Path) -> Any:
    """The ``app`` of a runbook file, imported by path (its ``__main__`` guard keeps it from running)."""

    path = Path(path).resolve()
    spec = importlib.util.spec_from_file_location(f"runbook_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path} is not a Python file.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


def export_plain(notebook: str | Path) -> Any:
    """``marimo export ipynb``: the runbook as a Jupyter notebook without outputs (nbformat node)."""
    import tempfile

    import nbformat

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "export.ipynb"
        done = subprocess.run(
            [sys.executable, "-m", "marimo", "export", "ipynb", str(notebook), "-o", str(target), "-f"],
            capture_output=True, text=True, check=False,
        )
        if done.returncode != 0:
            raise CronkitError(f"marimo export ipynb {notebook} failed:\n{done.stderr.strip()}")
        return nbformat.read(target, as_version=4)


def code_cells(nb: Any) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def export_ipynb(notebook: str | Path, output: str | Path, *, execute: bool = True, timeout: int = 300) -> Path:
    """The runbook as a Jupyter notebook executed in an IPython kernel: an nbval golden.

    The kernel is this Python (ipykernel) and inherits the environment, so ``DATABASE_URL``,
    ``CRONKIT_MANIFEST`` & co. choose what it runs against. Timing metadata is stripped so a
    golden changes only when outputs do. Goldens must come from this, not from marimo's
    ``--include-outputs`` (other mime bundles, and nbval refuses cells without an execution count).
    """
    import nbformat

    output = Path(output)
    nb = export_plain(notebook)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if execute:
        from nbclient import NotebookClient

        output.parent.mkdir(parents=True, exist_ok=True)
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(output.parent.resolve())}}).execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    output.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, output)
    return output


def golden_is_current(notebook: str | Path, golden: str | Path) -> bool:
    """True when the golden's code cells are exactly what the runbook exports to now."""
    import nbformat

    return code_cells(export_plain(notebook)) == code_cells(nbformat.read(Path(golden), as_version=4))


_MARIMO_ELEMENT = re.compile(r"<marimo-ui-element\b.*?</marimo-ui-element>", re.DOTALL)
_MARIMO_ANY = re.compile(r"</?marimo-[a-z-]+\b[^>]*>", re.DOTALL)

REPORT_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2rem auto;padding:0 1rem;color:#1f2328}
header{border-bottom:1px solid #d0d7de;margin-bottom:1.5rem}
section.cell{margin:1.2rem 0}
details.code summary{cursor:pointer;color:#57606a;font-size:.85rem}
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;font-size:.85rem}
table{border-collapse:collapse;font-size:.85rem}
td,th{border:1px solid #d0d7de;padding:.2rem .5rem;text-align:left;vertical-align:top}
figure{margin:0}
.control{color:#57606a;font-style:italic}
.error{color:#cf222e}
"""


def render_output(value: Any) -> str:
    """One cell's output as self-contained HTML: charts as inline SVG (vl-convert, no CDN),
    frames as tables, marimo's interactive controls replaced by a note."""
    if value is None:
        return ""
    module = type(value).__module__
    if module.startswith("altair.") and hasattr(value, "to_json"):
        import vl_convert

        try:
            return f"<figure>{vl_convert.vegalite_to_svg(value.to_json())}</figure>"
        except Exception as exc:  # noqa: BLE001 - a chart that cannot render must not lose the report
            return f"<p class='error'>chart could not be rendered: {html.escape(str(exc))}</p>"
    if isinstance(value, pl.DataFrame):
        with pl.Config(tbl_rows=50, tbl_cols=30, fmt_str_lengths=200):
            return value._repr_html_()
    text = getattr(value, "text", None)
    if isinstance(text, str):  # mo.Html and friends
        text = _MARIMO_ELEMENT.sub("<span class='control'>[interactive control: open the runbook in marimo]</span>", text)
        return _MARIMO_ANY.sub("", text)
    if isinstance(value, str):
        return f"<pre>{html.escape(value)}</pre>"
    return f"<pre>{html.escape(repr(value))}</pre>"


def report(notebook: str | Path, output: str | Path, args: Sequence[str] = ()) -> Path:
    """Run a runbook headless (``app.run()``, marimo's script mode: no button is pressed) and write
    every cell's code and output into one HTML file that needs no network to view."""
    notebook, output = Path(notebook), Path(output)
    app = load_app(notebook)
    global _REPORTING
    saved = sys.argv
    sys.argv = [str(notebook), *args]  # mo.cli_args() reads sys.argv
    _REPORTING = True
    try:
        outputs, _defs = app.run()
    finally:
        sys.argv = saved
        _REPORTING = False
    cells = [c for c in app._cell_manager.cell_data() if c.name != "setup"]
    if len(cells) != len(outputs):  # pragma: no cover - marimo changed its cell bookkeeping
        raise CronkitError(f"{notebook}: {len(cells)} cells but {len(outputs)} outputs.")
    title = html.escape(getattr(app._config, "app_title", None) or notebook.stem)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{title}</title><style>{REPORT_CSS}</style></head><body>",
        (f"<header><h1>{title}</h1><p>Headless run of <code>{html.escape(str(notebook))}</code> at "
         f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC (marimo {html.escape(mo.__version__)}; nothing was applied unless "
         "<code>--apply true</code> was given).</p></header>"),
    ]
    for cell, value in zip(cells, outputs, strict=True):
        body = render_output(value)
        code = "" if cell.config.hide_code else (
            f"<details class='code'><summary>code</summary><pre>{html.escape(cell.code)}</pre></details>")
        if body or code:
            parts.append(f"<section class='cell'>{code}{body}</section>")
    parts.append("</body></html>")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(parts), encoding="utf-8")
    return output


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cronkit.runbook",
        description="Tools for the runbooks in runbooks/: Jupyter renditions (nbval goldens) and offline HTML reports.",
        epilog="examples:\n"
        "  python -m cronkit.runbook report runbooks/monitor.py -o reports/monitor.html -- --manifest m.toml --hours 6\n"
        "  python -m cronkit.runbook export-ipynb runbooks/setup.py -o tests/golden/setup.ipynb\n"
        "  python -m cronkit.runbook check-golden runbooks/setup.py tests/golden/setup.ipynb\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("report", help="run a runbook headless and write a self-contained HTML report")
    p.add_argument("notebook")
    p.add_argument("-o", "--output", required=True)
    p = commands.add_parser("export-ipynb", help="export a runbook to .ipynb and execute it in a Jupyter kernel")
    p.add_argument("notebook")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--no-execute", action="store_true", help="only export (no outputs)")
    p.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    p = commands.add_parser("check-golden", help="exit 1 when a golden's code differs from the runbook's export")
    p.add_argument("notebook")
    p.add_argument("golden")
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after `--` is the runbook's own parameters (mo.cli_args()), e.g. -- --hours 6.
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    # `python -m cronkit.runbook` runs this file as __main__; the runbooks import cronkit.runbook,
    # a second copy of the module. Work through that one so its state (_REPORTING) is theirs.
    impl = importlib.import_module("cronkit.runbook")

    try:
        if args.command == "report":
            print(impl.report(args.notebook, args.output, extra))
        elif args.command == "export-ipynb":
            print(impl.export_ipynb(args.notebook, args.output, execute=not args.no_execute, timeout=args.timeout))
        elif not impl.golden_is_current(args.notebook, args.golden):
            print(f"STALE golden {args.golden}: its code differs from {args.notebook}; regenerate it "
                  f"(python tools/golden.py update)", file=sys.stderr)
            return 1
    except CronkitError as exc:
        print(f"cronkit.runbook: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
