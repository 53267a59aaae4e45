"""cronkit.runbooks without a database: parameters, the apply gate outside marimo, the HTML report
renderer, and the guides' troubleshooting map."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import altair as alt
import polars as pl
import pytest

from cronkit import doctor
from cronkit.errors import ConfigError
from cronkit.outcomes import Outcome
from cronkit.runbooks import (
    incident,
    job_checks,
    monitor,
    rollback,
    rotate,
    runtime,
    setup,
)
from cronkit.runbooks.report import render_output

DEFAULTS = {"manifest": None, "dsn": None, "apply": False, "wait_seconds": 20.0, "hours": 24}


def test_defaults_apply_when_nothing_else_is_given(tmp_path: Path) -> None:
    assert runtime.params(environ={}, env_file=tmp_path / "none", cli={}, **DEFAULTS) == DEFAULTS


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
    assert runtime.params(environ=environ, env_file=env_file, cli=cli, **DEFAULTS)["manifest"] == expected


def test_the_dsn_comes_from_database_url_unless_cronkit_dsn_is_set(tmp_path: Path) -> None:
    none = tmp_path / "none"
    assert runtime.params(environ={"DATABASE_URL": "postgresql://a"}, env_file=none, cli={}, dsn=None)["dsn"] == "postgresql://a"
    both = {"DATABASE_URL": "postgresql://a", "CRONKIT_DSN": "postgresql://b"}
    assert runtime.params(environ=both, env_file=none, cli={}, dsn=None)["dsn"] == "postgresql://b"


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("1", True), ("yes", True), ("false", False),
                                               ("0", False), ("", False), (True, True), (False, False)])
def test_it_reads_booleans_the_way_people_write_them(tmp_path: Path, raw: object, expected: bool) -> None:
    assert runtime.params(environ={}, env_file=tmp_path / "none", cli={"apply": raw}, apply=False)["apply"] is expected


def test_it_converts_numbers_to_the_type_of_their_default(tmp_path: Path) -> None:
    p = runtime.params(environ={"CRONKIT_WAIT_SECONDS": "5"}, env_file=tmp_path / "none", cli={"hours": "6"},
                  wait_seconds=20.0, hours=24)
    assert p == {"wait_seconds": 5.0, "hours": 6}
    assert isinstance(p["wait_seconds"], float) and isinstance(p["hours"], int)


def test_it_accepts_dashed_cli_names_and_ignores_names_that_are_not_parameters(tmp_path: Path) -> None:
    p = runtime.params(environ={}, env_file=tmp_path / "none", cli={"secret-from-env": "KEY", "k": "probe"},
                  secret_from_env=None)
    assert p == {"secret_from_env": "KEY"}


@pytest.mark.parametrize(("cli", "message"), [({"apply": "maybe"}, "--apply: expected true or false"),
                                              ({"hours": "soon"}, "--hours: expected a number")])
def test_it_refuses_values_it_cannot_convert_and_says_where_they_came_from(tmp_path: Path, cli: dict[str, str],
                                                                           message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        runtime.params(environ={}, env_file=tmp_path / "none", cli=cli, apply=False, hours=24)


def test_reading_cli_arguments_outside_marimo_never_raises() -> None:
    assert runtime.marimo_cli_args() == {}
    assert runtime.runtime_mode() in (None, "test")  # marimo says "test" under pytest, without a runtime
    assert not runtime.in_marimo()


def test_the_gate_outside_marimo_answers_and_the_effect_says_why_nothing_happened() -> None:
    gate = runtime.gate(False, "Apply")
    assert not gate
    note = runtime.NotApplied.of(gate, "Apply").view().text
    assert runtime.JUPYTER_GATE in note and "Nothing was changed" in note
    idle = runtime.NotApplied.of(runtime.gate(False, "Apply", needed=False, idle="Already done."), "Apply").view().text
    assert "Already done." in idle and runtime.JUPYTER_GATE not in idle
    assert runtime.gate(True, "Apply")
    assert runtime.confirmed(None, {"apply": True}) and not runtime.confirmed(None, {"apply": False})

    class Pressed:
        value = True

    assert runtime.confirmed(Pressed(), {"apply": False})


def test_the_dsn_is_shown_without_its_password() -> None:
    frame = runtime.param_rows({"dsn": "postgresql://postgres:hunter2@db:5432/postgres", "apply": False})
    assert "hunter2" not in str(frame.to_dicts())
    assert frame.filter(pl.col("parameter") == "dsn")["variable"].item() == "CRONKIT_DSN / DATABASE_URL"


def test_free_text_cannot_become_tags_or_maths_in_markdown() -> None:
    assert runtime.esc("<secret len=3 fp=abc> costs $5") == "&lt;secret len=3 fp=abc&gt; costs &#36;5"
    assert runtime.prose("run `SELECT $$x$$` <now>") == "run <code>SELECT $$x$$</code> &lt;now&gt;"


def test_the_report_renders_charts_as_inline_svg_frames_as_tables_and_controls_as_a_note() -> None:
    import marimo as mo

    chart = alt.Chart(alt.Data(values=[{"x": 1, "y": 2}])).mark_point().encode(x="x:Q", y="y:Q")
    assert render_output(chart).startswith("<figure><svg")
    assert "<table" in render_output(pl.DataFrame({"a": [1]}))
    control = render_output(mo.vstack([mo.md("hello"), mo.ui.run_button(label="Go")]))
    assert "hello" in control and "marimo-ui-element" not in control and "interactive control" in control
    assert render_output(None) == ""
    assert render_output("<b>") == "<pre>&lt;b&gt;</pre>"


def test_report_tables_are_designed_html_not_polars_repr() -> None:
    import marimo as mo

    when = datetime(2026, 12, 6, 3, 4, 5, tzinfo=UTC)
    frame = pl.DataFrame({"job": ["sync", "<b>x</b>"], "runs": [1200, 3], "p95 ms": [12.345, None],
                          "last": [when, None], "active": [True, False]})
    table = render_output(frame)

    assert "shape:" not in table and "<th>i64</th>" not in table and "str</" not in table
    assert "<th>job</th><th>runs</th><th>p95 ms</th><th>last</th><th>active</th>" in table
    assert "<td class='num'>1,200</td>" in table and "<td class='num'>12.3</td>" in table
    assert "<td class='num'>2026-12-06 03:04:05</td>" in table and "<td class='none'>—</td>" in table
    assert "<td class='word'>&lt;b&gt;x&lt;/b&gt;</td>" in table and "<td>yes</td>" in table
    assert render_output(mo.ui.table(frame)) == table  # the board table prints its rows, not a control note
    many = render_output(pl.DataFrame({"n": list(range(100))}))
    assert many.count("<tr>") == 61 and "… and 40 more rows" in many


def test_the_report_page_is_as_wide_as_a4_and_has_no_code_toggles() -> None:
    from cronkit.runbooks.report import REPORT_CSS

    assert "@page{size:A4 landscape" in REPORT_CSS and "max-width:273mm" in REPORT_CSS
    assert "figure svg{max-width:100%" in REPORT_CSS and "details" not in REPORT_CSS


def test_every_troubleshooting_item_of_the_guides_maps_to_checks_the_doctor_has() -> None:
    assert {g for g, _item, _codes in incident.GUIDE_TROUBLESHOOTING} == {"000", "001", "002", "003", "004"}
    for _guide, item, codes in incident.GUIDE_TROUBLESHOOTING:
        assert codes and set(codes) <= set(doctor.CATALOGUE), item


def test_the_rollback_actions_are_the_ones_the_runbook_offers() -> None:
    assert rollback.ROLLBACK_ACTIONS == ("disable", "enable", "remove", "teardown")
    assert rollback.chosen_job(rollback.ALL_JOBS) is None and rollback.chosen_job("x") == "x"


def test_the_refresh_interval_asked_for_is_offered_and_nonsense_is_refused() -> None:
    assert monitor.refresh_options("1m") == list(monitor.REFRESH_OPTIONS)
    assert monitor.refresh_options("2m")[-1] == "2m"
    assert monitor.refresh_options(None) == list(monitor.REFRESH_OPTIONS)
    with pytest.raises(ConfigError, match="not an interval"):
        monitor.refresh_options("soon")


@pytest.mark.parametrize("outcome", [o for o in Outcome if o.failed], ids=str)
def test_every_failed_outcome_including_a_redirect_fails_the_runbooks_checks(outcome: Outcome) -> None:
    # pg_net follows no redirect: a 3xx means the function never ran (cronkit.outcomes).
    assert job_checks.failed_calls({str(outcome): 2, "2xx": 1}) == 2
    assert setup.answered_state({"last_http": str(outcome), "http": f"{outcome} ×2", "work": ""})[0] == "todo"
    assert rotate.manual_check("http", str(outcome), None, {str(outcome): 1}).startswith("failed")


def test_only_a_2xx_answer_counts_as_done_and_pending_as_waiting() -> None:
    assert setup.answered_state({"last_http": "2xx", "http": "2xx ×1", "work": ""})[0] == "done"
    assert setup.answered_state({"last_http": "pending", "http": "pending ×1", "work": ""})[0] == "waiting"
    assert rotate.manual_check("http", "2xx", None, {"2xx": 1}) == "ok"
    assert rotate.manual_check("http", "2xx", None, {"2xx": 1, "3xx": 1}).startswith("ok (an earlier call")
    assert job_checks.outcome_text({"requests": 2, "2xx": 1, "3xx": 1}) == "2xx ×1, 3xx ×1"


@pytest.mark.parametrize("backend", [{"backend": "vault"}, {"backend": "table", "table": "public.my_secrets"}],
                         ids=["vault", "table"])
def test_the_store_preview_shows_the_statements_with_the_mask_in_place_of_the_value(backend: dict[str, str]) -> None:
    from cronkit.manifest import parse_manifest
    from cronkit.runbooks.context import RunbookContext
    from cronkit.redact import mask
    from cronkit.runbooks.secret_store import store_preview

    ctx = RunbookContext(dsn="", manifest=parse_manifest({"project": "x", "secrets": backend}), environment="default")
    value = "a-secret-value-for-the-preview"
    shown = store_preview(ctx, None, "service_role_key", value)  # type: ignore[arg-type]  # quoting needs no server
    assert shown.count(mask(value)) == 1 and "'service_role_key'" in shown and value not in shown
    assert "FROM STDIN" in shown and "not logged" in shown
    assert "-- when present" in shown and "-- when absent" in shown


def test_a_guard_with_nothing_to_do_leaves_the_endpoint_unverified_not_done() -> None:
    status, detail = setup.answered_state({"last_http": job_checks.NO_REQUEST, "http": "no request yet",
                                           "work": "nothing to do"})
    assert status == "idle" and "not verified" in detail
    items = pl.DataFrame([{"step": "a answered by its endpoint", "status": status, "detail": detail}],
                         schema=setup.CHECKLIST_SCHEMA)
    assert "— a answered by its endpoint" in setup.checklist_view(items).text
    assert "not verified until there is work" in setup.checklist_view(items).text


def test_an_idle_step_is_marked_as_nothing_to_do_not_as_done() -> None:
    idle = runtime.NotApplied.of(runtime.gate(False, "Run", needed=False, idle="Nothing to run yet.", idle_mark="—"), "Run")
    assert "— Nothing to run yet." in idle.view().text and "✅" not in idle.view().text
    assert "✅ Nothing to do." in runtime.NotApplied.of(runtime.gate(False, "Apply", needed=False), "Apply").view().text


def test_each_plan_step_shows_its_sql_terminated_in_a_box_that_scrolls() -> None:
    preview = setup.PlanPreview("p", "prod", {"create": 1, "update": 0, "remove": 0, "unchanged": 0, "setup": 0,
                                               "secret": 0}, (), (), ({"action": "create", "job": "j", "detail": "d",
                                                                       "sql": ["SELECT 1", "SELECT 2;"]},), ())
    shown = setup.plan_view(preview).text
    assert "SELECT 1;\nSELECT 2;" in shown and "overflow: auto" in shown and "max-width: 100%" in shown
