"""MLflow's ``order_by`` clauses, applied to a recorder table with one stable multi-key sort
(Arrow's ``sort_indices``).

A clause is ``<column> [ASC|DESC]`` (keywords case-insensitive, ASC by default), the column
written as in filters: ``metrics.`Rank IC` DESC``, ``attributes.start_time``, ``params.lr ASC``,
or a bare attribute such as ``start_time DESC``.

Sorting rules:

* metrics compare as numbers, params and tags as strings (code point order: ``"10" < "9"``, as in
  MLflow), ``start_time`` / ``end_time`` chronologically;
* missing values (NaN, None, NaT, or a column the frame lacks) sort last, for ASC and DESC alike;
* ties fall back, as in MLflow, to ``start_time DESC`` unless that is already a key, and finally
  to ``run_id`` ASC, so the order is deterministic. With no clauses the order is therefore
  newest first: ``start_time DESC, run_id``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tracklite.search.filter import (
    FieldKind,
    _as_float,
    _as_strings,
    _describe,
    _Lexer,
    _resolve,
    _Source,
    epoch_milliseconds,
)

__all__ = ["OrderKey", "parse_order_by", "sort_frame", "sort_table"]

_IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class OrderKey:
    """One sort key: a frame column, how its values compare, and the direction."""

    column: str
    kind: FieldKind
    ascending: bool = True


_START_TIME_DESC = OrderKey("start_time", "time", ascending=False)
_RUN_ID_ASC = OrderKey("run_id", "string", ascending=True)


def parse_order_by(clauses: Sequence[str] | None) -> list[OrderKey]:
    """Parses ``order_by`` clauses; None or an empty list gives ``[]``.

    Raises :class:`~tracklite.search.filter.SearchSyntaxError` (a ``ValueError``) quoting the
    malformed clause and pointing at the offending token.
    """
    if clauses is None:
        return []
    if isinstance(clauses, str):
        # Iterating a str would parse it one character at a time.
        raise TypeError(f"order_by must be a list of clauses, not the str {clauses!r}")
    keys: list[OrderKey] = []
    for clause in clauses:
        if not isinstance(clause, str):
            raise TypeError(f"order_by clauses must be str, not {type(clause).__name__}")
        keys.append(_parse_clause(clause))
    return keys


@lru_cache(maxsize=256)
def _parse_clause(text: str) -> OrderKey:
    source = _Source("order_by clause", text)
    lexer = _Lexer(source)
    name = lexer.next()
    if name.kind == "end":
        raise source.error(name.pos, "empty order_by clause", "expected a column such as metrics.m")
    field = _resolve(source, name)
    token = lexer.next()
    ascending = True
    if token.kind == "keyword" and token.value in ("ASC", "DESC"):
        ascending = token.value == "ASC"
        token = lexer.next()
        hint = "expected the end of the clause"
    else:
        hint = "expected ASC, DESC or the end of the clause"
    if token.kind != "end":
        raise source.error(token.pos, f"unexpected {_describe(token, source.label)}", hint)
    return OrderKey(field.column, field.kind, ascending)


def sort_frame(
    frame: pd.DataFrame, order_by: Sequence[str | OrderKey] | None = None
) -> pd.DataFrame:
    """``frame``'s rows in ``order_by`` order (clauses or parsed keys); index labels are kept."""
    if isinstance(order_by, str):
        raise TypeError(f"order_by must be a list of clauses, not the str {order_by!r}")
    keys = [
        item if isinstance(item, OrderKey) else parse_order_by([item])[0] for item in order_by or ()
    ]
    order = _sort_indices(len(frame), _frame_key(frame), keys)
    return cast(pd.DataFrame, frame.iloc[order])


def sort_table(table: pa.Table, keys: Sequence[OrderKey]) -> _IntArray:
    """Positions of an Arrow table's rows in the order of ``keys`` (columns named as in the
    frame; times as timestamps or ISO 8601 strings)."""
    return _sort_indices(table.num_rows, _table_key(table), keys)


# pyarrow 25 moved null_placement into each sort key (the global option is deprecated).
_PER_KEY_NULLS = int(pa.__version__.split(".")[0]) >= 25
_KeyColumn = Callable[[OrderKey], "pa.Array[Any] | None"]


def _sort_indices(size: int, column: _KeyColumn, keys: Sequence[OrderKey]) -> _IntArray:
    """One stable sort by Arrow on the key columns, missing values last in both directions."""
    keys = list(keys)
    columns = {key.column for key in keys}
    if _START_TIME_DESC.column not in columns:
        keys.append(_START_TIME_DESC)
    if _RUN_ID_ASC.column not in columns:
        keys.append(_RUN_ID_ASC)
    arrays: dict[str, pa.Array[Any]] = {}
    sort_keys = []
    for position, key in enumerate(keys):
        values = column(key)
        if values is None:
            continue  # missing everywhere: ranks nothing
        name = f"k{position}"
        arrays[name] = values
        sort_keys.append((name, "ascending" if key.ascending else "descending"))
    if not sort_keys:
        return np.arange(size, dtype=np.int64)
    sort: Any = pc.sort_indices  # the stubs know neither signature's keys as built here
    if _PER_KEY_NULLS:
        order = sort(pa.table(arrays), sort_keys=[(*k, "at_end") for k in sort_keys])
    else:
        order = sort(pa.table(arrays), sort_keys=sort_keys, null_placement="at_end")
    return np.asarray(order.to_numpy(), dtype=np.int64)


def _frame_key(frame: pd.DataFrame) -> _KeyColumn:
    def column(key: OrderKey) -> pa.Array[Any] | None:
        if key.column not in frame.columns:
            return None
        series = frame[key.column]
        if key.kind == "string":
            strings, present = _as_strings(series)
            return pa.array(strings.to_numpy(), pa.string(), mask=~present)
        if key.kind == "time" and pd.api.types.is_datetime64_any_dtype(series.dtype):
            # Full resolution, not milliseconds: runs started within one millisecond keep
            # their order.
            if isinstance(series.dtype, pd.DatetimeTZDtype):
                series = series.dt.tz_convert(None)
            stamps: pa.Array[Any] = pa.array(series.to_numpy(), from_pandas=True)
            return stamps
        values = epoch_milliseconds(series) if key.kind == "time" else _as_float(series)
        return pa.array(values, pa.float64(), from_pandas=True)  # NaN: missing

    return column


def _table_key(table: pa.Table) -> _KeyColumn:
    def column(key: OrderKey) -> pa.Array[Any] | None:
        if key.column not in table.column_names:
            return None
        values = table.column(key.column).combine_chunks()
        if key.kind == "time" and pa.types.is_string(values.type):
            with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return values.cast(pa.timestamp("us", tz="UTC"))
        if key.kind == "time" and pa.types.is_timestamp(values.type):
            return values
        if key.kind == "number" and pa.types.is_floating(values.type):
            return cast("pa.Array[Any]", pc.if_else(pc.is_nan(values), None, values))
        if key.kind == "string" and pa.types.is_string(values.type):
            return values
        return _frame_key(pd.DataFrame({key.column: values.to_pandas()}))(key)

    return column
