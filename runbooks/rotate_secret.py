import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="cronkit · rotate a secret")

with app.setup:
    import marimo as mo

    from cronkit.runbooks import context, rotate, runtime, secret_store


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # Rotate a secret

    Guide 003's rotation procedure, and guide 000's key re-sync (the local CLI makes a new service
    role key on every `supabase start`):

    1. generate the new key at the provider (Supabase: Project Settings → API Keys);
    2. store it — here, from a masked field or an environment variable, never typed into SQL;
    3. the jobs read it the next time they fire (cronkit's wrappers read secrets at run time);
    4. verify: run each job that reads it once now and look at the HTTP answer, then confirm the
       next scheduled run succeeds;
    5. only then revoke the old key at the provider.
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
    ## 1. The secret and who reads it
    """)
    return


@app.cell
def _(ctx, p):
    secret_choice = mo.ui.dropdown(options=context.secret_names(ctx), value=secret_store.default_secret_to_rotate(ctx, p["secret"]), label="Secret")
    secret_input = mo.ui.text(kind="password", label="New value (masked, never shown)", full_width=True)
    mo.hstack([secret_choice, secret_input])
    return secret_choice, secret_input


@app.cell
def _(ctx, secret_choice):
    # NBVAL_CHECK_OUTPUT
    usage = rotate.secret_usage(ctx, secret_choice.value)
    usage
    return (usage,)


@app.cell
def _(ctx, secret_choice):
    # NBVAL_IGNORE_OUTPUT
    rotate.usage_view(ctx, secret_choice.value)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 2. Store the new value

    The preview shows the statement with the value masked (length and fingerprint). Rotating stores
    it in one transaction, then runs every HTTP job that reads it once (`cronkit run-now`).
    """)
    return


@app.cell
def _(ctx, p, secret_choice, secret_input):
    # NBVAL_IGNORE_OUTPUT
    secret_store.secret_preview(ctx, secret_choice.value, secret_store.secret_value(secret_input.value, p["secret_from_env"], ctx))
    return


@app.cell
def _(secret_choice):
    rotate_button = mo.ui.run_button(kind="danger", label="Rotate", disabled=not secret_choice.value)
    rotate_button
    return (rotate_button,)


@app.cell
def _(ctx, p, rotate_button, secret_choice, secret_input):
    _go = runtime.gate(runtime.confirmed(rotate_button, p), "Rotate", needed=bool(secret_input.value or p["secret_from_env"]),
                  idle="No new value given: nothing to rotate.")
    rotate.rotate(ctx, secret_choice.value, secret_store.secret_value(secret_input.value, p["secret_from_env"], ctx), _go).view()
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 3. Verify

    Since the secret was last stored: did each job's call succeed, and has a scheduled run
    succeeded too? Waits at most `wait_seconds` for answers still in flight; check again after the
    next scheduled run.
    """)
    return


@app.cell
def _(secret_choice):
    check_button = mo.ui.run_button(label="Check again", disabled=not secret_choice.value)
    check_button
    return (check_button,)


@app.cell
def _(check_button, ctx, p, rotate_button, secret_choice):
    # NBVAL_IGNORE_OUTPUT
    _ = (rotate_button.value, check_button.value)
    check = rotate.rotation_check(ctx, secret_choice.value, p["wait_seconds"])
    rotate.rotation_view(check, secret_choice.value)
    return (check,)


@app.cell
def _(check):
    # NBVAL_CHECK_OUTPUT
    check.select("job", "manual_check")
    return


if __name__ == "__main__":
    app.run()
