"""Altair charts of the monitoring frames, and offline PNG/SVG rendering with vl-convert.

Each function takes the frame the matching cronkit function returns and gives an
``alt.Chart``/``alt.LayerChart``/``alt.VConcatChart``; nothing here queries the database.
Rendering uses ``vl_convert`` (bundled Vega-Lite, no network), so charts work in CI and in
headless notebook runs.

* :func:`duration_chart` — :func:`cronkit.monitor.run_timeline` (p50/p95/max per hour) or
  :func:`cronkit.monitor.recent_runs` (one point per run);
* :func:`outcome_heatmap` — :func:`cronkit.monitor.http_timeline` (job × time, each cell what the
  calls in that bucket got back);
* :func:`missed_chart` — ``MissedReport.slots`` from :mod:`cronkit.monitor.missed` (slots on a timeline);
* :func:`queue_chart` — :func:`cronkit.monitor.queues.queue_trend` (depth and oldest pending age).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import vl_convert

from cronkit.outcomes import FAILED, Outcome

#: colours that mean the same thing in every chart
OUTCOME_COLORS = {
    "2xx": "#2ca02c", "3xx": "#98df8a", "4xx": "#ff7f0e", "5xx": "#d62728", "timeout": "#9467bd",
    "transport_error": "#8c564b", "other": "#7f7f7f", "pending": "#c7c7c7", "expired": "#17becf",
}
SLOT_COLORS = {
    "on_time": "#2ca02c", "late": "#ff7f0e", "queued": "#1f77b4", "missed": "#d62728",
    "downtime": "#7f7f7f", "pending": "#c7c7c7",
}
WIDTH = 640


def _data(frame: pl.DataFrame) -> alt.InlineData:
    """A chart's rows as one inline JSON text (datetimes as ISO text in UTC, which Vega-Lite parses).

    Vega-Lite reads ``values`` given as text with ``format: json`` exactly like a list of rows, but
    altair then builds, walks and validates one string instead of every row: for 2,400 rows that
    is 25 ms instead of 0.6 s, paid again each time the chart is displayed."""
    out = frame.with_columns(
        [pl.col(name).dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ") for name, dtype in frame.schema.items()
         if isinstance(dtype, pl.Datetime)]
    )
    return alt.InlineData(values=out.write_json(), format=alt.DataFormat(type="json"))


def values(spec: dict[str, Any], part: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The rows of a chart's inline data: ``spec`` is ``chart.to_dict()``, ``part`` one of its
    layers or concatenated charts (altair may move the data into the top-level ``datasets``)."""
    data = (part or spec)["data"]
    rows = data["values"] if "values" in data else spec["datasets"][data["name"]]
    return json.loads(rows) if isinstance(rows, str) else list(rows)


#: the time range a chart spans: the monitor's window (since, until); None: the data's own range
Span = tuple[datetime, datetime] | None


