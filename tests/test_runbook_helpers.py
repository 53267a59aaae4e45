"""cronkit.runbook without a database: parameters, the apply gate outside marimo, the HTML report
renderer, and the guides' troubleshooting map."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import polars as pl
import pytest

from cronkit import doctor
from cronkit import runbook as rb
from cronkit.errors import ConfigError

DEFAULTS = {"manifest": None, "dsn": None, "apply": False, "wait_seconds": 20.0, "hours": 24}


def test_defaults_apply_when_nothing_else_is_given(tmp_path: Path) -> None:
    assert rb.params(environ={}, env_file=tmp_path / "none", cli={}, **DEFAULTS) == DEFAULTS


@pytest.mark.parametrize(
    ("dotenv", "environ", "cli", "expected"),
    [
        ("CRONKIT_MANIFEST=a.toml\n", {}, {}, "a.toml"),
        ("CRONKIT_MANIFEST=a.toml\n", {"CRONKIT_MANIFEST": "b.toml"}, {}, "b.toml"),
        ("CRONKIT_MANIFEST=a.toml\n", {"CRONKIT_MANIFEST": "b.toml"}, {"manifest": "c.toml"}, "c.toml"),
        ("", {"CRONKIT_MANIFEST": ""}, {}, None),  # an empty variable is not a value
    ],
    ids=["dotenv-over-default", "environment-over-dotenv", "cli-over-environment", "empty-is-unset"],
)
def test_it_takes_each_parameter_from_the_strongest_source(tmp_path: Path, dotenv: str, environ: dict[str, str],
                                                           cli: dict[str, str], expected: str | None) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(dotenv, encoding="utf-8")
    assert rb.params(environ=environ, env_file=env_file, cli=cli, **DEFAULTS)["manifest"] == expected


def test_the_dsn_comes_from_database_url_unless_cronkit_dsn_is_set(tmp_path: Path) -> None:
    none = tmp_path / "none"
    assert rb.params(environ={"DATABASE_URL": "postgresql://a"}, env_file=none, cli={}, dsn=None)["dsn"] == "postgresql://a"
    both = {"DATABASE_URL": "postgresql://a", "CRONKIT_DSN": "postgresql://b"}
    assert rb.params(environ=both, env_file=none, cli={}, dsn=None)["dsn"] == "postgresql://b"


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("1", True), ("yes", True), ("false", False),
                                               ("0", False), ("", False), (True, True), (False, False)])
def test_it_reads_booleans_the_way_people_write_them(tmp_path: Path, raw: object, expected: bool) -> None:
    assert rb.params(environ={}, env_file=tmp_path / "none", cli={"apply": raw}, apply=False)["apply"] is expected


def test_it_converts_numbers_to_the_type_of_their_default(tmp_path: Path) -> None:
    p = rb.params(environ={"CRONKIT_WAIT_SECONDS": "5"}, env_file=tmp_path / "none", cli={"hours": "6"},
                  wait_seconds=20.0, hours=24)
    assert p == {"wait_seconds": 5.0, "hours": 6}
    assert isinstance(p["wait_seconds"], float) and isinstance(p["hours"], int)


def test_it_accepts_dashed_cli_names_and_ignores_names_that_are_not_parameters(tmp_path: Path) -> None:
    p = rb.params(environ={}, env_file=tmp_path / "none", cli={"secret-from-env": "KEY", "k": "probe"},
                  secret_from_env=None)
    assert p == {"secret_from_env": "KEY"}


@pytest.mark.parametrize(("cli", "message"), [({"apply": "maybe"}, "--apply: expected true or false"),
                                              ({"hours": "soon"}, "--hours: expected a number")])
def test_it_refuses_values_it_cannot_convert_and_says_where_they_came_from(tmp_path: Path, cli: dict[str, str],
                                                                           message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        rb.params(environ={}, env_file=tmp_path / "none", cli=cli, apply=False, hours=24)


def test_reading_cli_arguments_outside_marimo_never_raises() -> None:
    assert rb.marimo_cli_args() == {}
    assert rb.runtime_mode() in (None, "test")  # marimo says "test" under pytest, without a runtime
    assert not rb.in_marimo()


def test_the_gate_outside_marimo_answers_and_the_effect_says_why_nothing_happened() -> None:
    gate = rb.gate(False, "Apply")
    assert not gate
    note = rb.NotApplied.of(gate, "Apply").view().text
    assert rb.JUPYTER_GATE in note and "Nothing was changed" in note
    idle = rb.NotApplied.of(rb.gate(False, "Apply", needed=False, idle="Already done."), "Apply").view().text
    assert "Already done." in idle and rb.JUPYTER_GATE not in idle
    assert rb.gate(True, "Apply")
    assert rb.confirmed(None, {"apply": True}) and not rb.confirmed(None, {"apply": False})

    class Pressed:
        value = True

    assert rb.confirmed(Pressed(), {"apply": False})


def test_the_dsn_is_shown_without_its_password() -> None:
    frame = rb.param_rows({"dsn": "postgresql://postgres:hunter2@db:5432/postgres", "apply": False})
    assert "hunter2" not in str(frame.to_dicts())
    assert frame.filter(pl.col("parameter") == "dsn")["variable"].item() == "CRONKIT_DSN / DATABASE_URL"


def test_free_text_cannot_become_tags_or_maths_in_markdown() -> None:
    assert rb.esc("<secret len=3 fp=abc> costs $5") == "&lt;secret len=3 fp=abc&gt; costs &#36;5"
    assert rb.prose("run `SELECT $$x$$` <now>") == "run <code>SELECT $$x$$</code> &lt;now&gt;"


def test_the_report_renders_charts_as_inline_svg_frames_as_tables_and_controls_as_a_note() -> None:
    import marimo as mo

    chart = alt.Chart(alt.Data(values=[{"x": 1, "y": 2}])).mark_point().encode(x="x:Q", y="y:Q")
    assert rb.render_output(chart).startswith("<figure><svg")
    assert "<table" in rb.render_output(pl.DataFrame({"a": [1]}))
    control = rb.render_output(mo.vstack([mo.md("hello"), mo.ui.run_button(label="Go")]))
    assert "hello" in control and "marimo-ui-element" not in control and "interactive control" in control
    assert rb.render_output(None) == ""
    assert rb.render_output("<b>") == "<pre>&lt;b&gt;</pre>"


def test_every_troubleshooting_item_of_the_guides_maps_to_checks_the_doctor_has() -> None:
    assert {g for g, _item, _codes in rb.GUIDE_TROUBLESHOOTING} == {"000", "001", "002", "003", "004"}
    for _guide, item, codes in rb.GUIDE_TROUBLESHOOTING:
        assert codes and set(codes) <= set(doctor.CATALOGUE), item


def test_the_rollback_actions_are_the_ones_the_runbook_offers() -> None:
    assert rb.ROLLBACK_ACTIONS == ("disable", "enable", "remove", "teardown")
    assert rb.chosen_job(rb.ALL_JOBS) is None and rb.chosen_job("x") == "x"


def test_the_refresh_interval_asked_for_is_offered_and_nonsense_is_refused() -> None:
    assert rb.refresh_options("1m") == list(rb.REFRESH_OPTIONS)
    assert rb.refresh_options("2m")[-1] == "2m"
    assert rb.refresh_options(None) == list(rb.REFRESH_OPTIONS)
    with pytest.raises(ConfigError, match="not an interval"):
        rb.refresh_options("soon")
