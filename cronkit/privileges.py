"""What the connected role may read, and the GRANT that fixes what it may not: one answer for every view.

``status``, the doctor, and the monitor and incident runbooks degrade section by section: a
section whose objects the role cannot read is skipped with one "missing privilege" line naming the
objects and the GRANT an owner runs. The minimum grants are in the README ("Least privilege").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from psycopg import sql

from cronkit.db import Conn, dict_cursor
from cronkit.queries import query


class Section(StrEnum):
    """What a view reads, grouped by the grant that opens it."""

    JOBS = "jobs"            # cron.job (and its schema)
    RUNS = "run history"     # cron.job_run_details
    REGISTRY = "ownership"   # cronkit.managed_jobs: which jobs are cronkit's
    HTTP = "HTTP outcomes"   # cronkit's request ledger and pg_net's responses


@dataclass(frozen=True)
class Missing:
    section: Section
    objects: str
    grant: str

    def line(self) -> str:
        return f"missing privilege: {self.section} skipped — cannot read {self.objects}; an owner runs: {self.grant}"


def missing(conn: Conn) -> dict[Section, Missing]:
    """The sections the connected role cannot read (objects that do not exist are not missing privileges)."""
    row = dict_cursor(conn).execute(query("privileges/check")).fetchone()
    assert row is not None
    role = sql.Identifier(row["role"]).as_string(conn)  # current_user: SET ROLE counts
    found: dict[Section, Missing] = {}

    def lacks(*flags: bool | None) -> bool:
        return any(flag is False for flag in flags)

    if lacks(row["cron_usage"], row["cron_job"]):
        found[Section.JOBS] = Missing(Section.JOBS, "cron.job",
                                      f"GRANT USAGE ON SCHEMA cron TO {role}; GRANT SELECT ON cron.job TO {role};")
    if lacks(row["cron_usage"], row["cron_runs"]):
        found[Section.RUNS] = Missing(Section.RUNS, "cron.job_run_details",
                                      f"GRANT USAGE ON SCHEMA cron TO {role}; GRANT SELECT ON cron.job_run_details TO {role};")
    if lacks(row["cronkit_usage"], row["registry"]):
        found[Section.REGISTRY] = Missing(
            Section.REGISTRY, "cronkit.managed_jobs",
            f"GRANT USAGE ON SCHEMA cronkit TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA cronkit TO {role};")
    if lacks(row["cronkit_usage"], row["ledger"], row["net_usage"], row["responses"]):
        found[Section.HTTP] = Missing(
            Section.HTTP, "cronkit's request ledger and net._http_response",
            f"GRANT USAGE ON SCHEMA cronkit, net TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA cronkit TO {role}; "
            f"GRANT SELECT ON net._http_response TO {role};")
    return found
