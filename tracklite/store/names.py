"""Validation of names and keys. Names are data stored in JSON, never parts of a path."""

from __future__ import annotations

#: Longest experiment/recorder name or param/tag/metric key accepted, in characters.
MAX_NAME_LENGTH = 1024


def check_name(value: object, argument: str) -> str:
    """Return ``value`` if it is usable as a name, else raise ``ValueError`` naming ``argument``.

    Spaces, unicode, ``/`` and ``..`` are fine (a name never becomes a path); empty strings,
    over-long strings, NUL and other control characters are refused because they break terminals,
    CSV exports and other tools that read the store.
    """
    if not isinstance(value, str):
        raise TypeError(f"{argument} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{argument} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(
            f"{argument} is {len(value)} characters long; the limit is {MAX_NAME_LENGTH}"
        )
    for index, char in enumerate(value):
        if ord(char) < 0x20 or ord(char) == 0x7F:
            raise ValueError(
                f"{argument} {value[:40]!r} holds control character {char!r} at index {index}"
            )
    return value


def check_key(value: object, argument: str) -> str:
    """Like :func:`check_name`, for param, tag and metric keys."""
    return check_name(value, argument)
