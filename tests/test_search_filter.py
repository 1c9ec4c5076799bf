"""Tests for tracklite.search.filter: the MLflow filter language on a recorder table."""

from __future__ import annotations

import math
import pickle
import random
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracklite.search.filter import (
    And,
    Comparison,
    FilterExpr,
    Not,
    Or,
    SearchSyntaxError,
    filter_frame,
    parse_filter,
)

UTC = timezone.utc
NAN = float("nan")


def recorder_table() -> pd.DataFrame:
    """A small frame shaped like mlflow.search_runs output."""
    frame = pd.DataFrame(
        {
            "run_id": ["r1", "r2", "r3", "r4", "r5"],
            "experiment_id": ["1", "1", "1", "2", "2"],
            "status": ["FINISHED", "FAILED", "FINISHED", "RUNNING", "KILLED"],
            "artifact_uri": ["file:///s/1/r1", "file:///s/1/r2", None, "C:\\s\\r4", "x"],
            "start_time": pd.to_datetime(
                [
                    "2024-01-01 00:00:00.000",
                    "2024-01-01 00:00:00.001999",
                    None,
                    "1969-12-31 23:59:59.999500",
                    "2024-01-02 00:00:00.000",
                ],
                utc=True,
            ).astype("datetime64[us, UTC]"),
            "end_time": pd.to_datetime(
                ["2024-01-01 01:00", None, None, None, "2024-01-02 01:00"],
                utc=True,
                format="ISO8601",
            ).astype("datetime64[us, UTC]"),
            "metrics.loss": [0.5, NAN, 1.5, 10.0, -2.0],
            "metrics.Rank IC": [0.05, 0.1, NAN, -0.01, 0.1],
            "params.model.lr": ["0.01", None, "0.1", "1e-2", "0.01"],
            "params.a b": ["x", "y", None, "it's", 'say "hi"'],
            "tags.mlflow.runName": ["alpha", "Alpha_1", None, "beta%", "ALPHA"],
            "tags.mlflow.user": ["ann", "bob", "ann", None, "bob"],
            "tags.note": ["", "multi\nline", None, "a_b", "aXb"],
        }
    )
    for column in ("run_id", "experiment_id", "status", "artifact_uri"):
        frame[column] = frame[column].astype(object)
    for column in [c for c in frame.columns if c.startswith(("params.", "tags."))]:
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


FRAME = recorder_table()


def matches(text: str, frame: pd.DataFrame = FRAME) -> list[str]:
    return list(filter_frame(frame, text)["run_id"])


# ---------------------------------------------------------------------------------------------
# Operators and values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.loss = 0.5", ["r1"]),
        ("metrics.loss != 0.5", ["r3", "r4", "r5"]),
        ("metrics.loss < 1.5", ["r1", "r5"]),
        ("metrics.loss <= 1.5", ["r1", "r3", "r5"]),
        ("metrics.loss > 1.5", ["r4"]),
        ("metrics.loss >= 1.5", ["r3", "r4"]),
        ("metrics.loss > -2", ["r1", "r3", "r4"]),
        ("metrics.loss >= -2.0e0", ["r1", "r3", "r4", "r5"]),
        ("metrics.loss = 1E1", ["r4"]),
        ("metrics.loss = +.5", ["r1"]),
        ("metrics.loss = 10.", ["r4"]),
        ("metrics.loss IN (0.5, 10)", ["r1", "r4"]),
        ("metrics.loss NOT IN (0.5, 10)", ["r3", "r5"]),
        ("metrics.loss IS NULL", ["r2"]),
        ("metrics.loss IS NOT NULL", ["r1", "r3", "r4", "r5"]),
        ("metrics.loss>1.5", ["r4"]),
        ("metrics.loss>=-2", ["r1", "r3", "r4", "r5"]),
    ],
)
def test_metric_operators(text: str, expected: list[str]) -> None:
    assert matches(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("params.model.lr = '0.01'", ["r1", "r5"]),
        ("params.model.lr != '0.01'", ["r3", "r4"]),
        ("params.model.lr IN ('0.1', '1e-2')", ["r3", "r4"]),
        ("params.model.lr NOT IN ('0.1', '1e-2')", ["r1", "r5"]),
        ("params.model.lr LIKE '0.%'", ["r1", "r3", "r5"]),
        ("params.model.lr NOT LIKE '0.%'", ["r4"]),
        ("params.model.lr IS NULL", ["r2"]),
        ("params.model.lr IS NOT NULL", ["r1", "r3", "r4", "r5"]),
        ("tags.mlflow.runName LIKE 'alpha%'", ["r1"]),
        ("tags.mlflow.runName LIKE 'Alpha_1'", ["r2"]),
        ("tags.mlflow.runName LIKE 'Alpha\\_1'", ["r2"]),
        ("tags.mlflow.runName LIKE 'Alpha\\_%'", ["r2"]),
        ("tags.mlflow.runName ILIKE 'alpha%'", ["r1", "r2", "r5"]),
        ("tags.mlflow.runName NOT ILIKE 'alpha%'", ["r4"]),
        ("tags.mlflow.runName ILIKE 'ALPHA'", ["r1", "r5"]),
        ("tags.mlflow.runName LIKE '%\\%'", ["r4"]),
        ("tags.mlflow.runName LIKE '_____'", ["r1", "r4", "r5"]),
        ("tags.note LIKE 'a_b'", ["r4", "r5"]),
        ("tags.note LIKE 'a\\_b'", ["r4"]),
        ("tags.note LIKE '%'", ["r1", "r2", "r4", "r5"]),
        ("tags.note = ''", ["r1"]),
        ("tags.note LIKE 'multi%'", ["r2"]),  # % spans a newline
        ("attributes.artifact_uri LIKE 'C:\\\\%'", ["r4"]),
    ],
)
def test_string_operators(text: str, expected: list[str]) -> None:
    assert matches(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("attributes.status = 'FINISHED'", ["r1", "r3"]),
        ("attributes.status != 'FINISHED'", ["r2", "r4", "r5"]),
        ("attributes.status IN ('RUNNING', 'KILLED')", ["r4", "r5"]),
        ("attributes.status LIKE 'F%'", ["r1", "r2", "r3"]),
        ("attributes.run_id = 'r3'", ["r3"]),
        ("attributes.run_id IN ('r3', 'r9')", ["r3"]),
        ("attributes.run_name = 'alpha'", ["r1"]),
        ("attributes.`run name` = 'alpha'", ["r1"]),
        ("attributes.user_id = 'ann'", ["r1", "r3"]),
        ("attributes.experiment_id = '2'", ["r4", "r5"]),
        ("attributes.artifact_uri IS NULL", ["r3"]),
        # Epoch milliseconds, floored: r2 started at ...001.999 ms, r4 0.5 ms before the epoch.
        ("attributes.start_time = 1704067200001", ["r2"]),
        ("attributes.start_time = -1", ["r4"]),
        ("attributes.start_time < 0", ["r4"]),
        ("attributes.start_time >= 1704067200000", ["r1", "r2", "r5"]),
        ("attributes.start_time IS NULL", ["r3"]),
        ("attributes.created > 1704067200001", ["r5"]),
        ("attributes.end_time IS NOT NULL", ["r1", "r5"]),
        ("attributes.end_time > 0", ["r1", "r5"]),
        ("attributes.start_time IN (1704067200000, -1)", ["r1", "r4"]),
        ("attributes.start_time >= 1.7040672e12", ["r1", "r2", "r5"]),
    ],
)
def test_attributes(text: str, expected: list[str]) -> None:
    assert matches(text) == expected


