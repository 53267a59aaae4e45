"""The exporter's metric families, built from constructed readings (no database): names, labels, values."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from cronkit import monitor
from cronkit.db import dsn_label
from cronkit.errors import CronkitError, UsageError
from cronkit.exporter import FAMILIES, DoctorCounts, Read, Reading, _Background, families, newest_runs, parse_listen
from cronkit.monitor.missed import SUMMARY_SCHEMA as MISSED_SCHEMA
from cronkit.monitor.queues import TREND_SCHEMA
from cronkit.outcomes import OUTCOMES

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def healthy(database: str = "db1:5432/app") -> Reading:
    summary = monitor._frame([
        {"jobid": 1, "jobname": "sync", "active": True, "schedule": "* * * * *", "runs": 60, "succeeded": 58,
         "failed": 2, "running": 0, "p50_ms": 120.0, "p95_ms": 900.0, "max_ms": 1500.0},
        {"jobid": 2, "jobname": None, "active": False, "schedule": "0 3 * * *", "runs": 0, "succeeded": 0,
         "failed": 0, "running": 0},
    ], monitor.SUMMARY_SCHEMA)
    last = monitor._frame([
        {"jobid": 1, "jobname": "sync", "last_start": NOW - timedelta(seconds=30), "last_status": "failed"},
        {"jobid": 2, "jobname": None, "last_start": NOW - timedelta(hours=9), "last_status": "succeeded"},
    ], monitor.SUMMARY_SCHEMA).select("jobid", "jobname", "last_start", "last_status")
    http = monitor._frame([{"jobname": "sync", "requests": 60, "2xx": 55, "5xx": 3, "timeout": 2}], monitor.HTTP_SCHEMA)
    missed = monitor._frame([{"jobid": 1, "jobname": "sync", "expected": 60, "missed": 1}], MISSED_SCHEMA)
    queues = monitor._frame([{"taken_at": NOW, "project": "bubble-sync", "queue": "public.sync_queue", "kind": "table",
                              "pending": 7, "processing": 1, "failed": 0, "done": 40, "other": 0,
                              "oldest_pending_age_s": 95.0}], TREND_SCHEMA)
    state = monitor.MonitorState(1, 1, None, None, NOW, NOW, None, 0)
    doctor = DoctorCounts({("CONSECUTIVE_FAILURES", "critical"): 1, ("MISSED_RUNS", "warning"): 2}, 0, NOW)
    return Reading(database, up=True, seconds=0.02, summary=summary, last_runs=last, http=http, missed=missed,
                   queues=queues, state=state, doctor=doctor, projects={"sync": "bubble-sync"})


def scrape(*readings: Reading) -> dict[str, list[tuple[dict[str, str], float]]]:
    """``families`` rendered in the text format and parsed back with prometheus_client's own parser."""
    metrics = families(list(readings))

    class Fixed:
        def collect(self):  # type: ignore[no-untyped-def]
            return metrics

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in text_string_to_metric_families(text)}


