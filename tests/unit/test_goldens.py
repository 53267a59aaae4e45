"""The nbval goldens compare only what is the same on every Supabase-like database.

A checked cell (``# NBVAL_CHECK_OUTPUT``) that stored a server's versions would fail on the next
pg_cron or pg_net release, or on the PostgreSQL 17 engine; versions belong in unchecked cells.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "tests" / "golden"
# pg_net 0.20.x, pg_cron's extversion (1.4-1, 1.6), Vault 0.3.x, PostgreSQL "15.20 (Debian ...)"
VERSIONS = re.compile(r"(?<![\d.])(0\.20\.\d+|1\.4-1|1\.6(\.\d+)?|0\.3\.\d+|1[5-7]\.\d+ \(Debian)(?![\d.])")


def checked_outputs(path: Path) -> list[tuple[int, str]]:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    found = []
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code" or "NBVAL_CHECK_OUTPUT" not in "".join(cell["source"]):
            continue
        for output in cell.get("outputs", []):
            texts = [output.get("text", "")] + list(output.get("data", {}).values())
            found += [(index, "".join(t) if isinstance(t, list) else str(t)) for t in texts]
    return found


@pytest.mark.parametrize("golden", sorted(GOLDEN_DIR.glob("*.ipynb")), ids=lambda p: p.stem)
def test_no_checked_cell_stores_a_server_version(golden: Path) -> None:
    outputs = checked_outputs(golden)
    assert outputs, f"{golden.name} checks no output at all"
    stored = [(cell, match.group(0)) for cell, text in outputs for match in VERSIONS.finditer(text)]
    assert stored == [], f"{golden.name}: checked cells store versions {stored}"