@pytest.mark.parametrize(
    "prefix", ["attributes", "attribute", "attr", "run", "ATTRIBUTES", "Run", ""]
)
def test_attribute_prefix_aliases(prefix: str) -> None:
    column = f"{prefix}.status" if prefix else "status"
    assert matches(f"{column} = 'FAILED'") == ["r2"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.loss = 0.5", ["r1"]),
        ("metric.loss = 0.5", ["r1"]),
        ("METRICS.loss = 0.5", ["r1"]),
        ("params.model.lr = '0.1'", ["r3"]),
        ("param.model.lr = '0.1'", ["r3"]),
        ("parameters.model.lr = '0.1'", ["r3"]),
        ("parameter.model.lr = '0.1'", ["r3"]),
        ("tags.note = 'a_b'", ["r4"]),
        ("tag.note = 'a_b'", ["r4"]),
    ],
)
def test_entity_prefix_aliases(text: str, expected: list[str]) -> None:
    assert matches(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "metrics.`Rank IC` = 0.1",
        'metrics."Rank IC" = 0.1',
        "metrics.`Rank IC`=0.1",
        "metric.`Rank IC` IN (0.1)",
    ],
)
def test_quoted_keys(text: str) -> None:
    assert matches(text) == ["r2", "r5"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("params.`a b` = 'x'", ["r1"]),
        ('params."a b" = "y"', ["r2"]),
        ("params.`a b` = 'it''s'", ["r4"]),  # doubled quote inside a string
        ('params.`a b` = "it\'s"', ["r4"]),
        ("params.`a b` = 'say \"hi\"'", ["r5"]),
        ('params.`a b` = "say ""hi"""', ["r5"]),
        ("params.`model.lr` = '0.1'", ["r3"]),
        ('params."model.lr" = "0.1"', ["r3"]),
    ],
)
def test_quoted_values(text: str, expected: list[str]) -> None:
    assert matches(text) == expected


def test_doubled_quote_in_quoted_key() -> None:
    frame = pd.DataFrame(
        {"run_id": ["a", "b"], "metrics.x`y": [1.0, 2.0], 'metrics.p"q': [3.0, 4.0]}
    )
    assert matches("metrics.`x``y` = 2", frame) == ["b"]
    assert matches('metrics."p""q" = 3', frame) == ["a"]


def test_bare_keys_may_hold_dots_dashes_slashes_and_unicode() -> None:
    frame = pd.DataFrame(
        {"run_id": ["a", "b"], "metrics.train/val-loss.1": [1.0, 2.0], "metrics.损失": [5.0, 6.0]}
    )
    assert matches("metrics.train/val-loss.1 > 1", frame) == ["b"]
    assert matches("metrics.损失 < 6", frame) == ["a"]


@pytest.mark.parametrize(
    "text",
    [
        "metrics.loss > 1 and params.model.lr = '0.1'",
        "metrics.loss > 1 AND params.model.lr = '0.1'",
        "metrics.loss > 1 AnD params.model.lr like '0.1'",
        "metrics.loss > 1 and params.model.lr ilike '0.1' or metrics.loss > 100",
        "metrics.loss > 1 And params.model.lr in ('0.1')",
        "metrics.loss is not null and metrics.loss > 1 and params.model.lr Is Not Null "
        "and params.model.lr not in ('1e-2')",
        "not metrics.loss <= 1 and params.model.lr not like '1%'",
    ],
)
def test_keywords_are_case_insensitive(text: str) -> None:
    assert matches(text) == ["r3"]


def test_whitespace_is_free() -> None:
    assert matches("  metrics.loss\t>\n1\r\nAND(params.model.lr='0.1')  ") == ["r3"]


