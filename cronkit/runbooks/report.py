"""Offline HTML reports of headless runbook runs: every cell's code and output, charts as inline SVG, no network."""

from __future__ import annotations

import html
import importlib.util
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import marimo as mo
import polars as pl

from cronkit.errors import ConfigError, CronkitError
from cronkit.runbooks.runtime import reporting

_MARIMO_ELEMENT = re.compile(r"<marimo-ui-element\b.*?</marimo-ui-element>", re.DOTALL)
_MARIMO_ANY = re.compile(r"</?marimo-[a-z-]+\b[^>]*>", re.DOTALL)

REPORT_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2rem auto;padding:0 1rem;color:#1f2328}
header{border-bottom:1px solid #d0d7de;margin-bottom:1.5rem}
section.cell{margin:1.2rem 0}
details.code summary{cursor:pointer;color:#57606a;font-size:.85rem}
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;font-size:.85rem}
table{border-collapse:collapse;font-size:.85rem}
td,th{border:1px solid #d0d7de;padding:.2rem .5rem;text-align:left;vertical-align:top}
figure{margin:0}
.control{color:#57606a;font-style:italic}
.error{color:#cf222e}
"""


def load_app(path: str | Path) -> Any:
    """The ``app`` of a runbook file, imported by path (its ``__main__`` guard keeps it from running)."""
    path = Path(path).resolve()
    spec = importlib.util.spec_from_file_location(f"runbook_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path} is not a Python file.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


def render_output(value: Any) -> str:
    """One cell's output as self-contained HTML: charts as inline SVG (vl-convert, no CDN),
    frames as tables, marimo's interactive controls replaced by a note."""
    if value is None:
        return ""
    module = type(value).__module__
    if module.startswith("altair.") and hasattr(value, "to_json"):
        import vl_convert

        try:
            return f"<figure>{vl_convert.vegalite_to_svg(value.to_json())}</figure>"
        except Exception as exc:  # noqa: BLE001 - a chart that cannot render must not lose the report
            return f"<p class='error'>chart could not be rendered: {html.escape(str(exc))}</p>"
    if isinstance(value, pl.DataFrame):
        with pl.Config(tbl_rows=50, tbl_cols=30, fmt_str_lengths=200):
            return value._repr_html_()
    text = getattr(value, "text", None)
    if isinstance(text, str):  # mo.Html and friends
        text = _MARIMO_ELEMENT.sub("<span class='control'>[interactive control: open the runbook in marimo]</span>", text)
        return _MARIMO_ANY.sub("", text)
    if isinstance(value, str):
        return f"<pre>{html.escape(value)}</pre>"
    return f"<pre>{html.escape(repr(value))}</pre>"


def report(notebook: str | Path, output: str | Path, args: Sequence[str] = ()) -> Path:
    """Run a runbook headless (``app.run()``, marimo's script mode: no button is pressed) and write
    every cell's code and output into one HTML file that needs no network to view.

    ``args`` are the runbook's own parameters (``["--hours", "6"]``), as after ``--`` on the
    command line.
    """
    notebook, output = Path(notebook), Path(output)
    app = load_app(notebook)
    with reporting([str(notebook), *args]):
        outputs, _defs = app.run()
    cells = [c for c in app._cell_manager.cell_data() if c.name != "setup"]
    if len(cells) != len(outputs):  # pragma: no cover - marimo changed its cell bookkeeping
        raise CronkitError(f"{notebook}: {len(cells)} cells but {len(outputs)} outputs.")
    title = html.escape(getattr(app._config, "app_title", None) or notebook.stem)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{title}</title><style>{REPORT_CSS}</style></head><body>",
        (f"<header><h1>{title}</h1><p>Headless run of <code>{html.escape(str(notebook))}</code> at "
         f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC (marimo {html.escape(mo.__version__)}; nothing was applied unless "
         "<code>--apply true</code> was given).</p></header>"),
    ]
    for cell, value in zip(cells, outputs, strict=True):
        body = render_output(value)
        code = "" if cell.config.hide_code else (
            f"<details class='code'><summary>code</summary><pre>{html.escape(cell.code)}</pre></details>")
        if body or code:
            parts.append(f"<section class='cell'>{code}{body}</section>")
    parts.append("</body></html>")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(parts), encoding="utf-8")
    return output
