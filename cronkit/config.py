"""Where cronkit finds its settings: arguments, the environment, then a ``.env`` file.

libpq conventions first: ``DATABASE_URL`` or the ``PG*`` variables. cronkit's own variables use the
``CRONKIT_`` prefix (see .env.example). Loading is explicit and side-effect free: the ``.env``
file is read into a dict, never into ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values, find_dotenv

from cronkit.db import redact_dsn
from cronkit.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    database_url: str
    environment: str | None
    manifest: Path | None
    values: Mapping[str, str]  # the merged environment (.env under real variables), for {env:...}

    def __repr__(self) -> str:
        return f"Settings(database_url={redact_dsn(self.database_url)!r}, environment={self.environment!r}, manifest={self.manifest})"


def dotenv_path() -> str:
    """The ``.env`` file cronkit reads: the nearest one from the working directory up ("" if none)."""
    return find_dotenv(usecwd=True)


def dotenv_file_values(env_file: str | Path | None = None) -> dict[str, str]:
    """The variables of the ``.env`` file (``env_file``, else :func:`dotenv_path`), never put into os.environ."""
    path = str(env_file) if env_file is not None else dotenv_path()
    return {k: v for k, v in (dotenv_values(path) if path else {}).items() if v is not None}


def merged_environment(environ: Mapping[str, str] | None = None, env_file: str | Path | None = None) -> dict[str, str]:
    """The process environment over the ``.env`` file: the one place both are read and merged."""
    return {**dotenv_file_values(env_file), **dict(os.environ if environ is None else environ)}


def load(
    *,
    dsn: str | None = None,
    environ: Mapping[str, str] | None = None,
    env_file: str | Path | None = None,
    require_database: bool = True,
) -> Settings:
    """Merge, in increasing precedence: ``.env`` < process environment < explicit arguments."""
    merged = merged_environment(environ, env_file)
    database_url = dsn or merged.get("DATABASE_URL") or ""
    if not database_url and not any(k in merged for k in ("PGHOST", "PGSERVICE", "PGDATABASE")) and require_database:
        raise ConfigError(
            "No database to connect to: DATABASE_URL is not set.",
            remedy="Set DATABASE_URL (or PGHOST/PGUSER/...) in the environment or .env, or pass --dsn. "
            "For the local sandbox: `cronkit sandbox env > .env`.",
        )
    manifest = merged.get("CRONKIT_MANIFEST")
    return Settings(
        database_url=database_url,
        environment=merged.get("CRONKIT_ENV") or None,
        manifest=Path(manifest) if manifest else None,
        values=merged,
    )
