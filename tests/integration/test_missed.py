"""Expected versus actual runs, on synthetic histories with pg_cron's exact semantics.

Most tests call the pure :func:`cronkit.monitor.missed.analyze`; the last one reads a synthetic history
back from the sandbox with :func:`cronkit.monitor.missed.detect_missed`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from cronkit.monitor.missed import JobInfo, analyze, detect_missed
from cronkit.schedules import PgCronVersion
from tests.integration.test_monitor import iso, monitoring_schema  # noqa: F401 - fixtures

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
MIN, SEC = timedelta(minutes=1), timedelta(seconds=1)
RUNS_SCHEMA = {"jobid": pl.Int64, "runid": pl.Int64, "status": pl.String, "start_time": pl.Datetime("us", "UTC"),
               "end_time": pl.Datetime("us", "UTC"), "return_message": pl.String}


class History:
    """Synthetic cron.job_run_details rows, built in start order."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def run(self, jobid: int, start: timedelta, took: timedelta | None = SEC, status: str = "succeeded",
            message: str = "1 row") -> History:
        begin = T0 + start
        self.rows.append({"jobid": jobid, "runid": len(self.rows) + 1, "status": status, "start_time": begin,
                          "end_time": None if took is None else begin + took, "return_message": message})
        return self

    def every_minute(self, jobid: int, minutes: range, offset: timedelta = SEC) -> History:
        for m in minutes:
            self.run(jobid, m * MIN + offset)
        return self

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.rows, schema=RUNS_SCHEMA)