# ---------------------------------------------------------------------------------------------
# Missing values: SQL three-valued logic


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # r2 has no loss: no comparison matches it, negated or not.
        ("metrics.loss != 99", ["r1", "r3", "r4", "r5"]),
        ("metrics.loss NOT IN (99)", ["r1", "r3", "r4", "r5"]),
        ("NOT metrics.loss = 99", ["r1", "r3", "r4", "r5"]),
        ("NOT (metrics.loss = 99 OR metrics.loss = 0.5)", ["r3", "r4", "r5"]),
        ("NOT NOT metrics.loss = 0.5", ["r1"]),
        # unknown OR true is true; unknown AND false is false, so NOT of it is true.
        ("metrics.loss > 0 OR metrics.`Rank IC` > 0", ["r1", "r2", "r3", "r4", "r5"]),
        ("NOT (metrics.loss > 0 AND params.model.lr = 'zzz')", ["r1", "r3", "r4", "r5"]),
        ("NOT (metrics.loss > 0 AND metrics.`Rank IC` > 0)", ["r4", "r5"]),
        ("NOT (metrics.loss > 100 OR metrics.`Rank IC` > 100)", ["r1", "r4", "r5"]),
        ("params.model.lr != 'zzz'", ["r1", "r3", "r4", "r5"]),
        ("NOT params.model.lr LIKE 'zzz'", ["r1", "r3", "r4", "r5"]),
        ("NOT metrics.loss IS NULL", ["r1", "r3", "r4", "r5"]),
    ],
)
def test_missing_values_never_match(text: str, expected: list[str]) -> None:
    assert matches(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.nope = 1", []),
        ("metrics.nope != 1", []),
        ("params.nope != 'x'", []),
        ("tags.nope NOT LIKE 'x'", []),
        ("NOT metrics.nope > 1", []),
        ("metrics.nope IS NULL", ["r1", "r2", "r3", "r4", "r5"]),
        ("tags.nope IS NOT NULL", []),
        ("metrics.nope = 1 OR metrics.loss = 0.5", ["r1"]),
    ],
)
def test_unknown_keys_match_nothing(text: str, expected: list[str]) -> None:
    assert matches(text) == expected


def test_frame_without_attribute_columns() -> None:
    frame = pd.DataFrame({"metrics.m": [1.0]})
    assert parse_filter("attributes.start_time > 0 OR status = 'X'").mask(frame).tolist() == [  # type: ignore[union-attr]
        False
    ]
    assert parse_filter("attributes.start_time IS NULL").mask(frame).tolist() == [True]  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------
# Structure: precedence, parentheses, NOT


def _cmp(column: str, value: float) -> Comparison:
    return Comparison(f"metrics.{column}", "number", "=", (value,))


def test_and_binds_tighter_than_or() -> None:
    assert parse_filter("metrics.a = 1 OR metrics.b = 2 AND metrics.c = 3") == Or(
        (_cmp("a", 1), And((_cmp("b", 2), _cmp("c", 3))))
    )
    assert parse_filter("metrics.a = 1 AND metrics.b = 2 OR metrics.c = 3") == Or(
        (And((_cmp("a", 1), _cmp("b", 2))), _cmp("c", 3))
    )


def test_parentheses_override_precedence() -> None:
    assert parse_filter("(metrics.a = 1 OR metrics.b = 2) AND metrics.c = 3") == And(
        (Or((_cmp("a", 1), _cmp("b", 2))), _cmp("c", 3))
    )
    assert parse_filter("((metrics.a = 1))") == _cmp("a", 1)


def test_not_binds_tighter_than_and() -> None:
    assert parse_filter("NOT metrics.a = 1 AND metrics.b = 2") == And(
        (Not(_cmp("a", 1)), _cmp("b", 2))
    )
    assert parse_filter("NOT (metrics.a = 1 AND metrics.b = 2)") == Not(
        And((_cmp("a", 1), _cmp("b", 2)))
    )


def test_chains_are_flat() -> None:
    parsed = parse_filter("metrics.a = 1 AND metrics.b = 2 AND metrics.c = 3")
    assert parsed == And((_cmp("a", 1), _cmp("b", 2), _cmp("c", 3)))


def test_precedence_on_data() -> None:
    # r1 (loss 0.5, FINISHED), r4 (loss 10, RUNNING). With OR binding tighter r4 would match.
    text = "metrics.loss = 0.5 OR metrics.loss = 10 AND attributes.status = 'FINISHED'"
    assert matches(text) == ["r1"]
    text = "(metrics.loss = 0.5 OR metrics.loss = 10) AND attributes.status = 'FINISHED'"
    assert matches(text) == ["r1"]
    text = "(metrics.loss = 0.5 OR metrics.loss = 10) AND NOT attributes.status = 'FINISHED'"
    assert matches(text) == ["r4"]


def test_comparison_nodes_hold_typed_values() -> None:
    assert parse_filter("params.p IN ('a', 'b')") == Comparison(
        "params.p", "string", "IN", ("a", "b")
    )
    assert parse_filter("attributes.run_name NOT ILIKE 'x%'") == Comparison(
        "tags.mlflow.runName", "string", "NOT ILIKE", ("x%",)
    )
    assert parse_filter("attributes.end_time IS NOT NULL") == Comparison(
        "end_time", "time", "IS NOT NULL", ()
    )
    assert parse_filter("metrics.m >= 1e-3") == Comparison("metrics.m", "number", ">=", (0.001,))


# ---------------------------------------------------------------------------------------------
# API details


def test_blank_filters_parse_to_none() -> None:
    assert parse_filter("") is None
    assert parse_filter("   \n\t") is None
    assert filter_frame(FRAME, "") is FRAME


def test_parse_is_cached() -> None:
    text = "metrics.loss > 0.25 AND params.x = 'cached'"
    assert parse_filter(text) is parse_filter(text)


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(TypeError, match=r"^filter must be a str, not int$"):
        parse_filter(3)  # type: ignore[arg-type]


def test_columns_lists_frame_columns() -> None:
    parsed = parse_filter(
        "metrics.`Rank IC` > 0 AND (params.model.lr = 'x' OR NOT attributes.run_name IS NULL) "
        "AND attributes.start_time > 0 AND tags.note IN ('a') AND metrics.`Rank IC` < 1"
    )
    assert isinstance(parsed, FilterExpr)
    assert parsed.columns() == {
        "metrics.Rank IC",
        "params.model.lr",
        "tags.mlflow.runName",
        "start_time",
        "tags.note",
    }


