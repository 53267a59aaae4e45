"""``python -m cronkit.runbooks``: offline HTML reports of runbooks, and their Jupyter renditions (nbval goldens)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cronkit.errors import CronkitError, ExitCode
from cronkit.runbooks.golden import export_ipynb, golden_is_current
from cronkit.runbooks.report import report

PROG = "python -m cronkit.runbooks"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Tools for the runbooks in runbooks/: offline HTML reports and Jupyter renditions (nbval goldens).",
        epilog="examples:\n"
        f"  {PROG} report runbooks/monitor.py -o reports/monitor.html -- --manifest m.toml --hours 6\n"
        f"  {PROG} export-ipynb runbooks/setup.py -o tests/golden/setup.ipynb\n"
        f"  {PROG} check-golden runbooks/setup.py tests/golden/setup.ipynb\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("report", help="run a runbook headless and write a self-contained HTML report")
    p.add_argument("notebook")
    p.add_argument("-o", "--output", required=True)
    p = commands.add_parser("export-ipynb", help="export a runbook to .ipynb and execute it in a Jupyter kernel")
    p.add_argument("notebook")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--no-execute", action="store_true", help="only export (no outputs)")
    p.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    p = commands.add_parser("check-golden", help="exit 1 when a golden's code differs from the runbook's export")
    p.add_argument("notebook")
    p.add_argument("golden")
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after `--` is the runbook's own parameters (mo.cli_args()), e.g. -- --hours 6.
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    try:
        args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    except SystemExit as exc:  # argparse exits 2 on a usage error; our table says 64
        return ExitCode.USAGE if exc.code else ExitCode.OK
    try:
        if args.command == "report":
            print(report(args.notebook, args.output, extra))
        elif args.command == "export-ipynb":
            print(export_ipynb(args.notebook, args.output, execute=not args.no_execute, timeout=args.timeout))
        elif not golden_is_current(args.notebook, args.golden):
            print(f"STALE golden {args.golden}: its code differs from {args.notebook}; regenerate it "
                  "(python tools/golden.py update)", file=sys.stderr)
            return ExitCode.PROBLEMS
    except CronkitError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
