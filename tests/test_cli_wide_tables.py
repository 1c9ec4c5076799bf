"""Terminal tables with many columns (a run with thousands of metric keys): the work is
linear, made of whole rows and columns at a time, and the text is what cell-by-cell
formatting gives."""

from __future__ import annotations

import io
import itertools
import random
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests._calls import python_calls
from tracklite import ExpManager, QlibRecorder
from tracklite.cli import main, tables, text
from tracklite.cli.tables import Column, Table


def _wide_table(keys: int, rows: int = 1) -> Table:
    columns = [Column("name", max_width=30)] + [
        Column(f"metrics.m_{i:06d}", f"m_{i:06d}", right=True, shrink=False, max_width=24)
        for i in range(keys)
    ]
    values = [
        {"name": f"run {r}", **{f"metrics.m_{i:06d}": i / 7 + r for i in range(0, keys, r + 1)}}
        for r in range(rows)
    ]
    return Table(columns, values)


@pytest.mark.parametrize("rows", [1, 3])
def test_a_wide_table_is_written_without_a_call_per_cell(rows: int) -> None:
    table = _wide_table(5_000, rows)
    out = io.StringIO()
    with python_calls() as calls:
        tables.write_text(table, out, None)
    lines = out.getvalue().splitlines()
    assert len(lines) == rows + 1 and lines[0].split()[-1] == "m_004999"
    # A handful of calls a row or column set, none a cell: 5,000 cells a row.
    assert calls[0] < 100, calls[0]


def test_runs_costs_one_call_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`tracklite runs` piped (the whole table): the calls a key, counted between two runs of
    2,000 and 4,000 keys, are the key's column only."""
    counts = []
    for keys in (2_000, 4_000):
        uri = str(tmp_path / f"s{keys}")
        R = QlibRecorder(ExpManager(uri=uri))
        with R.start(experiment_name="wide"):
            R.log_metrics(step=0, **{f"metric_{i:06d}": i / 3 for i in range(keys)})
        main(["--uri", uri, "runs", "wide"])  # summary cache built
        capsys.readouterr()
        with python_calls() as calls:
            assert main(["--uri", uri, "runs", "wide"]) == 0
        shown = capsys.readouterr().out.splitlines()
        assert shown[0].split()[-1] == f"metric_{keys - 1:06d}"
        counts.append(calls[0])
    per_key = (counts[1] - counts[0]) / 2_000
    assert per_key < 1.5, counts


def _reference(table: Table, ellipsis: str = "…") -> list[str]:
    """The table formatted cell by cell, with each column's widest text (all columns fit)."""
    columns = table.columns
    cells = [[text.one_line(c.show(row.get(c.key))) for c in columns] for row in table.rows]
    widths = [
        min(
            max([text.display_width(c.title)] + [text.display_width(r[i]) for r in cells]),
            c.max_width,
        )
        for i, c in enumerate(columns)
    ]
    needs = text.distinct_widths([c.title for c in columns])
    widths = [max(w, n) for w, n in zip(widths, needs, strict=True)]
    return [
        "  ".join(
            text.pad(text.truncate(v, w, ellipsis), w, c.right)
            for v, w, c in zip(line, widths, columns, strict=True)
        ).rstrip()
        for line in [[c.title for c in columns], *cells]
    ]


def test_wide_tables_read_as_cell_by_cell_formatting() -> None:
    when = datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)
    columns = [
        Column("name", max_width=12),
        Column("start", show=text.local_minutes, shrink=False),
        Column("名前", max_width=6),
        Column("v", right=True),
        Column("p", max_width=8),
    ]
    rows: list[dict[str, Any]] = [
        {"name": "plain", "start": when, "名前": "abc", "v": 1.5, "p": "x" * 20},
        {"name": "漢字の名前です長い", "start": None, "名前": "e\u0301te", "v": float("nan")},
        {"name": "tab\there", "v": 3, "p": True, "名前": "ｗｉｄｅｗｉｄｅ"},
        {"name": None, "v": float("inf"), "p": "line\nbreak"},
    ]
    table = Table(columns, rows)
    out = io.StringIO()
    tables.write_text(table, out, None)
    assert out.getvalue().splitlines() == _reference(table)


def test_batched_cells_and_prefixes_match_one_at_a_time() -> None:
    values: list[Any] = [1.5, float("nan"), -0.0, 1e300, 3, True, None, "a\tb", "ü", 2**70]
    values += [datetime(2026, 1, 2, tzinfo=timezone.utc), float("-inf"), "", [1, 2]]
    assert text.cells(values) == [text.cell(v) for v in values]
    random.seed(3)
    words = sorted({_word(random.randint(0, 6)) for _ in range(400)})
    for first, second in itertools.pairwise(words):
        pairs = zip(first, second, strict=False)
        naive = next((i for i, (x, y) in enumerate(pairs) if x != y), min(len(first), len(second)))
        assert text.common_prefix_length(first, second) == naive, (first, second)
    assert text.distinct_widths(["abcd", "abd", "x", "abcd"]) == [4, 3, 1, 4]
    assert text.distinct_widths(["漢字a", "漢字b", "漢"]) == [5, 5, 2]


def _word(length: int) -> str:
    """Random text of ASCII, a NUL, a two-byte, a wide character and a lone surrogate (from
    an undecodable file name): shared prefixes abound."""
    return "".join(random.choice("ab\0ü漢\udcff") for _ in range(length))
