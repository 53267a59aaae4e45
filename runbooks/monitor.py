import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="cronkit · monitor scheduled jobs")

with app.setup:
    import marimo as mo

    from cronkit.runbooks import context, monitor, runtime


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # Monitor scheduled jobs

    What the guides' monitoring queries show (`cron.job_run_details`, the HTTP answers), per job and
    over time: runs and failures with their durations, what each endpoint answered, runs that
    should have happened but did not, and the queues the jobs drain. Read-only; refresh at will.
    """)
    return


@app.cell
def _():
    p = runtime.params(manifest=None, env=None, dsn=None, job=None, hours=24.0, refresh="1m")
    return (p,)


@app.cell
def _(p):
    # NBVAL_IGNORE_OUTPUT
    runtime.param_rows(p)
    return


@app.cell
def _(p):
    # NBVAL_IGNORE_OUTPUT
    ctx = context.resolve_or_stop(p, manifest_required=False)
    context.view(ctx)
    return (ctx,)


@app.cell
def _(p):
    refresh = mo.ui.refresh(options=monitor.refresh_options(p["refresh"]), default_interval=p["refresh"] or None,
                            label="Refresh")
    refresh
    return (refresh,)


@app.cell
def _(ctx, p, refresh):
    # NBVAL_IGNORE_OUTPUT
    _ = refresh.value  # read again on every tick
    data = monitor.monitor_data(ctx, p["hours"], p["job"])
    monitor.monitor_header(data)
    return (data,)


@app.cell
def _(data):
    # NBVAL_IGNORE_OUTPUT
    monitor.health_view(data)
    return


@app.cell
def _(ctx, refresh):
    # NBVAL_IGNORE_OUTPUT
    _ = refresh.value
    monitor.alerts_view(ctx)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## Health board

    One row per job, most trouble first: its state, the schedule in words, last and next run, runs and
    failures in the window, what its HTTP calls got back, and the last error.
    """)
    return


@app.cell
def _(data):
    # NBVAL_IGNORE_OUTPUT
    board = monitor.board_view(data)
    board
    return (board,)


@app.cell
def _(board, data):
    # NBVAL_IGNORE_OUTPUT
    picked = monitor.chosen_job(data, board)
    monitor.job_detail(data, picked)
    return (picked,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## Run history

    Per job: runs, failures, duration percentiles (ms) and the last failure's message
    (guide 000 *Monitor Execution*, guide 003 *View job history*).
    """)
    return


@app.cell
def _(data):
    # NBVAL_IGNORE_OUTPUT
    runs = monitor.run_table(data)
    runs
    return (runs,)


@app.cell
def _(data):
    # NBVAL_IGNORE_OUTPUT
    duration = monitor.duration_chart(data)
    duration
    return (duration,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## HTTP outcomes

    pg_cron's *succeeded* only means the request was queued. What each job's calls got back
    (guide 000 *Monitor HTTP Failures*): 2xx, 4xx (a 401 is a key problem), 5xx, timeouts,
    unreachable, still pending, or expired before anyone looked — failing jobs first. The heatmap
    below shows when: a row per job, a cell per time bucket.
    """)
    return


@app.cell
def _(data):
    # NBVAL_IGNORE_OUTPUT
    http = monitor.http_table(data)
    http
    return (http,)


@app.cell
def _(http):
    # NBVAL_CHECK_OUTPUT
    # every outcome class is a column, so a zero is shown rather than hidden
    list(getattr(http, "columns", []))
    return


@app.cell
def _(data):
    # NBVAL_IGNORE_OUTPUT
    outcomes = monitor.outcome_chart(data)
    outcomes
    return (outcomes,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## Missed and late runs

    Every time the schedule says a job should start, and what happened then: on time, late, queued
    behind a long run, missed, or lost to downtime (pg_cron never replays those).
    """)
    return


@app.cell
def _(data):
    # NBVAL_IGNORE_OUTPUT
    missed = monitor.missed_table(data)
    missed
    return (missed,)


@app.cell
def _(data):
    # NBVAL_IGNORE_OUTPUT
    timeline = monitor.missed_chart(data)
    timeline
    return (timeline,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## Queues

    The tables declared under `[[queues]]` (guide 002 step 11, guide 004 *refresh queue status*):
    depth by status, the oldest pending item, stuck items, retries used up — now, and over time
    from the snapshots of the project's `cronkit-queues` job.
    """)
    return


@app.cell
def _(data):
    # NBVAL_IGNORE_OUTPUT
    queue_health = monitor.queue_table(data)
    queue_health
    return (queue_health,)


@app.cell
def _(data):
    # NBVAL_IGNORE_OUTPUT
    queue_trend = monitor.queue_chart(data)
    queue_trend
    return (queue_trend,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## Changes on the record

    What cronkit changed in the window and who did it (`cronkit.audit_log`; `cronkit log` for more):
    applies, pauses and resumes, runs started by hand (the ◆ in the duration chart), secrets stored.
    """)
    return


@app.cell
def _(data):
    # NBVAL_IGNORE_OUTPUT
    changes = monitor.changes_view(data)
    changes
    return (changes,)


if __name__ == "__main__":
    app.run()
