"""Supabase declarative schemas beside a manifest: would ``supabase db diff`` / ``schema apply`` unschedule our jobs?

With declarative schemas (``supabase/schemas/*.sql``) the directory is the source of truth. Since
pg-delta's pg_cron handler (Declarative Schemas 2.0; supabase/pg-toolbelt#318), a job the database
has but the directory does not declare is planned as ``cron.unschedule(name)`` — "exactly as a
directory missing a table plans a drop". A cronkit job lives in ``cron.job`` and in cronkit's own
schema, not in that directory, so an unrelated ``schema apply`` can silently disable it.

The rule, kept simple and documented (docs/migrations.md): look for ``supabase/schemas`` next to the
manifest and in each directory above it, up to the repository root (the first directory holding
``.git``); when one exists, every job name of the project must appear somewhere in its ``*.sql``
files (a ``cron.schedule('name', ...)`` there, or a comment naming the job). Plan and doctor warn
about the names that do not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SCHEMAS_DIR = Path("supabase") / "schemas"
#: bytes read per file at most: a declarative tree is DDL, not data
MAX_FILE_BYTES = 2_000_000


@dataclass(frozen=True)
class DeclarativeGap:
    """A declarative-schema directory and the project's jobs it does not mention."""

    directory: Path
    undeclared: tuple[str, ...]

    def message(self) -> str:
        names = ", ".join(repr(n) for n in self.undeclared)
        return (f"{self.directory} (Supabase declarative schemas) does not mention cron job(s) {names}: a diff or "
                "`schema apply` from that directory may plan cron.unschedule for them and silently stop them.")

    @property
    def fix(self) -> str:
        return ("Keep cron jobs out of the declarative flow: ship them as a migration "
                "(`cronkit export migration cronkit.toml --env prod`) and re-run `cronkit apply` after a schema apply; "
                "or declare each job in the directory (e.g. a comment `-- cronkit job: NAME` beside its cron.schedule).")


def find_schemas_dir(start: Path) -> Path | None:
    """The nearest ``supabase/schemas`` directory at ``start`` or above it, up to the repository root."""
    here = start.resolve()
    for directory in (here, *here.parents):
        candidate = directory / SCHEMAS_DIR
        if candidate.is_dir():
            return candidate
        if (directory / ".git").exists():
            return None
    return None


def declarative_gap(manifest_path: Path, job_names: Iterable[str]) -> DeclarativeGap | None:
    """The jobs a declarative-schema directory near ``manifest_path`` does not mention, or None."""
    directory = find_schemas_dir(manifest_path.parent)
    names = list(job_names)
    if directory is None or not names:
        return None
    text = ""
    for path in sorted(directory.rglob("*.sql")):
        with path.open("rb") as handle:
            text += handle.read(MAX_FILE_BYTES).decode("utf-8", errors="replace") + "\n"
    undeclared = tuple(name for name in names if name not in text)
    return DeclarativeGap(directory, undeclared) if undeclared else None
