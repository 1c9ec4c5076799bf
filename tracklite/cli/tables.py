"""Tabular output: aligned terminal tables that fit the terminal, CSV and JSON for scripts.

A command builds a :class:`Table` of machine values (full ids, ISO times, seconds) and says per
column how a person should see it; :func:`write` renders it in the format the user chose, so CSV
and JSON never carry the shortened, rounded text of the terminal table.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from . import text

FORMATS = ("table", "csv", "json")
GAP = "  "
#: A column narrower than this is never shrunk further; columns are hidden instead.
MIN_WIDTH = 10


# Not frozen: a frozen dataclass sets each field through object.__setattr__, several times
# slower, and a listing of a run with 100,000 metric keys makes a column per key.
@dataclass(slots=True)
class Column:
    """One column: ``key`` names the value in each row and the CSV/JSON field."""

    key: str
    header: str | None = None
    show: Callable[[Any], str] = text.cell
    right: bool = False
    #: Widest a cell may be, terminal permitting; longer text ends with an ellipsis.
    max_width: int = 40
    #: Whether a narrow terminal may cut this column's cells. Ids, times and numbers are never
    #: cut (a cut id or number is wrong, not short): the column is hidden instead.
    shrink: bool = True
    #: Whether the cells are keys that must stay distinguishable when cut (parameter names):
    #: the column is then never narrower than the point where two of them differ.
    distinct: bool = False
    in_table: bool = True
    in_machine: bool = True

    @property
    def title(self) -> str:
        return self.key if self.header is None else self.header


@dataclass
class Table:
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: Whether the terminal table starts with a line of column titles.
    header: bool = True
    #: Titles of further columns, after ``columns``, that the terminal table has no room for
    #: (see :func:`room`): only named in its last line.
    more: list[str] = field(default_factory=list)


def terminal_width(out: TextIO) -> int | None:
    """Columns available for a table on ``out``; None (no limit) when piped without $COLUMNS."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    try:
        interactive = out.isatty()
    except (AttributeError, ValueError):
        interactive = False
    if not interactive:
        return None
    return shutil.get_terminal_size().columns


def room(out: TextIO) -> int | None:
    """The most columns a terminal table on ``out`` can show (None: no limit). A command with
    more (a run with 100,000 metric keys) need not build the others: see ``Table.more``."""
    width = terminal_width(out)
    return None if width is None else _most(width)