def kinds(report: Any, jobid: int = 1) -> list[tuple[int, str]]:
    """(minute after T0, kind) of each reported slot."""
    frame = report.slots.filter(pl.col("jobid") == jobid)
    return [(int((s - T0).total_seconds() // 60), k) for s, k in frame.select("slot", "kind").rows()]


def summary(report: Any, jobid: int = 1) -> dict[str, Any]:
    return report.summary.filter(pl.col("jobid") == jobid).row(0, named=True)


MINUTELY = JobInfo(1, "every-minute", "* * * * *")


def test_a_healthy_minutely_job_has_every_slot_on_time() -> None:
    history = History().every_minute(1, range(30))
    report = analyze([MINUTELY], history.frame(), T0, T0 + 30 * MIN, now=T0 + 40 * MIN)
    assert kinds(report) == [(m, "on_time") for m in range(30)]
    assert summary(report)["status"] == "ok"
    assert summary(report)["max_delay_s"] == 1.0


def test_a_missing_run_is_missed_and_the_next_run_is_not_blamed_for_it() -> None:
    history = History().every_minute(1, range(10)).every_minute(1, range(11, 20))
    report = analyze([MINUTELY], history.frame(), T0, T0 + 20 * MIN, now=T0 + 30 * MIN)
    assert kinds(report)[9:12] == [(9, "on_time"), (10, "missed"), (11, "on_time")]
    assert (summary(report)["missed"], summary(report)["status"]) == (1, "missed")


def test_an_overrun_queues_one_run_per_minute_that_then_run_back_to_back() -> None:
    # the 10:05 run takes 4.5 minutes: slots 10:06-10:09 are queued and run one after another
    history = History().every_minute(1, range(5)).run(1, 5 * MIN + SEC, 4 * MIN + 30 * SEC)
    start = 9 * MIN + 32 * SEC
    for k in range(4):
        history.run(1, start + 2 * k * SEC)
    history.every_minute(1, range(10, 15))
    report = analyze([MINUTELY], history.frame(), T0, T0 + 15 * MIN, now=T0 + 20 * MIN)

    assert kinds(report)[5:11] == [(5, "on_time"), (6, "queued"), (7, "queued"), (8, "queued"), (9, "queued"), (10, "on_time")]
    overruns = report.events.filter(pl.col("kind") == "overrun")
    assert overruns.height == 1 and "4 slot(s)" in overruns.item(0, "detail")
    assert summary(report)["status"] == "overrun"


def test_a_run_that_starts_well_after_its_slot_is_late() -> None:
    history = History().every_minute(1, range(3)).run(1, 3 * MIN + 40 * SEC).every_minute(1, range(4, 6))
    report = analyze([MINUTELY], history.frame(), T0, T0 + 6 * MIN, now=T0 + 10 * MIN)
    assert kinds(report)[3] == (3, "late")
    assert summary(report)["max_delay_s"] == 40.0


def test_a_job_that_stopped_firing_is_reported_with_the_time_it_went_silent() -> None:
    history = History().every_minute(1, range(10))
    report = analyze([MINUTELY], history.frame(), T0, T0 + 30 * MIN, now=T0 + 30 * MIN)
    row = summary(report)
    assert (row["status"], row["silent_since"], row["missed"]) == ("stopped", T0 + 10 * MIN, 20)


def test_slots_inside_a_server_downtime_are_not_replayed_and_not_counted_as_missed() -> None:
    # server down 10:10-10:20; the run interrupted by it is marked 'server restarted' at start-up
    history = (History().every_minute(1, range(11)).every_minute(2, range(10))
               .run(2, 10 * MIN + SEC, None, "failed", "server restarted")
               .every_minute(1, range(21, 30)).every_minute(2, range(21, 30)))
    jobs = [MINUTELY, JobInfo(2, "other", "* * * * *")]
    report = analyze(jobs, history.frame(), T0, T0 + 30 * MIN, now=T0 + 40 * MIN)

    assert [k for m, k in kinds(report) if 11 <= m <= 20] == ["downtime"] * 10
    assert summary(report)["missed"] == 0 and summary(report)["downtime"] == 10
    assert summary(report, 2)["missed"] == 0 and summary(report, 2)["downtime"] == 10
    covering = report.downtime.filter((pl.col("start") <= T0 + 11 * MIN) & (pl.col("end") >= T0 + 21 * MIN))
    assert "server restarted" in covering.item(0, "reason")


def test_a_silence_of_every_job_is_inferred_as_downtime_without_restart_evidence() -> None:
    history = (History().every_minute(1, range(10)).every_minute(2, range(10))
               .every_minute(1, range(20, 30)).every_minute(2, range(20, 30)))
    jobs = [MINUTELY, JobInfo(2, "other", "* * * * *")]
    inferred = analyze(jobs, history.frame(), T0, T0 + 30 * MIN, now=T0 + 40 * MIN)
    strict = analyze(jobs, history.frame(), T0, T0 + 30 * MIN, now=T0 + 40 * MIN, infer_downtime=False)
    assert (summary(inferred)["downtime"], summary(inferred)["missed"]) == (10, 0)
    assert (summary(strict)["downtime"], summary(strict)["missed"]) == (0, 10)


def test_slots_behind_a_run_that_is_still_running_are_pending() -> None:
    history = History().every_minute(1, range(5)).run(1, 5 * MIN + SEC, None, "running", "")
    report = analyze([MINUTELY], history.frame(), T0, T0 + 12 * MIN, now=T0 + 12 * MIN)
    assert [k for m, k in kinds(report) if m > 5] == ["pending"] * 6


def test_an_hourly_job_is_checked_against_pg_cron_calendar_and_inactive_jobs_are_skipped() -> None:
    hourly = JobInfo(3, "hourly", "15 */2 * * *")
    history = History().run(3, 15 * MIN + 2 * SEC).run(3, 2 * 60 * MIN + 15 * MIN + 2 * SEC)
    report = analyze([hourly, JobInfo(4, "off", "* * * * *", active=False)], history.frame(),
                     T0, T0 + 6 * 60 * MIN, now=T0 + 7 * 60 * MIN)
    assert kinds(report, 3) == [(15, "on_time"), (135, "on_time"), (255, "missed")]
    assert summary(report, 4)["status"] == "inactive" and summary(report, 4)["expected"] == 0


def test_an_interval_job_is_anchored_to_its_last_start_and_queues_at_most_one_catch_up() -> None:
    job = JobInfo(5, "every-30s", "30 seconds")
    history = (History().run(5, 0 * SEC).run(5, 30 * SEC)
               .run(5, 60 * SEC, 75 * SEC)       # overruns its 30 s interval by 45 s
               .run(5, 135 * SEC + timedelta(milliseconds=300))  # one catch-up right after the end
               .run(5, 165 * SEC + timedelta(milliseconds=500))
               .run(5, 285 * SEC))                # 90 s late: three intervals passed
    report = analyze([job], history.frame(), T0, T0 + 5 * MIN, now=T0 + 5 * MIN,
                     version=PgCronVersion(1, 6, 4))
    frame = report.slots.filter(pl.col("jobid") == 5)
    assert frame.get_column("kind").to_list() == ["on_time", "on_time", "queued", "on_time", "missed", "missed",
                                                  "missed", "on_time"]
    assert report.events.filter(pl.col("kind") == "overrun").height == 1


def test_two_runs_of_one_job_at_the_same_time_are_an_overlap() -> None:
    history = History().run(1, SEC, 3 * MIN).run(1, MIN + SEC).every_minute(1, range(4, 6))
    report = analyze([MINUTELY], history.frame(), T0, T0 + 6 * MIN, now=T0 + 10 * MIN)
    assert summary(report)["overlaps"] == 1


def test_detect_missed_reads_cron_job_and_the_run_history(iso: Any) -> None:
    jobid = iso.execute("SELECT cron.schedule('ck_missed_probe', '*/10 * * * *', 'SELECT 1') AS id").fetchone()["id"]
    now = iso.execute("SELECT now() AS t").fetchone()["t"]
    start = (now - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    for m in (0, 10, 30, 40, 50):  # 20 missing
        begin = start + m * MIN + SEC
        iso.execute("INSERT INTO cron.job_run_details (jobid, job_pid, database, username, command, status, "
                    "return_message, start_time, end_time) VALUES (%s, 1, current_database(), current_user, 'x', "
                    "'succeeded', '1 row', %s, %s)", (jobid, begin, begin + SEC))

    report = detect_missed(iso, start, start + 60 * MIN, jobs=["ck_missed_probe"])

    assert [k for _, k in report.slots.select("slot", "kind").rows()] == [
        "on_time", "on_time", "missed", "on_time", "on_time", "on_time"]
    assert report.summary.item(0, "status") == "missed"


def test_one_job_asked_about_is_judged_as_among_all_when_another_job_marks_a_restart(iso: Any) -> None:
    """For one job only its own runs are read — unless a restart needs the others: here another job's
    run failed with 'server restarted', which places the outage that excuses this job's two slots."""
    ids = {name: iso.execute("SELECT cron.schedule(%s, '*/10 * * * *', 'SELECT 1') AS id", (name,)).fetchone()["id"]
           for name in ("ck_alone_a", "ck_alone_b")}
    now = iso.execute("SELECT now() AS t").fetchone()["t"]
    start = (now - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    runs = [("ck_alone_a", m, "succeeded", "1 row") for m in (0, 10, 40, 50)] + \
        [("ck_alone_b", m, "succeeded", "1 row") for m in (0, 10, 40, 50)] + [("ck_alone_b", 12, "failed", "server restarted")]
    for name, m, status, message in sorted(runs, key=lambda r: r[1]):
        begin = start + m * MIN + SEC
        iso.execute("INSERT INTO cron.job_run_details (jobid, job_pid, database, username, command, status, "
                    "return_message, start_time, end_time) VALUES (%s, 1, current_database(), current_user, 'x', "
                    "%s, %s, %s, %s)", (ids[name], status, message, begin, begin + SEC))

    alone = detect_missed(iso, start, start + 60 * MIN, jobs=["ck_alone_a"])
    among_all = detect_missed(iso, start, start + 60 * MIN)

    mine = among_all.slots.filter(pl.col("jobid") == ids["ck_alone_a"])
    assert alone.slots.equals(mine)
    assert [k for _, k in alone.slots.select("slot", "kind").rows()] == [
        "on_time", "on_time", "downtime", "downtime", "on_time", "on_time"]
