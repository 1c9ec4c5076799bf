"""``tracklite`` command line: argument parsing, the global options and error reporting.

Each command group lives in :mod:`tracklite.cli.commands` and registers its sub-commands here.
A user's mistake (unknown experiment, ambiguous prefix, bad filter, a folder that is not a store)
is one line on stderr and a non-zero exit code; only bugs show a traceback
(``TRACKLITE_DEBUG=1`` shows one for every error).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from .._version import __version__
from ..errors import TrackliteError, TrackliteWarning
from ..store import layout
from . import resolve, tables
from .commands import GROUPS
from .commands.common import Parents
from .context import Context
from .errors import CliError

DESCRIPTION = """\
Look at and look after a tracklite store from the terminal.

The store is --uri, else $TRACKLITE_URI, else ./tracklite-store. Start with
`tracklite demo` to record an example experiment, then `tracklite experiments`.
"""


class _Parser(argparse.ArgumentParser):
    """argparse, except that a usage mistake is one line, like every other error, and a
    mistyped command is answered with the commands it resembles."""

    def error(self, message: str) -> NoReturn:
        typed = re.match(r"argument COMMAND: invalid choice: '?([^'\s]+)'?", message)
        if typed is not None:
            commands = [
                name
                for action in self._actions
                if isinstance(action, argparse._SubParsersAction)
                for name in action.choices
            ]
            hint = resolve.did_you_mean(typed.group(1), commands) or "; commands: " + ", ".join(
                commands
            )
            message = f"unknown command {typed.group(1)!r}{hint}"
        raise CliError(f"{message} (see `{self.prog} --help`)", code=2)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; ``--uri`` and ``--format`` work before or after the command."""
    parser = _Parser(
        prog="tracklite",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tracklite {__version__}")
    _add_uri(parser, argparse.SUPPRESS)
    _add_format(parser, argparse.SUPPRESS, top=True)
    # Sub-commands repeat the global options with no default, so that `tracklite runs X --uri S`
    # works and an option given before the command is not overwritten by a default after it.
    uri = _Parser(add_help=False)
    _add_uri(uri, argparse.SUPPRESS)
    fmt = _Parser(add_help=False)
    _add_format(fmt, argparse.SUPPRESS)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    parents = Parents(uri=uri, fmt=fmt)
    for group in GROUPS:
        group.register(sub, parents)
    return parser


def _add_uri(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--uri",
        default=default,
        metavar="URI",
        help=f"store folder or file: URI (default: ${layout.URI_ENV}, else "
        f"./{layout.DEFAULT_STORE_NAME})",
    )


def _add_format(parser: argparse.ArgumentParser, default: object, top: bool = False) -> None:
    # Before the command, any value is taken and checked against the command's own formats.
    parser.add_argument(
        "--format",
        choices=None if top else tables.FORMATS,
        default=default,
        metavar="{table,csv,json}" if top else None,
        help="output of tabular results: an aligned table (default), csv or json "
        "(`export`: its file format, parquet or csv)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    debug = os.environ.get("TRACKLITE_DEBUG", "") not in ("", "0")
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help and --version
            return exc.code if isinstance(exc.code, int) else 0
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help(sys.stdout)
            return 0
        ctx = Context(
            uri=getattr(args, "uri", None) or layout.default_uri(),
            fmt=_output_format(args),
            out=sys.stdout,
            err=sys.stderr,
        )
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            code: int = handler(ctx, args)
        sys.stdout.flush()  # a closed pipe shows here, where BrokenPipeError is handled
        return code
    except BrokenPipeError:
        # `tracklite runs X | head`: the reader left; stop quietly, as other tools do, and keep
        # the interpreter's final flush from raising again.
        with contextlib.suppress(OSError, ValueError):  # ValueError: stdout is not a real file
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except CliError as exc:
        if debug:
            raise
        return _fail(exc.message, exc.code)
    except (TrackliteError, ValueError, OSError) as exc:
        # Store and search errors name the problem for the user; OSError is a path they gave
        # (missing, unreadable). Anything else is a bug and keeps its traceback.
        if debug:
            raise
        return _fail(_describe(exc), 1)
    except KeyboardInterrupt:
        sys.stderr.write("\ntracklite: interrupted\n")
        return 130


def _output_format(args: argparse.Namespace) -> str:
    """``--format`` as given (before or after the command), checked against what the command
    writes; else the command's default."""
    formats: tuple[str, ...] = getattr(args, "formats", ()) or ()
    given: str | None = getattr(args, "format", None)
    if given is None:
        return formats[0] if formats else "table"
    if not formats:
        raise CliError(f"`tracklite {args.command}` prints no table: --format does not apply", 2)
    if given not in formats:
        raise CliError(
            f"`tracklite {args.command} --format` is one of {', '.join(formats)}, not {given!r}",
            code=2,
        )
    return given


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
    # tracklite's own warnings (a skipped corrupt file) are one line for the user, like errors;
    # anything else keeps Python's format.
    if issubclass(category, TrackliteWarning):
        sys.stderr.write(f"tracklite: warning: {message}\n")
    else:
        _python_show_warning(message, category, *args, **kw)


_python_show_warning = warnings.showwarning


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc) or type(exc).__name__


def _fail(message: str, code: int) -> int:
    lines = message.strip().splitlines() or ["failed"]
    # One line, always: the first line of a message says what is wrong (a filter error adds
    # an echo of the input with a caret below it).
    sys.stderr.write(f"tracklite: error: {lines[0]}\n")
    return code


def run() -> NoReturn:
    """Entry point of ``python -m tracklite``."""
    raise SystemExit(main())