def test_mask_is_aligned_to_the_frame_index() -> None:
    frame = FRAME.set_index(pd.Index([10, 10, 30, 40, 50]))
    parsed = parse_filter("metrics.loss > 1")
    assert parsed is not None
    mask = parsed.mask(frame)
    assert mask.dtype == bool
    assert mask.index.equals(frame.index)
    assert mask.tolist() == [False, False, True, True, False]
    # Duplicate labels must not confuse filter_frame.
    assert list(filter_frame(frame, "metrics.loss > 1")["run_id"]) == ["r3", "r4"]


def test_empty_frame() -> None:
    empty = FRAME.iloc[0:0]
    assert filter_frame(empty, "metrics.loss > 1 OR tags.note LIKE '%'").empty
    parsed = parse_filter("NOT metrics.loss > 1")
    assert parsed is not None
    assert parsed.mask(empty).tolist() == []


def test_other_column_dtypes() -> None:
    """pandas' own string dtypes, nullable floats, integer and non-string param cells work too."""
    frame = pd.DataFrame(
        {
            "run_id": ["a", "b", "c"],
            "params.s": pd.Series(["x", None, "y"], dtype="string"),
            "params.t": pd.Series(["x", None, "y"], dtype="str"),
            "params.n": pd.Series([1, None, 2.5], dtype=object),
            "metrics.f": pd.Series([1.0, None, 3.0], dtype="Float64"),
            "metrics.i": pd.Series([1, 2, 3], dtype="int64"),
            "metrics.o": pd.Series([1.0, None, "3"], dtype=object),
            "start_time": pd.to_datetime(
                ["1970-01-01 00:00:01", None, "1970-01-01 00:00:00"]
            ),  # naive
            "end_time": pd.Series([1000, None, 0], dtype="float64"),  # already epoch ms
        }
    )
    assert matches("params.s = 'y'", frame) == ["c"]
    assert matches("params.s != 'y'", frame) == ["a"]
    assert matches("params.t IS NULL", frame) == ["b"]
    assert matches("params.t ILIKE 'X'", frame) == ["a"]
    assert matches("params.n = '2.5'", frame) == ["c"]
    assert matches("params.n IS NULL", frame) == ["b"]
    assert matches("metrics.f >= 1", frame) == ["a", "c"]
    assert matches("metrics.i IN (2, 3)", frame) == ["b", "c"]
    assert matches("metrics.o = 3", frame) == ["c"]
    assert matches("attributes.start_time = 1000", frame) == ["a"]
    assert matches("attributes.end_time = 1000", frame) == ["a"]
    assert matches("attributes.end_time IS NULL", frame) == ["b"]


def test_large_frame_is_vectorised() -> None:
    rng = np.random.default_rng(0)
    size = 20_000
    loss = rng.normal(size=size)
    loss[rng.random(size) < 0.2] = np.nan
    frame = pd.DataFrame(
        {
            "run_id": [f"{i:08x}" for i in range(size)],
            "status": rng.choice(["FINISHED", "FAILED", "RUNNING"], size=size).astype(object),
            "metrics.loss": loss,
            "params.lr": rng.choice(["0.1", "0.01", None], size=size),
            "tags.mlflow.runName": [f"run-{i % 97}" for i in range(size)],
        }
    )
    text = (
        "(metrics.loss < 0 OR params.lr IN ('0.1')) AND attributes.status != 'FAILED' "
        "AND NOT attributes.run_name LIKE 'run-1%'"
    )
    result = filter_frame(frame, text)
    expected = (
        ((frame["metrics.loss"] < 0) | (frame["params.lr"] == "0.1"))
        & (frame["status"] != "FAILED")
        & ~frame["tags.mlflow.runName"].str.startswith("run-1")
    )
    assert list(result["run_id"]) == list(frame.loc[expected, "run_id"])


# ---------------------------------------------------------------------------------------------
# Error messages: every path, with the caret under the reported position


def assert_invalid(text: str, reason: str, position: int) -> None:
    """``reason`` is the message's explanation with the position left out: "what; hint"."""
    what, semicolon, hint = reason.partition("; ")
    with pytest.raises(SearchSyntaxError) as info:
        parse_filter(text)
    error = info.value
    assert isinstance(error, ValueError)
    assert error.position == position
    quoted = f'"{text}"' if "'" in text and '"' not in text else f"'{text}'"
    echo = text.replace("\n", " ").replace("\t", " ").replace("\r", " ")
    assert str(error) == (
        f"Invalid filter {quoted}: {what} at position {position}{semicolon}{hint}\n"
        f"  {echo}\n  {' ' * position}^"
    )


def test_error_message_layout() -> None:
    with pytest.raises(ValueError) as info:
        parse_filter("metrics.loss >> 1")
    assert str(info.value) == (
        "Invalid filter 'metrics.loss >> 1': unexpected '>' at position 14; expected a number\n"
        "  metrics.loss >> 1\n"
        "                ^"
    )


COLUMN = "expected a column: metrics.<key>, params.<key>, tags.<key> or attributes.<name>"


