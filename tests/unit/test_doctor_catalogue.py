"""The doctor's catalogue is the one source of docs/doctor.md's table, and the package keeps its layers.

No database: these read the catalogue, the document and the package's source.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from cronkit import queries
from cronkit.doctor import CATALOGUE, Severity
from cronkit.doctor import __main__ as doctor_main
from cronkit.doctor.catalogue import BEGIN, END, SECTIONS, markdown_table, with_table

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "doctor.md"
PACKAGE = ROOT / "cronkit" / "doctor"
SOURCES = sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "cronkit" / "monitor" / "missed").glob("*.py"))


def test_the_table_in_docs_doctor_md_is_the_one_the_catalogue_writes() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert with_table(text) == text, "docs/doctor.md is stale: run `python -m cronkit.doctor catalogue`"


def test_a_stale_table_is_found_by_the_check_command(tmp_path: Path) -> None:
    stale = tmp_path / "doctor.md"
    stale.write_text(f"# doctor\n\n{BEGIN}\n| code |\n{END}\n", encoding="utf-8")
    assert doctor_main.main(["catalogue", str(stale), "--check"]) == 1
    assert doctor_main.main(["catalogue", str(stale)]) == 0
    assert doctor_main.main(["catalogue", str(stale), "--check"]) == 0
    assert markdown_table() in stale.read_text(encoding="utf-8")


def test_the_table_names_every_code_with_its_severity_and_fix() -> None:
    rows = {line.split(" | ")[0].strip("| []").split("]")[0]: line for line in markdown_table().splitlines()[2:]}
    assert list(rows) == list(CATALOGUE)
    for code, entry in CATALOGUE.items():
        assert f"| {entry.severity} |" in rows[code] and entry.fix.replace("|", "\\|") in rows[code]


def test_every_check_lives_in_the_module_named_like_its_section() -> None:
    for entry in CATALOGUE.values():
        assert entry.section in SECTIONS, entry.code
        assert isinstance(entry.severity, Severity)
        assert (PACKAGE / "checks" / f"{entry.section}.py").exists()
    sections = [entry.section for entry in CATALOGUE.values()]
    assert sections == sorted(sections, key=SECTIONS.index), "the catalogue runs section by section"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_module_is_small_says_what_it_holds_and_imports_only_psycopg_sql(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    docstring = ast.get_docstring(tree)
    assert docstring and docstring.splitlines()[0].strip(), "a one-line docstring first"
    assert len(text.splitlines()) <= 600
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not any(a.name.split(".")[0] == "psycopg" for a in node.names), path
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "psycopg":
            assert node.module == "psycopg" and [a.name for a in node.names] == ["sql"], path


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_reads_are_named_queries_not_inline_sql(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr in ("execute", "rows", "row", "optional") and node.args]
    for call in calls:
        first = call.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            assert re.fullmatch(r"[a-z_]+/[a-z_]+", first.value), f"{path.name}: inline SQL {first.value[:40]!r}"
            assert queries.text(first.value)


def test_every_query_the_doctor_names_exists() -> None:
    named = set()
    for path in SOURCES:
        named |= set(re.findall(r'"((?:doctor|missed)/[a-z_]+)"', path.read_text(encoding="utf-8")))
    assert named
    for name in named:
        assert queries.text(name), name
