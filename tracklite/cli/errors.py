"""The one exception commands raise for a user's mistake."""

from __future__ import annotations


class CliError(Exception):
    """Printed as one line ``tracklite: error: ...`` and turned into exit ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
