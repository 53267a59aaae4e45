"""The first-hour rough edges that need no database: where the sandbox is found, what the demo claims,
how the sandbox's variables reach a shell."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from cronkit_sandbox.demo import verdict
from cronkit_sandbox.manager import default_state_dir


def test_the_sandbox_is_found_from_any_directory_below_the_one_it_was_started_in(tmp_path: Path) -> None:
    (tmp_path / ".cronkit" / "sandbox").mkdir(parents=True)
    (tmp_path / ".cronkit" / "sandbox" / "state.json").write_text("{}", encoding="utf-8")
    deep = tmp_path / "src" / "jobs"
    deep.mkdir(parents=True)

    assert default_state_dir({}, cwd=deep) == tmp_path / ".cronkit" / "sandbox"
    assert default_state_dir({"CRONKIT_SANDBOX_DIR": str(tmp_path / "x")}, cwd=deep) == tmp_path / "x"


def test_without_a_sandbox_above_a_new_one_goes_here(tmp_path: Path) -> None:
    assert default_state_dir({}, cwd=tmp_path) == tmp_path / ".cronkit" / "sandbox"


def _job(name: str, requests: int) -> dict[str, Any]:
    return {"jobname": name, "requests": requests}


def test_the_demo_verdict_never_claims_a_call_that_was_not_made() -> None:
    report = {"complete": True, "jobs": [_job("a", 3), _job("b", 0), _job("c", 1)]}
    assert verdict(report) == ("every job ran; 2 made HTTP calls and every call was answered; "
                               "1 made no call (nothing to do, or SQL only): b")
    assert verdict({"complete": False, "jobs": []}) == "NOT every job ran in time"


@pytest.mark.parametrize("value", ["plain", "with space", "quote'and$dollar", "x=y&z"])
def test_sandbox_env_export_lines_set_the_exact_values_in_a_shell(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from cronkit.cli.commands import _emit_env

    class Env:
        def as_dict(self) -> dict[str, str]:
            return {"DATABASE_URL": value}

    _emit_env(argparse.Namespace(json=False, export=True), Env())
    lines = capsys.readouterr().out
    shown = subprocess.run(["bash", "-c", f'{lines}\nprintf %s "$DATABASE_URL"'], capture_output=True, text=True,
                           check=True).stdout
    assert shown == value
