import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="cronkit · dead letters")

with app.setup:
    import marimo as mo

    from cronkit.runbooks import context, dead_letters, runtime


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # Calls that failed every attempt

    A job with `retry` in the manifest sends a failed call again, with the same
    `Idempotency-Key: <job>:<slot>`, until its attempts are used up; then the call lands here, in
    `cronkit.dead_letters`, with its evidence: every attempt's request, its answer, and the start
    of the last response body. Once the endpoint is fixed:

    - **replay** — send the call again through the job's wrapper: a new chain of attempts with the
      same idempotency key, so the endpoint can tell it is the same work;
    - **drop** — dismiss it (the evidence stays).

    Each is one transaction with its entry in the change record (`cronkit log`).
    """)
    return


@app.cell
def _():
    p = runtime.params(manifest=None, env=None, dsn=None, apply=False, action="replay", letter=None)
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
def _(ctx, letter_button):
    # NBVAL_CHECK_OUTPUT
    _ = letter_button.value  # read again after each action
    letters = dead_letters.open_letters(ctx)
    mo.vstack([mo.md(f"Open dead letters: {len(letters)}"), dead_letters.letters_frame(letters)])
    return (letters,)


@app.cell
def _(p):
    action_choice = mo.ui.dropdown(options=[str(a) for a in dead_letters.DeadLetterAction],
                                   value=dead_letters.action_value(p["action"]), label="Action")
    action_choice
    return (action_choice,)


@app.cell
def _(letters):
    letter_choice = mo.ui.dropdown(options=dead_letters.letter_choices(letters),
                                   value=dead_letters.NONE_CHOSEN, label="Dead letter")
    letter_choice
    return (letter_choice,)


@app.cell
def _(action_choice, letter_choice, letters, p):
    # NBVAL_IGNORE_OUTPUT
    chosen_letter = dead_letters.chosen(letter_choice.value, p["letter"])
    dead_letters.preview(letters, action_choice.value, chosen_letter)
    return (chosen_letter,)


@app.cell
def _(action_choice):
    letter_button = mo.ui.run_button(kind="danger", label=f"Carry out: {action_choice.value}")
    letter_button
    return (letter_button,)


@app.cell
def _(action_choice, chosen_letter, ctx, letter_button, letters, p):
    _go = runtime.gate(runtime.confirmed(letter_button, p), f"Carry out: {action_choice.value}",
                       needed=bool(letters), idle="Nothing to do: no open dead letter.")
    dead_letters.carry_out(ctx, action_choice.value, chosen_letter, _go).view()
    return


if __name__ == "__main__":
    app.run()
