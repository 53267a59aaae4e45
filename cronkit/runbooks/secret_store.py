"""The secrets the jobs read, and storing one: state by length and fingerprint, a masked preview, the store step.

Shared by the setup and rotate-secret runbooks. A value comes from a masked input or a named
environment variable, goes straight to the secret backend as a bound parameter, and is only ever
shown as :func:`cronkit.redact.mask`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import marimo as mo
import polars as pl

from psycopg import sql

from cronkit.db import STAGED_SECRET, Conn
from cronkit.errors import ConfigError, CronkitError
from cronkit.redact import mask
from cronkit.runbooks.context import (
    RunbookContext,
    jobs_reading,
    secret_names,
    secret_statuses,
    specs,
    stored_mask,
)
from cronkit.runbooks.runtime import Gate, NotApplied, esc, say
from cronkit.secrets import SecretState, backend_for, store_secret as store_on_record

SECRETS_SCHEMA: dict[str, Any] = {
    "secret": pl.String, "state": pl.String, "stored": pl.String, "updated_at": pl.Datetime("us", "UTC"),
    "used_by": pl.String, "source": pl.String, "source_state": pl.String,
}
#: the state of a secret the backend could not read (Vault not installed yet, no privilege)
UNREADABLE = "unreadable"


def secrets_frame(ctx: RunbookContext) -> pl.DataFrame:
    """Each secret the jobs read: present / missing / placeholder, as length and fingerprint only;
    which jobs use it; and whether its ``[secrets.sources]`` variable holds the same value."""
    names = secret_names(ctx)
    if not names:
        return pl.DataFrame(schema=SECRETS_SCHEMA)
    users = {n: jobs_reading(ctx, n) for n in names}
    try:
        statuses = secret_statuses(ctx, names)
    except CronkitError as exc:  # e.g. Vault not installed yet: say so instead of failing the runbook
        return pl.DataFrame([{"secret": n, "state": UNREADABLE, "stored": "", "updated_at": None,
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
            in_sync = status.fingerprint and mask(source[1]) == stored_mask(status)
            source_state = "in sync" if in_sync else "differs: apply stores it"
        rows.append({
            "secret": status.name, "state": status.state, "stored": stored_mask(status),
            "updated_at": status.updated_at, "used_by": ", ".join(users[status.name]),
            "source": source_text, "source_state": source_state,
        })
    return pl.DataFrame(rows, schema=SECRETS_SCHEMA)


def secrets_view(table: pl.DataFrame) -> mo.Html:
    if table.is_empty():
        return mo.md("The jobs read no secrets.")
    bad = table.filter(pl.col("state") != SecretState.PRESENT)
    pending = table.filter(pl.col("source_state").str.starts_with("differs"))
    if bad.is_empty():
        verdict = "✅ every secret is present (values are never shown: length and fingerprint only)."
    else:
        listed = ", ".join(f"`{s}` ({esc(st)})" for s, st in zip(bad["secret"], bad["state"], strict=True))
        verdict = (f"❌ {bad.height} secret(s) {listed}: "
                   "store them below, or set their `[secrets.sources]` variable so apply stores them.")
    if not pending.is_empty():
        verdict += f" {pending.height} will be updated by apply from their source."
    return mo.vstack([say(verdict), table])


def _checked_choice(ctx: RunbookContext, wanted: str) -> str:
    names = secret_names(ctx)
    if wanted not in names:
        raise ConfigError(f"No job of project {ctx.project!r} reads a secret named {wanted!r}.",
                          remedy=f"Choose one of: {', '.join(names) or '(none)'}.")
    return wanted


def default_secret_to_store(ctx: RunbookContext, wanted: str | None) -> str | None:
    """The secret the setup form starts on: the one asked for, else the first not present, else the first."""
    if wanted:
        return _checked_choice(ctx, wanted)
    names = secret_names(ctx)
    if not names:
        return None
    try:
        absent = [s.name for s in secret_statuses(ctx, names) if s.state != SecretState.PRESENT]
    except CronkitError:
        absent = []
    return (absent or names)[0]


def default_secret_to_rotate(ctx: RunbookContext, wanted: str | None) -> str | None:
    """The secret to rotate: the one asked for, else the one most jobs read."""
    if wanted:
        return _checked_choice(ctx, wanted)
    names = secret_names(ctx)
    if not names:
        return None
    return max(names, key=lambda n: (len(jobs_reading(ctx, n)), n == "service_role_key", n))


def secret_value(typed: str | None, from_env: str | None, ctx: RunbookContext) -> str | None:
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


def store_preview(ctx: RunbookContext, conn: Conn, name: str, value: str) -> str:
    """The statements the backend runs to store ``name`` (:meth:`SecretBackend.store_statements`), each
    with a ``-- when`` comment, after the row they read: the value arrives by COPY (shown as its mask),
    never in a query or a parameter, so no server log or statistics view can hold it."""
    statements = backend_for(ctx.manifest.secrets).store_statements(conn, name, value)
    staged = (f"-- COPY {STAGED_SECRET.as_string(conn)} (name, value) FROM STDIN: "
              f"({sql.Literal(name).as_string(conn)}, {mask(value)}) -- not logged by the server")
    guard = "-- each runs inside a DO block that re-raises an error without its DETAIL, which would quote the row"
    return "\n".join([staged, guard] + [f"{statement.display(conn)};  -- {when}" for when, statement in statements.items()])


def secret_preview(ctx: RunbookContext, name: str | None, value: str | None) -> mo.Html:
    if not name:
        return mo.md("Choose a secret to store.")
    try:
        with ctx.read() as conn:
            current = backend_for(ctx.manifest.secrets).status(conn, [name])[0]
            statements = store_preview(ctx, conn, name, value or "")
    except CronkitError as exc:
        return mo.md(f"❌ The secrets cannot be read here: {esc(exc.message)}")
    users = jobs_reading(ctx, name)
    if not value:
        change = "_no value given yet (type it into the masked field, or pass `--secret-from-env VAR`)_"
    elif current.fingerprint and mask(value) == stored_mask(current):
        change = f"unchanged: the stored value already is `{mask(value)}`"
    else:
        change = f"`{stored_mask(current)}` → `{mask(value)}`"
    return mo.md(
        f"Secret **{name}** in **{ctx.manifest.secrets.backend}** ({current.state}): {change}. "
        f"Read by: {', '.join(users) or 'no job'}.\n\n```sql\n{statements}\n```"
    )


@dataclass(frozen=True)
class SecretChange:
    name: str
    outcome: str  # created / updated / unchanged / nothing to store
    before: str
    after: str

    @property
    def stored(self) -> bool:
        """True when a new value went in (created or updated)."""
        return self.outcome not in (NOTHING_TO_STORE, "unchanged")

    def view(self) -> mo.Html:
        if self.outcome == NOTHING_TO_STORE:
            return say(f"Nothing stored for **{self.name}**: no value was given.")
        return say(f"Secret **{esc(self.name)}**: {self.outcome} (`{self.before}` → `{self.after}`).")


#: the outcome of a store step that was given no value
NOTHING_TO_STORE = "nothing to store"


def store_secret(ctx: RunbookContext, name: str | None, value: str | None, ok: bool | Gate) -> SecretChange | NotApplied:
    """Store ``value`` as secret ``name`` (one transaction) when confirmed; returns masks only."""
    if not ok:
        return NotApplied.of(ok, "Store secret")
    if not name or not value:
        return SecretChange(name or "(none)", NOTHING_TO_STORE, "", "")
    backend = backend_for(ctx.manifest.secrets)
    with ctx.write() as conn:
        before = stored_mask(backend.status(conn, [name])[0])
        outcome = store_on_record(conn, backend, name, value, "managed by cronkit", project=ctx.project)
        conn.commit()
    return SecretChange(name, outcome, before, mask(value))


def users_of(ctx: RunbookContext, name: str) -> list[Any]:
    """The manifest's job specs that read secret ``name``."""
    return [s for s in specs(ctx) if name in s.secret_names]
