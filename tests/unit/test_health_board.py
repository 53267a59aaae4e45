"""The monitor's health board: one row per job, its state from one rule, most trouble first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from cronkit import monitor as mon
from cronkit.monitor import missed
from cronkit.outcomes import OUTCOMES
from cronkit.runbooks.monitor import JobState, MonitorData, health_board, job_state

NOW = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)
SCHEDULE_WORDS = "Every fifth minute of every hour, in GMT"


def _run(jobid: int, name: str | None, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {k: None for k in mon.SUMMARY_SCHEMA}
    row.update(jobid=jobid, jobname=name, active=True, schedule="*/5 * * * *", runs=12, succeeded=12, failed=0,
               running=0, last_start=NOW - timedelta(minutes=3), last_status="succeeded", p95_ms=120.0)
    row.update(values)
    return row


def _http(name: str, **counts: int) -> dict[str, Any]:
    row: dict[str, Any] = {"jobname": name, "requests": sum(counts.values()), "last_error_at": None, "last_error": None}
    row.update({str(o): counts.get(str(o), 0) for o in OUTCOMES})
    if any(v for k, v in counts.items() if k != "2xx"):
        row.update(last_error_at=NOW - timedelta(minutes=1), last_error='{"error":"Invalid JWT"}')
    return row


def _data(runs: list[dict[str, Any]], http: list[dict[str, Any]], statuses: dict[int, str]) -> MonitorData:
    empty = {name: pl.DataFrame(schema=schema) for name, schema in (
        ("slots", missed.SLOTS_SCHEMA), ("timeline", mon.HTTP_TIMELINE_SCHEMA), ("runs", mon.RUNS_SCHEMA))}
    missed_rows = [{**{k: None for k in missed.SUMMARY_SCHEMA}, "jobid": j, "status": s} for j, s in statuses.items()]
    return MonitorData(
        since=NOW - timedelta(hours=1), until=NOW, jobs=None,
        summary=pl.DataFrame(runs, schema=mon.SUMMARY_SCHEMA), runs=empty["runs"],
        http=pl.DataFrame(http, schema=mon.HTTP_SCHEMA), http_timeline=empty["timeline"],
        missed=pl.DataFrame(missed_rows, schema=missed.SUMMARY_SCHEMA), slots=empty["slots"],
        queues=pl.DataFrame(), trend=pl.DataFrame(),
    )


def test_a_job_state_comes_from_its_runs_its_http_answers_and_its_missed_runs_in_that_order() -> None:
    ok = _run(1, "a")
    assert job_state(ok, None, "ok") is JobState.OK
    assert job_state({**ok, "active": False}, _http("a", **{"4xx": 3}), "inactive") is JobState.PAUSED
    assert job_state(ok, None, "stopped") is JobState.STOPPED
    assert job_state({**ok, "last_status": "failed", "failed": 1}, None, "ok") is JobState.FAILING
    assert job_state(ok, _http("a", **{"4xx": 3}), "ok") is JobState.FAILING  # no call got through
    assert job_state(ok, _http("a", **{"2xx": 9, "5xx": 1}), "ok") is JobState.DEGRADED
    assert job_state(ok, _http("a", **{"2xx": 9}), "late") is JobState.LATE
    assert job_state({**ok, "runs": 0, "last_start": None}, None, "ok") is JobState.NEVER_RAN


def test_the_board_puts_the_most_trouble_first_and_names_removed_jobs() -> None:
    data = _data(
        [_run(1, "a-ok"), _run(2, "b-key", last_status="succeeded"), _run(3, "c-paused", active=False),
         _run(4, None, schedule=None), _run(5, "e-stopped", last_start=NOW - timedelta(hours=2))],
        [_http("a-ok", **{"2xx": 12}), _http("b-key", **{"4xx": 12})],
        {1: "ok", 2: "ok", 3: "inactive", 5: "stopped"},
    )

    board = health_board(data)

    assert board.get_column("job").to_list() == ["e-stopped", "b-key", "c-paused", "a-ok", "jobid 4 (removed)"]
    assert board.get_column("state").to_list()[:4] == ["🛑 stopped", "❌ failing", "⏸️ paused", "✅ ok"]
    key = board.row(1, named=True)
    assert (key["HTTP 2xx"], key["HTTP failed"], key["last error"]) == (0, 12, '{"error":"Invalid JWT"}')
    ok = board.row(3, named=True)
    assert (ok["schedule"], ok["last run"], ok["next run"]) == (SCHEDULE_WORDS, "3 min ago (succeeded)", "in 4 min")
    assert board.row(2, named=True)["next run"] is None  # a paused job has no next run


def test_an_interval_job_is_next_due_an_interval_after_its_last_start() -> None:
    data = _data([_run(1, "every-30s", schedule="30 seconds", last_start=NOW - timedelta(seconds=10)),
                  _run(2, "overdue", schedule="30 seconds", last_start=NOW - timedelta(seconds=50))], [], {})
    board = health_board(data)
    assert board.select("job", "schedule", "next run").rows() == [
        ("every-30s", "Every 30 seconds", "in 20 s"), ("overdue", "Every 30 seconds", "due now")]


def test_the_http_table_shows_every_outcome_class_and_the_failing_jobs_first() -> None:
    from cronkit.runbooks.monitor import http_table

    data = _data([], [_http("a-fine", **{"2xx": 5}), _http("z-key", **{"4xx": 2, "timeout": 1})], {})
    table = http_table(data)
    assert table.columns == ["jobname", "requests", *[str(o) for o in OUTCOMES], "last_error_at", "last_error"]
    assert table.get_column("jobname").to_list() == ["z-key", "a-fine"]
    assert table.row(0, named=True)["timeout"] == 1 and table.row(1, named=True)["last_error"] is None


def test_a_queue_chart_without_snapshots_says_why_instead_of_drawing_empty_axes() -> None:
    from cronkit.runbooks.monitor import queue_chart

    data = _data([], [], {})
    assert "No queue is declared" in queue_chart(data).text
    declared = MonitorData(**{**data.__dict__, "queues": pl.DataFrame([{"queue": "public.q"}])})
    assert "No queue snapshot in this window yet" in queue_chart(declared).text


def test_a_part_that_cannot_be_read_shows_its_error_and_fix_in_place_and_the_others_still_render() -> None:
    from cronkit.errors import CronkitError
    from cronkit.runbooks.monitor import Part, health_view, http_table, outcome_chart, run_table

    broken = CronkitError("Could not read the HTTP outcomes: permission denied for table http_responses",
                          remedy="GRANT SELECT ON ALL TABLES IN SCHEMA cronkit TO watcher;")
    data = MonitorData(**{**_data([_run(1, "a")], [], {}).__dict__, "errors": {Part.HTTP: broken}})

    assert "permission denied" in outcome_chart(data).text and "GRANT SELECT" in http_table(data).text
    assert run_table(data).height == 1  # the run history was read and is shown
    assert "Not read: HTTP outcomes" in health_view(data).text and "✅" not in health_view(data).text


def test_with_the_database_down_every_part_says_so_and_nothing_claims_all_clear() -> None:
    from cronkit.errors import ConnectionFailed
    from cronkit.runbooks.monitor import Part, board_view, health_view, queue_chart

    down = ConnectionFailed("Could not connect: connection refused", remedy="Start the database or fix DATABASE_URL.")
    data = MonitorData(**{**_data([], [], {}).__dict__, "errors": dict.fromkeys(Part, down)})

    assert health_view(data).text.count("Nothing could be read") == 1
    for view in (board_view, queue_chart):
        assert "connection refused" in view(data).text and "Fix:" in view(data).text


def test_a_view_that_fails_to_draw_says_so_instead_of_blanking_the_page() -> None:
    from cronkit.runbooks.monitor import Part, panel

    @panel(Part.RUNS)
    def broken(data: MonitorData) -> None:
        raise KeyError("p95_ms")

    assert "could not be drawn (KeyError" in broken(_data([], [], {})).text


def test_charts_with_no_data_yet_say_why_instead_of_drawing_empty_axes() -> None:
    from cronkit.runbooks.monitor import duration_chart, missed_chart, outcome_chart

    data = _data([], [], {})
    assert "No finished run in this window yet" in duration_chart(data).text
    assert "No HTTP call in this window yet" in outcome_chart(data).text
    assert "No run was due in this window" in missed_chart(data).text


def test_the_board_strip_shows_each_bin_of_the_window_at_its_worst() -> None:
    from cronkit.runbooks.monitor import strips

    since = NOW - timedelta(hours=1)
    at = [since + timedelta(minutes=10 * i + 1) for i in range(6)]
    slots = pl.DataFrame([{"jobid": 1, "jobname": "a", "slot": t, "kind": kind}
                          for t, kind in zip(at, ["on_time", "late", "on_time", "missed", "on_time", "pending"], strict=True)]
                         + [{"jobid": 2, "jobname": "b", "slot": at[0], "kind": "downtime"}], schema=missed.SLOTS_SCHEMA)
    runs = pl.DataFrame([{"runid": 1, "jobid": 1, "jobname": "a", "status": "failed", "start_time": at[4],
                          "duration_ms": 5.0}], schema=mon.RUNS_SCHEMA)
    data = MonitorData(**{**_data([_run(1, "a"), _run(2, "b")], [], {}).__dict__, "slots": slots, "runs": runs})

    assert strips(data, bins=6) == {1: "▁▅▁✗✗·", 2: "✗·····"}
    board = health_board(data)
    assert board.filter(pl.col("job") == "a").item(0, "window, old → new") == strips(data)[1]


def test_the_drill_down_shows_the_picked_job_or_else_the_most_troubled_one() -> None:
    import marimo as mo

    from cronkit.runbooks.monitor import board_view, chosen_job, job_detail

    data = _data([_run(1, "a-ok"), _run(2, "b-key")], [_http("a-ok", **{"2xx": 12}), _http("b-key", **{"4xx": 12})],
                 {1: "ok", 2: "ok"})
    assert chosen_job(data, board_view(data)) == "b-key"  # nothing picked: the board's first row
    picked = type("Picked", (), {"value": pl.DataFrame({"job": ["a-ok"]})})()
    assert chosen_job(data, picked) == "a-ok"
    shown = job_detail(data, "b-key")
    assert isinstance(shown, mo.Html) and "b-key" in shown.text and "failing" in shown.text
    assert "No job in this window" in job_detail(data, None).text