@pytest.mark.parametrize(
    ("text", "reason", "position"),
    [
        # lexical
        ("params.a = 'x", "unterminated string", 11),
        ('params.a = "x', "unterminated string", 11),
        ("metrics.`Rank IC = 1", "unterminated quoted key", 8),
        ('metrics."a = 1', "unterminated quoted key", 8),
        ("metrics.`` = 1", "empty quoted key", 8),
        ("metrics. = 1", "expected a key after 'metrics.'", 8),
        ("metrics.", "expected a key after 'metrics.'", 8),
        (
            "`loss` = 1",
            "unexpected '`'; a quoted key must follow its prefix, as in metrics.`a b`",
            0,
        ),
        ("metrics.loss # 1", "unexpected character '#'", 13),
        ("metrics.loss == 1", "unexpected '='; expected a number", 14),
        ("metrics.loss <> 1", "unexpected '>'; expected a number", 14),
        ("metrics.loss ! 1", "unexpected character '!'", 13),
        ("metrics.loss = 1x", "invalid number '1x'", 15),
        ("metrics.loss = 1.2.3", "invalid number '1.2.3'", 15),
        ("metrics.loss = - 1", "unexpected character '-'", 15),
        # names
        (
            "foo.bar = 1",
            "unknown prefix 'foo'; expected metrics, params, tags or attributes "
            "(or metric, param, tag, attr, run)",
            0,
        ),
        (
            "datasets.name = 'x'",
            "unknown prefix 'datasets'; expected metrics, params, tags or "
            "attributes (or metric, param, tag, attr, run)",
            0,
        ),
        (
            "attributes.foo = 'x'",
            "unknown attribute 'foo'; attributes are artifact_uri, created, "
            "end_time, experiment_id, run name, run_id, run_name, start_time, status, user_id",
            0,
        ),
        ("loss < 1", f"unknown name 'loss'; {COLUMN}", 0),
        ("metrics.a = 1 AND loss < 1", f"unknown name 'loss'; {COLUMN}", 18),
        # structure
        ("metrics.loss >", "unexpected end of filter; expected a number", 14),
        ("params.p =", "unexpected end of filter; expected a quoted string", 10),
        (
            "metrics.loss",
            "unexpected end of filter; expected a comparison: =, !=, <, <=, >, >=, "
            "LIKE, ILIKE, IN or IS",
            12,
        ),
        (
            "metrics.loss 1",
            "unexpected number 1; expected a comparison: =, !=, <, <=, >, >=, "
            "LIKE, ILIKE, IN or IS",
            13,
        ),
        ("metrics.a = 1 AND", f"unexpected end of filter; {COLUMN}, NOT or '('", 17),
        ("metrics.a = 1 OR OR metrics.b = 1", f"unexpected 'OR'; {COLUMN}, NOT or '('", 17),
        ("AND metrics.a = 1", f"unexpected 'AND'; {COLUMN}, NOT or '('", 0),
        ("'a' = 'a'", f"unexpected string 'a'; {COLUMN}, NOT or '('", 0),
        ("1 = metrics.a", f"unexpected number 1; {COLUMN}, NOT or '('", 0),
        ("NOT", f"unexpected end of filter; {COLUMN}, NOT or '('", 3),
        ("()", f"unexpected ')'; {COLUMN}, NOT or '('", 1),
        (
            "metrics.a = 1 metrics.b = 2",
            "unexpected 'metrics.b'; expected AND, OR or the end of the filter",
            14,
        ),
        ("metrics.a = 1 ASC", "unexpected 'ASC'; expected AND, OR or the end of the filter", 14),
        (
            "(metrics.a = 1",
            "unexpected end of filter; expected ')' to close the '(' at position 0",
            14,
        ),
        (
            "((metrics.a = 1) AND metrics.b = 1",
            "unexpected end of filter; expected ')' to close the '(' at position 0",
            34,
        ),
        ("metrics.a = 1)", "unmatched ')'", 13),
        ("metrics.a = 1 AND (metrics.b = 2))", "unmatched ')'", 33),
        ("(" * 101 + "metrics.a = 1" + ")" * 101, "filter nested more than 100 levels deep", 100),
        ("NOT " * 101 + "metrics.a = 1", "filter nested more than 100 levels deep", 400),
        # Depth is counted per nesting, not per expression: a closed NOT or '(' before a nest
        # of 101 levels leaves the bound where it was.
        (
            "NOT metrics.b = 1 AND " + "(" * 101 + "metrics.a = 1" + ")" * 101,
            "filter nested more than 100 levels deep",
            122,
        ),
        (
            "(metrics.b = 1) AND " + "NOT " * 101 + "metrics.a = 1",
            "filter nested more than 100 levels deep",
            420,
        ),
        # comparators and types
        (
            "metrics.loss = '1'",
            "unexpected string '1'; metrics.loss holds numbers, so write a number",
            15,
        ),
        (
            "attributes.start_time > '2024-01-01'",
            "unexpected string '2024-01-01'; attributes.start_time holds times "
            "(epoch milliseconds), so write a number",
            24,
        ),
        (
            "params.lr = 0.01",
            "unexpected number 0.01; params.lr holds strings, so quote the value: '0.01'",
            12,
        ),
        (
            "tags.t IN ('a', 2)",
            "unexpected number 2; tags.t holds strings, so quote the value: '2'",
            16,
        ),
        (
            "metrics.m IN (1, 'a')",
            "unexpected string 'a'; metrics.m holds numbers, so write a number",
            17,
        ),
        (
            "metrics.loss LIKE '1%'",
            "unexpected 'LIKE'; metrics.loss holds numbers, so use =, !=, <, <=, >, >=, IN or "
            "IS NULL",
            13,
        ),
        (
            "metrics.loss NOT ILIKE '1%'",
            "unexpected 'ILIKE'; metrics.loss holds numbers, so use =, !=, <, <=, >, >=, IN or "
            "IS NULL",
            17,
        ),
        (
            "attributes.end_time LIKE '1%'",
            "unexpected 'LIKE'; attributes.end_time holds times (epoch milliseconds), so use =, "
            "!=, <, <=, >, >=, IN or IS NULL",
            20,
        ),
        (
            "params.lr > '0.1'",
            "unexpected '>'; params.lr holds strings, so use =, !=, LIKE, ILIKE, IN or IS NULL",
            10,
        ),
        (
            "attributes.status <= 'A'",
            "unexpected '<='; attributes.status holds strings, so use =, !=, LIKE, ILIKE, IN or "
            "IS NULL",
            18,
        ),
        (
            "params.p LIKE 2",
            "unexpected number 2; params.p holds strings, so quote the value: '2'",
            14,
        ),
        ("params.p LIKE 'x\\'", "LIKE pattern ends with an escape character '\\'", 14),
        ("params.p LIKE", "unexpected end of filter; expected a quoted string", 13),
        (
            "metrics.m = NULL",
            "unexpected 'NULL'; test for missing values with IS NULL or IS NOT NULL",
            12,
        ),
        (
            "params.p != null",
            "unexpected 'null'; test for missing values with IS NULL or IS NOT NULL",
            12,
        ),
        ("metrics.m IS 1", "unexpected number 1; expected NULL", 13),
        ("metrics.m IS NOT", "unexpected end of filter; expected NULL", 16),
        ("metrics.m NOT = 1", "unexpected '='; expected LIKE, ILIKE or IN after NOT", 14),
        ("metrics.m NOT NULL", "unexpected 'NULL'; expected LIKE, ILIKE or IN after NOT", 14),
        ("metrics.m IN 1", "unexpected number 1; expected '(' after IN", 13),
        ("metrics.m IN ()", "empty IN list", 14),
        ("metrics.m IN (1 2)", "unexpected number 2; expected ',' or ')' in the IN list", 16),
        ("metrics.m IN (1,)", "unexpected ')'; expected a number", 16),
        ("metrics.m IN (1", "unexpected end of filter; expected ',' or ')' in the IN list", 15),
        # the echo keeps the caret aligned when the filter spans lines
        ("metrics.a = 1\nAND\tmetrics.b >> 2", "unexpected '>'; expected a number", 29),
        # a filter holding single quotes is quoted with double quotes in the message
        ("params.p = 'a' AND", f"unexpected end of filter; {COLUMN}, NOT or '('", 18),
    ],
)
def test_error_messages(text: str, reason: str, position: int) -> None:
    assert_invalid(text, reason, position)


