"""Least privilege: a role that may read little gets every section it can read, and one "missing
privilege" line with the GRANT for each section it cannot — never a crash, never "no problems".

Two roles: one with only CONNECT (no USAGE on cron), one with CONNECT + USAGE on cron. Each runs
``status``, ``doctor`` and the monitor and incident runbooks (as offline reports).
"""

from __future__ import annotations

import html
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cronkit import db as cdb
from tests.jobs_support import cli, cli_env, cronkit_schema, output  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "lp-" + uuid.uuid4().hex[:12]  # differs from every role and database name


@pytest.fixture(scope="module", params=["connect_only", "cron_usage"])
def role(request: pytest.FixtureRequest, sandbox_only: Any, cronkit_schema: None) -> Iterator[tuple[str, str, str]]:
    name = f"ck_lp_{request.param}_{uuid.uuid4().hex[:6]}"
    with cdb.connect(sandbox_only.superuser_url, autocommit=True) as su:
        su.execute(f"create role {name} login password '{PASSWORD}'")  # type: ignore[arg-type]  # test constants
        if request.param == "cron_usage":
            su.execute(f"grant usage on schema cron to {name}")  # type: ignore[arg-type]
    parts = sandbox_only.database_url.rsplit("@", 1)[1]
    try:
        yield request.param, name, f"postgresql://{name}:{PASSWORD}@{parts}"
    finally:
        with cdb.connect(sandbox_only.superuser_url, autocommit=True) as su:
            su.execute(f"drop owned by {name}")  # type: ignore[arg-type]
            su.execute(f"drop role {name}")  # type: ignore[arg-type]


def sections(kind: str) -> set[str]:
    """The sections each role cannot read."""
    return {"jobs", "run history", "ownership", "HTTP outcomes"} if kind == "connect_only" else {"ownership", "HTTP outcomes"}


def missing_lines(text: str) -> list[str]:
    return [line[line.index("missing privilege"):] for line in text.splitlines() if "missing privilege" in line]


def test_status_lists_what_it_can_and_names_each_missing_grant(role: tuple[str, str, str], tmp_path: Path) -> None:
    kind, name, dsn = role
    for args in (("status",), ("status", "--json")):
        result = cli(*args, "--dsn", dsn, cwd=tmp_path)
        assert result.returncode == 1, output(result)  # could not do all of what was asked
        lines = missing_lines(result.stderr)
        expected = {"jobs", "ownership"} & sections(kind)
        assert {line.split(" skipped")[0].removeprefix("missing privilege: ") for line in lines} == expected
        assert all(f'TO "{name}"' in line and "GRANT" in line for line in lines)
        assert "Traceback" not in output(result)
        assert PASSWORD not in output(result)
    if kind == "cron_usage":
        assert cli("status", "--dsn", dsn, cwd=tmp_path).stdout.startswith("no jobs in cron.job")


def test_the_doctor_checks_what_it_can_and_never_claims_the_rest(role: tuple[str, str, str], tmp_path: Path) -> None:
    kind, name, dsn = role
    result = cli("doctor", "--dsn", dsn, cwd=tmp_path)
    assert result.returncode == 1, output(result)
    found = {line.split(" skipped")[0].removeprefix("missing privilege: ") for line in missing_lines(result.stdout)}
    assert found == sections(kind)
    assert "0 critical" in result.stdout and "exit status 1" in result.stdout  # never a clean bill of health
    assert "Traceback" not in output(result)


@pytest.mark.parametrize("runbook", ["monitor", "incident"])
def test_the_monitor_and_incident_runbooks_degrade_section_by_section(
    role: tuple[str, str, str], runbook: str, tmp_path: Path
) -> None:
    kind, name, dsn = role
    out = tmp_path / f"{runbook}.html"
    result = subprocess.run(
        [sys.executable, "-m", "cronkit.runbooks", "report", str(ROOT / "runbooks" / f"{runbook}.py"), "-o", str(out),
         "--", "--dsn", dsn], capture_output=True, text=True, cwd=tmp_path, env=cli_env(), timeout=180,
        stdin=subprocess.DEVNULL)
    assert result.returncode == 0, output(result)
    text = html.unescape(out.read_text(encoding="utf-8"))
    found = {line.split(" skipped")[0].removeprefix("missing privilege: ") for line in missing_lines(text)}
    assert found == sections(kind)
    assert "Traceback" not in text and PASSWORD not in text
    if runbook == "incident":
        assert "No problems found" not in text
