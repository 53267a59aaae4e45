"""The ``cronkit`` command line. Every command has ``--help`` with examples and a ``--json`` twin.

Errors print one clear message with its fix and exit non-zero; ``-v`` adds the traceback.
Progress goes to stderr so stdout stays clean for ``KEY=value`` lines and JSON.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Sequence

from cronkit.cli.parser import build_parser
from cronkit.errors import ConfigError, CronkitError, ExitCode, NotConfirmed
from cronkit.redact import mask_keys

__all__ = ["build_parser", "main"]


def _boundary_error(exc: BaseException) -> CronkitError | None:
    """The one translation of anything a command may raise into a message with a remedy."""
    from cronkit import db

    if isinstance(exc, CronkitError):
        return exc
    if isinstance(exc, db.DatabaseError):
        try:
            with db.translated("finish the command"):
                raise exc
        except CronkitError as translated:
            return translated
    if isinstance(exc, EOFError):
        return NotConfirmed("Nothing was changed: the input ended before an answer was given.",
                            remedy="Answer at the prompt, or pass --yes to confirm in scripts.")
    if isinstance(exc, UnicodeDecodeError):
        return ConfigError(f"A file is not valid UTF-8 text: {exc.reason} at byte {exc.start}.",
                           remedy="Save the file as UTF-8 and run the command again.")
    if isinstance(exc, IsADirectoryError):
        return ConfigError(f"{exc.filename} is a directory, not a file.", remedy="Name the file itself (e.g. cronkit.toml).")
    if isinstance(exc, FileNotFoundError):
        return ConfigError(f"{exc.filename}: no such file.", remedy="Check the path; it is relative to the current directory.")
    if isinstance(exc, PermissionError):
        return ConfigError(f"{exc.filename}: permission denied.", remedy="Check the file's owner and mode, or run as its owner.")
    if isinstance(exc, OSError):
        return CronkitError(f"An operating-system error stopped the command: {exc.strerror or exc}.",
                            remedy="Check the disk, the paths and the permissions it names, then run it again.")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        print("cronkit: interrupted; nothing half-done is left committed.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): nothing more to say, and nothing to say it to
        _silence_stdout()
        return ExitCode.PROBLEMS
    except Exception as exc:  # the one error boundary: a person never sees a bare traceback
        error = _boundary_error(exc)
        if error is None:
            raise
        if args.verbose:
            print(_traceback_text(exc), end="", file=sys.stderr)
        print(f"cronkit: error: {mask_keys(str(error))}", file=sys.stderr)
        return int(error.exit_code)


def _traceback_text(exc: BaseException) -> str:
    """The traceback ``-v`` shows: every chained exception with its frames, each message reduced to
    what is safe to show (:func:`cronkit.db.error_summary`: no DETAIL, CONTEXT or quoted statement,
    which can hold the row a failed write carried) with anything shaped like a key masked."""
    from cronkit import db

    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    parts = []
    for error in reversed(chain):
        if parts:
            parts.append("\nThe above exception led to the next one:\n\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(error.__traceback__))
        kind = type(error)
        parts.append(f"{kind.__module__}.{kind.__qualname__}: {mask_keys(db.error_summary(error))}\n")
    return "".join(parts)


def _silence_stdout() -> None:
    import os

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
