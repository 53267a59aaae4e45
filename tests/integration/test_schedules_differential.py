"""cronkit accepts exactly the schedules the installed pg_cron accepts.

Every schedule in tests/integration/schedule_corpus.txt goes to the real ``cron.schedule()`` and to
``parse_schedule(expr, version=<installed version>)``; the answers must agree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

from cronkit.errors import ScheduleError, UnsupportedVersion
from cronkit.schedules import LATEST, PgCronVersion, parse_schedule

CORPUS = Path(__file__).with_name("schedule_corpus.txt")


def read_corpus() -> list[str]:
    """The corpus: one JSON string a line, with '#' comment lines and trailing '# ...' comments."""
    decoder = json.JSONDecoder()
    schedules = []
    for number, line in enumerate(CORPUS.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        expr, end = decoder.raw_decode(line)
        rest = line[end:].strip()
        assert isinstance(expr, str) and (not rest or rest.startswith("#")), f"{CORPUS.name}:{number}: {line!r}"
        schedules.append(expr)
    return schedules


def cronkit_answers(expr: str, version: PgCronVersion) -> set[bool]:
    """Whether cronkit accepts ``expr``: {True}, {False}, or both when the answer depends on a
    1.6 patch release that extversion does not reveal ('1.6' is every release from 1.6.1 on)."""
    versions = {version, LATEST} if (version.major, version.minor) == (LATEST.major, LATEST.minor) else {version}
    return {_accepts(expr, v) for v in versions}


def _accepts(expr: str, version: PgCronVersion) -> bool:
    try:
        parse_schedule(expr, version)
    except (ScheduleError, UnsupportedVersion):
        return False
    return True


def pg_cron_accepts(db: psycopg.Connection[dict[str, Any]], name: str, expr: str) -> bool:
    try:
        with db.transaction():
            row = db.execute("select cron.schedule(%s, %s, 'select 1') as jobid", (name, expr)).fetchone()
    except psycopg.errors.InvalidParameterValue as exc:
        if "invalid schedule" not in str(exc):
            raise
        return False
    assert row is not None
    db.execute("select cron.unschedule(%s::bigint)", (row["jobid"],))
    return True


def test_the_corpus_mixes_schedules_pg_cron_accepts_and_rejects() -> None:
    answers = [_accepts(expr, LATEST) for expr in read_corpus()]
    assert len(answers) >= 60
    assert answers.count(True) >= 25 and answers.count(False) >= 25


def test_it_accepts_and_rejects_what_the_installed_pg_cron_does(
    db: psycopg.Connection[dict[str, Any]], job_prefix: str, pg_cron_version: PgCronVersion
) -> None:
    disagreements = []
    for number, expr in enumerate(read_corpus()):
        accepted = pg_cron_accepts(db, f"{job_prefix}{number}", expr)
        ours = cronkit_answers(expr, pg_cron_version)
        if accepted not in ours:
            said = "accepts" if accepted else "rejects"
            disagreements.append(f"{expr!r}: pg_cron {pg_cron_version} {said} it, cronkit does not")
    assert not disagreements, "\n".join(disagreements)
