"""The docs a user reads are kept true: README commands, manifest reference examples, CLI help."""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

import pytest

from cronkit.cli import build_parser
from cronkit.manifest import parse_manifest

ROOT = Path(__file__).resolve().parents[2]


def toml_blocks(path: Path) -> list[str]:
    return re.findall(r"```toml\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("index", range(len(toml_blocks(ROOT / "docs/manifest.md"))))
def test_every_manifest_example_in_the_reference_loads(index: int) -> None:
    block = toml_blocks(ROOT / "docs/manifest.md")[index]
    manifest = parse_manifest(tomllib.loads(block), Path(f"docs/manifest.md#example{index}"))
    environment = next(iter(manifest.environments), None)
    specs = manifest.resolve(environment, {"SUPABASE_URL": "http://127.0.0.1:1"})
    assert specs, "each example declares at least one job"


def test_the_reference_documents_every_job_key() -> None:
    from cronkit.manifest import _JOB

    text = (ROOT / "docs/manifest.md").read_text(encoding="utf-8")
    undocumented = [key for key in _JOB if f"`{key}`" not in text]
    assert undocumented == []


def test_the_reference_documents_every_monitoring_key() -> None:
    from cronkit.maintenance import DEFAULTS

    text = (ROOT / "docs/manifest.md").read_text(encoding="utf-8").split("## `[monitoring]`", 1)[1]
    assert [key for key in DEFAULTS if f"| `{key}` |" not in text] == []


def test_every_bundled_example_manifest_loads() -> None:
    for path in sorted((ROOT / "examples").glob("*/cronkit.toml")):
        from cronkit.manifest import load_manifest

        manifest = load_manifest(path)
        assert manifest.resolve("sandbox", {"SUPABASE_URL": "http://127.0.0.1:1"}), path


def test_the_readme_quickstart_names_the_two_commands_and_ci_runs_the_second() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "`./dev demo`" in readme and "`./dev test`" in readme
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8")
    assert re.search(r"^\./dev test$", ci, flags=re.M), ".ci/run must call exactly the README's test command"
    dev = (ROOT / "dev").read_text(encoding="utf-8")
    assert "demo)" in dev and "test)" in dev


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                children = _commands(sub, (*prefix, name))
                found += children or [((*prefix, name), sub)]
    return found


@pytest.mark.parametrize("path", [c[0] for c in _commands(build_parser())], ids=" ".join)
def test_every_command_has_examples_in_its_help_and_a_json_twin(path: tuple[str, ...]) -> None:
    parser = dict(_commands(build_parser()))[path]
    help_text = parser.format_help()
    assert "examples:" in help_text and "cronkit " in help_text.split("examples:")[1]
    assert "--json" in help_text
