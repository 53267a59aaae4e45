"""A SQL statement that can be shown to a person exactly as it will run, then run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from cronkit.db import AdaptContext, Conn


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a step; ``shown`` replaces secret parameters when displayed."""

    query: sql.Composable
    params: tuple[Any, ...] | None = None
    shown: tuple[str, ...] | None = None

    def execute(self, conn: Conn) -> None:
        conn.execute(self.query, self.params)  # type: ignore[arg-type]

    def display(self, conn: AdaptContext | None) -> str:
        """The statement as it runs; ``conn`` None renders offline (an exported migration)."""
        text = self.query.as_string(conn)
        if self.params is None:
            return text
        values = self.shown or tuple(sql.Literal(p).as_string(conn) for p in self.params)
        # One pass over the placeholders: a value that itself holds "%s" (a job name may) stays as it is.
        parts = text.split("%s")
        if len(parts) != len(values) + 1:
            return text
        return parts[0] + "".join(value + part for value, part in zip(values, parts[1:], strict=True))
