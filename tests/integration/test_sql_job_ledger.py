"""An ``sql`` job records the requests its own SQL queued, and only those.

Adopted hand-made jobs stay ``sql`` when their functions cannot be read as one HTTP call; their
``net.http_post`` calls must still be attributed to them, or their 401s stay in the anonymous
bucket and "succeeded but called nothing" cannot be told. The wrapper is called here in a
transaction that is rolled back, so pg_net sends nothing; what the wrapper wrote to the ledger is
read inside that transaction.
"""

from __future__ import annotations

from typing import Any

import pytest

from cronkit import db as cdb
from tests.jobs_support import Project, cronkit_schema, project, registry_row  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("cronkit_schema")


def _queue(conn: Any, url: str) -> int:
    return conn.execute("select net.http_post(url := %s, body := '{}'::jsonb) as id", (url,)).fetchone()["id"]


def test_an_sql_job_records_its_own_requests_with_urls_cut_to_host_and_function(project: Project) -> None:
    helper = f"public.{project.prefix}calls"
    job = project.job("hand")
    with cdb.connect(project.dsn, autocommit=True) as conn:
        # a hand-made helper that queues one call inside an exception block (a subtransaction)
        conn.execute(f"""
            create or replace function {helper}() returns void language plpgsql as $$
            begin
              begin
                perform net.http_post(url := 'https://hooks.example.test/services/T0/B0/tok3n?x=1', body := '{{}}'::jsonb);
              exception when others then raise warning 'call failed';
              end;
            end $$""")
    project.apply(project.data({
        "name": job, "schedule": "0 3 * * *",
        "sql": f"select net.http_post(url := 'https://user:pw@abc.example.test/functions/v1/fn-a?apikey=k3y', "
               f"body := '{{}}'::jsonb); select {helper}();",
    }))
    with cdb.connect(project.dsn, autocommit=True) as conn:
        wrapper = registry_row(conn, job)["wrapper"]
    elsewhere = f"{project.target.supabase_url}/functions/v1/{project.function('elsewhere')}"  # answers 200
    try:
        with cdb.connect(project.dsn, autocommit=True) as other, cdb.connect(project.dsn) as conn:
            for _attempt in range(20):  # pg_net may send the later request before the wrapper looks: again
                committed = _queue(other, elsewhere)  # before ours began
                conn.execute("select pg_current_xact_id()")  # our transaction has its id from here on
                later = _queue(other, elsewhere)  # committed after: a newer xid
                other.execute("begin")
                _queue(other, "https://other.example.test/functions/v1/uncommitted")  # another session, still open
                conn.execute(f"select {wrapper}")
                seen = conn.execute("select count(*) as n from net.http_request_queue where id = %s", (later,)).fetchone()["n"]
                rows = conn.execute(
                    "select l.request_id, l.url from cronkit.request_ledger l where l.jobname = %s order by l.request_id",
                    (job,)).fetchall()
                conn.rollback()
                other.execute("rollback")
                if seen:
                    break
    finally:
        with cdb.connect(project.dsn, autocommit=True) as conn:
            conn.execute(f"drop function if exists {helper}()")
    assert [r["url"] for r in rows] == ["https://abc.example.test/functions/v1/fn-a", "https://hooks.example.test"]
    assert not {committed, later} & {r["request_id"] for r in rows}
    assert seen == 1, "the later request was already sent: the check above proved nothing"


def test_an_sql_job_that_queues_nothing_records_nothing(project: Project) -> None:
    job = project.job("quiet")
    project.apply(project.data({"name": job, "schedule": "0 3 * * *", "sql": "select 1"}))
    with cdb.connect(project.dsn) as conn:
        wrapper = registry_row(conn, job)["wrapper"]
        conn.execute(f"select {wrapper}")
        count = conn.execute("select count(*) as n from cronkit.request_ledger where jobname = %s", (job,)).fetchone()["n"]
        conn.rollback()
    assert count == 0
