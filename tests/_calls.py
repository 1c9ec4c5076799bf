"""Counting work instead of timing it: the Python function calls a block makes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def python_calls() -> Iterator[list[int]]:
    """Counts the Python function calls made inside the block (C functions not counted; a
    generator's every resumption counts)."""
    count = [0]

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            count[0] += 1

    sys.setprofile(profile)
    try:
        yield count
    finally:
        sys.setprofile(None)
