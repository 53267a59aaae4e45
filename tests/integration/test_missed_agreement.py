"""The doctor's MISSED_RUNS and the monitor's missed-run engine agree on the same histories.

There is one engine (:mod:`cronkit.monitor.missed`); the doctor calls it with its anchor rule
(``AnchorRule.EVIDENCE``) and turns its report into findings. Each test feeds one history to both —
the engine's :func:`~cronkit.monitor.missed.report` and the doctor's check on a
:class:`~cronkit.doctor.context.Context` answering from the same rows — and requires the same
not-started slots per job: in UTC and in a zone with a DST change, for cron and interval
(``N seconds``) jobs, and none for a paused job. The last test reads a synthetic history from the
database through both paths (:func:`detect_missed` and :func:`diagnose`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from cronkit.doctor import CATALOGUE, DEFAULTS, diagnose
from cronkit.doctor.context import Context
from cronkit.facts import ServerFacts
from cronkit.monitor import missed
from cronkit.schedules import PgCronVersion
from tests.integration.test_monitor import iso, monitoring_schema  # noqa: F401 - fixtures

SEC, MIN = timedelta(seconds=1), timedelta(minutes=1)
GRACE = DEFAULTS.missed_grace


def facts(pg_cron: str, zone: str | None) -> ServerFacts:
    return ServerFacts(postgresql="15", database="postgres", role="postgres", superuser=True, bypassrls=True,
                       pg_cron=pg_cron, pg_net=None, vault=None, pgmq=None, cron_database=None,
                       cron_timezone=zone, preload="pg_cron", scheduler_databases=["postgres"])


class Runs:
    """Synthetic cron.job_run_details rows."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def run(self, jobid: int, start: datetime, took: timedelta = SEC) -> Runs:
        self.rows.append({"jobid": jobid, "runid": len(self.rows) + 1, "status": "succeeded", "start_time": start,
                          "end_time": start + took, "return_message": "1 row"})
        return self

    def every(self, jobid: int, first: datetime, last: datetime, step: timedelta, skip: tuple[datetime, datetime] | None = None) -> Runs:
        moment = first
        while moment <= last:
            if skip is None or not skip[0] <= moment < skip[1]:
                self.run(jobid, moment + SEC)
            moment += step
        return self

    def frame(self) -> pl.DataFrame:
        return missed.runs_frame(sorted(self.rows, key=lambda r: r["start_time"]))


def history(jobs: list[dict[str, Any]], runs: Runs, since: datetime, now: datetime, version: PgCronVersion,
            zone: str | None) -> missed.History:
    starts: dict[int, list[datetime]] = {}
    for r in runs.rows:
        starts.setdefault(r["jobid"], []).append(r["start_time"])
    bounds = {jobid: {"last_before": max((t for t in ts if t < since), default=None),
                      "first_in_window": min((t for t in ts if t >= since), default=None)}
              for jobid, ts in starts.items()}
    return missed.History(jobs=jobs, runs=runs.frame(), now=now, version=version, zone_setting=zone,
                          booted=since - timedelta(days=30), bounds=bounds)


def engine_view(hist: missed.History, since: datetime, until: datetime,
                anchors: missed.AnchorRule = missed.AnchorRule.EVIDENCE) -> dict[str, list[datetime]]:
    """Not-started slots (missed or downtime) per job name, from the monitor's engine."""
    found = missed.report(hist, since, until, anchors=anchors, grace=GRACE)
    slots = found.slots.filter(pl.col("kind").is_in(["missed", "downtime"]))
    view: dict[str, list[datetime]] = {}
    for name, slot in slots.select("jobname", "slot").rows():
        view.setdefault(name, []).append(slot)
    return view


def doctor_view(hist: missed.History, server: ServerFacts, since: datetime, now: datetime) -> dict[str, tuple[int, list[str]]]:
    """(count, first ten times) of not-started slots per job, from the doctor's MISSED_RUNS."""
    ctx = Context(conn=None, facts=server, manifest=None, environment=None, environ=None, now=now,  # type: ignore[arg-type]
                  window=now - since, limits=DEFAULTS)
    ctx.preload(missed_history=hist, server_state={"now": now, "in_recovery": False, "started_at": hist.booted},
                activity=[], runs=[])
    findings = list(CATALOGUE["MISSED_RUNS"].run(ctx))
    assert all(f.job is not None for f in findings), "no shared outage in these histories"
    return {f.job: (f.evidence["not_started"], f.evidence["not_started_times"]) for f in findings}


def assert_agree(engine: dict[str, list[datetime]], doctor: dict[str, tuple[int, list[str]]]) -> None:
    assert set(doctor) == set(engine)
    for job, slots in engine.items():
        assert doctor[job] == (len(slots), [s.isoformat() for s in slots[:10]]), job


JOBS = [
    {"jobid": 1, "jobname": "minutely", "schedule": "* * * * *", "active": True},
    {"jobid": 2, "jobname": "quarterly", "schedule": "*/15 * * * *", "active": True},
    {"jobid": 3, "jobname": "interval", "schedule": "30 seconds", "active": True},
    {"jobid": 4, "jobname": "paused", "schedule": "* * * * *", "active": False},
]


