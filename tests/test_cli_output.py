"""The command line's output pieces: text helpers, tables, the terminal plot, progress."""

from __future__ import annotations

import io
import os
from datetime import datetime, timedelta, timezone

import pytest
from _reliability import read_terminal

from tracklite.cli import plot, tables, text
from tracklite.cli.progress import Progress
from tracklite.cli.resolve import prefix_length
from tracklite.cli.tables import Column, Table


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, ""),
        (0.0123, "12ms"),
        (4.26, "4.3s"),
        (37.9, "37s"),
        (192, "3m12s"),
        (3600 * 2 + 5 * 60 + 9, "2h05m"),
        (86400 * 3 + 3600 * 4 + 1, "3d04h"),
        (-5.0, "-5.0s"),
    ],
)
def test_duration(seconds: float | None, shown: str) -> None:
    assert text.duration(seconds) == shown


def test_times() -> None:
    stored = "2026-03-04T05:06:07.123456+00:00"
    local = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc).astimezone()
    assert text.local_minutes(stored) == local.strftime("%Y-%m-%d %H:%M")
    assert (
        text.iso(datetime(2026, 3, 4, 6, 6, 7, 123456, tzinfo=timezone(timedelta(hours=1))))
        == stored
    )
    assert text.local_minutes(None) == "" and text.iso(None) is None


def test_sizes_and_numbers() -> None:
    assert [text.size(n) for n in (0, 1023, 1024, 5 * 1024**2)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "5.0 MiB",
    ]
    assert text.number(0.1 + 0.2) == "0.3"
    assert text.number(123456789.0) == "1.23457e+08"
    assert text.number(float("nan")) == "" and text.number(7) == "7"


def test_width_and_truncation_count_wide_characters() -> None:
    assert text.display_width("实验") == 4 and text.display_width("e\u0301") == 1
    assert text.truncate("实验 rolling", 5) == "实验…"
    assert text.display_width(text.truncate("实验实验实验", 6)) <= 6
    assert text.truncate("abcdef", 6) == "abcdef" and text.truncate("abcdefg", 6, "...") == "abc..."
    assert text.pad("实", 4) == "实  " and text.pad("7", 3, right=True) == "  7"
    assert text.one_line("a\nb\tc") == "a b c"


def test_fit_shrinks_then_hides_columns() -> None:
    assert tables.fit([10, 10], None) == ([10, 10], 2)
    assert tables.fit([10, 10], 22) == ([10, 10], 2)
    widths, shown = tables.fit([30, 10, 10], 40)
    assert shown == 3 and sum(widths) + 4 <= 40 and widths[1:] == [10, 10]
    # Unshrinkable columns (ids, numbers) keep their width; the rest go.
    assert tables.fit([12, 12, 12], 30, floors=[12, 12, 12]) == ([12, 12], 2)
    assert tables.fit([50], 10) == ([10], 1)


def test_table_formats() -> None:
    moment = datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)
    table = Table(
        [
            Column("name", max_width=8),
            Column("v", right=True),
            Column("t", show=text.local_minutes),
            Column("hidden", in_table=False),
            Column("only_table", in_machine=False),
        ],
        [
            {"name": "a-very-long-name", "v": 1.5, "t": moment, "hidden": "h", "only_table": "o"},
            {"name": "b", "v": float("nan"), "t": None, "hidden": None, "only_table": ""},
        ],
    )
    out = io.StringIO()
    tables.write_text(table, out, width=None)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["name", "v", "t", "only_table"]
    assert lines[1].startswith("a-very-… ") and "1.5" in lines[1]
    assert lines[2].split() == ["b"]  # missing values are blank, trailing blanks stripped
    csv_out = io.StringIO()
    tables.write(table, csv_out, "csv")
    assert csv_out.getvalue().splitlines() == [
        "name,v,t,hidden",
        "a-very-long-name,1.5,2026-01-02T03:04:00.000000+00:00,h",
        "b,,,",
    ]
    json_out = io.StringIO()
    tables.write(table, json_out, "json")
    assert '"v": null' in json_out.getvalue()


QLIB_KEYS = [
    f"1day.excess_return_{cost}.{figure}"
    for cost in ("with_cost", "without_cost")
    for figure in ("annualized_return", "information_ratio", "max_drawdown", "mean", "std")
]


