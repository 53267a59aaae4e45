"""Secret backends: Supabase Vault (default), a secrets table, or ``app.settings.*`` GUCs.

A backend does four things: tells a wrapper how to read a secret *when the job fires*, reports
whether a secret is present / missing / a placeholder (length, fingerprint and ``updated_at`` —
never the value), stores a value (always as a bound parameter), and deletes one.
Values read for status checks stay inside this module and are dropped at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from datetime import datetime
from typing import Any, Protocol

from psycopg import sql

from cronkit.audit import AuditAction, record
from cronkit.db import STAGED_SECRET, Conn, staged_secret, translated, without_detail
from cronkit.errors import PrivilegeError, SecretError
from cronkit.manifest import SecretsConfig
from cronkit.redact import fingerprint, key_kind, looks_like_placeholder
from cronkit.statement import Statement



class SecretState(StrEnum):
    """What a secret's stored value is, as far as may be said without showing it."""

    PRESENT = "present"
    MISSING = "missing"
    PLACEHOLDER = "placeholder"


@dataclass(frozen=True)
class SecretStatus:
    """What may be shown about a secret."""

    name: str
    state: SecretState
    length: int | None = None
    fingerprint: str | None = None
    updated_at: datetime | None = None
    #: what kind of key the value is (cronkit.redact.key_kind): sb_secret, jwt:service_role, ...
    key_kind: str | None = None

    @classmethod
    def of(cls, name: str, value: str | None, updated_at: datetime | None = None) -> SecretStatus:
        if value is None:
            return cls(name, SecretState.MISSING)
        state = SecretState.PLACEHOLDER if looks_like_placeholder(value) else SecretState.PRESENT
        return cls(name, state, len(value), fingerprint(value), updated_at, key_kind(value))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "length": self.length,
                "fingerprint": self.fingerprint, "updated_at": self.updated_at}


class SecretBackend(Protocol):
    kind: str

    def read_into(self, variable: sql.Identifier, name: str) -> sql.Composable:
        """A plpgsql statement that assigns the secret (or NULL) to ``variable``."""

    def value_expression(self, name: str) -> sql.Composable:
        """An SQL expression of the secret's value (or NULL), for a statement that reads it when it runs."""

    def setup(self, conn: Conn) -> list[sql.Composable]:
        """Statements that must run before wrappers can read secrets (empty when ready)."""

    def status(self, conn: Conn, names: list[str]) -> list[SecretStatus]: ...

    def values(self, conn: Conn, names: list[str]) -> dict[str, str]: ...

    def store_statements(self, conn: Conn, name: str, value: str, description: str = "") -> dict[str, Statement]:
        """The statements ``set`` runs, by case (``when present``/``when absent``), value as a parameter."""

    def delete_statement(self, conn: Conn, name: str) -> Statement:
        """The statement ``delete`` runs."""

    def set(self, conn: Conn, name: str, value: str, description: str = "") -> str:
        """Store ``value``; return "created", "updated" or "unchanged"."""

    def delete(self, conn: Conn, name: str) -> bool: ...


# Placeholder test used inside wrappers; keep in step with redact.looks_like_placeholder.
def placeholder_check(variable: sql.Identifier) -> sql.Composable:
    # Trim the same characters str.strip() does for ASCII, so plan and wrapper agree on "\n".
    trimmed = sql.SQL("btrim({v}, E' \\t\\n\\r\\f\\x0b')").format(v=variable)
    return sql.SQL(
        "{t} = '' OR lower({t}) LIKE ANY (ARRAY['placeholder%', 'your-%', 'your\\_%', "
        "'changeme%', 'change-me%', 'xxx%', 'todo%', '[%'])"
    ).format(t=trimmed)


#: the cases of :meth:`SecretBackend.store_statements`
PRESENT, ABSENT, SUPERUSER_ONLY = "when present", "when absent", "superuser only"


def _store(conn: Conn, statement: Statement, name: str, value: str, description: str) -> None:
    """Run a store statement with the value staged by COPY (never in query text or parameters),
    guarded so that a refused write cannot quote the value back in an error's DETAIL."""
    with staged_secret(conn, name, value, description):
        conn.execute(without_detail(conn, statement.query))  # store statements take no parameters


def _rowcount(conn: Conn, statement: Statement) -> int:
    return conn.execute(statement.query, statement.params).rowcount  # type: ignore[arg-type]


