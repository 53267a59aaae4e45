"""cronkit's exceptions: one root, small subclasses, each carrying the fix.

Every error a person can see says two things: what is wrong, and what to do about it.
The docstring of each class is its default message; ``remedy`` is the default fix.
The CLI prints ``str(error)`` (message and fix) and keeps tracebacks for ``-v``.

Secrets never go into an error: callers pass names, never values.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The one exit-code table of every command (README, "Exit codes"); sysexits.h where it has a name."""

    OK = 0
    #: warnings found, or the command could not do (all of) what was asked
    PROBLEMS = 1
    #: the doctor (or a verification) found something critical
    CRITICAL = 2
    #: a change was planned but not confirmed, so nothing was changed
    NOT_CONFIRMED = 3
    #: the command line was wrong (EX_USAGE)
    USAGE = 64
    #: the database (or the sandbox) could not be reached (EX_UNAVAILABLE)
    UNAVAILABLE = 69
    #: the configuration or manifest is invalid (EX_CONFIG)
    CONFIG = 78


class CronkitError(Exception):
    """cronkit could not do what was asked."""

    remedy: str = ""
    #: exit status the CLI uses for this kind of error
    exit_code: int = ExitCode.PROBLEMS

    def __init__(self, message: str | None = None, *, remedy: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip().splitlines()[0]
        if remedy is not None:
            self.remedy = remedy
        super().__init__(self.message)

    def __str__(self) -> str:
        if self.remedy:
            return f"{self.message}\n  fix: {self.remedy}"
        return self.message


class ConfigError(CronkitError):
    """The configuration is incomplete or invalid."""

    remedy = "Set the variable in the environment or in .env (see .env.example)."
    exit_code = ExitCode.CONFIG


class UsageError(CronkitError):
    """The command line is not valid."""

    remedy = "See `cronkit COMMAND --help` for the arguments and examples."
    exit_code = ExitCode.USAGE


class ConnectionFailed(CronkitError):
    """Could not connect to the database."""

    remedy = (
        "Check DATABASE_URL (host, port, user, password, database). For the local sandbox run "
        "`cronkit sandbox up` and use the DATABASE_URL it prints."
    )
    exit_code = ExitCode.UNAVAILABLE


class PrivilegeError(CronkitError):
    """The database role lacks a privilege this step needs."""

    remedy = "Connect as a role with the privilege (on Supabase: the `postgres` role), or ask an owner to grant it."


class ExtensionMissing(CronkitError):
    """A required extension is not installed in this database."""

    remedy = "Enable it: on Supabase, Dashboard → Database → Extensions; elsewhere `CREATE EXTENSION ...` as a superuser."


class UnsupportedVersion(CronkitError):
    """The installed extension version does not support this feature."""

    remedy = "Upgrade the extension, or use a form the installed version supports."


class ScheduleError(CronkitError):
    """The schedule is not valid for pg_cron."""

    remedy = "Use 5-field cron syntax (minute hour day-of-month month day-of-week), a @macro, or 'N seconds'."


class ManifestError(CronkitError):
    """The manifest file is invalid."""

    remedy = "Fix the file at the place named; see docs/manifest.md for every key."
    exit_code = ExitCode.CONFIG


class SecretError(CronkitError):
    """A secret is missing or unusable."""

    remedy = "Store it with `cronkit secrets set NAME` (value read from stdin or a masked prompt)."


class JobNotFound(CronkitError):
    """No such job."""

    remedy = "List jobs with `cronkit status`; names are case sensitive."


class DeadLetterNotFound(CronkitError):
    """No such dead letter."""

    remedy = "List them with `cronkit dead-letter list --all`."


class NotConfirmed(CronkitError):
    """Nothing was changed: the change was not confirmed."""

    remedy = "Review the plan, then re-run with --yes (or answer 'yes' at the prompt)."
    exit_code = ExitCode.NOT_CONFIRMED


class SandboxError(CronkitError):
    """The local sandbox could not be started or used."""

    remedy = "Run `cronkit sandbox status` and read the log it names; `cronkit sandbox down --reset` starts over."


class SandboxNotInstalled(SandboxError):
    """The sandbox and the demo are not installed: they ship apart from cronkit, as cronkit-sandbox."""

    remedy = "pip install 'cronkit[sandbox]' (in a checkout, ./dev setup installs it)."
    exit_code = ExitCode.CONFIG
