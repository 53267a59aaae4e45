"""The five guides' hand-made setups (tests/brownfield/*.sql), read and pasted as a user would.

Each file is the SQL a guide has its reader paste, adapted only to point at a sandbox: the
placeholders ``__SUPABASE_URL__``, ``__SERVICE_ROLE_KEY__``, ``__CRON_SECRET__`` and
``__SCHEDULER_TOKEN__`` are filled in by :func:`guide_sql`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pglast import ast, parse_sql, split

from cronkit.recover import Function

GUIDES = Path(__file__).resolve().parent / "brownfield"
FILES = sorted(GUIDES.glob("*.sql"))


@dataclass(frozen=True)
class Values:
    supabase_url: str
    service_role_key: str
    cron_secret: str = "cron-secret-by-hand-4c1d"
    scheduler_token: str = "scheduler-token-by-hand-9e2a"


def guide_sql(path: Path, values: Values) -> str:
    return (path.read_text(encoding="utf-8").replace("__SUPABASE_URL__", values.supabase_url)
            .replace("__SERVICE_ROLE_KEY__", values.service_role_key)
            .replace("__CRON_SECRET__", values.cron_secret).replace("__SCHEDULER_TOKEN__", values.scheduler_token))


@dataclass(frozen=True)
class Scheduled:
    name: str
    schedule: str
    command: str


def read_guide(text: str) -> tuple[dict[str, Function], list[Scheduled]]:
    """The functions a guide creates (by name) and the jobs it schedules, without a database."""
    functions: dict[str, Function] = {}
    jobs: list[Scheduled] = []
    for raw in parse_sql(text):
        statement = raw.stmt
        source = text[raw.stmt_location:raw.stmt_location + raw.stmt_len] if raw.stmt_len else text[raw.stmt_location:]
        if isinstance(statement, ast.CreateFunctionStmt):
            names = [n.sval for n in statement.funcname]
            functions[names[-1]] = Function(names[0] if len(names) == 2 else "public", names[-1], source.strip())
        elif isinstance(statement, ast.SelectStmt) and statement.targetList:
            call = statement.targetList[0].val
            if isinstance(call, ast.FuncCall) and [n.sval for n in call.funcname] == ["cron", "schedule"]:
                name, schedule, command = (a.val.sval for a in call.args)
                jobs.append(Scheduled(name, schedule, command))
    return functions, jobs


def paste(path: Path, values: Values, app: Any, superuser: Any) -> None:
    """Run a guide's SQL statement by statement, as its reader would in the SQL editor: as the app
    role, except ``ALTER DATABASE ... SET`` (guide 004), which needs a superuser."""
    for statement in split(guide_sql(path, values)):
        conn = superuser if statement.lstrip().upper().startswith("ALTER DATABASE") else app
        conn.execute(statement)