class _Reads:
    """``status`` and ``values`` of a backend, both derived from its one ``_read``."""

    def _read(self, conn: Conn, names: list[str]) -> dict[str, tuple[str | None, datetime | None]]:
        raise NotImplementedError

    def status(self, conn: Conn, names: list[str]) -> list[SecretStatus]:
        found = self._read(conn, names)
        return [SecretStatus.of(n, *found[n]) if n in found else SecretStatus.of(n, None) for n in names]

    def values(self, conn: Conn, names: list[str]) -> dict[str, str]:
        """The current values of ``names`` (those present): only for scrubbing displayed text."""
        return {n: value for n, (value, _) in self._read(conn, names).items() if value is not None}


class VaultBackend(_Reads):
    kind = "vault"

    def read_into(self, variable: sql.Identifier, name: str) -> sql.Composable:
        return sql.SQL("SELECT decrypted_secret INTO {} FROM vault.decrypted_secrets WHERE name = {};").format(
            variable, sql.Literal(name)
        )

    def value_expression(self, name: str) -> sql.Composable:
        return sql.SQL("(SELECT decrypted_secret FROM vault.decrypted_secrets WHERE name = {})").format(sql.Literal(name))

    def setup(self, conn: Conn) -> list[sql.Composable]:
        return []

    def _read(self, conn: Conn, names: list[str]) -> dict[str, tuple[str | None, datetime | None]]:
        with translated("read Vault secrets"):
            rows = conn.execute(
                "select name, decrypted_secret, updated_at from vault.decrypted_secrets where name = any(%s)",
                (names,),
            ).fetchall()
        return {row["name"]: (row["decrypted_secret"], row["updated_at"]) for row in rows}

    def store_statements(self, conn: Conn, name: str, value: str, description: str = "") -> dict[str, Statement]:
        return {
            PRESENT: Statement(sql.SQL(
                "SELECT vault.update_secret(s.id, i.value) FROM vault.decrypted_secrets s JOIN {staged} i ON s.name = i.name"
            ).format(staged=STAGED_SECRET)),
            ABSENT: Statement(sql.SQL("SELECT vault.create_secret(i.value, i.name, i.description) FROM {staged} i").format(
                staged=STAGED_SECRET)),
        }

    def delete_statement(self, conn: Conn, name: str) -> Statement:
        return Statement(sql.SQL("DELETE FROM vault.secrets WHERE name = %s"), (name,))

    def set(self, conn: Conn, name: str, value: str, description: str = "") -> str:
        with translated(f"store Vault secret {name!r}"):
            current = self.values(conn, [name])
            if current.get(name) == value:
                return "unchanged"
            _store(conn, self.store_statements(conn, name, value, description)[PRESENT if name in current else ABSENT],
                   name, value, description)
            return "updated" if name in current else "created"

    def delete(self, conn: Conn, name: str) -> bool:
        with translated(f"delete Vault secret {name!r}"):
            return _rowcount(conn, self.delete_statement(conn, name)) > 0


