"""Opaque ids that are unique across hosts and sort by creation time.

An id is 32 lowercase hex digits laid out like a UUIDv7: 48 bits of Unix milliseconds, then a
16-bit per-process sequence, then 64 random bits. Sorting ids as strings sorts them by creation
time (to the millisecond across processes, exactly within one process), so a folder listing in
reverse order is newest first, and no coordination between hosts is needed to stay unique.
"""

from __future__ import annotations

import os
import threading
import time

_lock = threading.Lock()
_last_ms = 0
_seq = 0


def new_id() -> str:
    """Return a new 32-hex-digit id, greater than every id this process made before."""
    global _last_ms, _seq
    with _lock:
        now = time.time_ns() // 1_000_000
        if now <= _last_ms:
            # Same millisecond (or the clock stepped back): keep ids increasing in this process.
            _seq += 1
            if _seq > 0xFFFF:
                _last_ms += 1
                _seq = 0
            now = _last_ms
        else:
            _seq = 0
        _last_ms = now
        seq = _seq
    return f"{now:012x}{seq:04x}{os.urandom(8).hex()}"


def id_time_ms(identifier: str) -> int | None:
    """The creation time (Unix ms) encoded in a tracklite id, or None for a foreign id."""
    if len(identifier) != 32:
        return None
    try:
        return int(identifier[:12], 16)
    except ValueError:
        return None


def _reset_after_fork() -> None:
    # A forked child shares the parent's sequence; the random tail keeps ids unique anyway, but
    # restarting the counter keeps the in-process ordering guarantee honest.
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
