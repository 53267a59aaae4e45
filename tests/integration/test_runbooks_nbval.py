"""The runbooks as Jupyter notebooks: nbval re-executes the goldens in tests/golden/ and compares
the cells marked ``# NBVAL_CHECK_OUTPUT``; a second test makes sure the goldens are still the
runbooks' code.

Nothing is regenerated here. After changing a runbook: ``python tools/golden.py update`` (see its
docstring), review the diff of tests/golden/, commit.

The goldens run read-only against the golden project (tests/golden/runbooks.toml), which the
fixture prepares on the test database exactly as tools/golden.py did, and removes afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_DIR = ROOT / "tests" / "golden"
RUNBOOKS = sorted((ROOT / "runbooks").glob("*.py"))


def _golden_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("golden_tool", ROOT / "tools" / "golden.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def golden_state(sandbox: Any) -> Iterator[dict[str, str]]:
    if not (sandbox.supabase_url and sandbox.service_key):
        pytest.skip("the goldens call the sandbox's Edge Functions server (SUPABASE_URL and its service key)")
    tool = _golden_tool()
    environ = tool.kernel_environ(sandbox.database_url, sandbox.supabase_url)
    tool.prepare(tool.GOLDEN_MANIFEST, sandbox.database_url, environ, {"rb_golden_key": sandbox.service_key})
    try:
        yield environ
    finally:
        tool.purge(tool.GOLDEN_MANIFEST, sandbox.database_url, environ)


def test_every_runbook_has_a_golden() -> None:
    assert sorted(p.stem for p in GOLDEN_DIR.glob("*.ipynb")) == [p.stem for p in RUNBOOKS]


@pytest.mark.parametrize("runbook", RUNBOOKS, ids=lambda p: p.stem)
def test_the_golden_is_the_runbooks_current_code(runbook: Path) -> None:
    from cronkit.runbooks.golden import golden_is_current

    assert golden_is_current(runbook, GOLDEN_DIR / f"{runbook.stem}.ipynb"), (
        f"tests/golden/{runbook.stem}.ipynb is stale: run `python tools/golden.py update runbooks/{runbook.name}`"
    )


def test_the_goldens_pass_nbval_against_this_database(golden_state: dict[str, str]) -> None:
    env = {**os.environ, **golden_state}
    command = [
        sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
        "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"),
        # tests/conftest.py would start (and at the end stop) its own sandbox in this child run.
        "--noconftest", "-p", "no:cacheprovider", "-q",
        *sorted(str(p) for p in GOLDEN_DIR.glob("*.ipynb")),
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"nbval failed:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