class TableBackend(_Reads):
    """A secrets table like seeds 001/003: RLS on, nothing granted to PUBLIC."""

    kind = "table"

    def __init__(self, config: SecretsConfig) -> None:
        schema, _, table = config.table.rpartition(".")
        self.schema = schema or "public"
        self.table = table
        self.ident = sql.Identifier(self.schema, self.table)
        self.key_column, self.value_column = config.key_column, config.value_column
        self.key = sql.Identifier(config.key_column)
        self.value = sql.Identifier(config.value_column)
        self.create_table = config.create_table

    def read_into(self, variable: sql.Identifier, name: str) -> sql.Composable:
        return sql.SQL("SELECT {val} INTO {var} FROM {tbl} WHERE {key} = {name};").format(
            val=self.value, var=variable, tbl=self.ident, key=self.key, name=sql.Literal(name)
        )

    def value_expression(self, name: str) -> sql.Composable:
        return sql.SQL("(SELECT {val} FROM {tbl} WHERE {key} = {name})").format(
            val=self.value, tbl=self.ident, key=self.key, name=sql.Literal(name))

    def _exists(self, conn: Conn) -> bool:
        return conn.execute("select to_regclass(%s) is not null as ok", (f"{self.schema}.{self.table}",)).fetchone()["ok"]

    def _columns(self, conn: Conn) -> set[str]:
        rows = conn.execute("select column_name from information_schema.columns where table_schema = %s and table_name = %s",
                            (self.schema, self.table)).fetchall()
        return {row["column_name"] for row in rows}

    def _has_updated_at(self, conn: Conn) -> bool:
        return "updated_at" in self._columns(conn)

    def _require_columns(self, conn: Conn) -> set[str]:
        """The table's columns, after checking it has the key and value columns the manifest names."""
        columns = self._columns(conn)
        missing = [c for c in (self.key_column, self.value_column) if c not in columns]
        if missing and columns:  # no columns at all: this role may not see them; let the read say so
            raise SecretError(
                f"The secrets table {self.schema}.{self.table} has no column {', '.join(repr(c) for c in missing)} "
                f"(it has {', '.join(sorted(columns))}).",
                remedy="Name its columns under [secrets] with `key_column = ...` and `value_column = ...`.",
            )
        return columns

    def setup(self, conn: Conn) -> list[sql.Composable]:
        if self._exists(conn):
            return []  # the operator's own table: used as it is, never altered
        if not self.create_table:
            raise SecretError(
                f"The secrets table {self.schema}.{self.table} does not exist.",
                remedy="Create it, or set `create_table = true` under [secrets] so cronkit creates it.",
            )
        return self.create_statements()

    def create_statements(self) -> list[sql.Composable]:
        """The table cronkit creates when it is missing: RLS on, no policies, nothing for PUBLIC."""
        return [
            sql.SQL(
                "CREATE TABLE {tbl} ({key} text PRIMARY KEY, {val} text NOT NULL, description text NOT NULL DEFAULT '', "
                "updated_at timestamptz NOT NULL DEFAULT now())"
            ).format(tbl=self.ident, key=self.key, val=self.value),
            sql.SQL("COMMENT ON TABLE {} IS 'cronkit: secrets read by job wrappers. RLS on, no policies: owner only.'").format(self.ident),
            sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(self.ident),
            sql.SQL("REVOKE ALL ON TABLE {} FROM PUBLIC").format(self.ident),
        ]

    def _read(self, conn: Conn, names: list[str]) -> dict[str, tuple[str | None, datetime | None]]:
        if not self._exists(conn):
            return {}
        updated = sql.SQL("updated_at") if "updated_at" in self._require_columns(conn) else sql.SQL("NULL::timestamptz")
        with translated(f"read secrets from {self.schema}.{self.table}"):
            rows = conn.execute(
                sql.SQL("SELECT {key} AS name, {val} AS value, {upd} AS updated_at FROM {tbl} WHERE {key} = ANY(%s)").format(
                    key=self.key, val=self.value, upd=updated, tbl=self.ident
                ),
                (names,),
            ).fetchall()
        return {row["name"]: (row["value"], row["updated_at"]) for row in rows}

    def set(self, conn: Conn, name: str, value: str, description: str = "") -> str:
        with translated(f"store secret {name!r} in {self.schema}.{self.table}"):
            for statement in self.setup(conn):
                conn.execute(statement)
            current = self.values(conn, [name])
            if current.get(name) == value:
                return "unchanged"
            _store(conn, self.store_statements(conn, name, value, description)[PRESENT if name in current else ABSENT],
                   name, value, description)
            return "updated" if name in current else "created"

    def store_statements(self, conn: Conn, name: str, value: str, description: str = "") -> dict[str, Statement]:
        # ``conn`` None: a preview without a server (quoting needs none); it shows no updated_at touch
        known = conn is not None and self._exists(conn) and self._has_updated_at(conn)
        touch = sql.SQL(", updated_at = now()") if known else sql.SQL("")
        return {
            PRESENT: Statement(sql.SQL("UPDATE {tbl} t SET {val} = i.value{touch} FROM {staged} i WHERE t.{key} = i.name").format(
                tbl=self.ident, val=self.value, touch=touch, key=self.key, staged=STAGED_SECRET)),
            ABSENT: Statement(sql.SQL("INSERT INTO {tbl} ({val}, {key}) SELECT i.value, i.name FROM {staged} i").format(
                tbl=self.ident, key=self.key, val=self.value, staged=STAGED_SECRET)),
        }

    def delete_statement(self, conn: Conn, name: str) -> Statement:
        return Statement(sql.SQL("DELETE FROM {tbl} WHERE {key} = %s").format(tbl=self.ident, key=self.key), (name,))

    def delete(self, conn: Conn, name: str) -> bool:
        if not self._exists(conn):
            return False
        with translated(f"delete secret {name!r}"):
            return _rowcount(conn, self.delete_statement(conn, name)) > 0


GUC_REMEDY = (
    "Hosted Supabase refuses `ALTER DATABASE ... SET app.*` (42501) because `postgres` is not a superuser. "
    "Use Vault instead: set `backend = \"vault\"` under [secrets] and store the value with `cronkit secrets set NAME`."
)


#: what keeps the GUC backend's ALTER DATABASE (which holds the value as a literal) out of statistics
STATISTICS_OFF = {"pg_stat_statements.track": "none", "pg_stat_statements.track_utility": "off"}


