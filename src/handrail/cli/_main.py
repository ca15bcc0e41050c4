"""The top-level parser and ``main``: dispatch, exit codes, and one-line usage errors.

Exit codes: 0 success; 1 the policy (or its cases) failed or is malformed,
a log, quarantine or store is unreadable or fails verification, or stdout
was closed early (``handrail audit tail LOG | head``); 2 the command line
itself is wrong.  Every failure is one message on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from .._errors import HandrailError
from .._version import __version__
from . import _audit, _db, _escalations, _policy, _quarantine, _shadow
from ._terminal import safe, warn

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line, with where to find help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, safe(f"{self.prog}: error: {message} (see '{self.prog} --help')") + "\n")


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

    Never raises for a bad command line, a malformed policy or an unreadable
    log: it prints one clear message to stderr and returns 2 or 1.  When the
    reader of stdout goes away (a pipe into ``head``), it stops quietly and
    returns 1.
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        code: int = args.handler(args)
        sys.stdout.flush()  # inside the try: a closed pipe shows here, not at exit
    except SystemExit as exc:  # argparse's --help, --version and usage errors
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        warn(str(exc.code))
        return 1
    except BrokenPipeError:
        _discard_stdout()
        return 1
    except HandrailError as exc:  # a typed failure no command turned into a message
        warn(f"error: {exc}")
        return 1
    return code


def _discard_stdout() -> None:
    """Point stdout at the null device, as the CPython docs advise after ``EPIPE``.

    What is still buffered would otherwise fail again when the interpreter
    flushes it at exit, with an "Exception ignored" message on stderr.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (captured in a test)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
