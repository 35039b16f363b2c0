"""What the three command lines (``python -m lcl``, ``decoding``, ``analyses``) share: bad input reported as one
``error:`` line with exit status 2 (``--debug`` shows the traceback instead), checked before any heavy work."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

DEBUG_HELP = "on bad input, show the full traceback instead of one 'error:' line"

#: What reading a config or a results file can raise on bad input (tomllib.TOMLDecodeError and
#: json.JSONDecodeError are ValueErrors, FileNotFoundError an OSError; data.load turns an unreadable file into a
#: ValueError naming it); KeyError is reported with the key it names.
INPUT_ERRORS = (ValueError, TypeError, KeyError, OSError)


class UsageError(Exception):
    """Bad input, reported in one line (exit status 2) before any heavy work."""


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (a KeyError names its key)."""
    if isinstance(exc, KeyError):
        return f"missing or unknown key {exc}"
    return " ".join(str(exc).split()) or type(exc).__name__


def command_parser(prog: str, description: str, **kwargs: object
                   ) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction, argparse.ArgumentParser]:
    """``(parser, subcommands, common)``: a parser with ``--debug``, its subcommand group, and the parent parser
    that gives every subcommand ``--debug`` too (SUPPRESS keeps a subcommand from resetting a ``--debug`` given
    before it)."""
    parser = argparse.ArgumentParser(prog=prog, description=description, **kwargs)  # type: ignore[arg-type]
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser, parser.add_subparsers(dest="command", required=True), common


def run_command(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """``command(args)``; a :class:`UsageError` becomes one ``error:`` line on stderr and exit status 2 (raised
    again with ``--debug``)."""
    try:
        return command(args)
    except UsageError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