class GucBackend(_Reads):
    """``app.settings.*`` database settings (seed 004). Only a superuser can set them."""

    kind = "guc"

    def __init__(self, config: SecretsConfig) -> None:
        self.prefix = config.guc_prefix

    def read_into(self, variable: sql.Identifier, name: str) -> sql.Composable:
        return sql.SQL("{} := current_setting({}, true);").format(variable, sql.Literal(self.prefix + name))

    def value_expression(self, name: str) -> sql.Composable:
        return sql.SQL("current_setting({}, true)").format(sql.Literal(self.prefix + name))

    def setup(self, conn: Conn) -> list[sql.Composable]:
        return []

    def _read(self, conn: Conn, names: list[str]) -> dict[str, tuple[str | None, datetime | None]]:
        # ALTER DATABASE settings apply to new sessions; read the catalog, not this session.
        rows = conn.execute(
            """
            select split_part(cfg, '=', 1) as name, substr(cfg, strpos(cfg, '=') + 1) as value
              from pg_db_role_setting s, unnest(s.setconfig) cfg
             where s.setdatabase = (select oid from pg_database where datname = current_database())
               and s.setrole = 0
            """
        ).fetchall()
        found = {row["name"]: row["value"] for row in rows}
        return {n: (found[self.prefix + n], None) for n in names if self.prefix + n in found}

    def set(self, conn: Conn, name: str, value: str, description: str = "") -> str:
        row = conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone()
        if not row["rolsuper"]:
            raise PrivilegeError(
                f"Cannot store {self.prefix}{name}: only a superuser may `ALTER DATABASE ... SET` custom settings.",
                remedy=GUC_REMEDY,
            )
        if next(iter(self.status(conn, [name]))).fingerprint == fingerprint(value):
            return "unchanged"
        # ALTER DATABASE takes no bind parameters: a DO block builds it on the server from the staged
        # value. The statement it EXECUTEs holds the value as a literal, so statistics are switched off
        # for this transaction first (a superuser may; only superusers get here), and log_statement
        # and log_min_duration_statement log top-level statements only: the DO block, no value.
        with translated(f"store setting {self.prefix}{name}"), conn.transaction():
            for setting, off in STATISTICS_OFF.items():
                conn.execute("SELECT set_config(%s, %s, true)", (setting, off))
            _store(conn, self.store_statements(conn, name, value, description)[SUPERUSER_ONLY], self.prefix + name, value, "")
        return "updated"

    def store_statements(self, conn: Conn, name: str, value: str, description: str = "") -> dict[str, Statement]:
        return {SUPERUSER_ONLY: Statement(sql.SQL(
            "DO $cronkit$ DECLARE i record; BEGIN SELECT * INTO i FROM {staged}; "
            "EXECUTE format('ALTER DATABASE %I SET %I = %L', current_database(), i.name, i.value); END $cronkit$"
        ).format(staged=STAGED_SECRET))}

    def delete_statement(self, conn: Conn, name: str) -> Statement:
        return Statement(sql.SQL("ALTER DATABASE {} RESET {}").format(
            sql.Identifier(conn.info.dbname), sql.Identifier(self.prefix + name)))

    def delete(self, conn: Conn, name: str) -> bool:
        with translated(f"reset setting {self.prefix}{name}"):
            self.delete_statement(conn, name).execute(conn)
        return True


def backend_for(config: SecretsConfig) -> SecretBackend:
    if config.backend == "vault":
        return VaultBackend()
    if config.backend == "table":
        return TableBackend(config)
    return GucBackend(config)


# -- every secret write, on the record -------------------------------------------------------------


def store_secret(conn: Conn, backend: SecretBackend, name: str, value: str, description: str = "", *,
                 project: str | None = None) -> str:
    """Store ``value`` under ``name`` with ``backend`` and put the change on the record (name and
    backend, never the value), in the caller's transaction: "created", "updated" or "unchanged"."""
    outcome = backend.set(conn, name, value, description)
    if outcome != "unchanged":
        record(conn, AuditAction.SECRET_SET, f"{outcome} secret {name!r} in {backend.kind}", project=project,
               target=name, details={"backend": backend.kind, "outcome": outcome})
    return outcome


def delete_secret(conn: Conn, backend: SecretBackend, name: str, *, project: str | None = None) -> bool:
    """Delete ``name`` from ``backend`` and put it on the record; whether it was there."""
    deleted = backend.delete(conn, name)
    if deleted:
        record(conn, AuditAction.SECRET_DELETE, f"deleted secret {name!r} from {backend.kind}", project=project,
               target=name, details={"backend": backend.kind})
    return deleted
