"""The ``tracklite`` command line (``python -m tracklite``); see ``docs/cli.md``."""

from __future__ import annotations

from .main import build_parser, main

__all__ = ["build_parser", "main"]
