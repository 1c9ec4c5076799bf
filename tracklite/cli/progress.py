"""Progress for long operations: a counter redrawn in place on a terminal, nothing when piped.

Progress goes to stderr so that stdout stays the command's result, and only when stderr is a
terminal: a log file or a pipe must not fill up with carriage returns.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any, TextIO

from . import text


class Progress:
    """``with Progress("removing", total=n) as bar: bar.advance()``."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        stream: TextIO | None = None,
        interval: float = 0.1,
    ) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_terminal(self.stream)
        self._interval = interval
        self._last_draw = 0.0
        self._drawn = 0

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def advance(self, step: int = 1, detail: str = "") -> None:
        """Count ``step`` more items done."""
        self.update(self.done + step, detail)

    def update(self, done: int, detail: str = "", total: int | None = None) -> None:
        """Set the count of items done (and the total, if it became known)."""
        self.done = done
        if total is not None:
            self.total = total
        if not self.enabled:
            return
        now = time.monotonic()
        finished = self.total is not None and done >= self.total
        # Redrawing on every item would make a fast loop terminal-bound.
        if now - self._last_draw < self._interval and not finished:
            return
        self._last_draw = now
        count = f"{done}/{self.total}" if self.total is not None else str(done)
        line = f"{self.label} {count}" + (f" {detail}" if detail else "")
        line = text.truncate(text.one_line(line), 78, "...")
        self.stream.write("\r" + text.pad(line, self._drawn))
        self.stream.flush()
        self._drawn = text.display_width(line)

    def callback(self, *args: Any, **kwargs: Any) -> None:
        """A ``progress`` callable for library functions: ``(done, total)`` or no arguments."""
        if len(args) >= 2 and isinstance(args[0], int):
            self.update(args[0], total=args[1] if isinstance(args[1], int) else None)
        elif len(args) == 1 and isinstance(args[0], int):
            self.update(args[0])
        else:
            self.advance()

    def close(self) -> None:
        """Erase the counter line so that what follows starts on a clean line."""
        if self.enabled and self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self.stream.flush()
            self._drawn = 0


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