def test_errors_survive_pickling() -> None:
    """Errors cross process boundaries under multiprocessing."""
    with pytest.raises(SearchSyntaxError) as info:
        parse_filter("metrics.loss >> 1")
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is SearchSyntaxError
    assert str(copy) == str(info.value)
    assert (copy.position, copy.reason, copy.hint) == (14, "unexpected '>'", "expected a number")


def test_errors_are_not_cached_as_results() -> None:
    for _ in range(2):
        with pytest.raises(SearchSyntaxError):
            parse_filter("metrics.loss >> 1")


# ---------------------------------------------------------------------------------------------
# Property: the vectorised mask equals a row-by-row reference evaluation
#
# The test builds its own expression tree, renders it to text (random aliases, quoting, keyword
# case, spacing and redundant parentheses), and evaluates the tree on plain Python rows with SQL
# three-valued logic. The parser and the vectorised evaluator never see that tree.

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TIMES = [
    None,
    datetime(2024, 1, 1, tzinfo=UTC),
    datetime(2024, 1, 1, 0, 0, 0, 999, tzinfo=UTC),  # floors to the same millisecond
    datetime(2024, 1, 1, 0, 0, 0, 1500, tzinfo=UTC),
    datetime(2024, 1, 1, 0, 0, 2, 2999, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC),  # floors to -1, not 0
    datetime(1969, 12, 31, 23, 59, 58, 998001, tzinfo=UTC),
    datetime(1960, 6, 1, 12, tzinfo=UTC),
]
NUMBERS = [NAN, -1.5, -0.0, 0.0, 1.0, 2.5, 1000.0, 1e-7, math.inf]
STRINGS = [
    "",
    "a",
    "A",
    "ab",
    "aB",
    "a_b",
    "a%b",
    "x y",
    "it's",
    'q"q',
    "0.01",
    "é",
    "É",
    "\\",
    "a\nb",
]
STATUSES = ["RUNNING", "FINISHED", "FAILED", "KILLED", "SCHEDULED"]

# (frame column, kind, the ways to write it)
COLUMNS: list[tuple[str, str, tuple[str, ...]]] = [
    (
        "metrics.a",
        "number",
        (
            "metrics.a",
            "metric.a",
            "metrics.`a`",
            'METRICS."a"',
        ),
    ),
    (
        "metrics.Rank IC",
        "number",
        (
            "metrics.`Rank IC`",
            'metric."Rank IC"',
        ),
    ),
    (
        "metrics.x.y",
        "number",
        (
            "metrics.x.y",
            "metrics.`x.y`",
        ),
    ),
    ("metrics.absent", "number", ("metrics.absent",)),
    (
        "params.p",
        "string",
        (
            "params.p",
            "param.p",
            "parameters.`p`",
            'params."p"',
        ),
    ),
    (
        "params.model.lr",
        "string",
        (
            "params.model.lr",
            "params.`model.lr`",
        ),
    ),
    (
        "tags.t",
        "string",
        (
            "tags.t",
            "tag.t",
            "tags.`t`",
        ),
    ),
    ("tags.absent", "string", ("tags.absent",)),
    (
        "tags.mlflow.runName",
        "string",
        (
            "tags.mlflow.runName",
            "attributes.run_name",
            "run_name",
        ),
    ),
    (
        "status",
        "string",
        (
            "attributes.status",
            "attr.status",
            "run.status",
            "status",
        ),
    ),
    (
        "run_id",
        "string",
        (
            "attributes.run_id",
            "attribute.run_id",
        ),
    ),
    (
        "start_time",
        "time",
        (
            "attributes.start_time",
            "attributes.created",
            "start_time",
        ),
    ),
    (
        "end_time",
        "time",
        (
            "attributes.end_time",
            "end_time",
        ),
    ),
]
NUMBER_OPS = ["=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN", "IS NULL", "IS NOT NULL"]
STRING_OPS = [
    "=",
    "!=",
    "LIKE",
    "ILIKE",
    "NOT LIKE",
    "NOT ILIKE",
    "IN",
    "NOT IN",
    "IS NULL",
    "IS NOT NULL",
]
LIKE_PIECES = ["%", "_", "a", "A", "b", "é", "\\%", "\\_", "\\\\", " ", "'", "x"]


