import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="cronkit · roll back")

with app.setup:
    import marimo as mo

    from cronkit.runbooks import context, rollback, runtime


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # Pause, resume or remove jobs

    Guide 000's *Rollback / Feature Removal* and guide 004's *Management*, for the jobs a manifest
    created — never for jobs cronkit did not create:

    - **disable** — `cron.alter_job(active := false)`: the job stays, with its history and jobid;
    - **enable** — back on;
    - **remove** — unschedule one job and drop its wrapper;
    - **teardown** — everything the project created (optionally its secrets too).

    Run history in `cron.job_run_details` is kept in every case. Re-create removed jobs with the
    setup runbook.
    """)
    return


@app.cell
def _():
    p = runtime.params(manifest=None, env=None, dsn=None, apply=False, action="disable", job=None, secrets=False,
                       confirm=None)
    return (p,)


@app.cell
def _(p):
    # NBVAL_IGNORE_OUTPUT
    runtime.param_rows(p)
    return


@app.cell
def _(p):
    # NBVAL_IGNORE_OUTPUT
    ctx = context.resolve_or_stop(p)
    context.view(ctx)
    return (ctx,)


@app.cell
def _(ctx):
    # NBVAL_CHECK_OUTPUT
    before = rollback.job_state(rollback.project_jobs(ctx))
    before
    return (before,)


@app.cell
def _(ctx, p):
    action_choice = mo.ui.dropdown(options=list(rollback.ROLLBACK_ACTIONS), value=rollback.rollback_action(p["action"]), label="Action")
    job_choice = mo.ui.dropdown(options=rollback.job_choices(ctx, p["job"]), value=p["job"] or rollback.ALL_JOBS, label="Job")
    secrets_box = mo.ui.checkbox(value=p["secrets"], label="also delete the secrets (teardown)")
    mo.hstack([action_choice, job_choice, secrets_box])
    return action_choice, job_choice, secrets_box


@app.cell
def _():
    # how many actions were carried out: the preview and the job table read it, so they are read
    # again after each action (a stopped, unconfirmed step changes nothing and sets nothing)
    get_done, set_done = mo.state(0)
    return get_done, set_done


@app.cell
def _(action_choice, ctx, get_done, job_choice, secrets_box):
    # NBVAL_IGNORE_OUTPUT
    _ = get_done()  # read again after each action, so the preview shows what is left to do
    plan = rollback.rollback_plan(ctx, action_choice.value, rollback.chosen_job(job_choice.value), secrets_box.value)
    rollback.rollback_view(plan)
    return (plan,)


@app.cell
def _(action_choice, ctx, job_choice, p):
    typed = rollback.confirm_box(action_choice.value, rollback.chosen_job(job_choice.value), ctx.project, p["confirm"])
    typed
    return (typed,)


@app.cell
def _(action_choice):
    rollback_button = mo.ui.run_button(kind="danger", label=f"Carry out: {action_choice.value}")
    rollback_button
    return (rollback_button,)


@app.cell
def _(action_choice, ctx, job_choice, p, rollback_button, secrets_box, set_done, typed):
    # not a descendant of the preview: when the preview is read again after the action, this step
    # must not run again (its button is no longer pressed then)
    _job = rollback.chosen_job(job_choice.value)
    _todo = rollback.rollback_plan(ctx, action_choice.value, _job, secrets_box.value)
    _missing = rollback.untyped(action_choice.value, _job, ctx.project, typed.value)
    _go = runtime.gate(runtime.confirmed(rollback_button, p), f"Carry out: {action_choice.value}", needed=not _todo.nothing_to_do,
                       idle="Nothing to do: every target is already in the wanted state.", missing=_missing)
    _outcome = rollback.rollback(ctx, action_choice.value, _job, secrets_box.value, _go)
    if _go:
        set_done(lambda n: n + 1)
    _outcome.view()
    return


@app.cell
def _(ctx, get_done, rollback_button):
    # NBVAL_IGNORE_OUTPUT
    _ = (rollback_button.value, get_done())  # after each action
    after = rollback.job_state(rollback.project_jobs(ctx))
    mo.vstack([mo.md("The project's jobs now:"), after])
    return (after,)


if __name__ == "__main__":
    app.run()
