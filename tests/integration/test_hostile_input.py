"""Hostile text in any manifest field, applied to the sandbox: refused cleanly, or stored faithfully.

The database-side half of tests/unit/test_hostile_manifest.py. For generated text in each field a
job can carry, one of two things must hold:

- **refused**: loading or planning names the problem (a key path and a fix), ``apply`` applies
  nothing, and the database :func:`snapshot` is unchanged;
- **kept**: ``apply`` succeeds, a second plan has nothing to change (the apply converges), and the
  request the wrapper queues for pg_net (read inside a transaction that is rolled back, so nothing
  is sent) carries the value exactly: the url path, a header, a query parameter or a body value.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cronkit.errors import CronkitError, ManifestError
from tests.jobs_support import (  # noqa: F401 - fixture
    Project,
    cronkit_schema,
    job_row,
    project,
    snapshot,
)

Conn = psycopg.Connection[dict[str, Any]]
pytestmark = pytest.mark.usefixtures("cronkit_schema")

URL = "http://127.0.0.1:9/hostile/"
#: a field and where its value shows up in the queued request (None: only the name of the job)
FIELDS = ("url path", "header value", "params value", "body value", "description", "name", "sql")
#: text a careless or hostile user might paste: every Unicode category, control characters included
TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=24)


def job_for(project: Project, field: str, value: str, n: int) -> dict[str, Any]:
    job: dict[str, Any] = {"name": project.job(f"h{n}"), "schedule": "0 0 1 1 *", "url": URL + "p",
                           "headers": {"x-v": "v"}}
    if field == "url path":
        job["url"] = URL + value
    elif field == "header value":
        job["headers"] = {"x-v": value}
    elif field == "params value":
        job["params"] = {"q": value}
    elif field == "body value":
        job["body"] = {"k": value}
    elif field == "description":
        job["description"] = value
    elif field == "name":
        job["name"] = project.job(f"h{n}_") + value
    elif field == "sql":
        job = {"name": job["name"], "schedule": job["schedule"], "sql": value}
    return job


def queued_request(db: Conn, command: str) -> dict[str, Any] | None:
    """The request the job's command queues for pg_net, read before anything is sent."""
    with db.transaction(force_rollback=True):
        mark = db.execute("select coalesce(max(id), 0) as id from net.http_request_queue").fetchone()["id"]
        db.execute(command)  # type: ignore[arg-type]  # the job's own command, read from cron.job
        return db.execute("select url, headers, convert_from(body, 'UTF8') as body from net.http_request_queue "
                          "where id > %s order by id desc limit 1", (mark,)).fetchone()


def check_request(field: str, value: str, request: dict[str, Any]) -> None:
    if field == "url path":
        assert request["url"] == URL + value
    elif field == "header value":
        assert request["headers"]["x-v"] == value
    elif field == "params value":
        query = urllib.parse.urlsplit(request["url"]).query
        assert urllib.parse.parse_qs(query, keep_blank_values=True) == {"q": [value]}
    elif field == "body value":
        assert json.loads(request["body"]) == {"k": value}


counter = iter(range(10**6))


def outcome(project: Project, db: Conn, field: str, value: str) -> str:
    """``"refused"`` or ``"kept"``, after asserting everything either outcome promises."""
    job = job_for(project, field, value, next(counter))
    data = project.data(job)
    before = snapshot(db, project.prefix)
    try:
        plan, _, _ = project.plan(data)
    except ManifestError as error:
        assert "cronkit.toml: jobs[0]" in str(error) and "fix:" in str(error), str(error)
        return "refused"
    if plan.problems:
        with pytest.raises(CronkitError):
            project.apply(data)
        assert snapshot(db, project.prefix) == before, f"{field}: a refused apply changed the database"
        return "refused"

    project.apply(data)
    assert project.plan(data)[0].changes == [], f"{field}: {value!r} applied but does not converge"
    row = job_row(db, job["name"])
    assert row is not None, f"{field}: the job is not stored under its name"
    if field != "sql":  # sql was parsed by the server at plan time; running arbitrary text is not this test's business
        request = queued_request(db, row["command"])
        assert request is not None, f"{field}: {value!r} applied, but the wrapper queues no request"
        check_request(field, value, request)
    return "kept"


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(field=st.sampled_from(FIELDS), value=TEXT)
def test_any_text_in_any_field_is_refused_with_nothing_changed_or_applied_and_kept(
    project: Project, db: Conn, field: str, value: str
) -> None:
    event(f"{field}: {outcome(project, db, field, value)}")  # --hypothesis-show-statistics shows the mix


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("url path", "a b", "refused"),
    ("url path", "a%20b/c?x=1&y=%C3%A9", "kept"),
    ("header value", "line\nbreak", "refused"),
    ("header value", "it's \"q\" $$; --", "kept"),
    ("params value", "a&b=c d é\n", "kept"),
    ("body value", "\u2028\t$$ \\ é", "kept"),
    ("name", "x" * 70, "refused"),
    ("name", "it's $$; --", "kept"),
    ("sql", "selec 1", "refused"),
    ("sql", "select $q$;'$q$", "kept"),
])
def test_each_field_can_be_refused_or_kept(project: Project, db: Conn, field: str, value: str, expected: str) -> None:
    """The property above could pass by refusing everything: each field shows both outcomes."""
    assert outcome(project, db, field, value) == expected
