"""What every command gets: the store it works on, the output streams and the chosen format."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

from ..api.catalog import Catalog
from ..store import layout
from .errors import CliError


@dataclass
class Context:
    """The global options, resolved once in :func:`tracklite.cli.main.main`."""

    uri: str
    fmt: str = "table"
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    @property
    def catalog(self) -> Catalog:
        """The store (no I/O, and the folder may not exist yet)."""
        return Catalog(self.uri)

    def existing_catalog(self) -> Catalog:
        """The store, which must already exist: readers never create one by accident."""
        catalog = self.catalog
        # exists() raises StoreError (one clear line) for a folder holding something else.
        if not catalog.exists():
            raise CliError(
                f"no tracklite store at {catalog.root}: give --uri (or set "
                f"{layout.URI_ENV}), or run `tracklite demo` to create an example store"
            )
        return catalog

    def print(self, line: str = "") -> None:
        self.out.write(line + "\n")

    def note(self, line: str) -> None:
        """A remark for the person at the terminal, kept out of stdout's data."""
        self.err.write(line + "\n")
