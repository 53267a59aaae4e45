"""Jupyter renditions of the runbooks: export a notebook to .ipynb (executed in a kernel: an nbval golden), check one is current."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from cronkit.errors import CronkitError


def export_plain(notebook: str | Path) -> Any:
    """``marimo export ipynb``: the runbook as a Jupyter notebook without outputs (nbformat node),
    written to a temporary directory and read back."""
    import nbformat

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "export.ipynb"
        done = subprocess.run(
            [sys.executable, "-m", "marimo", "export", "ipynb", str(notebook), "-o", str(target), "-f"],
            capture_output=True, text=True, check=False,
        )
        if done.returncode != 0:
            raise CronkitError(f"marimo export ipynb {notebook} failed:\n{done.stderr.strip()}")
        return nbformat.read(target, as_version=4)


def code_cells(nb: Any) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def export_ipynb(notebook: str | Path, output: str | Path, *, execute: bool = True, timeout: int = 300) -> Path:
    """The runbook as a Jupyter notebook executed in an IPython kernel: an nbval golden.

    The kernel is this Python (ipykernel) and inherits the environment, so ``DATABASE_URL``,
    ``CRONKIT_MANIFEST`` & co. choose what it runs against. Timing metadata is stripped so a
    golden changes only when outputs do. Goldens must come from this, not from marimo's
    ``--include-outputs`` (other mime bundles, and nbval refuses cells without an execution count).
    """
    import nbformat

    output = Path(output)
    nb = export_plain(notebook)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if execute:
        from nbclient import NotebookClient

        output.parent.mkdir(parents=True, exist_ok=True)
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(output.parent.resolve())}}).execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    output.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, output)
    return output


def golden_is_current(notebook: str | Path, golden: str | Path) -> bool:
    """True when the golden's code cells are exactly what the runbook exports to now."""
    import nbformat

    return code_cells(export_plain(notebook)) == code_cells(nbformat.read(Path(golden), as_version=4))