def _rendered(table: Table, width: int | None) -> list[str]:
    out = io.StringIO()
    tables.write_text(table, out, width=width)
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [None, 80, 100, 200])
def test_titles_are_never_cut_into_each_other(width: int | None) -> None:
    columns = [Column("id", shrink=False)] + [
        Column(k, right=True, shrink=False, max_width=24) for k in QLIB_KEYS
    ]
    rows = [{"id": "01a2211957", **{k: 0.123456 for k in QLIB_KEYS}}]
    lines = _rendered(Table(columns, rows), width)
    titles = lines[0].split()[1:]
    # Every shown title reads as a different key (a cut one names a unique key's beginning).
    for title in titles:
        stem = title.rstrip("…")
        assert sum(k.startswith(stem) for k in QLIB_KEYS) == 1 or title in QLIB_KEYS, title
    if width is not None:
        assert all(text.display_width(line) <= width for line in lines)
        hidden = len(QLIB_KEYS) - len(titles)
        assert hidden > 0 and lines[-1].startswith(f"({hidden} more columns not shown")


def test_distinct_keys_stay_distinct_and_the_footer_fits() -> None:
    keys = [f"dataset.kwargs.handler.kwargs.{k}" for k in ("start_time", "end_time", "fit_end")]
    columns = [Column("key", max_width=24, distinct=True), Column("value", max_width=40)]
    lines = _rendered(Table(columns, [{"key": k, "value": "x" * 30} for k in keys]), 80)
    shown = [line.split()[0] for line in lines[1:]]
    assert len({s.rstrip("…") for s in shown}) == 3  # three different beginnings
    assert all(any(k.startswith(s.rstrip("…")) for k in keys) for s in shown)
    # One hidden title too long for the line: the footer still fits, whole names only.
    many = [Column("a" * 70, shrink=False)] + [
        Column(f"{'b' * 60}{i}", shrink=False) for i in range(3)
    ]
    lines = _rendered(Table(many, [{}]), 80)
    assert len(lines[-1]) <= 80 and "more columns not shown" in lines[-1]
    assert text.distinct_widths(["abcd", "abd", "x", "abcd"]) == [4, 3, 1, 4]
    assert text.plural(1, "file") == "1 file" and text.plural(2, "entry", "entries") == "2 entries"


def test_ellipsis_follows_the_encoding() -> None:
    assert tables.ellipsis_for(io.TextIOWrapper(io.BytesIO(), encoding="ascii")) == "..."
    assert tables.ellipsis_for(io.TextIOWrapper(io.BytesIO(), encoding="utf-8")) == "…"


def test_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert tables.terminal_width(io.StringIO()) is None  # piped: no limit
    monkeypatch.setenv("COLUMNS", "77")
    assert tables.terminal_width(io.StringIO()) == 77


def test_plot_shape() -> None:
    steps = list(range(100))
    values = [1.0 / (s + 1) for s in steps]
    lines = plot.line_plot(steps, values, width=40, height=8)
    assert len(lines) == 8 + 2
    assert all(len(line) <= 40 for line in lines)
    assert lines[0].split("┤")[0].strip() == "1" and lines[7].split("┤")[0].strip() == "0.01"
    assert lines[-1].split() == ["0", "99"]
    ascii_lines = plot.line_plot(steps, values, width=40, height=8, unicode=False)
    assert all(line.isascii() for line in ascii_lines)


def test_plot_edge_cases() -> None:
    assert plot.line_plot([0, 1], [float("nan"), float("inf")]) == ["(no finite values to plot)"]
    flat = plot.line_plot([0, 1, 2], [2.0, 2.0, 2.0], width=30, height=5)
    assert sum("•" in line for line in flat) == 1  # one row
    single = plot.line_plot([5], [1.0], width=30, height=3)
    assert "•" in "".join(single) and single[-1].split() == ["5"]


def test_prefix_length() -> None:
    ids = ["aaaa0000", "aaaa0001", "aaab0000", "bbbb"]
    assert prefix_length(ids, ["bbbb"], minimum=1) == 1
    assert prefix_length(ids, ["aaaa0000"], minimum=1) == 8
    assert prefix_length(ids, ["aaab0000"], minimum=1) == 4
    assert prefix_length(ids, [], minimum=3) == 3


def test_progress_is_silent_when_not_a_terminal() -> None:
    stream = io.StringIO()
    with Progress("working", total=3, stream=stream) as bar:
        for _ in range(3):
            bar.advance()
        bar.callback(2, 3)
    assert stream.getvalue() == ""
    assert bar.done == 2 and bar.total == 3


def test_progress_draws_on_a_terminal() -> None:
    master, slave = os.openpty()
    try:
        with (
            open(slave, "w", encoding="utf-8", closefd=True) as terminal,
            Progress("removing", total=2, stream=terminal, interval=0) as bar,
        ):
            bar.advance(detail="one")
            bar.callback(2, 2)
        written = read_terminal(master).decode()  # the terminal side is closed
    finally:
        os.close(master)
    assert "\rremoving 1/2 one" in written
    assert "removing 2/2" in written
    assert written.endswith("\r")  # the line is erased at the end
