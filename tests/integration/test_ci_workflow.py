"""The example GitHub Actions workflow's commands, run on the test database as the workflow runs them.

``examples/ci/cronkit.yml`` is the one place the commands are written: the test reads them out of
it (and fails if the workflow gains or loses one), then runs each with DATABASE_URL set, the way
the workflow's steps do — the plan as markdown, apply --yes, the doctor gate.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.jobs_support import (
    Project,
    cronkit_schema,  # noqa: F401 - fixture
    output,
    project,  # noqa: F401 - fixture
)

Conn = psycopg.Connection[dict[str, Any]]
pytestmark = pytest.mark.usefixtures("cronkit_schema")
WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "ci" / "cronkit.yml"
#: the cronkit commands the workflow runs, in order (its output redirections left out)
COMMANDS = [
    "cronkit plan cronkit.toml --env prod --format markdown",
    "cronkit apply cronkit.toml --env prod --yes",
    "cronkit doctor cronkit.toml --env prod --json",
]
#: the doctor's exit status the gate lets pass (`test "$status" -lt 2`)
GATE_PASSES = (0, 1)


def workflow_commands() -> list[str]:
    text = WORKFLOW.read_text(encoding="utf-8")
    return [" ".join(m.split()) for m in re.findall(r"\bcronkit (?:plan|apply|doctor) [^>|\n]*", text)]


def test_the_workflow_runs_exactly_these_commands_with_the_gate_and_triggers_the_docs_describe() -> None:
    assert workflow_commands() == COMMANDS
    text = WORKFLOW.read_text(encoding="utf-8")
    assert 'test "$status" -lt 2' in text
    assert "DATABASE_URL: ${{ secrets.CRONKIT_DATABASE_URL }}" in text
    try:
        import yaml
    except ModuleNotFoundError:  # not a dependency of cronkit: the text checks above stand alone
        return
    workflow = yaml.safe_load(text)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(triggers) == {"pull_request", "push"} and triggers["push"]["branches"] == ["main"]
    assert set(workflow["jobs"]) == {"plan", "apply"}


def test_the_workflow_commands_plan_as_markdown_apply_and_gate_on_the_doctor(project: Project, db: Conn) -> None:
    url, key = project.job("url"), project.job("key")
    fn = project.function("fn")
    key_value = "k-ci-" + project.prefix
    project.write(project.data(
        {"name": project.job("call"), "schedule": "0 0 1 1 *", "function": fn,
         "headers": {"Authorization": "Bearer {secret:" + key + "}"}},
        {"name": project.job("tidy"), "schedule": "0 3 * * *", "sql": "select 1"},
        environments={"prod": {"base_url": "{secret:" + url + "}"}},
    ))
    env = {"DATABASE_URL": project.dsn}
    for name, value in ((url, project.target.supabase_url), (key, key_value)):  # stored once, out of band
        stored = project.cli("secrets", "set", name, "--manifest", "cronkit.toml", env=env, input=value)
        assert stored.returncode == 0, output(stored)
    plan_md, apply_yes, doctor_json = (shlex.split(c)[1:] for c in workflow_commands())

    before = project.cli(*plan_md, env=env)
    assert before.returncode == 0, output(before)
    assert before.stdout.startswith(f"### cronkit plan: `{project.name}` (`prod`)")
    assert "**2 to create, 0 to update, 0 to remove, 0 unchanged," in before.stdout
    assert f"| `+` | `{project.job('call')}` | create | `0 0 1 1 *` |" in before.stdout
    assert key_value not in before.stdout

    applied = project.cli(*apply_yes, env=env)
    assert applied.returncode == 0, output(applied)

    after = project.cli(*plan_md, env=env)
    assert "**0 to create, 0 to update, 0 to remove, 2 unchanged," in after.stdout, after.stdout
    doctor = project.cli(*doctor_json, env=env, timeout=180)
    report = json.loads(doctor.stdout)
    critical = [f for f in report["findings"] if f["severity"] == "critical"]
    assert (doctor.returncode in GATE_PASSES) == (not critical), output(doctor)
    ours = {project.job("call"), project.job("tidy")}
    assert [f["code"] for f in critical if f["job"] in ours] == []