def value(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    matches = [v for got, v in found[name] if all(got.get(k) == want for k, want in labels.items())]
    assert len(matches) == 1, (name, labels, found[name])
    return matches[0]


def test_every_family_is_exposed_even_when_no_database_has_a_sample_of_it() -> None:
    assert set(scrape()) == set(FAMILIES)
    assert set(scrape(healthy())) == set(FAMILIES)


def test_every_name_follows_the_prometheus_conventions() -> None:
    for name in FAMILIES:
        assert name.startswith("cronkit_") and name == name.lower()
        assert not name.endswith("_total"), "windowed counts are gauges: no _total suffix"
        if "timestamp" in name or "age" in name or "duration" in name or "window" in name:
            assert name.endswith("_seconds"), name


def test_a_job_is_labelled_by_database_project_and_jobname_never_job() -> None:
    found = scrape(healthy())
    for name in ("cronkit_job_runs", "cronkit_job_failures", "cronkit_job_last_run_timestamp_seconds",
                 "cronkit_http_requests", "cronkit_job_missed_runs"):
        for labels, _ in found[name]:
            assert "job" not in labels, "Prometheus sets `job` on every series it scrapes"
            assert labels["database"] == "db1:5432/app"
    assert value(found, "cronkit_job_runs", jobname="sync", project="bubble-sync") == 60
    assert value(found, "cronkit_job_failures", jobname="sync") == 2
    assert value(found, "cronkit_job_runs", jobname="jobid:2", project="") == 0  # unnamed and foreign


def test_the_last_run_comes_with_its_time_and_whether_it_succeeded() -> None:
    found = scrape(healthy())
    assert value(found, "cronkit_job_last_run_timestamp_seconds", jobname="sync") == (NOW - timedelta(seconds=30)).timestamp()
    assert value(found, "cronkit_job_last_run_success", jobname="sync") == 0
    assert value(found, "cronkit_job_last_run_success", jobname="jobid:2") == 1
    assert value(found, "cronkit_job_active", jobname="jobid:2") == 0


def test_durations_are_seconds_by_quantile_and_a_job_without_runs_has_none() -> None:
    found = scrape(healthy())
    assert value(found, "cronkit_job_duration_seconds", jobname="sync", quantile="0.95") == 0.9
    assert value(found, "cronkit_job_duration_seconds", jobname="sync", quantile="1") == 1.5
    assert not [labels for labels, _ in found["cronkit_job_duration_seconds"] if labels["jobname"] == "jobid:2"]


def test_http_requests_have_one_series_per_outcome_class_zeros_included() -> None:
    found = scrape(healthy())
    assert {labels["outcome"] for labels, _ in found["cronkit_http_requests"]} == {str(o) for o in OUTCOMES}
    assert value(found, "cronkit_http_requests", jobname="sync", outcome="2xx") == 55
    assert value(found, "cronkit_http_requests", jobname="sync", outcome="3xx") == 0


def test_missed_runs_queues_and_doctor_findings() -> None:
    found = scrape(healthy())
    assert value(found, "cronkit_job_missed_runs", jobname="sync") == 1
    assert value(found, "cronkit_job_expected_runs", jobname="sync") == 60
    assert value(found, "cronkit_queue_depth", queue="public.sync_queue", status="pending") == 7
    assert value(found, "cronkit_queue_oldest_pending_age_seconds", project="bubble-sync") == 95
    assert value(found, "cronkit_doctor_findings", code="CONSECUTIVE_FAILURES", severity="critical") == 1
    assert value(found, "cronkit_doctor_findings", code="MISSED_RUNS", severity="warning") == 2


def test_a_down_database_says_so_and_the_others_are_still_served() -> None:
    found = scrape(Reading("down:5432/app", up=False, seconds=3.0), healthy())
    assert value(found, "cronkit_up", database="down:5432/app") == 0
    assert value(found, "cronkit_up", database="db1:5432/app") == 1
    assert {labels["database"] for labels, _ in found["cronkit_job_runs"]} == {"db1:5432/app"}
    assert not [labels for labels, _ in found["cronkit_read_success"] if labels["database"] == "down:5432/app"]


def test_a_read_that_failed_is_zero_and_its_families_stay_empty() -> None:
    reading = healthy()
    reading.http = None
    reading.failed[Read.HTTP] = "permission denied for table request_ledger"
    found = scrape(reading)
    assert value(found, "cronkit_read_success", read="http") == 0
    assert value(found, "cronkit_read_success", read="jobs") == 1
    assert found["cronkit_http_requests"] == []


@pytest.mark.parametrize(("dsn", "label"), [
    ("postgresql://watcher:s3cret@db.example.com:6543/app", "db.example.com:6543/app"),
    ("host=/var/run/postgresql dbname=app user=watcher password=s3cret", "/var/run/postgresql:5432/app"),
    ("postgresql://watcher:s3cret@db.example.com/", "db.example.com:5432/watcher"),
])
def test_the_database_label_holds_neither_user_nor_password(dsn: str, label: str) -> None:
    assert dsn_label(dsn, environ={}) == label


@pytest.mark.parametrize(("text", "address"), [
    ("127.0.0.1:9187", ("127.0.0.1", 9187)), (":9187", ("0.0.0.0", 9187)), ("[::1]:9187", ("::1", 9187)),
])
def test_it_reads_a_listen_address(text: str, address: tuple[str, int]) -> None:
    assert parse_listen(text) == address


@pytest.mark.parametrize("text", ["9187", "host:", "host:http", "host:70000"])
def test_it_refuses_a_listen_address_without_a_port(text: str) -> None:
    with pytest.raises(UsageError):
        parse_listen(text)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_doctor_runs_at_most_once_per_ttl_and_only_the_first_scrape_waits() -> None:
    clock, calls, release = Clock(), [], threading.Event()

    def compute() -> DoctorCounts:
        calls.append(clock.now)
        if len(calls) > 1:
            release.wait(5)  # a slow refresh: scrapes meanwhile serve the previous result
        return DoctorCounts({}, len(calls), NOW)

    cache = _Background(compute, timedelta(seconds=60), clock=clock)
    assert cache.get() == (DoctorCounts({}, 1, NOW), None)  # the first one waited
    clock.now = 30
    assert cache.get()[0].skipped == 1 and len(calls) == 1  # type: ignore[union-attr]  # fresh: no new run
    clock.now = 61
    assert cache.get()[0].skipped == 1  # type: ignore[union-attr]  # stale: refresh started, old value served
    assert cache.get()[0].skipped == 1 and len(calls) == 2  # type: ignore[union-attr]  # one refresh at a time
    release.set()
    cache.join(5)
    assert cache.get()[0].skipped == 2  # type: ignore[union-attr]


def test_a_failed_doctor_run_keeps_the_last_result_and_reports_why() -> None:
    clock, results = Clock(), [DoctorCounts({}, 0, NOW), CronkitError("statement timeout")]

    def compute() -> DoctorCounts:
        result = results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result

    cache = _Background(compute, timedelta(seconds=60), clock=clock)
    assert cache.get() == (DoctorCounts({}, 0, NOW), None)
    clock.now = 61
    cache.get(wait=True)
    assert cache.get() == (DoctorCounts({}, 0, NOW), "statement timeout")


def test_the_newest_run_of_a_job_is_taken_from_whichever_window_has_it() -> None:
    def runs(*rows: tuple[int, datetime, str]) -> object:
        return monitor._frame([{"jobid": j, "jobname": f"j{j}", "last_start": t, "last_status": st} for j, t, st in rows],
                              monitor.SUMMARY_SCHEMA)

    lookback = runs((1, NOW - timedelta(minutes=5), "succeeded"), (2, NOW - timedelta(days=3), "failed"))
    window = runs((1, NOW - timedelta(seconds=10), "failed"), (3, None, None))  # type: ignore[arg-type]
    newest = newest_runs(lookback, window)  # type: ignore[arg-type]
    assert newest is not None
    assert sorted(newest.select("jobid", "last_status").rows()) == [(1, "failed"), (2, "failed")]
    assert newest_runs(None, None) is None
