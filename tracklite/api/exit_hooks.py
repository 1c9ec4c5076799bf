"""End the active run when the process ends, as qlib's ``qlib.init`` hooks do.

- normal interpreter exit (also ``sys.exit``): the run ends FINISHED;
- an uncaught exception: the run ends FAILED, then the previous excepthook prints it.

SIGTERM and SIGINT handling lives with the metric writer, which must flush first.
"""

from __future__ import annotations

import atexit
import sys
from collections.abc import Callable
from types import TracebackType

_installed = False


def install(end_exp: Callable[[str], None]) -> None:
    """Install the hooks once per process; ``end_exp(status)`` must be a no-op when idle."""
    global _installed
    if _installed:
        return
    _installed = True
    previous = sys.excepthook

    def excepthook(
        kind: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        try:
            end_exp("FAILED")
        finally:
            previous(kind, value, tb)

    sys.excepthook = excepthook
    atexit.register(_at_exit, end_exp)


def _at_exit(end_exp: Callable[[str], None]) -> None:
    try:
        end_exp("FINISHED")
    except Exception as exc:  # the interpreter is going away: report, never hang or raise
        print(f"tracklite: could not end the active run at exit: {exc}", file=sys.stderr)
