"""The top-level parser and ``main``: dispatch, exit codes, and one-line usage errors.

Exit codes: 0 success, 1 the policy (or its cases) failed or is malformed,
or the audit log fails verification; 2 the command line itself is wrong.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from .._version import __version__
from . import _audit, _db, _escalations, _policy, _quarantine, _shadow

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line, with where to find help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _build_parser() -> _Parser:
    parser = _Parser(
        prog="handrail",
        description="Guardrails for AI agents: check, explain and test policies; verify and "
        "read audit logs.",
    )
    parser.add_argument("--version", action="version", version=f"handrail {__version__}")
    commands = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", required=True
    )
    _policy.add_commands(commands)
    _audit.add_commands(commands)
    _db.add_commands(commands)
    _escalations.add_commands(commands)
    _quarantine.add_commands(commands)
    _shadow.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``handrail`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    Never raises for a bad command line or a malformed policy: it prints one
    clear message to stderr and returns 2 or 1.
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        code: int = args.handler(args)
    except SystemExit as exc:  # argparse's --help, --version and usage errors
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    return code
