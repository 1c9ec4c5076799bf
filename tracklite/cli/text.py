"""Turning values into short terminal text: widths, truncation, times, durations, sizes."""

from __future__ import annotations

import itertools
import math
import unicodedata
from datetime import datetime, timezone
from typing import Any

#: Printed for a missing value (no metric, no end time) in tables.
MISSING = ""


def char_width(char: str) -> int:
    """Columns one character takes in a terminal: 0 for combining marks, 2 for wide CJK."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal (names are unicode data, so len() is not enough)."""
    if text.isascii():
        return len(text)
    return sum(char_width(c) for c in text)


def truncate(text: str, width: int, ellipsis: str = "…") -> str:
    """``text`` cut to at most ``width`` columns, ending with ``ellipsis`` when cut."""
    if display_width(text) <= width:
        return text
    room = width - display_width(ellipsis)
    if room <= 0:
        return ellipsis[: max(width, 0)]
    out: list[str] = []
    used = 0
    for char in text:
        size = char_width(char)
        if used + size > room:
            break
        out.append(char)
        used += size
    return "".join(out) + ellipsis


def distinct_widths(texts: list[str]) -> list[int]:
    """For each text, the fewest columns it can be cut to (with a one-column ellipsis) and still
    read differently from every other text: one past the longest prefix it shares with another.

    ``1day.excess_return_with_cost.max_drawdown`` and ``...information_ratio`` may not be cut
    before the character where they differ. Identical texts do not count as different.
    """
    unique = sorted(set(texts))
    # Sorted, a text shares its longest prefix with a neighbour: the one before or after it.
    between = _neighbour_prefixes(unique)
    shared = dict(zip(unique, map(max, [0, *between], [*between, 0]), strict=True))
    if "".join(unique).isascii():
        # One column a character: the cut text is min(len, shared + 1) wide, plus the ellipsis.
        return [min(len(t), shared[t] + 2) for t in texts]
    return [min(display_width(t), display_width(t[: shared[t] + 1]) + 1) for t in texts]


def _neighbour_prefixes(ordered: list[str]) -> list[int]:
    """:func:`common_prefix_length` of each pair of neighbours in ``ordered``, in one loop with
    no call per pair (the titles of a run with 100,000 metric keys)."""
    wide = not "".join(ordered).isascii()
    codec, size = ("utf-32-be", 4) if wide else ("ascii", 1)
    out: list[int] = []
    for first, second in itertools.pairwise(ordered):
        n = min(len(first), len(second))
        a, b = first[:n], second[:n]
        if a == b:
            out.append(n)
            continue
        # The highest bit where the two encodings differ gives the first differing character.
        # (surrogatepass: a key made from an undecodable file name holds lone surrogates.)
        x = int.from_bytes(a.encode(codec, "surrogatepass"), "big")
        bits = (x ^ int.from_bytes(b.encode(codec, "surrogatepass"), "big")).bit_length()
        out.append((n * size - 1 - (bits - 1) // 8) // size)
    return out


def common_prefix_length(a: str, b: str) -> int:
    """How many leading characters ``a`` and ``b`` share."""
    return _neighbour_prefixes([a, b])[0]


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``2 files``: ``count`` and ``word``, made plural (``many``, else ``word+s``)."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def pad(text: str, width: int, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` columns (on the left when ``right``)."""
    fill = " " * max(width - display_width(text), 0)
    return fill + text if right else text + fill


def one_line(text: str) -> str:
    """``text`` with line breaks and tabs turned into spaces (a param value may hold them)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else " " for c in text)


def parse_time(value: Any) -> datetime | None:
    """A stored time (ISO string or datetime) as an aware datetime, or None."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            return None
        parsed = datetime.fromisoformat(value)
    elif isinstance(value, datetime):
        parsed = value
    else:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def local_minutes(value: Any) -> str:
    """A time as local ``YYYY-MM-DD HH:MM`` (what a person scanning a table needs)."""
    moment = parse_time(value)
    if moment is None:
        return MISSING
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def iso(value: Any) -> str | None:
    """A time as ISO 8601 in UTC with microseconds (what a script parsing CSV/JSON needs)."""
    moment = parse_time(value)
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def duration(seconds: float | None) -> str:
    """A duration as ``850ms``, ``4.2s``, ``37s``, ``3m12s``, ``2h05m`` or ``3d04h``."""
    if seconds is None or math.isnan(seconds):
        return MISSING
    if seconds < 0:
        return "-" + duration(-seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def size(n_bytes: int | None) -> str:
    """A byte count as ``512 B``, ``1.2 KiB``, ``3.4 MiB``..."""
    if n_bytes is None:
        return MISSING
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n_bytes} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def number(value: Any) -> str:
    """A metric value with six significant digits; NaN as empty; ints as they are."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return MISSING
        return f"{value:.6g}"
    return one_line(str(value))


def cell(value: Any) -> str:
    """Any value as table text: numbers via :func:`number`, times as local minutes."""
    if value is None:
        return MISSING
    if isinstance(value, (int, float)):
        return number(value)
    if isinstance(value, datetime):
        return local_minutes(value)
    return one_line(str(value))


def cells(values: list[Any]) -> list[str]:
    """:func:`cell` of each value, in one pass: floats, plain strings and missing values (the
    cells of a run with 100,000 metric keys) without a call each."""
    return [
        (MISSING if value != value else f"{value:.6g}")
        if type(value) is float
        else value
        if type(value) is str and value.isprintable()
        else MISSING
        if value is None
        else cell(value)
        for value in values
    ]