def _most(width: int) -> int:
    # A shown column takes at least one character and a gap.
    return max(1, (width + len(GAP)) // (1 + len(GAP)))


def ellipsis_for(out: TextIO) -> str:
    """``…`` where the output encoding has it, else ``...`` (ASCII terminals, LANG=C)."""
    encoding = getattr(out, "encoding", None) or "ascii"
    try:
        "…".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "..."
    return "…"


def write(table: Table, out: TextIO, fmt: str = "table") -> None:
    """Write ``table`` to ``out`` as ``table``, ``csv`` or ``json``."""
    if fmt == "csv":
        write_csv(table, out)
    elif fmt == "json":
        json.dump(machine_rows(table), out, ensure_ascii=False, indent=2)
        out.write("\n")
    else:
        write_text(table, out, terminal_width(out), ellipsis_for(out))


def machine_value(value: Any) -> Any:
    """A value as CSV/JSON carry it: times in ISO 8601, NaN and infinities as null."""
    if isinstance(value, datetime):
        return text.iso(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def machine_rows(table: Table) -> list[dict[str, Any]]:
    keys = [c.key for c in table.columns if c.in_machine]
    return [{k: machine_value(row.get(k)) for k in keys} for row in table.rows]


def write_csv(table: Table, out: TextIO) -> None:
    keys = [c.key for c in table.columns if c.in_machine]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(keys)
    for row in machine_rows(table):
        writer.writerow(["" if row[k] is None else row[k] for k in keys])


def write_text(table: Table, out: TextIO, width: int | None, ellipsis: str = "…") -> None:
    """An aligned table; cells and columns are cut to fit ``width`` (None: no limit).

    Titles, and the cells of ``distinct`` columns, are never cut so far that two of them read
    the same: such a column is hidden (and named in the last line) rather than shown ambiguous.
    """
    columns = [c for c in table.columns if c.in_table]
    beyond = list(table.more)
    if width is not None:
        # Columns past this many can never fit, so none of their cells is formatted (a run
        # may have 100,000 metrics).
        most = _most(width)
        beyond = [c.title for c in columns[most:]] + beyond
        columns = columns[:most]
    # Whole rows and columns at a time, never a call per cell for plain values and ASCII text:
    # a run with 100,000 metric keys makes a row of 100,000 cells.
    cells = _cells(columns, table.rows)
    # Not Column.title: a property is a call a column.
    titles = [c.key if c.header is None else c.header for c in columns]
    heads = _widths(titles) if table.header else [1] * len(columns)
    sizes = [_widths(row) for row in cells]
    tallest = list(map(max, heads, *sizes)) if sizes else heads
    natural = list(map(min, tallest, [c.max_width for c in columns]))
    floors = [
        n if not c.shrink else min(n, MIN_WIDTH) for n, c in zip(natural, columns, strict=True)
    ]
    for i, need in enumerate(_distinct_needs(table, columns, titles, cells)):
        if need > natural[i]:
            natural[i] = need
        if need > floors[i]:
            floors[i] = need
    widths, shown = fit(natural, width, floors)
    justs = [str.rjust if c.right else str.ljust for c in columns[:shown]]
    lines = [_line(titles, heads, widths, justs, ellipsis)] if table.header else []
    lines.extend(_line(r, n, widths, justs, ellipsis) for r, n in zip(cells, sizes, strict=True))
    out.write("\n".join(lines) + "\n")
    if shown < len(columns) or beyond:
        out.write(_hidden_note(titles[shown:] + beyond, width, ellipsis) + "\n")


def _cells(columns: list[Column], rows: list[dict[str, Any]]) -> list[list[str]]:
    """Each row's cells as one-line text: the columns shown by :func:`text.cell` (metric and
    param values) in one pass a row, the others cell by cell."""
    plain = [i for i, c in enumerate(columns) if c.show is text.cell]
    plain_keys = [columns[i].key for i in plain]
    others = [(i, c) for i, c in enumerate(columns) if c.show is not text.cell]
    out = []
    for row in rows:
        line = [text.MISSING] * len(columns)
        for i, shown in zip(plain, text.cells([row.get(k) for k in plain_keys]), strict=True):
            line[i] = shown
        for i, column in others:
            line[i] = text.one_line(column.show(row.get(column.key)))
        out.append(line)
    return out


def _widths(texts: list[str]) -> list[int]:
    """Terminal columns of each text; ``len`` unless one of them is not ASCII."""
    if "".join(texts).isascii():
        return list(map(len, texts))
    return list(map(text.display_width, texts))


def _distinct_needs(
    table: Table, columns: list[Column], titles: list[str], cells: list[list[str]]
) -> list[int]:
    """Per column, the narrowest width that keeps its title and (when ``distinct``) its cells
    distinguishable."""
    needs = text.distinct_widths(titles) if table.header else [0] * len(columns)
    for i, column in enumerate(columns):
        if column.distinct and cells:
            needs[i] = max(needs[i], *text.distinct_widths([row[i] for row in cells]))
    return needs


def _hidden_note(hidden: list[str], width: int | None, ellipsis: str) -> str:
    """``(N more columns not shown: a, b, and K more; ...)``, naming as many whole titles as
    fit in ``width`` (the advice at the end goes first when room is short)."""
    head = f"({text.plural(len(hidden), 'more column')} not shown"
    # A title and its separator take three characters at least: no more than this many fit.
    most = len(hidden) if width is None else min(len(hidden), width // 3 + 1)
    for tail in ("; see --columns or --format csv)", ")"):
        for named in range(most, 0, -1):
            rest = len(hidden) - named
            listed = ", ".join(hidden[:named]) + (f", and {rest} more" if rest else "")
            note = f"{head}: {listed}{tail}"
            if width is None or text.display_width(note) <= width:
                return note
    note = head + "; see --columns or --format csv)"
    return note if width is None else text.truncate(note, width, ellipsis)


def fit(
    natural: Sequence[int], width: int | None, floors: Sequence[int] | None = None
) -> tuple[list[int], int]:
    """Column widths and how many leading columns fit in ``width`` terminal columns.

    The widest columns shrink first, each down to its floor (default :data:`MIN_WIDTH`); if
    that is not enough, columns are dropped from the right, since commands put the most
    important ones first.
    """
    natural = list(natural)
    if floors is None:
        floors = [min(n, MIN_WIDTH) for n in natural]
    if width is None or not natural:
        return natural, len(natural)
    # Running totals: each count of columns is judged in constant time (linear in columns).
    totals = list(itertools.accumulate(natural, initial=0))
    floor_totals = list(itertools.accumulate(floors, initial=0))
    for shown in range(len(natural), 0, -1):
        budget = width - len(GAP) * (shown - 1)
        if totals[shown] <= budget:
            return natural[:shown], shown
        if floor_totals[shown] > budget:
            continue
        head = natural[:shown]
        low_floors = list(floors[:shown])
        # Water level: the largest cap such that every column capped at it fits the budget.
        low, high = 0, max(head)
        while low < high:
            level = (low + high + 1) // 2
            if sum(max(f, min(w, level)) for f, w in zip(low_floors, head, strict=True)) <= budget:
                low = level
            else:
                high = level - 1
        return [max(f, min(w, low)) for f, w in zip(low_floors, head, strict=True)], shown
    # Not even one column fits: show the first one cut to the width.
    return [max(width, 1)], 1


def _line(
    values: Sequence[str],
    sizes: Sequence[int],
    widths: Sequence[int],
    justs: Sequence[Callable[[str, int], str]],
    ellipsis: str,
) -> str:
    """One table line: each value padded (``justs``: left or right) or cut to its width.
    ``sizes`` are the values' terminal widths; ``widths`` and ``justs`` end at the last shown
    column."""
    if "".join(values).isascii():
        # A character is a column: str's own padding is the right one.
        parts = [
            just(value, width) if size <= width else _cut(value, width, just, ellipsis)
            for value, size, width, just in zip(values, sizes, widths, justs, strict=False)
        ]
    else:
        parts = [
            _cut(value, width, just, ellipsis)
            for value, width, just in zip(values, widths, justs, strict=False)
        ]
    return GAP.join(parts).rstrip()


def _cut(value: str, width: int, just: Callable[[str, int], str], ellipsis: str) -> str:
    """``value`` cut to ``width`` terminal columns, then padded to it (any text)."""
    return text.pad(text.truncate(value, width, ellipsis), width, just is str.rjust)
