"""The runbooks as an operator sees them: ``marimo run`` of each one in chromium, on the demo's data.

One private sandbox for the module with the five seed examples and cronkit's maintenance jobs applied
as ``cronkit demo`` applies them (every example job ran and got its answer before the first page
opens), one browser, one
``marimo run`` per runbook. Every runbook settles without an error cell and leaves a full-page
screenshot in ``reports/screenshots/`` for review. Then, per runbook, what its page must show:

* monitor: a board row per job, every outcome column, a chart per declared queue;
* setup: pressing Apply ends in a verified checklist;
* rollback: a teardown is refused until the project's name is typed exactly.

Setup and rollback work on a throwaway project (a copy of the auto-sync example under another
project and job name), so the examples the monitor reads stay as they are; pytest keeps file
order, and the read-only runbooks come first.

The browser is Debian's chromium (``/usr/bin/chromium``) and Playwright comes from the test extras:
``./dev setup`` installs both, so a machine without them fails here, loudly, instead of skipping an
acceptance criterion unseen.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cronkit.manifest import load_manifest
from cronkit.outcomes import OUTCOMES
from cronkit_sandbox import demo
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, ROOT, RunbookPage, marimo_run, svg_texts
from tests.helpers import wait_for
from tests.labs import (Lab, apply_demo_examples, demo_job_count, lab_directory, start_lab, stop_labs,
                        wait_demo_examples_answered)

pytestmark = pytest.mark.slow

EXAMPLES = ROOT / "examples"
THROWAWAY = "browser-check"  # the project setup applies and rollback tears down
THROWAWAY_JOB = "browser-check-cron-job"
#: the last hour, every job (no manifest); refreshed hourly, so no re-run changes the page under a test
MONITOR_ARGS = ("--hours", "1", "--refresh", "1h")


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """A sandbox of its own with the demo's data: the five examples and cronkit's maintenance jobs
    applied, and each example job answered."""
    if os.environ.get("CRONKIT_TEST_DSN"):
        pytest.skip("needs a private local sandbox (the five examples); CRONKIT_TEST_DSN points elsewhere")
    with lab_directory("cronkit-browser-") as base:
        started: list[Lab] = []
        try:
            started.append(start_lab(base, "demo"))
            lab = started[0]
            since = apply_demo_examples(lab, lab.pg_cron_version())
            wait_demo_examples_answered(lab, since)
            yield lab
        finally:
            stop_labs(started)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.fail(f"no {CHROMIUM}: run ./dev setup (it installs Debian's chromium for these tests)", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: run ./dev setup (it is in the test extras)", pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the marimo servers run and log (no .env there) and the throwaway manifest lives."""
    return tmp_path_factory.mktemp("browser")


@pytest.fixture(scope="module")
def environ(lab: Lab) -> dict[str, str]:
    """What a runbook's process sees: the (already scrubbed) environment, the lab's database and the
    variables the examples' manifests read their secrets from."""
    return {**os.environ, **demo.demo_environ(lab.env), "DATABASE_URL": lab.env.database_url}


@pytest.fixture(scope="module")
def throwaway(workdir: Path) -> Path:
    """The auto-sync example as another project: its own job name, the same function and secrets."""
    text = (EXAMPLES / "auto-sync" / "cronkit.toml").read_text(encoding="utf-8")
    text = text.replace('project = "auto-sync"', f'project = "{THROWAWAY}"').replace("auto-sync-cron-job", THROWAWAY_JOB)
    path = workdir / THROWAWAY / "cronkit.toml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    assert load_manifest(path).project == THROWAWAY
    return path


class Runbooks:
    """Opens each runbook once (one ``marimo run``, one page) and keeps it for the module."""

    def __init__(self, browser: Any, environ: dict[str, str], workdir: Path, stack: ExitStack) -> None:
        self.browser, self.environ, self.workdir, self.stack = browser, environ, workdir, stack
        self.pages: dict[str, RunbookPage] = {}

    def open(self, runbook: str, *args: str) -> RunbookPage:
        if runbook not in self.pages:
            app = self.stack.enter_context(marimo_run(runbook, args, self.environ, self.workdir))
            page = self.browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            self.stack.callback(page.close)
            self.pages[runbook] = RunbookPage(page, app).open()
        return self.pages[runbook]


@pytest.fixture(scope="module")
def runbooks(browser: Any, environ: dict[str, str], workdir: Path) -> Iterator[Runbooks]:
    with ExitStack() as stack:
        yield Runbooks(browser, environ, workdir, stack)


@pytest.fixture(scope="module")
def monitor(runbooks: Runbooks) -> RunbookPage:
    return runbooks.open("monitor", *MONITOR_ARGS)


# -- helpers that read as the specification -------------------------------------------------------


def assert_settles_without_error_cells(page: RunbookPage, screenshot: str) -> None:
    shot = page.screenshot(screenshot)
    errors = page.error_cells()
    assert not errors, f"{page.app.runbook} shows {len(errors)} error cell(s) (screenshot {shot}):\n" + "\n---\n".join(errors)


def example_jobs(lab: Lab) -> set[str]:
    """The jobs the five examples created (what ``cronkit demo`` reports on)."""
    rows = demo.collect(lab.env, [e.manifest().project for e in demo.examples()], datetime.now(UTC))
    return {r["jobname"] for r in rows}


def declared_queues() -> list[str]:
    return sorted(q.table for e in demo.examples() for q in e.manifest().queues)