def test_utc_cron_and_interval_jobs_and_a_paused_job() -> None:
    since = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    now = since + timedelta(hours=2)
    runs = (Runs()
            .every(1, since - 2 * MIN, now - 2 * MIN, MIN, skip=(since + 20 * MIN, since + 23 * MIN))
            .every(2, since - 15 * MIN, now - 15 * MIN, 15 * MIN, skip=(since + 60 * MIN, since + 61 * MIN))
            .every(3, since - MIN, now - MIN, 30 * SEC, skip=(since + 40 * MIN, since + 42 * MIN)))
    hist = history(JOBS, runs, since, now, PgCronVersion(1, 6, 4), None)
    engine = engine_view(hist, since, now)
    doctor = doctor_view(hist, facts("1.6.4", None), since, now)
    assert set(engine) == {"minutely", "quarterly", "interval"}, "the paused job misses nothing"
    assert len(engine["minutely"]) == 3 and len(engine["quarterly"]) == 1 and len(engine["interval"]) >= 3
    assert_agree(engine, doctor)
    # jobs that ran before the window are anchored alike by the monitor's own rule
    assert engine_view(hist, since, now, missed.AnchorRule.REGISTRY) == engine


def test_a_zone_with_a_dst_change_is_the_zone_both_evaluate_in() -> None:
    # Europe/Berlin springs forward at 01:00 UTC on 2026-03-29: local 02:00-03:00 does not exist
    since = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
    now = since + timedelta(hours=6)
    jobs = [{"jobid": 1, "jobname": "local-hours", "schedule": "0 * * * *", "active": True},
            {"jobid": 2, "jobname": "local-night", "schedule": "30 1-5 * * *", "active": True},
            {"jobid": 3, "jobname": "keepalive", "schedule": "* * * * *", "active": True}]
    # a job that never misses keeps the scheduler visibly alive: the misses are the jobs' own
    runs = Runs().every(3, since - 2 * MIN, now - 2 * MIN, MIN)
    runs.run(1, since - timedelta(hours=1) + SEC).run(2, since - timedelta(hours=20) + SEC)
    runs.run(1, since + SEC).run(1, since + timedelta(hours=3) + SEC)  # the others are missed
    runs.run(2, datetime(2026, 3, 29, 0, 30, 1, tzinfo=UTC))  # 01:30 CET
    hist = history(jobs, runs, since, now, PgCronVersion(1, 6, 4), "Europe/Berlin")
    assert hist.zone == "Europe/Berlin"
    engine = engine_view(hist, since, now)
    assert_agree(engine, doctor_view(hist, facts("1.6.4", "Europe/Berlin"), since, now))
    # 03:30 and 04:30 CEST (01:30, 02:30 UTC) and 05:30 CEST (03:30 UTC); 02:30 local never happens
    assert [s.strftime("%H:%M") for s in engine["local-night"]] == ["01:30", "02:30", "03:30"]
    # before pg_cron 1.5 the setting does not exist: both evaluate in GMT
    old = history(jobs, runs, since, now, PgCronVersion(1, 4, 2), "Europe/Berlin")
    assert old.zone == "GMT"
    assert_agree(engine_view(old, since, now), doctor_view(old, facts("1.4-1", "Europe/Berlin"), since, now))


@pytest.mark.usefixtures("monitoring_schema")
def test_the_database_paths_agree_on_a_synthetic_history(iso: Any) -> None:  # noqa: F811 - the fixture
    jobid = iso.execute("SELECT cron.schedule('ck_agree_probe', '*/10 * * * *', 'SELECT 1') AS id").fetchone()["id"]
    server_now = iso.execute("SELECT now() AS t").fetchone()["t"]
    since = (server_now - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    until = since + 65 * MIN
    for m in (-10, 0, 10, 30, 40, 60):  # 20 and 50 missing; -10 anchors it before the window
        begin = since + m * MIN + SEC
        iso.execute("INSERT INTO cron.job_run_details (jobid, job_pid, database, username, command, status, "
                    "return_message, start_time, end_time) VALUES (%s, 1, current_database(), current_user, 'x', "
                    "'succeeded', '1 row', %s, %s)", (jobid, begin, begin + SEC))

    monitor = missed.detect_missed(iso, since, until, grace=GRACE, anchors=missed.AnchorRule.EVIDENCE)
    report = diagnose(iso, checks=["MISSED_RUNS"], now=until, window=until - since)

    times = monitor.slots.filter(pl.col("kind").is_in(["missed", "downtime"])).get_column("slot").to_list()
    assert [t - since for t in times] == [20 * MIN, 50 * MIN]
    finding = report.find("MISSED_RUNS", "ck_agree_probe")
    assert finding, (report.findings, report.skipped)
    assert finding[0].evidence["not_started"] == len(times)
    assert finding[0].evidence["not_started_times"] == [t.isoformat() for t in times]
