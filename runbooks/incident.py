import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="cronkit · incident")

with app.setup:
    import marimo as mo

    from cronkit.runbooks import context, incident, runtime


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # Something is wrong with the scheduled jobs

    The guides' troubleshooting sections as one read-only diagnosis (`cronkit doctor`). First the
    verdict: the most likely root cause in one sentence, what it leads to, and the command that
    fixes it. Then every finding from most to least severe, with the rows that show it, the
    likely cause and the fix — as SQL to run or an action to take. Nothing here changes the
    database: fixes are yours to apply (the setup, rotate-secret and rollback runbooks do the
    common ones behind a button).
    """)
    return


@app.cell
def _():
    p = runtime.params(manifest=None, env=None, dsn=None, hours=6.0)
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
def _():
    rerun = mo.ui.run_button(label="Diagnose again")
    rerun
    return (rerun,)


@app.cell
def _(ctx, p, rerun):
    # NBVAL_IGNORE_OUTPUT
    _ = rerun.value
    report = incident.diagnosis(ctx, p["hours"])
    incident.incident_summary(report, ctx)
    return (report,)


@app.cell
def _(ctx, report):
    # NBVAL_IGNORE_OUTPUT
    verdict = incident.verdict_for(report, ctx)
    incident.verdict_view(verdict)
    return (verdict,)


@app.cell
def _(ctx, report):
    # NBVAL_CHECK_OUTPUT
    findings = incident.scoped_findings(report, ctx)
    findings if findings.height else mo.md("No finding names one of this manifest's jobs (server-wide ones are below).")
    return (findings,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## The findings, most severe first

    Each with its evidence, the likely cause and the fix. The verdict above names the one to fix
    first: later findings are often its consequences (no scheduler → missed runs; a stale key →
    401s → failed queue items).
    """)
    return


@app.cell
def _(ctx, report):
    # NBVAL_IGNORE_OUTPUT
    incident.walk_view(report, ctx)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## The guides' troubleshooting sections

    Which of them this diagnosis covered, and what it found for each.
    """)
    return


@app.cell
def _(report):
    # NBVAL_IGNORE_OUTPUT
    coverage = incident.guide_coverage(report)
    coverage
    return (coverage,)


@app.cell
def _(report):
    # NBVAL_IGNORE_OUTPUT
    skipped = incident.skipped_frame(report)
    mo.vstack([mo.md("Checks that could not run here, and why:"), skipped]) if skipped.height else mo.md("Every check ran.")
    return (skipped,)


if __name__ == "__main__":
    app.run()
