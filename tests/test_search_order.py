"""Tests for tracklite.search.order: MLflow order_by clauses and the recorder-table sort."""

from __future__ import annotations

import functools
import math
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracklite.search.filter import SearchSyntaxError
from tracklite.search.order import OrderKey, parse_order_by, sort_frame

UTC = timezone.utc
NAN = float("nan")


def recorder_table() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "run_id": ["r1", "r2", "r3", "r4", "r5", "r6"],
            "status": ["FINISHED", "FAILED", "FINISHED", "RUNNING", "KILLED", "FINISHED"],
            "start_time": pd.Series(
                [
                    datetime(2024, 1, 1, 0, 0, 0, 100, tzinfo=UTC),
                    datetime(2024, 1, 3, tzinfo=UTC),
                    None,
                    datetime(2024, 1, 1, 0, 0, 0, 200, tzinfo=UTC),  # same millisecond as r1
                    datetime(2024, 1, 3, tzinfo=UTC),  # ties with r2
                    datetime(2023, 12, 31, tzinfo=UTC),
                ],
                dtype="datetime64[us, UTC]",
            ),
            "metrics.m": [2.0, 10.0, NAN, 9.0, 2.0, -1.0],
            "metrics.Rank IC": [NAN, 0.5, 0.1, NAN, 0.3, 0.2],
            "params.p": ["10", "9", None, "a", "10", "B"],
            "tags.mlflow.runName": ["b", None, "a", "c", "a", None],
        }
    )
    for column in ("run_id", "status", "params.p", "tags.mlflow.runName"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


FRAME = recorder_table()


def order(clauses: list[str] | None, frame: pd.DataFrame = FRAME) -> list[str]:
    return list(sort_frame(frame, clauses)["run_id"])


# ---------------------------------------------------------------------------------------------
# Parsing


@pytest.mark.parametrize(
    ("clause", "key"),
    [
        ("metrics.m", OrderKey("metrics.m", "number", True)),
        ("metrics.m ASC", OrderKey("metrics.m", "number", True)),
        ("metrics.m DESC", OrderKey("metrics.m", "number", False)),
        ("metric.m desc", OrderKey("metrics.m", "number", False)),
        ("  metrics.m   Asc  ", OrderKey("metrics.m", "number", True)),
        ("metrics.`Rank IC` DESC", OrderKey("metrics.Rank IC", "number", False)),
        ('metrics."Rank IC" DESC', OrderKey("metrics.Rank IC", "number", False)),
        ("params.lr ASC", OrderKey("params.lr", "string", True)),
        ("params.model.lr", OrderKey("params.model.lr", "string", True)),
        ("tags.t DESC", OrderKey("tags.t", "string", False)),
        ("attributes.start_time", OrderKey("start_time", "time", True)),
        ("attr.created DESC", OrderKey("start_time", "time", False)),
        ("start_time DESC", OrderKey("start_time", "time", False)),
        ("end_time", OrderKey("end_time", "time", True)),
        ("attributes.run_name", OrderKey("tags.mlflow.runName", "string", True)),
        ("run.status DESC", OrderKey("status", "string", False)),
        ("run_id", OrderKey("run_id", "string", True)),
    ],
)
def test_parse_clause(clause: str, key: OrderKey) -> None:
    assert parse_order_by([clause]) == [key]


def test_parse_several_and_none() -> None:
    assert parse_order_by(None) == []
    assert parse_order_by([]) == []
    assert parse_order_by(("metrics.m DESC", "params.p")) == [
        OrderKey("metrics.m", "number", False),
        OrderKey("params.p", "string", True),
    ]


def test_parse_rejects_a_bare_string() -> None:
    with pytest.raises(TypeError, match=r"^order_by must be a list of clauses, not the str "):
        parse_order_by("metrics.m DESC")
    with pytest.raises(TypeError, match=r"^order_by must be a list of clauses, not the str "):
        sort_frame(FRAME, "metrics.m DESC")


def test_parse_rejects_non_string_clauses() -> None:
    with pytest.raises(TypeError, match=r"^order_by clauses must be str, not int$"):
        parse_order_by([1])  # type: ignore[list-item]


COLUMN = "expected a column: metrics.<key>, params.<key>, tags.<key> or attributes.<name>"


@pytest.mark.parametrize(
    ("clause", "reason", "position"),
    [
        ("", "empty order_by clause; expected a column such as metrics.m", 0),
        ("   ", "empty order_by clause; expected a column such as metrics.m", 3),
        (
            "metrics.m DESCENDING",
            "unexpected 'DESCENDING'; expected ASC, DESC or the end of the clause",
            10,
        ),
        ("metrics.m DESC extra", "unexpected 'extra'; expected the end of the clause", 15),
        ("metrics.m ASC DESC", "unexpected 'DESC'; expected the end of the clause", 14),
        (
            "metrics.m, params.p",
            "unexpected ','; expected ASC, DESC or the end of the clause",
            9,
        ),
        (
            "metrics.m > 1",
            "unexpected '>'; expected ASC, DESC or the end of the clause",
            10,
        ),
        ("DESC", f"unexpected 'DESC'; {COLUMN}", 0),
        ("'metrics.m'", f"unexpected string 'metrics.m'; {COLUMN}", 0),
        ("loss DESC", f"unknown name 'loss'; {COLUMN}", 0),
        (
            "foo.bar DESC",
            "unknown prefix 'foo'; expected metrics, params, tags or attributes "
            "(or metric, param, tag, attr, run)",
            0,
        ),
        (
            "attributes.nope",
            "unknown attribute 'nope'; attributes are artifact_uri, created, end_time, "
            "experiment_id, run name, run_id, run_name, start_time, status, user_id",
            0,
        ),
        ("metrics. DESC", "expected a key after 'metrics.'", 8),
        ("metrics.`Rank IC DESC", "unterminated quoted key", 8),
        ("metrics.m #", "unexpected character '#'", 10),
    ],
)
def test_parse_errors(clause: str, reason: str, position: int) -> None:
    what, semicolon, hint = reason.partition("; ")
    with pytest.raises(SearchSyntaxError) as info:
        parse_order_by(["metrics.ok", clause])
    error = info.value
    assert isinstance(error, ValueError)
    assert error.position == position
    quoted = f'"{clause}"' if "'" in clause and '"' not in clause else f"'{clause}'"
    assert str(error) == (
        f"Invalid order_by clause {quoted}: {what} at position {position}{semicolon}{hint}\n"
        f"  {clause}\n  {' ' * position}^"
    )


def test_parse_error_layout() -> None:
    with pytest.raises(ValueError) as info:
        parse_order_by(["metrics.`Rank IC` DESK"])
    assert str(info.value) == (
        "Invalid order_by clause 'metrics.`Rank IC` DESK': unexpected 'DESK' at position 18; "
        "expected ASC, DESC or the end of the clause\n"
        "  metrics.`Rank IC` DESK\n"
        "                    ^"
    )


# ---------------------------------------------------------------------------------------------
# Sorting


def test_default_order_is_newest_first_then_run_id() -> None:
    # r2 and r5 tie on start_time (run_id breaks it); r4 is 100 µs after r1; r3 has no start.
    expected = ["r2", "r5", "r4", "r1", "r6", "r3"]
    assert order(None) == expected
    assert order([]) == expected


def test_metrics_sort_numerically_with_missing_last() -> None:
    # m: r1 2, r2 10, r3 NaN, r4 9, r5 2, r6 -1. The tie r1/r5 falls back to start_time DESC.
    assert order(["metrics.m"]) == ["r6", "r5", "r1", "r4", "r2", "r3"]
    assert order(["metrics.m ASC"]) == ["r6", "r5", "r1", "r4", "r2", "r3"]
    assert order(["metrics.m DESC"]) == ["r2", "r4", "r5", "r1", "r6", "r3"]


def test_quoted_metric_key() -> None:
    # Rank IC: r1 NaN, r2 .5, r3 .1, r4 NaN, r5 .3, r6 .2; the missing pair by start_time DESC.
    assert order(["metrics.`Rank IC` DESC"]) == ["r2", "r5", "r6", "r3", "r4", "r1"]
    assert order(["metrics.`Rank IC` ASC"]) == ["r3", "r6", "r5", "r2", "r4", "r1"]


def test_params_sort_as_strings() -> None:
    # Code point order: "10" < "9" < "B" < "a"; r3 has no value.
    assert order(["params.p"]) == ["r5", "r1", "r2", "r6", "r4", "r3"]
    assert order(["params.p DESC"]) == ["r4", "r6", "r2", "r5", "r1", "r3"]


def test_multiple_keys() -> None:
    assert order(["params.p DESC", "metrics.m DESC"]) == ["r4", "r6", "r2", "r5", "r1", "r3"]
    assert order(["attributes.status", "metrics.m DESC"]) == ["r2", "r1", "r6", "r3", "r5", "r4"]
    assert order(["attributes.run_name DESC", "metrics.`Rank IC`"]) == [
        "r4",
        "r1",
        "r3",
        "r5",
        "r6",
        "r2",
    ]


def test_start_time_key_replaces_the_default_tie_breaker() -> None:
    # ASC keeps missing last; r2/r5 still tie, so run_id decides.
    assert order(["attributes.start_time"]) == ["r6", "r1", "r4", "r2", "r5", "r3"]
    assert order(["start_time DESC"]) == ["r2", "r5", "r4", "r1", "r6", "r3"]


def test_explicit_run_id_key() -> None:
    assert order(["attributes.run_id DESC"]) == ["r6", "r5", "r4", "r3", "r2", "r1"]
    # run_id DESC breaks the r2/r5 start_time tie the other way.
    assert order(["start_time DESC", "run_id DESC"]) == ["r5", "r2", "r4", "r1", "r6", "r3"]


def test_missing_column_sorts_as_all_missing() -> None:
    assert order(["metrics.nope DESC"]) == order(None)
    assert order(["params.nope", "metrics.m"]) == order(["metrics.m"])


def test_accepts_parsed_keys() -> None:
    keys = parse_order_by(["metrics.m DESC"])
    assert order(keys) == order(["metrics.m DESC"])  # type: ignore[arg-type]
    mixed: list[str | OrderKey] = [OrderKey("params.p", "string", False), "metrics.m"]
    assert list(sort_frame(FRAME, mixed)["run_id"]) == ["r4", "r6", "r2", "r5", "r1", "r3"]


def test_keeps_index_labels_and_columns() -> None:
    frame = FRAME.set_index(pd.Index(list("abcdef")))
    result = sort_frame(frame, ["metrics.m DESC"])
    assert list(result.index) == ["b", "d", "e", "a", "f", "c"]
    assert list(result.columns) == list(frame.columns)
    assert result.loc["b", "run_id"] == "r2"


def test_duplicate_index_labels() -> None:
    frame = FRAME.set_index(pd.Index([0, 0, 0, 1, 1, 1]))
    assert list(sort_frame(frame, ["metrics.m DESC"])["run_id"]) == order(["metrics.m DESC"])


def test_empty_frame_and_frame_without_default_columns() -> None:
    assert sort_frame(FRAME.iloc[0:0], ["metrics.m"]).empty
    bare = pd.DataFrame({"metrics.m": [3.0, NAN, 1.0, 1.0]}, index=[10, 11, 12, 13])
    # No start_time or run_id: equal values keep their input order (the sort is stable).
    assert list(sort_frame(bare, ["metrics.m"]).index) == [12, 13, 10, 11]
    assert list(sort_frame(bare, None).index) == [10, 11, 12, 13]


def test_other_column_dtypes() -> None:
    frame = pd.DataFrame(
        {
            "run_id": ["a", "b", "c", "d"],
            "start_time": pd.Series([3000, None, 1000, 2000], dtype="float64"),  # epoch ms
            "params.s": pd.Series(["y", None, "x", "z"], dtype="string"),
            "params.n": pd.Series([2, None, 10, 1], dtype=object),  # not strings: compared as str
            "metrics.f": pd.Series([1.5, None, 0.5, 2.5], dtype="Float64"),
            "metrics.o": pd.Series(["3", None, 1, 2.0], dtype=object),
        }
    )
    assert order(None, frame) == ["a", "d", "c", "b"]
    assert order(["params.s"], frame) == ["c", "a", "d", "b"]
    assert order(["params.n"], frame) == ["d", "c", "a", "b"]
    assert order(["metrics.f DESC"], frame) == ["d", "a", "c", "b"]
    assert order(["metrics.o"], frame) == ["c", "d", "a", "b"]


def test_large_frame() -> None:
    rng = np.random.default_rng(1)
    size = 20_000
    values = rng.integers(0, 50, size).astype(float)
    values[rng.random(size) < 0.1] = np.nan
    frame = pd.DataFrame(
        {
            "run_id": [f"{i:06d}" for i in rng.permutation(size)],
            "metrics.m": values,
            "params.p": rng.choice(["a", "b", "c"], size).astype(object),
        }
    )
    result = sort_frame(frame, ["params.p DESC", "metrics.m"])
    expected = frame.sort_values(
        ["params.p", "metrics.m", "run_id"],
        ascending=[False, True, True],
        na_position="last",
        kind="stable",
    )
    assert list(result["run_id"]) == list(expected["run_id"])


# ---------------------------------------------------------------------------------------------
# Property: sort_frame equals Python's stable sort with a hand-written comparator

TIMES = [
    None,
    datetime(2024, 1, 1, tzinfo=UTC),
    datetime(2024, 1, 1, 0, 0, 0, 500, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC),
]
NUMBERS = [NAN, -1.0, -0.0, 0.0, 2.5, 10.0, math.inf, -math.inf]
STRINGS = [None, "", "10", "9", "B", "a", "a b", "é"]
# (clause spelling, row key, kind)
KEYS = [
    ("metrics.m", "metrics.m", "number"),
    ("metrics.`Rank IC`", "metrics.Rank IC", "number"),
    ("metrics.absent", "metrics.absent", "number"),
    ("params.p", "params.p", "string"),
    ("tags.mlflow.runName", "tags.mlflow.runName", "string"),
    ("attributes.run_name", "tags.mlflow.runName", "string"),
    ("attributes.status", "status", "string"),
    ("attributes.start_time", "start_time", "time"),
    ("end_time", "end_time", "time"),
    ("run_id", "run_id", "string"),
]
ROWS = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["RUNNING", "FINISHED", "FAILED"]),
        "start_time": st.sampled_from(TIMES),
        "end_time": st.sampled_from(TIMES),
        "metrics.m": st.sampled_from(NUMBERS),
        "metrics.Rank IC": st.sampled_from(NUMBERS),
        "params.p": st.sampled_from(STRINGS),
        "tags.mlflow.runName": st.sampled_from(STRINGS),
    }
)
CLAUSES = st.lists(
    st.tuples(st.sampled_from(KEYS), st.sampled_from(["", " ASC", " DESC", " desc"])),
    max_size=3,
)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def reference_order(rows: list[dict[str, Any]], keys: list[tuple[str, bool]]) -> list[str]:
    """Python's stable sort with an explicit three-way comparator: missing last either way."""

    def compare(a: dict[str, Any], b: dict[str, Any]) -> int:
        for column, ascending in keys:
            x, y = a.get(column), b.get(column)
            if _missing(x) and _missing(y):
                continue
            if _missing(x) or _missing(y):
                return 1 if _missing(x) else -1
            if x != y:
                result = -1 if x < y else 1
                return result if ascending else -result
        return 0

    return [row["run_id"] for row in sorted(rows, key=functools.cmp_to_key(compare))]


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(ROWS, max_size=8),
    ids=st.permutations([f"{i:02x}" for i in range(8)]),
    clauses=CLAUSES,
)
def test_sort_matches_reference(
    rows: list[dict[str, Any]], ids: list[str], clauses: list[tuple[tuple[str, str, str], str]]
) -> None:
    for row, run_id in zip(rows, ids, strict=False):  # ids outnumber rows
        row["run_id"] = run_id
    frame = pd.DataFrame(
        {
            "run_id": pd.Series([r["run_id"] for r in rows], dtype=object),
            "status": pd.Series([r["status"] for r in rows], dtype=object),
            "start_time": pd.Series([r["start_time"] for r in rows], dtype="datetime64[us, UTC]"),
            "end_time": pd.Series([r["end_time"] for r in rows], dtype="datetime64[us, UTC]"),
            "metrics.m": pd.Series([r["metrics.m"] for r in rows], dtype="float64"),
            "metrics.Rank IC": pd.Series([r["metrics.Rank IC"] for r in rows], dtype="float64"),
            "params.p": pd.Series([r["params.p"] for r in rows], dtype=object),
            "tags.mlflow.runName": pd.Series(
                [r["tags.mlflow.runName"] for r in rows], dtype=object
            ),
        }
    )
    text = [spelling + direction for (spelling, _, _), direction in clauses]
    keys = [(column, "DESC" not in direction.upper()) for (_, column, _), direction in clauses]
    columns = {column for column, _ in keys}
    if "start_time" not in columns:
        keys.append(("start_time", False))
    if "run_id" not in columns:
        keys.append(("run_id", True))
    assert list(sort_frame(frame, text)["run_id"]) == reference_order(rows, keys)
