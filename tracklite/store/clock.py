"""Time stamps as stored on disk: ISO 8601 strings in UTC with microseconds."""

from __future__ import annotations

import time
from datetime import datetime, timezone


def now_iso() -> str:
    """The current time as stored in metadata, e.g. ``2026-11-28T07:03:41.123456+00:00``."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def now_ms() -> int:
    """The current time in Unix milliseconds (metric timestamps, as MLflow stores them)."""
    return time.time_ns() // 1_000_000


def iso_to_local_string(value: str | None) -> str | None:
    """qlib's ``info`` time format: local time ``%Y-%m-%d %H:%M:%S``, or None."""
    if value is None:
        return None
    return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def iso_to_ms(value: str | None) -> int | None:
    """Unix milliseconds of a stored time, or None."""
    if value is None:
        return None
    return int(datetime.fromisoformat(value).timestamp() * 1000)


def ms_to_iso(value: int | None) -> str | None:
    """A stored time from Unix milliseconds (used by importers), or None."""
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1000, timezone.utc).isoformat(timespec="microseconds")
