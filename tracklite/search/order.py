"""MLflow's ``order_by`` clauses, applied to a recorder table with one stable multi-key sort.

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

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

import numpy as np
import numpy.typing as npt
import pandas as pd

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

__all__ = ["OrderKey", "parse_order_by", "sort_frame"]

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
    columns = {key.column for key in keys}
    if _START_TIME_DESC.column not in columns:
        keys.append(_START_TIME_DESC)
    if _RUN_ID_ASC.column not in columns:
        keys.append(_RUN_ID_ASC)

    # np.lexsort is stable and treats its *last* key as the primary one. Per order key, a
    # "missing" flag outranks the value rank, which keeps missing rows last in both directions.
    sort_keys: list[_IntArray] = []
    for key in keys:
        ranks = _ranks(frame, key)
        missing = ranks < 0
        ranks = np.where(missing, 0, ranks if key.ascending else -ranks)
        sort_keys.extend((missing.astype(np.int64), ranks))
    order = np.lexsort(sort_keys[::-1]) if sort_keys else np.arange(len(frame))
    return cast(pd.DataFrame, frame.iloc[order])


def _ranks(frame: pd.DataFrame, key: OrderKey) -> _IntArray:
    """Dense ranks of the column's values in ascending order, -1 where a value is missing."""
    size = len(frame)
    if key.column not in frame.columns:
        return np.full(size, -1, dtype=np.int64)
    series = frame[key.column]
    if key.kind == "string":
        strings, present = _as_strings(series)
        codes, _ = pd.factorize(strings, sort=True)
        return np.where(present, codes, -1).astype(np.int64)
    if key.kind == "time" and pd.api.types.is_datetime64_any_dtype(series.dtype):
        # Full resolution, not milliseconds: runs started within one millisecond keep their order.
        values = series
    elif key.kind == "time":
        values = pd.Series(epoch_milliseconds(series))
    else:
        values = pd.Series(_as_float(series))
    # factorize marks NaN and NaT with -1, exactly the "missing" code wanted here.
    codes, _ = pd.factorize(values, sort=True)
    return np.asarray(codes, dtype=np.int64)
