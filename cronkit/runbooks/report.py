"""Offline HTML reports of headless runbook runs: every cell's output, charts as inline SVG, tables
as plain HTML, one file that needs no network and prints on A4."""

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

from cronkit.errors import ConfigError
from cronkit.runbooks.runtime import reporting

_MARIMO_ELEMENT = re.compile(r"<marimo-ui-element\b.*?</marimo-ui-element>", re.DOTALL)
_MARIMO_ANY = re.compile(r"</?marimo-[a-z-]+\b[^>]*>", re.DOTALL)

#: the page is as wide as landscape A4's printable area (297 mm less 2 x 12 mm margins) on screen
#: too, so what you see is what prints: the health board's 13 columns fit; tables wrap their text,
#: charts scale down
REPORT_CSS = """
@page{size:A4 landscape;margin:12mm}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:273mm;margin:1.5rem auto;padding:0 .5rem;
     color:#1f2328;font-size:10.5pt;line-height:1.4}
header{border-bottom:1px solid #d0d7de;margin-bottom:1rem}
h1{font-size:16pt}h2{font-size:13pt;margin-top:1.4rem}h3{font-size:11pt}
section.cell{margin:.8rem 0}
pre,code{font-size:8.5pt}
pre{background:#f6f8fa;padding:.5rem;white-space:pre-wrap;overflow-wrap:anywhere}
table.frame{border-collapse:collapse;width:100%;font-size:8pt;table-layout:auto}
table.frame td,table.frame th{border:1px solid #d0d7de;padding:.15rem .3rem;vertical-align:top}
table.frame td{overflow-wrap:break-word}
table.frame td.long{overflow-wrap:anywhere}
table.frame th{background:#f6f8fa;text-align:left;font-weight:600}
table.frame td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.frame td.none{color:#8c959f}
table.frame td.word{white-space:nowrap}
span.paragraph{display:block;margin:.45rem 0}
p.more{color:#57606a;font-size:8pt;margin:.2rem 0}
figure{margin:0}
figure svg{max-width:100%;height:auto}
.control{color:#57606a;font-style:italic}
.error{color:#cf222e}
@media print{body{margin:0;max-width:none}section.cell{break-inside:avoid}h2{break-after:avoid}}
"""
#: rows of a table shown in the report (the rest are counted)
MAX_ROWS = 60


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
        return frame_table(value)
    if isinstance(getattr(value, "data", None), pl.DataFrame):  # mo.ui.table: its rows, not a control
        return frame_table(value.data.drop("_marimo_row_id", strict=False))
    text = getattr(value, "text", None)
    if isinstance(text, str):  # mo.Html and friends
        text = _MARIMO_ELEMENT.sub("<span class='control'>[interactive control: open the runbook in marimo]</span>", text)
        return _MARIMO_ANY.sub("", text)
    if isinstance(value, str):
        return f"<pre>{html.escape(value)}</pre>"
    return f"<pre>{html.escape(repr(value))}</pre>"


def _cell(value: Any, dtype: pl.DataType) -> str:
    if value is None:
        return "<td class='none'>—</td>"
    if isinstance(value, datetime):
        return f"<td class='num'>{value:%Y-%m-%d %H:%M:%S}</td>"
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if dtype.is_numeric():
        shown = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
        return f"<td class='num'>{shown}</td>"
    text = str(value)
    word = len(text) <= WORD and not any(c.isspace() for c in text)  # a name or a sparkline: one line
    kind = " class='word'" if word else " class='long'" if len(text) > 2 * WORD else ""
    return f"<td{kind}>{html.escape(text)}</td>"


#: text cells up to this long without a space stay on one line
WORD = 24


def frame_table(frame: pl.DataFrame, *, max_rows: int = MAX_ROWS) -> str:
    """A frame as a plain HTML table: column names only (no dtype row, no shape line), numbers
    right-aligned, empty cells as a dash, at most ``max_rows`` rows and a line saying how many more."""
    if frame.is_empty():
        return "<p class='more'>(no rows)</p>"
    head = "".join(f"<th>{html.escape(name)}</th>" for name in frame.columns)
    dtypes = frame.dtypes
    rows = "".join("<tr>" + "".join(_cell(v, t) for v, t in zip(row, dtypes, strict=True)) + "</tr>"
                   for row in frame.head(max_rows).iter_rows())
    more = f"<p class='more'>… and {frame.height - max_rows:,} more rows</p>" if frame.height > max_rows else ""
    return f"<table class='frame'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{more}"


def report(notebook: str | Path, output: str | Path, args: Sequence[str] = ()) -> Path:
    """Run a runbook headless (``app.run()``, marimo's script mode: no button is pressed) and write
    every cell's output (not its code: the report is for reading, the runbook is the code) into one
    HTML file that needs no network to view and prints on A4 (landscape).

    ``args`` are the runbook's own parameters (``["--hours", "6"]``), as after ``--`` on the
    command line.
    """
    notebook, output = Path(notebook), Path(output)
    app = load_app(notebook)
    with reporting([str(notebook), *args]):
        outputs, _defs = app.run()
    title = html.escape(getattr(app._config, "app_title", None) or notebook.stem)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{title}</title><style>{REPORT_CSS}</style></head><body>",
        (f"<header><h1>{title}</h1><p>Headless run of <code>{html.escape(str(notebook))}</code> at "
         f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC (marimo {html.escape(mo.__version__)}; nothing was applied unless "
         "<code>--apply true</code> was given).</p></header>"),
    ]
    for value in outputs:
        body = render_output(value)
        if body:
            parts.append(f"<section class='cell'>{body}</section>")
    parts.append("</body></html>")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(parts), encoding="utf-8")
    return output
