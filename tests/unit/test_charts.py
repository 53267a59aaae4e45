"""Charts build from the monitoring frames and render offline to PNG and SVG."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from cronkit.monitor import charts
from cronkit.monitor.missed import SLOTS_SCHEMA
from cronkit.monitor import HTTP_TIMELINE_SCHEMA, RUNS_SCHEMA, TIMELINE_SCHEMA
from cronkit.monitor.queues import TREND_SCHEMA

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def frame(schema: dict[str, pl.DataType], rows: list[dict[str, object]]) -> pl.DataFrame:
    return pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema)


TIMELINE = frame(TIMELINE_SCHEMA, [
    {"bucket": T0 + i * HOUR, "jobid": 1, "jobname": "sync", "runs": 60, "p50_ms": 100.0 + i, "p95_ms": 300.0, "max_ms": 400.0}
    for i in range(3)
] + [{"bucket": T0, "jobid": 2, "jobname": None, "runs": 1, "p50_ms": 5.0, "p95_ms": 5.0, "max_ms": 5.0}])
RUNS = frame(RUNS_SCHEMA, [{"runid": i, "jobid": 1, "jobname": "sync", "status": "succeeded",
                            "start_time": T0 + i * timedelta(minutes=1), "duration_ms": 10.0 * (i + 1)} for i in range(5)])
HTTP = frame(HTTP_TIMELINE_SCHEMA, [{"bucket": T0, "jobname": "sync", "outcome": "2xx", "requests": 58},
                                    {"bucket": T0, "jobname": "sync", "outcome": "5xx", "requests": 2}])
SLOTS = frame(SLOTS_SCHEMA, [{"jobid": 1, "jobname": "sync", "slot": T0 + i * timedelta(minutes=1),
                              "kind": ["on_time", "missed", "queued"][i % 3]} for i in range(9)])
TREND = frame(TREND_SCHEMA, [{"taken_at": T0 + i * timedelta(minutes=5), "queue": "public.jobs", "kind": "table",
                              "pending": 10 - i, "processing": 1, "failed": 0, "oldest_pending_age_s": 60.0 * i}
                             for i in range(4)])


@pytest.mark.parametrize(
    ("build", "marks"),
    [
        (lambda: charts.duration_chart(TIMELINE), {"line"}),
        (lambda: charts.duration_chart(RUNS), {"point"}),
        (lambda: charts.outcome_heatmap(HTTP, HOUR), {"rect"}),
        (lambda: charts.missed_chart(SLOTS), {"tick"}),
        (lambda: charts.queue_chart(TREND), {"line"}),
    ],
    ids=["duration-per-hour", "duration-per-run", "outcomes", "missed", "queues"],
)
def test_each_chart_renders_to_png_and_svg_offline(build: object, marks: set[str]) -> None:
    chart = build()  # type: ignore[operator]
    spec = chart.to_dict()
    found = {str(m) if isinstance(m, str) else m["type"] for m in _marks(spec)}
    assert marks <= found
    assert charts.to_png(chart).startswith(b"\x89PNG\r\n\x1a\n")
    assert "<svg" in charts.to_svg(chart)


def _marks(spec: dict) -> list:  # type: ignore[type-arg]
    found = [spec["mark"]] if "mark" in spec else []
    for key in ("layer", "vconcat", "hconcat"):
        if key == "layer" and "spec" in spec:
            continue
        for part in spec.get(key, []):
            found += _marks(part)
    if "spec" in spec:
        found += _marks(spec["spec"])
    return found


def test_the_heatmap_has_a_cell_per_job_and_bucket_coloured_by_what_its_calls_got_back() -> None:
    rows = [("a-fine", 0, "2xx", 4), ("b-key", 0, "4xx", 3), ("c-mixed", 0, "2xx", 2), ("c-mixed", 0, "5xx", 1),
            ("c-mixed", 1, "2xx", 3), ("d-wait", 1, "pending", 1)]
    http = frame(HTTP_TIMELINE_SCHEMA, [{"bucket": T0 + b * timedelta(minutes=5), "jobname": j, "outcome": o,
                                         "requests": n} for j, b, o, n in rows])
    chart = charts.outcome_heatmap(http, timedelta(minutes=5)).to_dict()
    cells = {(v["jobname"], v["bucket"][11:16]): (v["cell"], v["answers"]) for v in charts.values(chart)}

    assert cells == {
        ("a-fine", "10:00"): ("all 2xx", "2xx ×4"), ("b-key", "10:00"): ("all failed", "4xx ×3"),
        ("c-mixed", "10:00"): ("some failed", "2xx ×2, 5xx ×1"), ("c-mixed", "10:05"): ("all 2xx", "2xx ×3"),
        ("d-wait", "10:05"): ("waiting", "pending ×1"),
    }
    assert chart["encoding"]["y"]["sort"][:2] == ["b-key", "c-mixed"]  # failing jobs on top
    assert chart["encoding"]["x"]["title"] == "request time (UTC), 5-minute buckets"
    scale = chart["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"], strict=True))["all failed"] == charts.FAILED_COLOR


def test_failed_runs_are_marked_on_the_duration_chart() -> None:
    runs = RUNS.with_columns(status=pl.when(pl.col("runid") == 3).then(pl.lit("failed")).otherwise(pl.col("status")))
    spec = charts.duration_chart(runs).to_dict()
    marks = spec["layer"][1]
    assert marks["mark"]["shape"] == "cross" and marks["mark"]["color"] == charts.FAILED_COLOR
    assert marks["transform"] == [{"filter": "datum.status == 'failed'"}]


def test_thirty_jobs_get_a_panel_each_instead_of_sharing_ten_colours() -> None:
    many = frame(RUNS_SCHEMA, [{"runid": j, "jobid": j, "jobname": f"job-{j:02}", "status": "succeeded",
                                "start_time": T0, "duration_ms": 10.0} for j in range(30)])
    spec = charts.duration_chart(many).to_dict()
    assert spec["facet"]["row"]["field"] == "jobname"
    assert "color" not in spec["spec"]["layer"][0]["encoding"]
    few = charts.duration_chart(RUNS).to_dict()
    assert few["layer"][0]["encoding"]["color"]["field"] == "jobname"
    assert charts.to_png(charts.duration_chart(many)).startswith(b"\x89PNG")


def test_each_queue_gets_its_own_depth_and_age_chart() -> None:
    two = pl.concat([TREND, TREND.with_columns(queue=pl.lit("public.other"))])
    spec = charts.queue_chart(two).to_dict()
    assert [row["title"]["text"] for row in spec["vconcat"]] == ["Queues: public.jobs", "Queues: public.other"]


def test_missed_chart_can_leave_out_on_time_slots() -> None:
    values = charts.values(charts.missed_chart(SLOTS, show_on_time=False).to_dict())
    assert {v["kind"] for v in values} == {"missed", "queued"}


def test_save_writes_png_or_svg_by_suffix(tmp_path: Path) -> None:
    chart = charts.missed_chart(SLOTS)
    assert charts.save(chart, tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    assert "<svg" in charts.save(chart, tmp_path / "m.svg").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="png or .svg"):
        charts.save(chart, tmp_path / "m.pdf")


def test_a_days_slots_of_many_jobs_chart_as_a_few_stretches_and_a_single_miss_stays_visible() -> None:
    day = [{"jobid": j, "jobname": f"job-{j}", "slot": T0 + i * timedelta(minutes=1), "kind": "on_time",
            "delay_s": 1.0, "runid": j * 10_000 + i} for j in range(20) for i in range(1440)]
    day[700]["kind"] = "missed"  # job-0 missed one slot at 21:40
    chart = charts.missed_chart(frame(SLOTS_SCHEMA, day)).to_dict()
    values = charts.values(chart)
    assert {m["mark"]["type"] for m in chart["layer"]} == {"rule", "tick"}
    assert len(values) <= 20 * 3  # one green stretch per job, broken once by the miss: not 28,800 slots
    assert sum(v["slots"] for v in values) == 20 * 1440
    [miss] = [v for v in values if v["kind"] == "missed"]
    assert miss["jobname"] == "job-0" and miss["slot"] <= "2026-01-05T21:40:00.000Z" <= miss["slot_end"]
    assert [v["kind"] for v in values if v["jobname"] == "job-0"] == ["on_time", "missed", "on_time"]
    assert all(v["runid"] is None for v in values if v["slots"] > 1)


def test_alternating_kinds_are_a_stretch_each() -> None:
    values = charts.values(charts.missed_chart(SLOTS).to_dict())
    assert [(v["kind"], v["slots"]) for v in values] == [(k, 1) for k in ["on_time", "missed", "queued"] * 3]


@pytest.mark.parametrize(
    ("window", "bucket"),
    [(HOUR, timedelta(minutes=1)), (6 * HOUR, timedelta(minutes=10)), (24 * HOUR, HOUR),
     (7 * 24 * HOUR, 3 * HOUR), (30 * 24 * HOUR, 12 * HOUR), (400 * 24 * HOUR, timedelta(days=7))],
)
def test_heatmap_buckets_fit_the_window_and_are_whole_hours_where_rollups_are_read(window: timedelta,
                                                                                    bucket: timedelta) -> None:
    from cronkit.monitor import timeline_bucket

    assert timeline_bucket(window) == bucket


def test_time_charts_span_the_window_given_so_one_point_sits_at_its_moment() -> None:
    span = (T0 - HOUR, T0 + HOUR)
    spec = charts.queue_chart(TREND.head(1), span=span).to_dict()
    x = spec["vconcat"][0]["hconcat"][0]["encoding"]["x"]
    assert x["scale"]["domain"] == ["2026-01-05T09:00:00.000000Z", "2026-01-05T11:00:00.000000Z"]
    assert "scale" not in charts.queue_chart(TREND).to_dict()["vconcat"][0]["hconcat"][0]["encoding"]["x"]


def test_runs_started_by_hand_are_black_diamonds_beside_pg_crons_runs() -> None:
    from cronkit.monitor import MANUAL_RUNS_SCHEMA

    manual = frame(MANUAL_RUNS_SCHEMA, [{"id": 1, "jobname": "sync", "started_at": T0, "ended_at": T0,
                                         "status": "called", "duration_ms": 12.0}])
    spec = charts.duration_chart(RUNS, manual=manual).to_dict()
    runs, _failures, by_hand = spec["layer"]
    assert runs["transform"] == [{"filter": "datum.origin == 'pg_cron'"}]
    assert (by_hand["mark"]["shape"], by_hand["transform"]) == ("diamond", [{"filter": "datum.origin == 'by hand'"}])
    assert [(v["origin"], v["status"]) for v in charts.values(spec) if v["origin"] == "by hand"] == [("by hand", "by hand: called")]


def test_runs_skipped_under_the_overlap_policy_are_cells_of_their_own_and_counted_beside_calls() -> None:
    from cronkit.monitor import SKIPS_SCHEMA

    http = frame(HTTP_TIMELINE_SCHEMA, [{"bucket": T0, "jobname": "slow", "outcome": "2xx", "requests": 1}])
    skips = frame(SKIPS_SCHEMA, [{"jobname": "slow", "bucket": T0, "skipped": 2},
                                 {"jobname": "slow", "bucket": T0 + HOUR, "skipped": 3}])
    cells = {v["bucket"][11:16]: (v["cell"], v["requests"], v["answers"])
             for v in charts.values(charts.outcome_heatmap(http, HOUR, skips=skips).to_dict())}
    assert cells == {"10:00": ("all 2xx", 1, "2xx ×1, skipped (overlap) ×2"),
                     "11:00": ("skipped (overlap)", 0, "skipped (overlap) ×3")}
