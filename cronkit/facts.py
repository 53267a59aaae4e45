"""Facts about the server cronkit talks to: versions, role, and the pg_cron settings that matter."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from cronkit.db import Conn, dict_cursor
from cronkit.errors import ExtensionMissing


#: how pg_cron's scheduler shows in pg_stat_activity (application_name; backend_type from 1.5 on)
SCHEDULER_APPNAME = "pg_cron scheduler"
LAUNCHER_BACKEND = "pg_cron launcher"

FACTS_SQL = """
select current_setting('server_version') as postgresql,
       current_database() as database,
       current_user as role,
       r.rolsuper as superuser,
       r.rolbypassrls as bypassrls,
       (select extversion from pg_extension where extname = 'pg_cron') as pg_cron,
       (select extversion from pg_extension where extname = 'pg_net') as pg_net,
       (select extversion from pg_extension where extname = 'supabase_vault') as vault,
       (select extversion from pg_extension where extname = 'pgmq') as pgmq,
       -- pg_settings rather than current_setting(): superuser-only settings are simply absent
       -- (NULL) for a role without pg_read_all_settings, instead of an error.
       (select setting from pg_settings where name = 'cron.database_name') as cron_database,
       (select setting from pg_settings where name = 'cron.timezone') as cron_timezone,
       (select setting from pg_settings where name = 'shared_preload_libraries') as preload,
       -- cron.database_name is superuser-only; where the scheduler's session is connected is not
       (select coalesce(array_agg(distinct a.datname::text) filter (where a.datname is not null), '{}')
          from pg_stat_activity a
         where a.application_name = %(appname)s or a.backend_type = %(launcher)s) as scheduler_databases
  from pg_roles r
 where r.rolname = current_user
"""


@dataclass(frozen=True)
class ServerFacts:
    postgresql: str
    database: str
    role: str
    superuser: bool
    bypassrls: bool
    pg_cron: str | None
    pg_net: str | None
    vault: str | None
    pgmq: str | None
    cron_database: str | None
    cron_timezone: str | None
    preload: str | None
    scheduler_databases: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def cron_databases(self) -> set[str]:
        """The databases pg_cron's scheduler serves: its sessions' and ``cron.database_name`` (when visible)."""
        return set(self.scheduler_databases) | ({self.cron_database} if self.cron_database else set())

    @property
    def cron_elsewhere(self) -> str | None:
        """A database pg_cron's scheduler serves when it does not serve this one (WRONG_CRON_DATABASE)."""
        served = self.cron_databases
        return None if self.database in served else min(served, default=None)

    @property
    def versions(self) -> dict[str, str | None]:
        return {"postgresql": self.postgresql, "pg_cron": self.pg_cron, "pg_net": self.pg_net, "vault": self.vault}


def server_facts(conn: Conn) -> ServerFacts:
    """Read versions and role attributes in one round trip (works for any role)."""
    cur = dict_cursor(conn)
    row = cur.execute(FACTS_SQL, {"appname": SCHEDULER_APPNAME, "launcher": LAUNCHER_BACKEND}).fetchone()
    assert row is not None, "current_user always has a pg_roles row"
    return ServerFacts(**row)


def require_pg_cron(facts: ServerFacts) -> None:
    """:class:`ExtensionMissing` unless pg_cron is installed in this database, naming the database it
    runs in when that is another one (what the doctor reports as WRONG_CRON_DATABASE)."""
    if facts.pg_cron:
        return
    if facts.cron_elsewhere:
        raise ExtensionMissing(
            f"pg_cron runs in database {facts.cron_elsewhere!r}, not in {facts.database!r} where cronkit is connected "
            "(WRONG_CRON_DATABASE): jobs cannot be created or seen from here.",
            remedy=f"Point DATABASE_URL (or --dsn) at database {facts.cron_elsewhere!r} (on Supabase always `postgres`); "
                   "run jobs for other databases with cron.schedule_in_database(...).")
    raise ExtensionMissing("pg_cron is not installed in this database.",
                           remedy="On Supabase: Dashboard → Integrations → Cron (or Database → Extensions → pg_cron); "
                                  "elsewhere add pg_cron to shared_preload_libraries and `CREATE EXTENSION pg_cron`.")
