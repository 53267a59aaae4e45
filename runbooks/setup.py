import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="cronkit · set up scheduled jobs")

with app.setup:
    import marimo as mo

    from cronkit.runbooks import context, job_checks, runtime, secret_store
    from cronkit.runbooks import setup as steps


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # Set up scheduled jobs

    The guides' procedure — verify the tables, enable the extensions, store the secrets, create the
    wrappers, schedule, verify — driven by one reviewed manifest (`cronkit.toml`). Every step first
    shows what it would do; nothing changes until you press its red button (or run headless with
    `--apply true`). Run it again at any time: steps that are already done say so and change nothing.
    """)
    return


@app.cell
def _():
    p = runtime.params(manifest=None, env=None, dsn=None, apply=False, secret=None, secret_from_env=None, wait_seconds=20.0)
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


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 1. The server

    Which PostgreSQL, pg_cron, pg_net and Vault this is, and whether the role is a superuser
    (on Supabase the `postgres` role is not: some settings are refused, the dashboard can help).
    """)
    return


@app.cell
def _(ctx):
    # NBVAL_IGNORE_OUTPUT
    server = steps.server_facts_of(ctx)
    steps.server_facts_frame(server)
    return (server,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 2. The tables the jobs need

    The queue tables declared under `[[queues]]` and every table a job's guard reads (as the planner
    sees it). A missing table makes every run fail: create it with your migrations first.
    """)
    return


@app.cell
def _(ctx):
    # NBVAL_CHECK_OUTPUT
    tables = steps.required_tables(ctx)
    steps.tables_view(tables)
    return (tables,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 3. Extensions

    pg_cron (schema `pg_catalog`), pg_net (schema `extensions`) and Vault when secrets live there.
    """)
    return


@app.cell
def _(ctx, server):
    # NBVAL_CHECK_OUTPUT
    ext = steps.extensions_frame(ctx)
    steps.extensions_view(ext, server)
    return (ext,)


@app.cell
def _(ext):
    _idle = not steps.extensions_needed(ext)  # a button with nothing to do is greyed out
    ext_button = mo.ui.run_button(kind="danger", label="Enable extensions", disabled=_idle,
                                  tooltip="every extension is enabled: nothing to do" if _idle else None)
    ext_button
    return (ext_button,)


@app.cell
def _(ctx, ext, ext_button, p):
    _go = runtime.gate(runtime.confirmed(ext_button, p), "Enable extensions", needed=steps.extensions_needed(ext),
                  idle="Nothing to do: every extension is enabled.")
    steps.enable_extensions(ctx, _go).view()
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 4. Secrets

    Present, missing or a placeholder copied from a guide — shown by length and fingerprint, never
    by value. Store or rotate one with the masked field (headless: `--secret NAME
    --secret-from-env VARIABLE`; a value is never a command-line argument). Secrets with a
    `[secrets.sources]` variable are stored by the apply step.
    """)
    return


@app.cell
def _(ctx, ext_button):
    # NBVAL_IGNORE_OUTPUT
    _ = ext_button.value  # read again after enabling Vault
    secret_store.secrets_view(secret_store.secrets_frame(ctx))
    return


@app.cell
def _(ctx, p):
    secret_choice = mo.ui.dropdown(options=context.secret_names(ctx), value=secret_store.default_secret_to_store(ctx, p["secret"]),
                                   label="Secret")
    secret_input = mo.ui.text(kind="password", label="New value (masked, never shown)", full_width=True)
    secret_button = mo.ui.run_button(kind="danger", label="Store secret")
    mo.vstack([mo.hstack([secret_choice, secret_input]), secret_button])
    return secret_button, secret_choice, secret_input


@app.cell
def _(ctx, p, secret_choice, secret_input):
    # NBVAL_IGNORE_OUTPUT
    secret_store.secret_preview(ctx, secret_choice.value, secret_store.secret_value(secret_input.value, p["secret_from_env"], ctx))
    return


@app.cell
def _(ctx, p, secret_button, secret_choice, secret_input):
    _go = runtime.gate(runtime.confirmed(secret_button, p), "Store secret",
                  needed=bool(secret_input.value or p["secret_from_env"]),
                  idle="No new value given: nothing to store.")
    secret_store.store_secret(ctx, secret_choice.value, secret_store.secret_value(secret_input.value, p["secret_from_env"], ctx), _go).view()
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 5. The plan

    Wrappers, schedules and secret updates, with the exact SQL each step runs (`cronkit plan`).
    Applying runs all of it in one transaction under an advisory lock, or nothing.
    """)
    return


@app.cell
def _(ctx, ext_button, secret_button):
    # NBVAL_IGNORE_OUTPUT
    _ = (ext_button.value, secret_button.value)  # plan again after those steps
    plan = steps.preview_plan(ctx)
    steps.plan_view(plan)
    return (plan,)


@app.cell
def _(plan):
    # NBVAL_CHECK_OUTPUT
    plan.rows()
    return


@app.cell
def _(plan):
    _idle = not (plan.changes > 0 or plan.problems)
    apply_button = mo.ui.run_button(kind="danger", label="Apply", disabled=_idle,
                                    tooltip="the database already matches the manifest: nothing to do" if _idle else None)
    apply_button
    return (apply_button,)


@app.cell
def _(apply_button, ctx, p, plan):
    _go = runtime.gate(runtime.confirmed(apply_button, p), "Apply", needed=plan.changes > 0 or bool(plan.problems),
                  idle="Nothing to do: the database already matches the manifest.")
    steps.apply_plan(ctx, _go).view()
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 6. Verify

    Run each HTTP job once now (guide 002 step 12) — only jobs that have not been answered since
    they were applied — then wait (at most `wait_seconds`) for pg_net to deliver the answers.
    """)
    return


@app.cell
def _(apply_button, ctx):
    _ = apply_button.value  # asked again after applying
    _idle = not job_checks.manual_run_needed(ctx)
    run_once_button = mo.ui.run_button(kind="danger", label="Run each job once now", disabled=_idle,
                                       tooltip="no HTTP job is waiting for a first answer" if _idle else None)
    run_once_button
    return (run_once_button,)


@app.cell
def _(apply_button, ctx, p, run_once_button):
    _ = apply_button.value
    _needed = job_checks.manual_run_needed(ctx)
    _go = runtime.gate(runtime.confirmed(run_once_button, p), "Run each job once now", needed=_needed,
                       idle="" if _needed else job_checks.manual_run_idle(ctx), idle_mark="—")
    job_checks.manual_run(ctx, _go).view()
    return


@app.cell
def _(apply_button, ctx, p, run_once_button):
    # NBVAL_IGNORE_OUTPUT
    _ = (apply_button.value, run_once_button.value)
    verification = job_checks.verify(ctx, p["wait_seconds"])
    job_checks.verify_view(verification)
    return (verification,)


@app.cell
def _(ctx, verification):
    # NBVAL_CHECK_OUTPUT
    checks = steps.checklist(ctx, verification)
    steps.checklist_view(checks)
    return (checks,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    Next: `marimo edit runbooks/monitor.py` to watch the runs, `runbooks/incident.py` when something
    fails, `runbooks/rotate_secret.py` to rotate a key, `runbooks/rollback.py` to pause or remove.
    """)
    return


if __name__ == "__main__":
    app.run()