def throwaway_jobs(lab: Lab) -> list[str]:
    return [r["jobname"] for r in lab.sql("select jobname from cron.job where jobname = %s", (THROWAWAY_JOB,))]


def checklist(page: RunbookPage) -> list[str]:
    """The success checklist's items, each with its mark (✅ done, ❌ to do, ⏳ waiting, — no work yet)."""
    text = page.section_text("Success checklist", level=3)
    return [line.strip() for line in text.splitlines() if line.strip()[:1] in ("✅", "❌", "⏳", "—")]


# -- every runbook -------------------------------------------------------------------------------


@pytest.mark.parametrize("runbook, args", [
    ("monitor", MONITOR_ARGS),
    ("incident", ("--hours", "1")),
    ("rotate_secret", ("--manifest", str(EXAMPLES / "auto-sync" / "cronkit.toml"), "--env", "sandbox")),
    ("dead_letters", ("--manifest", str(EXAMPLES / "bubble-sync" / "cronkit.toml"), "--env", "sandbox")),
])
def test_a_read_only_runbook_settles_without_an_error_cell(runbooks: Runbooks, lab: Lab, runbook: str,
                                                          args: tuple[str, ...]) -> None:
    page = runbooks.open(runbook, *args)
    assert page.text().strip(), f"{runbook} shows nothing"
    assert_settles_without_error_cells(page, runbook)


# -- monitor -------------------------------------------------------------------------------------


def test_the_monitor_board_has_one_row_per_job(monitor: RunbookPage, lab: Lab) -> None:
    jobs = monitor.table("Health board").column("job")
    assert sorted(jobs) == sorted(r["jobname"] for r in lab.sql("select jobname from cron.job"))
    assert len(example_jobs(lab)) == demo_job_count() and example_jobs(lab) <= set(jobs)


def test_the_monitor_shows_every_http_outcome_column(monitor: RunbookPage) -> None:
    columns = monitor.table("HTTP outcomes").columns()
    assert [str(o) for o in OUTCOMES if str(o) not in columns] == [], columns


def test_the_monitor_charts_each_declared_queue(monitor: RunbookPage) -> None:
    charts = monitor.charts("Queues")
    assert charts.count() > 0, "no chart in the Queues section:\n" + monitor.section_text("Queues")
    shown = set().union(*(svg_texts(monitor.chart_svg(charts.nth(i))) for i in range(charts.count())))
    words = " ".join(shown)
    assert [q for q in declared_queues() if q not in words and q.split(".")[-1] not in words] == [], sorted(shown)


# -- setup and rollback, on the throwaway project --------------------------------------------------


def test_pressing_apply_in_setup_ends_in_a_verified_checklist(runbooks: Runbooks, lab: Lab, throwaway: Path) -> None:
    assert throwaway_jobs(lab) == [], "the throwaway project must start unapplied"
    page = runbooks.open("setup", "--manifest", str(throwaway), "--env", "sandbox")
    # the checklist is the runbook's last cell: under load it may render after the page first looks idle
    before = wait_for(lambda: checklist(page) or None, timeout=60, interval=0.5, message="setup's checklist to render")
    assert any(item.startswith("❌") for item in before), f"before Apply, the checklist has work to do: {before}"

    page.button("Apply").click()
    wait_for(lambda: throwaway_jobs(lab) == [THROWAWAY_JOB], timeout=60, message="Apply to schedule the job")
    page.settled()

    def verified() -> list[str] | None:
        # "ran on schedule" waits for pg_cron's next tick (every 5 s here): read the page again
        items = checklist(page.reload())
        return items if items and all(item.startswith("✅") for item in items) else None

    items = wait_for(verified, timeout=90, interval=3, message=f"setup's checklist to be verified; last: {checklist(page)}")
    assert f"✅ {THROWAWAY_JOB} answered by its endpoint" in items
    assert "All done." in page.section_text("Success checklist", level=3)
    assert_settles_without_error_cells(page, "setup")


def test_a_teardown_needs_the_project_name_typed(runbooks: Runbooks, lab: Lab, throwaway: Path) -> None:
    if not throwaway_jobs(lab):  # setup's test applies it; alone, this test applies it itself
        lab.apply(load_manifest(throwaway), demo.demo_environ(lab.env), "sandbox")
    page = runbooks.open("rollback", "--manifest", str(throwaway), "--env", "sandbox", "--action", "teardown")
    carry_out = page.button("Carry out: teardown")
    name = page.page.get_by_label(f"Type {THROWAWAY} to confirm the teardown")
    refused = f"Type {THROWAWAY} in the box above"
    not_pressed = "Review the preview above, then press"  # what the step says until its button is pressed

    carry_out.click()
    page.shows(refused)
    assert throwaway_jobs(lab) == [THROWAWAY_JOB]

    name.fill(THROWAWAY + "x")
    name.press("Enter")
    page.shows(not_pressed)
    carry_out.click()
    page.shows(refused)
    assert throwaway_jobs(lab) == [THROWAWAY_JOB]

    name.fill(THROWAWAY)
    name.press("Enter")
    page.shows(not_pressed)
    carry_out.click()
    wait_for(lambda: throwaway_jobs(lab) == [], timeout=60, message="the teardown to unschedule the job")
    page.shows("Nothing to do for")  # the preview is read again after the action: nothing left to tear down
    assert refused not in page.text() and not_pressed not in page.text() and "Done:" in page.text()
    assert_settles_without_error_cells(page, "rollback")
