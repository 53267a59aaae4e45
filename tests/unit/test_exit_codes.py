"""Every command exits with a code from one table (README, "Exit codes"): the rows that need no database.

64 usage · 69 cannot connect · 78 configuration · 3 not confirmed, for every command that can
end that way; 0/1/2 against a database are in tests/integration/test_exit_codes.py.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from cronkit.cli import main
from cronkit.errors import ExitCode

UNREACHABLE = "postgresql://cronkit_exit@127.0.0.1:1/nowhere"
BAD_MANIFEST = 'project = "exit"\njobz = []\n'
GOOD_MANIFEST = 'project = "exit"\n[[jobs]]\nname = "exit-a"\nschedule = "*/5 * * * *"\nsql = "select 1"\n'


@pytest.fixture(autouse=True)
def _nowhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No database, no .env and no cronkit settings reach these commands."""
    for name in ("DATABASE_URL", "CRONKIT_ENV", "CRONKIT_MANIFEST", "PGHOST", "PGDATABASE", "PGSERVICE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_text(BAD_MANIFEST)
    (tmp_path / "good.toml").write_text(GOOD_MANIFEST)
    yield


def exit_code(*argv: str) -> int:
    try:
        return main(list(argv))
    except SystemExit as stop:  # argparse's own exits (usage errors, --help)
        return int(stop.code or 0)


USAGE = [
    (),
    ("bogus",),
    ("plan",),
    ("apply",),
    ("status", "--bogus"),
    ("pause",),
    ("resume",),
    ("run-now",),
    ("remove",),
    ("teardown",),
    ("doctor", "--bogus"),
    ("import", "--bogus"),
    ("demo", "--wait", "soon"),
    ("schedule", "explain"),
    ("schedule", "explain", "61 * * * *"),
    ("schedule", "explain", "10 seconds", "--pg-cron", "1.4.2"),
    ("secrets", "status"),
    ("secrets", "set"),
    ("secrets", "set", "k", "--backend", "nowhere"),
    ("sandbox", "up", "--bogus"),
    ("sandbox", "up", "--postgres", "16"),
    ("demo", "--postgres", "14"),
    ("sandbox", "frobnicate"),
]


@pytest.mark.parametrize("argv", USAGE, ids=lambda a: " ".join(a) or "(nothing)")
def test_a_wrong_command_line_exits_64_with_the_help_to_read(argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(*argv) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "usage:" in err or "fix:" in err
    assert "Traceback" not in err


UNAVAILABLE = [
    ("plan", "good.toml"),
    ("apply", "good.toml", "--yes"),
    ("status",),
    ("pause", "exit-a"),
    ("resume", "exit-a"),
    ("run-now", "exit-a"),
    ("remove", "exit-a", "--yes"),
    ("teardown", "good.toml"),
    ("doctor",),
    ("doctor", "good.toml"),
    ("import",),
    ("secrets", "status", "good.toml"),
    ("secrets", "set", "k", "--from-env", "CK_EXIT_VALUE"),
]


@pytest.mark.parametrize("argv", UNAVAILABLE, ids=" ".join)
def test_an_unreachable_database_exits_69_naming_the_server_and_the_fix(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CK_EXIT_VALUE", "a-value-long-enough")
    assert exit_code(*argv, "--dsn", UNREACHABLE) == ExitCode.UNAVAILABLE
    err = capsys.readouterr().err
    assert "Could not connect to" in err and "host=127.0.0.1 port=1" in err and "fix:" in err
    assert "Traceback" not in err


CONFIG = [
    ("plan", "bad.toml", "--dsn", UNREACHABLE),
    ("apply", "bad.toml", "--yes", "--dsn", UNREACHABLE),
    ("teardown", "bad.toml", "--dsn", UNREACHABLE),
    ("doctor", "bad.toml", "--dsn", UNREACHABLE),
    ("secrets", "status", "bad.toml", "--dsn", UNREACHABLE),
    ("secrets", "set", "k", "--manifest", "bad.toml", "--from-env", "CK_EXIT_VALUE", "--dsn", UNREACHABLE),
    ("plan", "missing.toml", "--dsn", UNREACHABLE),
    ("plan", ".", "--dsn", UNREACHABLE),
    ("plan", "good.toml"),  # no DATABASE_URL anywhere
    ("status",),
    ("status", "--dsn", "postgres://u@h:5/d?unknown_option=1"),
    ("secrets", "set", "k", "--from-env", "CK_EXIT_UNSET", "--dsn", UNREACHABLE),
]


@pytest.mark.parametrize("argv", CONFIG, ids=" ".join)
def test_broken_configuration_exits_78_before_anything_connects(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CK_EXIT_VALUE", "a-value-long-enough")
    assert exit_code(*argv) == ExitCode.CONFIG
    err = capsys.readouterr().err
    assert "cronkit: error:" in err and "fix:" in err
    assert "Could not connect" not in err and "Traceback" not in err


def test_a_non_utf8_manifest_is_configuration_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "latin1.toml").write_bytes('project = "caf\xe9"\n'.encode("latin-1"))
    assert exit_code("plan", "latin1.toml", "--dsn", UNREACHABLE) == ExitCode.CONFIG
    assert "Traceback" not in capsys.readouterr().err


NOT_CONFIRMED = [
    ("remove", "exit-a", "--dsn", UNREACHABLE),
]


@pytest.mark.parametrize("argv", NOT_CONFIRMED, ids=" ".join)
def test_an_unconfirmed_change_exits_3_and_says_how_to_confirm(argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(*argv) == ExitCode.NOT_CONFIRMED
    assert "--yes" in capsys.readouterr().err


def test_schedule_explain_exits_0_for_a_valid_expression(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code("schedule", "explain", "*/5 * * * *", "--next", "1") == ExitCode.OK
    assert "Every fifth minute" in capsys.readouterr().out


def test_schedule_explain_names_the_zone_it_was_asked_about(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code("schedule", "explain", "0 11 * * *", "--tz", "America/New_York", "--next", "1") == ExitCode.OK
    out = capsys.readouterr().out
    assert "in America/New_York" in out and "GMT" not in out


@pytest.mark.parametrize("argv", [("-v", "status"), ("status", "-v")], ids=["before", "after"])
def test_verbose_works_before_and_after_the_command(argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(*argv, "--dsn", UNREACHABLE) == ExitCode.UNAVAILABLE
    err = capsys.readouterr().err
    assert "unrecognized arguments" not in err and "Traceback" in err


@pytest.mark.parametrize(("stdin", "says"), [("", "No value was given"), ("your-service-role-key\n", "placeholder")],
                         ids=["empty", "placeholder"])
def test_secrets_set_refuses_an_empty_or_placeholder_value_before_connecting(
    stdin: str, says: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert exit_code("secrets", "set", "k", "--dsn", UNREACHABLE) == ExitCode.CONFIG
    err = capsys.readouterr().err
    assert says in err and "nothing was stored" in err and "Traceback" not in err


def test_secrets_set_from_env_reads_dot_env_like_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("CK_DOTENV_KEY=a-value-from-dot-env\n")
    monkeypatch.setattr("cronkit.config.dotenv_path", lambda: str(tmp_path / ".env"))  # the suite hides any .env
    # found in .env, so it goes on to connect (and the unreachable server is the only problem)
    assert exit_code("secrets", "set", "k", "--from-env", "CK_DOTENV_KEY", "--dsn", UNREACHABLE) == ExitCode.UNAVAILABLE
    assert "is not set" not in capsys.readouterr().err


def test_the_exit_code_table_in_the_readme_is_the_one_the_code_uses() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for code in ExitCode:
        assert f"| {int(code)} |" in readme, f"README's exit-code table lacks {int(code)} ({code.name})"


def test_sandbox_status_exits_1_when_there_is_no_sandbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code("sandbox", "--state-dir", str(tmp_path / "none"), "status") == ExitCode.PROBLEMS
    assert "cronkit sandbox up" in capsys.readouterr().out


def test_the_verbose_traceback_shows_the_chain_but_no_detail_and_no_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    from cronkit.cli import parser
    from cronkit.errors import CronkitError
    from tests.helpers import fake_jwt

    key = fake_jwt()

    def refused(args: object) -> int:
        try:
            raise psycopg.errors.NotNullViolation(
                f'null value in column "owner" violates not-null constraint\nDETAIL:  Failing row contains (k, {key}, null).')
        except psycopg.Error as exc:
            raise CronkitError(f"Could not store secret 'k': {key}") from exc

    monkeypatch.setattr(parser, "cmd_status", refused)
    assert exit_code("-v", "status") == ExitCode.PROBLEMS
    err = capsys.readouterr().err
    assert "psycopg.errors.NotNullViolation: null value in column \"owner\"" in err
    assert "The above exception led to the next one" in err and "cronkit.errors.CronkitError" in err
    assert "DETAIL:  Failing row contains (k, eyJ" not in err, "the chained error's DETAIL"
    assert key not in err and key[:40] not in err
