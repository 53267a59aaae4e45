"""Named SQL: every query file loads, says what it reads, and its prose never leaks into the statement."""

from __future__ import annotations

from importlib import resources

import pytest

from cronkit import queries


def test_there_are_named_queries_and_each_loads_as_one_statement() -> None:
    names = queries.names()
    assert "registry/managed_jobs" in names and "monitor/bounds" in names
    for name in names:
        text = queries.text(name)
        assert text and not text.endswith(";"), name


@pytest.mark.parametrize("name", queries.names())
def test_every_query_file_opens_with_a_comment_saying_what_it_reads(name: str) -> None:
    raw = resources.files("cronkit").joinpath(f"sql/queries/{name}.sql").read_text(encoding="utf-8")
    assert raw.startswith("--"), f"sql/queries/{name}.sql: start with a '-- what this reads' line"


def test_comments_are_not_part_of_the_statement() -> None:
    assert "--" not in queries.text("registry/exists").splitlines()[0]


def test_an_unknown_query_name_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="no query named 'nope/nothing'"):
        queries.text("nope/nothing")
