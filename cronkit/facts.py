"""Facts about the server cronkit talks to: versions, role, and the pg_cron settings that matter."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from cronkit.db import Conn, dict_cursor


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
       (select setting from pg_settings where name = 'shared_preload_libraries') as preload
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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def versions(self) -> dict[str, str | None]:
        return {"postgresql": self.postgresql, "pg_cron": self.pg_cron, "pg_net": self.pg_net, "vault": self.vault}


def server_facts(conn: Conn) -> ServerFacts:
    """Read versions and role attributes in one round trip (works for any role)."""
    cur = dict_cursor(conn)
    row = cur.execute(FACTS_SQL).fetchone()
    assert row is not None, "current_user always has a pg_roles row"
    return ServerFacts(**row)