@cache
def _options(values: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    # Building a strategy validates it, which is slow; build each one once.
    return st.sampled_from(values)


def pick(draw: st.DrawFn, *values: Any) -> Any:
    return draw(_options(values))


ROW_FIELDS: dict[str, list[Any]] = {
    "status": STATUSES,
    "start_time": TIMES,
    "end_time": TIMES,
    "metrics.a": NUMBERS,
    "metrics.Rank IC": NUMBERS,
    "metrics.x.y": NUMBERS,
    "params.p": [None, *STRINGS],
    "params.model.lr": [None, *STRINGS],
    "tags.t": [None, *STRINGS],
    "tags.mlflow.runName": [None, *STRINGS],
}
# Rows come from a fixed, seeded pool: one draw per row instead of one per cell keeps the test
# fast, and shrinking still works (towards fewer rows and earlier pool entries).
_POOL_RANDOM = random.Random(20240101)
ROW_POOL = [
    {column: _POOL_RANDOM.choice(values) for column, values in ROW_FIELDS.items()}
    for _ in range(500)
]
TIME_MILLIS = tuple((t - EPOCH) // timedelta(milliseconds=1) for t in TIMES if t is not None)
FINITE_NUMBERS = tuple(n for n in NUMBERS if math.isfinite(n))


@st.composite
def tables(draw: st.DrawFn) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """A recorder table and the same rows as Python dicts (the reference's view of them)."""
    picked = draw(st.lists(st.sampled_from(ROW_POOL), max_size=7))
    rows = [{**row, "run_id": f"{index:032x}"} for index, row in enumerate(picked)]
    data: dict[str, Any] = {}
    for column, kind, _ in COLUMNS:
        if column.endswith("absent"):
            continue
        values = [row[column] for row in rows]
        if kind == "number":
            data[column] = pd.Series(values, dtype="float64")
        elif kind == "time":
            data[column] = pd.Series(values, dtype="datetime64[us, UTC]")
        else:
            data[column] = pd.Series(values, dtype=object)
    return pd.DataFrame(data, index=pd.RangeIndex(len(rows))), rows


def _quote_string(draw: st.DrawFn, value: str) -> str:
    quote = pick(draw, "'", '"')
    return quote + value.replace(quote, quote * 2) + quote


def _number_text(draw: st.DrawFn, value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(pick(draw, str(int(value)), repr(value), f"{value:.6e}"))
    return str(pick(draw, repr(value), f"{value:.17e}"))


def _keyword(draw: st.DrawFn, word: str) -> str:
    return " ".join(pick(draw, part, part.lower(), part.capitalize()) for part in word.split())


def _space(draw: st.DrawFn, required: bool) -> str:
    return str(pick(draw, " ", "  ", "\n") if required else pick(draw, "", " ", "\t"))


def comparison(draw: st.DrawFn, rows: list[dict[str, Any]]) -> tuple[Any, str]:
    """A random comparison as (tree node, text). Literals often come from the rows themselves,
    so that equalities and patterns match some rows and not others."""
    column, kind, spellings = pick(draw, *COLUMNS)
    name = pick(draw, *spellings)
    op = pick(draw, *(STRING_OPS if kind == "string" else NUMBER_OPS))

    def from_rows() -> Any:
        if not rows or pick(draw, False, True):
            return None
        return _cell(rows[pick(draw, *range(len(rows)))], column, kind)

    def literal() -> tuple[Any, str]:
        seen = from_rows()
        if kind == "string":
            value = seen if seen is not None else pick(draw, *STRINGS)
            return value, _quote_string(draw, value)
        if kind == "number":
            value = (
                seen if seen is not None and math.isfinite(seen) else pick(draw, *FINITE_NUMBERS)
            )
            return value, _number_text(draw, value)
        # Times: a row's own milliseconds or one either side, so that equality sometimes holds.
        value = (seen if seen is not None else pick(draw, *TIME_MILLIS)) + pick(draw, -1, 0, 0, 1)
        return value, str(value)

    def pattern() -> str:
        seen = from_rows()
        if seen is None:
            return "".join(pick(draw, *LIKE_PIECES) for _ in range(pick(draw, 0, 1, 2, 3, 4)))
        # A row's value with some characters turned into wildcards.
        pieces = []
        for char in seen:
            literal_char = "\\" + char if char in "%_\\" else char
            pieces.append(pick(draw, literal_char, literal_char, literal_char, "_", "%", ""))
        return "".join(pieces) + pick(draw, "", "", "%", "_")

    keyword = _keyword(draw, op)
    if op in ("IS NULL", "IS NOT NULL"):
        return ("cmp", column, kind, op, None), f"{name} {keyword}"
    if op in ("IN", "NOT IN"):
        items = [literal() for _ in range(pick(draw, 1, 2, 3))]
        inner = ("," + _space(draw, False)).join(text for _, text in items)
        text = f"{name} {keyword}{_space(draw, False)}({inner})"
        return ("cmp", column, kind, op, [value for value, _ in items]), text
    if "LIKE" in op:
        like = pattern()
        text = f"{name} {keyword} {_quote_string(draw, like)}"
        return ("cmp", column, kind, op, like), text
    value, value_text = literal()
    text = f"{name}{_space(draw, False)}{op}{_space(draw, False)}{value_text}"
    return ("cmp", column, kind, op, value), text


PRECEDENCE = {"or": 1, "and": 2, "not": 3, "cmp": 4}


def expression(draw: st.DrawFn, rows: list[dict[str, Any]], depth: int = 0) -> tuple[Any, str]:
    """A random filter as (tree node, text), parenthesised where precedence requires it and
    now and then where it does not."""
    shape = pick(draw, "cmp", "cmp", "and", "or", "not") if depth < 3 else "cmp"
    if shape == "cmp":
        return comparison(draw, rows)
    if shape == "not":
        child, child_text = expression(draw, rows, depth + 1)
        text = f"{_keyword(draw, 'NOT')} {_wrap(draw, child, child_text, PRECEDENCE['not'])}"
        return ("not", child), text
    parts = [expression(draw, rows, depth + 1) for _ in range(pick(draw, 2, 3))]
    texts = [_wrap(draw, part, part_text, PRECEDENCE[shape]) for part, part_text in parts]
    text = "".join(
        (f" {_keyword(draw, shape.upper())} " if i else "") + t for i, t in enumerate(texts)
    )
    return (shape, [part for part, _ in parts]), text


def _wrap(draw: st.DrawFn, node: Any, text: str, parent: int) -> str:
    # An operand binding no tighter than its parent needs parentheses, except NOT under NOT.
    needed = node[0] != "cmp" and PRECEDENCE[node[0]] <= parent
    if node[0] == "not" and parent == PRECEDENCE["not"]:
        needed = False
    if needed or pick(draw, *range(6)) == 0:
        return f"({_space(draw, False)}{text}{_space(draw, False)})"
    return text


@st.composite
def filters(draw: st.DrawFn, rows: list[dict[str, Any]]) -> tuple[Any, str]:
    return expression(draw, rows)


def _like(value: str, pattern: str) -> bool:
    """SQL LIKE by dynamic programming over pattern atoms (no regular expressions)."""
    atoms: list[tuple[str, str]] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            atoms.append(("lit", next(chars)))
        elif char == "%":
            atoms.append(("any", ""))
        elif char == "_":
            atoms.append(("one", ""))
        else:
            atoms.append(("lit", char))
    # reachable[j]: the atoms so far can consume exactly value[:j]
    reachable = [True] + [False] * len(value)
    for kind, char in atoms:
        following = [False] * (len(value) + 1)
        for j in range(len(value) + 1):
            if kind == "any":
                following[j] = reachable[j] or (j > 0 and following[j - 1])
            elif j > 0 and reachable[j - 1]:
                following[j] = kind == "one" or value[j - 1] == char
        reachable = following
    return reachable[len(value)]


def _cell(row: dict[str, Any], column: str, kind: str) -> Any:
    """The row's value as the reference sees it; None when missing."""
    value = row.get(column)
    if value is None:
        return None
    if kind == "time":
        return (value - EPOCH) // timedelta(milliseconds=1)
    if kind == "number" and math.isnan(value):
        return None
    return value


def reference(node: Any, row: dict[str, Any]) -> bool | None:
    """Three-valued evaluation of one row: True, False, or None for unknown."""
    tag = node[0]
    if tag == "not":
        inner = reference(node[1], row)
        return None if inner is None else not inner
    if tag in ("and", "or"):
        results = [reference(part, row) for part in node[1]]
        decisive = tag == "or"  # the value that settles the result on its own
        if decisive in results:
            return decisive
        return None if None in results else not decisive
    _, column, kind, op, operand = node
    value = _cell(row, column, kind)
    if op == "IS NULL":
        return value is None
    if op == "IS NOT NULL":
        return value is not None
    if value is None:
        return None
    if op in ("LIKE", "NOT LIKE"):
        return _like(value, operand) == (op == "LIKE")
    if op in ("ILIKE", "NOT ILIKE"):
        return _like(value.lower(), operand.lower()) == (op == "ILIKE")
    if op in ("IN", "NOT IN"):
        return (value in operand) == (op == "IN")
    return {
        "=": value == operand,
        "!=": value != operand,
        "<": value < operand,
        "<=": value <= operand,
        ">": value > operand,
        ">=": value >= operand,
    }[op]


def _referenced(node: Any) -> set[str]:
    if node[0] == "cmp":
        return {node[1]}
    if node[0] == "not":
        return _referenced(node[1])
    return set().union(*(_referenced(part) for part in node[1]))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_mask_matches_row_by_row_reference(data: st.DataObject) -> None:
    frame, rows = data.draw(tables())
    for _ in range(3):  # several filters per table: building the table is the costly part
        node, text = data.draw(filters(rows))
        parsed = parse_filter(text)
        assert parsed is not None
        expected = [reference(node, row) is True for row in rows]
        assert parsed.mask(frame).tolist() == expected, text
        assert parsed.columns() == _referenced(node)


def test_false_wins_over_unknown_under_not() -> None:
    # r3: loss 1.5 > 5 is false, its Rank IC is missing (unknown): false AND unknown is false,
    # so NOT of it is true. r2 (loss missing, IC true) stays unknown and never matches.
    text = "NOT (metrics.loss > 5 AND metrics.`Rank IC` > 0)"
    assert matches(text) == ["r1", "r3", "r4", "r5"]
    assert matches("NOT (metrics.`Rank IC` > 0 AND metrics.loss > 5)") == ["r1", "r3", "r4", "r5"]


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        # ISO 8601 with offsets: Arrow's own parser reads them.
        (
            [
                "2024-01-01T00:00:00+00:00",
                "2024-01-01T00:00:00.500+00:00",
                None,
                "2024-02-01T00:00:00+01:00",
            ],
            ["r2"],
        ),
        # A naive time (UTC by convention), or an empty one: Arrow refuses the column, pandas
        # reads it, whatever the precision of each time.
        (
            ["2024-01-01 00:00:00", "2024-01-01T05:30:00.750+05:30", "2024-01-01 00:00:00.5", ""],
            ["r2", "r3"],
        ),
    ],
)
def test_arrow_rows_match_as_frame_rows(times: list[str | None], expected: list[str]) -> None:
    """Searches filter the summary's Arrow rows; a column Arrow cannot take as it is (times in
    a form its parser refuses, params stored as numbers) is converted as a frame would be."""
    import pyarrow as pa

    table = pa.table(
        {
            "run_id": ["r1", "r2", "r3", "r4"],
            "start_time": pa.array(times, pa.string()),
            "params.n": pa.array([1, 2, 2, 3], pa.int64()),
        }
    )
    expr = parse_filter("attributes.start_time >= 1704067200500 AND params.n = '2'")
    found = expr.arrow_mask(table).to_pylist()
    assert [r for r, hit in zip(table["run_id"].to_pylist(), found, strict=True) if hit] == expected
    assert found == expr.mask(table.to_pandas()).tolist()