def _time(field: str, title: str, span: Span) -> alt.X:
    """A time axis over ``span`` when given, so one point sits at its moment in the window
    instead of on an axis a millisecond wide."""
    if span is None:
        return alt.X(field, title=title)
    since, until = (moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") for moment in span)
    return alt.X(field, title=title, scale=alt.Scale(domain=[since, until]))


def _scale(colors: dict[str, str], present: list[str]) -> alt.Scale:
    domain = [k for k in colors if k in present] or list(colors)
    return alt.Scale(domain=domain, range=[colors[k] for k in domain])


#: a legend of more jobs than this is unreadable (categorical palettes have 10-20 colours): the
#: duration chart draws one small panel per job instead
MAX_COLORED_JOBS = 10


def duration_chart(frame: pl.DataFrame, *, title: str = "Run duration", span: Span = None,
                   manual: pl.DataFrame | None = None) -> alt.LayerChart | alt.FacetChart:
    """Duration over time per job: lines of p50 and p95 per hour (timeline frame) or one point per
    run (recent_runs frame), failed runs (or hours with failures) marked with a red cross; runs
    started by hand (``manual``: :func:`cronkit.monitor.manual_runs`) as black diamonds beside
    pg_cron's on the per-run chart.

    Up to :data:`MAX_COLORED_JOBS` jobs share one chart, a colour each; more get a small panel
    each (a row per job), so 30 jobs stay told apart."""
    named = pl.col("jobname").fill_null(pl.format("job {}", pl.col("jobid")))
    if "duration_ms" in frame.columns:
        data = frame.filter(pl.col("duration_ms").is_not_null()).with_columns(named, origin=pl.lit("pg_cron"))
        if manual is not None and manual.height:
            by_hand = manual.select("jobname", pl.col("started_at").alias("start_time"), "duration_ms",
                                    pl.format("by hand: {}", "status").alias("status"), origin=pl.lit("by hand"))
            data = pl.concat([data, by_hand], how="diagonal_relaxed")
        x = _time("start_time:T", "start (UTC)", span)
        y = alt.Y("duration_ms:Q", title=None if _many_jobs(data) else "duration (ms)", scale=alt.Scale(type="log"))
        tooltip = ["jobname:N", "runid:Q", "status:N", "start_time:T", "duration_ms:Q"]
        runs = _by_job(alt.Chart().mark_point(size=14), data).encode(
            x=x, y=y, tooltip=tooltip).transform_filter("datum.origin == 'pg_cron'")
        failures = alt.Chart().mark_point(shape="cross", size=70, color=FAILED_COLOR, filled=True).encode(
            x=x, y=y, tooltip=tooltip).transform_filter("datum.status == 'failed'")
        layers = [runs, failures]
        if manual is not None and manual.height:
            layers.append(alt.Chart().mark_point(shape="diamond", size=60, color="black", filled=True).encode(
                x=x, y=y, tooltip=tooltip).transform_filter("datum.origin == 'by hand'"))
        return _arrange(layers, data, title, "duration (ms, log scale), failed runs ✗, runs started by hand ◆")
    data = frame.filter(pl.col("p50_ms").is_not_null()).with_columns(named)
    x = _time("bucket:T", "hour (UTC)", span)
    tooltip = ["jobname:N", "bucket:T", "runs:Q", "failed:Q", "p50_ms:Q", "p95_ms:Q", "max_ms:Q"]
    p50 = _by_job(alt.Chart().mark_line(point=True), data).encode(
        x=x, y=alt.Y("p50_ms:Q", title=None if _many_jobs(data) else "duration (ms): p50 line, p95 dashed",
                     scale=alt.Scale(type="log")),
        tooltip=tooltip)
    p95 = _by_job(alt.Chart().mark_line(strokeDash=[4, 3]), data).encode(x=x, y="p95_ms:Q")
    failures = alt.Chart().mark_point(shape="cross", size=70, color=FAILED_COLOR, filled=True).encode(
        x=x, y="p95_ms:Q", tooltip=tooltip).transform_filter("datum.failed > 0")
    return _arrange([p50, p95, failures], data, title, "duration (ms, log scale): p50 line, p95 dashed, hours with failures ✗")


#: failed runs are marked in this colour in every chart
FAILED_COLOR = "#d62728"


def _many_jobs(data: pl.DataFrame) -> bool:
    return data.get_column("jobname").n_unique() > MAX_COLORED_JOBS if data.height else False


def _by_job(chart: alt.Chart, data: pl.DataFrame) -> alt.Chart:
    """Colour by job when few enough to tell apart; in panels the row says which job it is."""
    return chart if _many_jobs(data) else chart.encode(color=alt.Color("jobname:N", title="job"))


def _arrange(layers: list[alt.Chart], data: pl.DataFrame, title: str, subtitle: str) -> alt.LayerChart | alt.FacetChart:
    """The layers over one dataset: one chart, or a row per job when there are too many to colour
    (the rows share the time axis; each has its own duration scale)."""
    chart = alt.layer(*layers, data=_data(data))
    if not _many_jobs(data):
        return chart.properties(title=title, width=WIDTH)
    return chart.properties(width=WIDTH - 160, height=28).facet(
        row=alt.Row("jobname:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelLimit=150)),
        title=alt.Title(title, subtitle=subtitle), spacing=4).resolve_scale(y="independent")


#: a heatmap cell: what the calls of one job in one bucket got back
CELL_COLORS = {"all 2xx": "#2ca02c", "some failed": "#ff7f0e", "all failed": "#d62728", "waiting": "#c7c7c7",
               "skipped (overlap)": "#9ecae1"}
#: the outcome of a run the overlap policy skipped: it made no call
SKIPPED = "skipped (overlap)"


def outcome_heatmap(frame: pl.DataFrame, bucket: Any, *, title: str = "HTTP outcomes", span: Span = None,
                    skips: pl.DataFrame | None = None) -> alt.Chart:
    """Job × time: one cell per job and bucket (``bucket`` long), coloured by what its calls got
    back (all 2xx, some failed, all failed, only waiting for an answer) — or, with no call, runs
    skipped under ``overlap = "skip"`` (``skips``: :func:`cronkit.monitor.overlap_skips`); the
    tooltip counts every outcome class and the skips. Jobs with failed calls first."""
    failed = [str(o) for o in FAILED]
    if skips is not None and skips.height:
        frame = pl.concat([frame, skips.select("bucket", "jobname", pl.lit(SKIPPED).alias("outcome"),
                                               pl.col("skipped").alias("requests"))], how="vertical_relaxed")
    calls = pl.col("outcome") != SKIPPED
    cells = (frame.group_by("jobname", "bucket")
             .agg(requests=pl.col("requests").filter(calls).sum(),
                  ok=pl.col("requests").filter(pl.col("outcome") == str(Outcome.OK)).sum(),
                  failed=pl.col("requests").filter(pl.col("outcome").is_in(failed)).sum(),
                  answers=pl.format("{} ×{}", "outcome", "requests").sort_by("outcome").str.join(", "))
             .with_columns(
                 bucket_end=pl.col("bucket") + pl.duration(seconds=int(bucket.total_seconds())),
                 cell=pl.when(pl.col("requests") == 0).then(pl.lit(SKIPPED))
                 .when(pl.col("failed") == 0).then(pl.when(pl.col("ok") > 0).then(pl.lit("all 2xx"))
                                                    .otherwise(pl.lit("waiting")))
                 .when(pl.col("ok") > 0).then(pl.lit("some failed")).otherwise(pl.lit("all failed")))
             .sort("jobname", "bucket"))
    order = (cells.group_by("jobname").agg(pl.col("failed").sum())
             .sort(["failed", "jobname"], descending=[True, False]).get_column("jobname").to_list())
    present = cells.get_column("cell").unique().to_list() if cells.height else []
    return alt.Chart(_data(cells), title=title, width=WIDTH, height=alt.Step(16)).mark_rect().encode(
        x=_time("bucket:T", f"request time (UTC), {_words(bucket)} buckets", span), x2="bucket_end:T",
        y=alt.Y("jobname:N", title=None, sort=order, axis=alt.Axis(labelLimit=220)),
        color=alt.Color("cell:N", title="calls", scale=_scale(CELL_COLORS, present)),
        tooltip=["jobname:N", "bucket:T", "requests:Q", "answers:N"],
    )


def _words(bucket: Any) -> str:
    minutes = int(bucket.total_seconds() // 60)
    return f"{minutes // 1440}-day" if minutes % 1440 == 0 else f"{minutes // 60}-hour" if minutes % 60 == 0 \
        else f"{minutes}-minute"


#: a chart's data is bounded by its pixels: at most this many time bins per job line (4 px each)
BINS = WIDTH // 4


def missed_chart(slots: pl.DataFrame, *, title: str = "Expected runs", show_on_time: bool = True,
                 span: Span = None) -> alt.LayerChart:
    """Expected slots on their job's line, coloured by what happened: a tick where a stretch of one
    kind begins, and a line along it.

    Slots are binned by time (whole minutes, at most :data:`BINS` per line), then consecutive bins
    of one kind become one stretch: a job on time all day is one green line, a missed slot a red
    tick that breaks it, an outage one red stretch. 100 every-minute jobs over a day chart ~100
    rows instead of 144k slots. A stretch of one slot keeps its run.
    """
    data = slots if show_on_time else slots.filter(pl.col("kind") != "on_time")
    data = data.with_columns(pl.col("jobname").fill_null(pl.format("job {}", pl.col("jobid"))))
    present = data.get_column("kind").unique().to_list() if data.height else []
    base = alt.Chart(_data(_stretches(data)), title=title, width=WIDTH).encode(
        x=_time("slot:T", "expected start (UTC)", span),
        y=alt.Y("jobname:N", title=None),
        color=alt.Color("kind:N", scale=_scale(SLOT_COLORS, present)),
        tooltip=["jobname:N", "slot:T", "slot_end:T", "kind:N", "slots:Q", "delay_s:Q", "runid:Q"],
    )
    return alt.layer(base.mark_rule(strokeWidth=3).encode(x2="slot_end:T"), base.mark_tick(thickness=2))


_STRETCH_SCHEMA: dict[str, pl.DataType] = {
    "jobname": pl.String(), "slot": pl.Datetime("us", "UTC"), "slot_end": pl.Datetime("us", "UTC"), "kind": pl.String(),
    "slots": pl.UInt32(), "delay_s": pl.Float64(), "runid": pl.Int64(),
}


def _stretches(data: pl.DataFrame) -> pl.DataFrame:
    """Per job, consecutive time bins of one kind as one row: first and last slot, slot count, the
    longest delay, and the run when the stretch is a single slot."""
    if data.is_empty():
        return pl.DataFrame(schema=_STRETCH_SCHEMA)
    first, last = data.get_column("slot").min(), data.get_column("slot").max()
    assert first is not None and last is not None
    minutes = max(1, -(-int((last - first).total_seconds()) // (BINS * 60)))  # type: ignore[operator]
    bins = (data.with_columns(bin=pl.col("slot").dt.truncate(f"{minutes}m"))
            .group_by("jobname", "bin", "kind")
            .agg(slot=pl.col("slot").min(), slot_end=pl.col("slot").max(), slots=pl.len(),
                 delay_s=pl.col("delay_s").max(), runid=pl.col("runid").first())
            .sort("jobname", "bin", "kind"))
    changed = (pl.col("kind") != pl.col("kind").shift(1)) | (pl.col("jobname") != pl.col("jobname").shift(1))
    return (bins.with_columns(stretch=changed.fill_null(True).cum_sum())
            .group_by("stretch", maintain_order=True)
            .agg(jobname=pl.col("jobname").first(), slot=pl.col("slot").min(), slot_end=pl.col("slot_end").max(),
                 kind=pl.col("kind").first(), slots=pl.col("slots").sum(), delay_s=pl.col("delay_s").max(),
                 runid=pl.when(pl.col("slots").sum() == 1).then(pl.col("runid").first()))
            .select(list(_STRETCH_SCHEMA)).cast(_STRETCH_SCHEMA))  # type: ignore[arg-type]


#: a queue's items by status group, the same colours in every queue's chart
QUEUE_COLORS = {"pending": "#1f77b4", "processing": "#ff7f0e", "failed": "#d62728"}


def queue_chart(trend: pl.DataFrame, *, title: str = "Queues", span: Span = None) -> alt.VConcatChart:
    """Per queue, side by side: depth by status group and the oldest pending item's age over time
    (points too, so a single snapshot shows)."""
    rows = []
    for queue in sorted(trend.get_column("queue").unique().to_list()):
        one = trend.filter(pl.col("queue") == queue)
        long = one.unpivot(index=["taken_at", "queue"], on=list(QUEUE_COLORS), variable_name="status", value_name="items")
        x = _time("taken_at:T", "snapshot (UTC)", span)
        depth = alt.Chart(_data(long), title="depth", width=WIDTH // 2 - 40, height=140).mark_line(point=True).encode(
            x=x, y=alt.Y("items:Q", title="items"),
            color=alt.Color("status:N", scale=_scale(QUEUE_COLORS, list(QUEUE_COLORS))),
            tooltip=["queue:N", "status:N", "taken_at:T", "items:Q"],
        )
        age = alt.Chart(_data(one.select("taken_at", "queue", "oldest_pending_age_s")), title="oldest pending item",
                        width=WIDTH // 2 - 40, height=140).mark_line(point=True, color="#1f77b4").encode(
            x=x, y=alt.Y("oldest_pending_age_s:Q", title="age (s)"),
            tooltip=["queue:N", "taken_at:T", "oldest_pending_age_s:Q"],
        )
        rows.append(alt.hconcat(depth, age, title=alt.Title(f"{title}: {queue}", anchor="start")))
    return alt.vconcat(*rows)


def _spec(chart: alt.TopLevelMixin) -> str:
    return str(chart.to_json())


def to_png(chart: alt.TopLevelMixin, *, scale: float = 1.0) -> bytes:
    """PNG bytes, rendered offline."""
    return bytes(vl_convert.vegalite_to_png(_spec(chart), scale=scale))


def to_svg(chart: alt.TopLevelMixin) -> str:
    """SVG text, rendered offline."""
    return str(vl_convert.vegalite_to_svg(_spec(chart)))


def save(chart: alt.TopLevelMixin, path: str | Path, *, scale: float = 1.0) -> Path:
    """Write ``.png`` or ``.svg`` (by suffix)."""
    target = Path(path)
    if target.suffix == ".png":
        target.write_bytes(to_png(chart, scale=scale))
    elif target.suffix == ".svg":
        target.write_text(to_svg(chart), encoding="utf-8")
    else:
        raise ValueError(f"save() writes .png or .svg, not {target.suffix!r}")
    return target
