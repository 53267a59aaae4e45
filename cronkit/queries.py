"""Named SQL: every read query lives in ``cronkit/sql/queries/<name>.sql`` and is loaded once.

A query file holds one statement with ``%(name)s`` parameters (values always travel as
parameters). Identifiers that vary are ``{placeholders}`` filled with ``psycopg.sql``
(``query(name).format(table=sql.Identifier(...))``), never with string formatting.

    >>> from cronkit.queries import query
    >>> conn.execute(query("jobs/live"), {"names": names})
"""

from __future__ import annotations

import functools
from importlib import resources

from psycopg import sql

_ROOT = "sql/queries"


@functools.cache
def text(name: str) -> str:
    """The SQL text of query ``name`` (a path below ``sql/queries`` without ``.sql``)."""
    path = resources.files("cronkit").joinpath(f"{_ROOT}/{name}.sql")
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyError(f"no query named {name!r} in cronkit/{_ROOT}") from None
    # Whole-line comments are for readers of the file: dropped here, so a brace or a percent sign
    # in prose can never be taken for a psycopg.sql placeholder or a parameter.
    lines = [line for line in raw.splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(lines).strip().rstrip(";")


def query(name: str) -> sql.SQL:
    """Query ``name`` as a ``psycopg.sql.SQL`` ready to execute or ``.format()``."""
    return sql.SQL(text(name))  # type: ignore[arg-type]  # text read from our own package files


def names() -> list[str]:
    """Every query's name, for tests that check each one parses on the server."""
    root = resources.files("cronkit").joinpath(_ROOT)
    found: list[str] = []

    def walk(node: object, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):  # type: ignore[attr-defined]
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".sql"):
                found.append(prefix + child.name[:-4])

    walk(root, "")
    return found
