"""``python -m cronkit.doctor catalogue [--check]``: write (or verify) docs/doctor.md's catalogue table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cronkit.doctor import catalogue
from cronkit.doctor import engine as _engine  # noqa: F401  (registers every check)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cronkit.doctor", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    table = sub.add_parser("catalogue", help="write the catalogue table between the markers in the document")
    table.add_argument("document", nargs="?", type=Path, default=Path("docs/doctor.md"))
    table.add_argument("--check", action="store_true", help="change nothing; exit 1 when the table is stale")
    args = parser.parse_args(argv)
    text = args.document.read_text(encoding="utf-8")
    if args.check:
        stale = catalogue.with_table(text) != text
        if stale:
            print(f"{args.document}: the catalogue table is stale; run `python -m cronkit.doctor catalogue`",
                  file=sys.stderr)
        return 1 if stale else 0
    changed = catalogue.write_table(args.document)
    print(f"{args.document}: {'updated' if changed else 'already current'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
