"""A runbook in a real browser: ``marimo run`` in the background, Debian's chromium driven by Playwright.

What the browser tests read, and the marimo 0.25 DOM it rests on (all found by inspecting the page):

* the app is connected when ``#App`` has ``data-connection-state="OPEN"``; while any cell is queued
  or running marimo shows ``[data-testid="loading-indicator"]`` (an hourglass) — the page has
  *settled* when that is gone and stays gone;
* ``marimo run`` hides a cell whose output is an error unless it is started with
  ``--show-tracebacks``; then the cell carries the class ``has-error`` and its output a
  ``[role=alert]`` naming the exception;
* a section is a markdown ``h2``; a table (``mo.ui.table`` or a data frame) is a ``marimo-table``
  whose rendered ``thead``/``tbody`` live in its shadow root (Playwright's CSS pierces it);
* an altair chart is a ``div.vega-embed`` drawn on a canvas: its text (title, axes, legend) is
  read from the SVG that vega-embed's own "Save as SVG" action renders from the same view.

Playwright's Python package never downloads a browser here: it drives ``/usr/bin/chromium``, which
``./dev setup`` installs, with the network flags a closed network needs.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import log_tail, stop_process_group, wait_for

ROOT = Path(__file__).resolve().parent.parent
RUNBOOKS = ROOT / "runbooks"
SCREENSHOTS = ROOT / "reports" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
#: headless, as root (no sandbox), and quiet on a closed network (no updates, no first-run fetches)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
#: how long a runbook may take to run every cell (it waits for HTTP answers; CI's CPUs are shared)
SETTLE_SECONDS = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MarimoApp:
    """One ``marimo run`` of a runbook, serving on ``url``; its output goes to ``log``."""

    runbook: str
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log, lines)


@contextmanager
def marimo_run(runbook: str, args: Sequence[str], environ: Mapping[str, str], workdir: Path) -> Iterator[MarimoApp]:
    """``marimo run runbooks/<runbook>.py -- <args>`` in the background, stopped (its whole process
    group) afterwards.

    It runs in ``workdir`` (the runbooks read ``.env`` from the working directory: a developer's must
    not leak in), with stdin, stdout and stderr away from the test runner (a child holding the
    runner's stdout keeps CI's pipe open) and ``--show-tracebacks`` so an error cell is visible.
    Credentials travel in ``environ``, never on the command line.
    """
    port = free_port()
    log = workdir / f"marimo-{runbook}.log"
    command = [sys.executable, "-m", "marimo", "run", str(RUNBOOKS / f"{runbook}.py"), "--headless",
               "--host", "127.0.0.1", "--port", str(port), "--no-token", "--show-tracebacks", "--", *args]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=workdir, env=dict(environ), stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    app = MarimoApp(runbook, f"http://127.0.0.1:{port}", log, process)
    try:
        wait_for(lambda: _serving(app), timeout=60, interval=0.3, message=f"marimo run {runbook} to serve")
        yield app
    finally:
        stop_process_group(process)


def _serving(app: MarimoApp) -> bool:
    if app.process.poll() is not None:
        raise AssertionError(f"marimo run {app.runbook} exited with {app.process.returncode}:\n{app.log_tail()}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(app.url + "/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


# -- reading a runbook's page ---------------------------------------------------------------------


def _class(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


class RunbookPage:
    """A runbook's page in the browser, read the way a person reads it: sections, tables, charts, buttons."""

    def __init__(self, page: Any, app: MarimoApp) -> None:
        self.page, self.app = page, app

    def open(self) -> RunbookPage:
        self.page.goto(self.app.url)
        return self.settled()

    def reload(self) -> RunbookPage:
        self.page.reload()
        return self.settled()

    def settled(self, timeout: float = SETTLE_SECONDS) -> RunbookPage:
        """Wait until every cell ran: connected, outputs shown, and no cell queued or running at two
        looks in a row (the indicator can blink off between two cells)."""
        self.page.wait_for_selector('#App[data-connection-state="OPEN"]', timeout=timeout * 1000)
        quiet = {"looks": 0}

        def idle() -> bool:
            busy = self.page.locator('[data-testid="loading-indicator"]').count() > 0
            shown = self.page.locator(".marimo-cell .output-area").count() > 0
            quiet["looks"] = 0 if busy or not shown else quiet["looks"] + 1
            return quiet["looks"] >= 2

        wait_for(idle, timeout=timeout, interval=0.5, message=f"every cell of {self.app.runbook} to run")
        return self

    def error_cells(self) -> list[str]:
        """The text of every cell whose output is an error (empty: none)."""
        return [text[:500] for text in self.page.locator(".marimo-cell.has-error").all_inner_texts()]

    def text(self) -> str:
        return str(self.page.locator("#App").inner_text())

    def shows(self, text: str, timeout: float = SETTLE_SECONDS) -> RunbookPage:
        """Wait until ``text`` is on the page (after a click, the kernel answers asynchronously)."""
        wait_for(lambda: text in self.text(), timeout=timeout, interval=0.3,
                 message=f"{self.app.runbook} to show {text!r}")
        return self.settled()

    def screenshot(self, name: str) -> Path:
        """The whole runbook as one image, ``reports/screenshots/<name>.png``.

        marimo scrolls inside ``#App``, not the document, so a full-page shot would stop at the
        window's height: the window is made as tall as the app first.
        """
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        size = self.page.viewport_size
        height = int(self.page.evaluate("document.querySelector('#App').scrollHeight"))
        self.page.set_viewport_size({"width": size["width"], "height": min(max(height, size["height"]), 20000)})
        try:
            self.page.screenshot(path=str(path), full_page=True)
        finally:
            self.page.set_viewport_size(size)
        return path

    # -- sections: a markdown heading and what follows it, up to the next heading of its level --

    def _in_section(self, heading: str, element: str, level: int = 2) -> Any:
        title = f"normalize-space()='{heading}'"
        return self.page.locator(f"xpath=//h{level}[{title}]/following::{element}[preceding::h{level}[1][{title}]]")

    def table(self, heading: str, index: int = 0) -> Table:
        """The ``index``-th table under the section ``heading``."""
        return Table(self._in_section(heading, "marimo-table").nth(index))

    def charts(self, heading: str) -> Any:
        """The altair/vega charts under the section ``heading``."""
        return self._in_section(heading, f"div[{_class('vega-embed')}]")

    def chart_svg(self, chart: Any) -> str:
        """The chart as vega draws it, as SVG text, through vega-embed's own "Save as SVG" action."""
        chart.locator("summary").click()
        with self.page.expect_download() as download:
            chart.get_by_text("Save as SVG").click()
        return Path(download.value.path()).read_text(encoding="utf-8")

    def button(self, label: str) -> Any:
        return self.page.get_by_role("button", name=label, exact=True)

    def section_text(self, heading: str, level: int = 2) -> str:
        """Everything shown from the heading up to the next heading of its level."""
        title = f"normalize-space()='{heading}'"
        cells = self.page.locator(
            f"xpath=//div[{_class('marimo-cell')}][.//h{level}[{title}] or preceding::h{level}[1][{title}]]")
        return "\n".join(cells.all_inner_texts())


def svg_texts(svg: str) -> set[str]:
    """The words a chart shows (title, axes, legend, labels), from its SVG."""
    import html

    return {html.unescape(t).strip() for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)}


class Table:
    """A marimo table as rendered: header names (without their dtype line) and the cells of each row."""

    def __init__(self, locator: Any) -> None:
        self.locator = locator

    def columns(self) -> list[str]:
        return [text.splitlines()[0].strip() for text in self.locator.locator("thead th").all_inner_texts() if text.strip()]

    def rows(self) -> list[dict[str, str]]:
        columns = self.columns()
        rows = []
        for row in self.locator.locator("tbody tr").all():
            cells = [c.strip() for c in row.locator("td").all_inner_texts()]
            rows.append(dict(zip(columns, cells[-len(columns):], strict=False)))
        return rows

    def column(self, name: str) -> list[str]:
        return [row[name] for row in self.rows()]
