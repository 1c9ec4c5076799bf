"""MLflow's ``filter_string`` language, parsed by hand and evaluated column-wise with Arrow.

A filter written for ``mlflow.search_runs`` or qlib's ``list_recorders(filter_string=...)`` works
unchanged; tracklite also accepts ``OR``, ``NOT`` and parentheses. Grammar (keywords are
case-insensitive)::

    filter     := or_expr
    or_expr    := and_expr ("OR" and_expr)*
    and_expr   := not_expr ("AND" not_expr)*
    not_expr   := "NOT" not_expr | "(" or_expr ")" | comparison
    comparison := column ("=" | "!=" | "<" | "<=" | ">" | ">=") value
                | column ["NOT"] ("LIKE" | "ILIKE") string
                | column ["NOT"] "IN" "(" value ("," value)* ")"
                | column "IS" ["NOT"] "NULL"
    column     := prefix "." key | attribute
    prefix     := metrics | metric | params | param | parameters | parameter | tags | tag
                | attributes | attribute | attr | run

A key is bare (letters, digits and ``_ . - /``; ``params.model.lr`` is key ``model.lr``) or quoted
with backquotes or double quotes (``metrics.`Rank IC```). A string value is quoted with single or
double quotes; inside any quotes a doubled quote stands for one. Numbers are decimal or
scientific, optionally signed.

Types, following MLflow:

* ``metrics.*`` hold numbers and take number values. ``attributes.start_time`` / ``end_time`` (and
  the alias ``created``) compare as integer epoch milliseconds, floored, as MLflow stores them.
* ``params.*``, ``tags.*`` and the string attributes (``run_id``, ``experiment_id``, ``status``,
  ``artifact_uri``, ``run_name`` = ``tags.mlflow.runName``, ``user_id`` = ``tags.mlflow.user``)
  hold strings and take quoted values. A number literal there is an error rather than being
  silently compared as text (``params.lr = 0.01`` would never equal ``"1e-2"``); the message says
  how to quote it. ``<``/``>`` on strings and ``LIKE`` on numbers are errors too, as in MLflow.
* ``LIKE`` matches the whole value; ``%`` stands for any run of characters (newlines included)
  and ``_`` for exactly one; a backslash makes the next character literal (``'50\\%'``), and a
  pattern may not end with a lone backslash. ``ILIKE`` is ``LIKE`` on both sides lower-cased.
* A bare attribute name (``status = 'FINISHED'``) is accepted without the ``attributes.`` prefix.

Missing values (NaN, None, NaT, or a column the frame does not have: an unknown key matches
nothing, it is not an error) follow SQL's three-valued logic: every comparison with a missing
value is *unknown*, which never matches, even for ``!=`` and ``NOT IN`` and under ``NOT``; only
``IS NULL`` / ``IS NOT NULL`` test for presence.
"""

from __future__ import annotations

import contextlib
import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, TypeAlias, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tracklite.errors import TrackliteError

__all__ = [
    "And",
    "Comparison",
    "FieldKind",
    "FilterExpr",
    "Not",
    "Or",
    "SearchSyntaxError",
    "filter_frame",
    "parse_filter",
]

FieldKind: TypeAlias = Literal["number", "string", "time"]
_BoolArray: TypeAlias = npt.NDArray[np.bool_]
_FloatArray: TypeAlias = npt.NDArray[np.float64]

_KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "IS", "NULL", "ASC", "DESC"})
_PREFIXES = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "parameters": "params",
    "parameter": "params",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
    "run": "attributes",
}
_ENTITY_KIND: dict[str, FieldKind] = {"metrics": "number", "params": "string", "tags": "string"}
# Attribute name (lower-cased) -> (frame column, kind). "created" and "run name" are MLflow's
# alternate spellings of start_time and run_name.
_ATTRIBUTES: dict[str, tuple[str, FieldKind]] = {
    "run_id": ("run_id", "string"),
    "experiment_id": ("experiment_id", "string"),
    "status": ("status", "string"),
    "artifact_uri": ("artifact_uri", "string"),
    "run_name": ("tags.mlflow.runName", "string"),
    "run name": ("tags.mlflow.runName", "string"),
    "user_id": ("tags.mlflow.user", "string"),
    "start_time": ("start_time", "time"),
    "created": ("start_time", "time"),
    "end_time": ("end_time", "time"),
}
_COLUMN_HINT = "expected a column: metrics.<key>, params.<key>, tags.<key> or attributes.<name>"
_KIND_WORDS: dict[FieldKind, str] = {
    "number": "numbers",
    "string": "strings",
    "time": "times (epoch milliseconds)",
}
_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_OPS = ("!=", "<=", ">=", "=", "<", ">")  # two-character operators first
_NUMBER_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_STRING_OPS = frozenset({"=", "!="})
# Guards the recursive descent against RecursionError on absurd nesting.
_MAX_DEPTH = 100


class SearchSyntaxError(TrackliteError, ValueError):
    """A filter or order_by clause that does not parse or does not type-check.

    The message quotes the whole input, names the offending token and its 0-based position, and
    shows the input again with a caret under that position.
    """

    def __init__(
        self, label: str, text: str, position: int, reason: str, hint: str | None = None
    ) -> None:
        self.label = label
        self.text = text
        self.position = position
        self.reason = reason
        self.hint = hint
        # Newlines and tabs would break the caret's alignment; both have width one as spaces.
        echo = text.replace("\n", " ").replace("\r", " ").replace("\t", " ")
        detail = f"{reason} at position {position}" + (f"; {hint}" if hint else "")
        super().__init__(f"Invalid {label} {_quote(text)}: {detail}\n  {echo}\n  {' ' * position}^")

    def __reduce__(self) -> tuple[type[SearchSyntaxError], tuple[str, str, int, str, str | None]]:
        # The default would call __init__ with the message alone; errors cross process
        # boundaries (qlib uses multiprocessing), so rebuild from the parts.
        return (type(self), (self.label, self.text, self.position, self.reason, self.hint))


def _quote(text: str) -> str:
    # Not repr(): it would double backslashes, and the text should read as the user typed it.
    if "'" in text and '"' not in text:
        return f'"{text}"'
    return f"'{text}'"


@dataclass(frozen=True)
class _Source:
    """The text being parsed, and what to call it in messages."""

    label: str
    text: str

    def error(self, pos: int, reason: str, hint: str | None = None) -> SearchSyntaxError:
        return SearchSyntaxError(self.label, self.text, pos, reason, hint)


TokenKind: TypeAlias = Literal["name", "keyword", "string", "number", "op", "(", ")", ",", "end"]


@dataclass(frozen=True)
class Token:
    """One lexical token. ``text`` is the raw source slice, ``pos`` its 0-based offset.

    ``value`` is the upper-cased keyword, the unquoted string, the number text, the operator, or
    for a name the (unquoted) key; ``prefix`` is the part of a name before its first dot.
    """

    kind: TokenKind
    text: str
    pos: int
    value: str = ""
    prefix: str | None = None


_PUNCTUATION: dict[str, TokenKind] = {"(": "(", ")": ")", ",": ","}


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char in "_.-/"


class _Lexer:
    """Produces tokens on demand so that the leftmost problem in the input is reported first."""

    def __init__(self, source: _Source) -> None:
        self._source = source
        self._text = source.text
        self._i = 0

    def next(self) -> Token:
        text, n = self._text, len(self._text)
        while self._i < n and text[self._i].isspace():
            self._i += 1
        start = self._i
        if start >= n:
            return Token("end", "", n)
        char = text[start]
        if char in _PUNCTUATION:
            self._i += 1
            return Token(_PUNCTUATION[char], char, start, char)
        for op in _OPS:
            if text.startswith(op, start):
                self._i += len(op)
                return Token("op", op, start, op)
        if char in "'\"":
            value = self._quoted(char, "string")
            return Token("string", text[start : self._i], start, value)
        number = _NUMBER_RE.match(text, start)
        if number is not None:
            self._i = number.end()
            if self._i < n and _is_word_char(text[self._i]):
                while self._i < n and _is_word_char(text[self._i]):
                    self._i += 1
                raise self._source.error(start, f"invalid number '{text[start : self._i]}'")
            return Token("number", number.group(), start, number.group())
        if char.isalpha() or char == "_":
            return self._name(start)
        if char == "`":
            raise self._source.error(
                start, "unexpected '`'", "a quoted key must follow its prefix, as in metrics.`a b`"
            )
        raise self._source.error(start, f"unexpected character '{char}'")

    def _name(self, start: int) -> Token:
        text, n = self._text, len(self._text)
        while self._i < n and _is_word_char(text[self._i]):
            self._i += 1
        word = text[start : self._i]
        if "." not in word:
            if word.upper() in _KEYWORDS:
                return Token("keyword", word, start, word.upper())
            return Token("name", word, start, word)
        prefix, key = word.split(".", 1)
        if not key:
            if self._i < n and text[self._i] in '`"':
                key = self._quoted(text[self._i], "quoted key")
                if not key:
                    raise self._source.error(self._i - 2, "empty quoted key")
            else:
                raise self._source.error(self._i, f"expected a key after '{word}'")
        return Token("name", text[start : self._i], start, key, prefix)

    def _quoted(self, quote: str, what: str) -> str:
        """Reads a quoted run at the cursor; a doubled quote inside stands for one quote."""
        text, start = self._text, self._i
        parts: list[str] = []
        i = start + 1
        while True:
            end = text.find(quote, i)
            if end < 0:
                raise self._source.error(start, f"unterminated {what}")
            parts.append(text[i:end])
            if text.startswith(quote * 2, end):
                parts.append(quote)
                i = end + 2
                continue
            self._i = end + 1
            return "".join(parts)


@dataclass(frozen=True)
class _Field:
    column: str
    kind: FieldKind


def _describe(token: Token, label: str) -> str:
    if token.kind == "end":
        return f"end of {label}"
    if token.kind in ("string", "number"):
        return f"{token.kind} {token.text}"
    return f"'{token.text}'"


def _resolve(source: _Source, token: Token) -> _Field:
    """The frame column and type a name token refers to."""
    if token.kind != "name":
        raise source.error(token.pos, f"unexpected {_describe(token, source.label)}", _COLUMN_HINT)
    if token.prefix is None:
        attribute = _ATTRIBUTES.get(token.value.lower())
        if attribute is None:
            raise source.error(token.pos, f"unknown name '{token.text}'", _COLUMN_HINT)
        return _Field(*attribute)
    entity = _PREFIXES.get(token.prefix.lower())
    if entity is None:
        raise source.error(
            token.pos,
            f"unknown prefix '{token.prefix}'",
            "expected metrics, params, tags or attributes (or metric, param, tag, attr, run)",
        )
    if entity == "attributes":
        attribute = _ATTRIBUTES.get(token.value.lower())
        if attribute is None:
            names = ", ".join(sorted(_ATTRIBUTES))
            raise source.error(
                token.pos, f"unknown attribute '{token.value}'", f"attributes are {names}"
            )
        return _Field(*attribute)
    return _Field(f"{entity}.{token.value}", _ENTITY_KIND[entity])


# ---------------------------------------------------------------------------------------------
# Expression tree and vectorised evaluation


class FilterExpr(ABC):
    """A parsed filter. Immutable and shared between callers (parses are cached)."""

    def mask(self, frame: pd.DataFrame) -> pd.Series[bool]:
        """Rows of ``frame`` the filter matches, as a bool Series on ``frame.index``."""
        return cast("pd.Series[bool]", pd.Series(self._mask_array(frame), index=frame.index))

    def arrow_mask(self, table: pa.Table) -> pa.BooleanArray:
        """Rows of an Arrow table the filter matches (columns named as in the frame; times
        as timestamps or ISO 8601 strings), evaluated with ``pyarrow.compute``."""
        truth = self._evaluate(_Columns(table.num_rows, _arrow_column(table)))
        return cast("pa.BooleanArray", truth.fill_null(False))

    def columns(self) -> set[str]:
        """Frame columns the filter reads, so a caller can load only those."""
        return set(self._columns())

    def _mask_array(self, frame: pd.DataFrame) -> _BoolArray:
        truth = self._evaluate(_Columns(len(frame), _frame_column(frame)))
        return np.asarray(truth.fill_null(False).to_numpy(zero_copy_only=False), dtype=np.bool_)

    @abstractmethod
    def _evaluate(self, columns: _Columns) -> pa.BooleanArray:
        """SQL three-valued truth per row: true, false, or null (unknown)."""

    @abstractmethod
    def _columns(self) -> frozenset[str]: ...


@dataclass(frozen=True)
class Comparison(FilterExpr):
    """One test of one column. ``op`` is ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``IN``,
    ``NOT IN``, ``LIKE``, ``NOT LIKE``, ``ILIKE``, ``NOT ILIKE``, ``IS NULL`` or ``IS NOT NULL``.
    ``values`` holds floats for number and time columns (epoch milliseconds) and strs for string
    columns: the IN list, the LIKE pattern, the one operand, or nothing for IS [NOT] NULL."""

    column: str
    kind: FieldKind
    op: str
    values: tuple[float | str, ...] = ()

    def _columns(self) -> frozenset[str]:
        return frozenset({self.column})

    def _evaluate(self, columns: _Columns) -> pa.BooleanArray:
        values = columns.get(self.column, self.kind)
        if self.op in ("IS NULL", "IS NOT NULL"):
            return pc.is_valid(values) if self.op == "IS NOT NULL" else pc.is_null(values)
        op = self.op.removeprefix("NOT ")
        if op == "IN" and self.kind != "string":
            # Numbers compare by value (is_in hashes bits, so -0.0 would not be in (0)).
            tests = [pc.equal(values, pa.scalar(v, values.type)) for v in self.values]
            hit = functools.reduce(pc.or_kleene, tests)
        elif op == "IN":
            value_set = pa.array(self.values, values.type)
            # is_in says false, not unknown, for a missing value: put the nulls back.
            hit = pc.if_else(pc.is_valid(values), pc.is_in(values, value_set=value_set), None)
        elif op in ("LIKE", "ILIKE"):
            pattern = str(self.values[0])
            if op == "ILIKE":  # LIKE on both sides lower-cased
                values, pattern = pc.utf8_lower(values), pattern.lower()
            hit = pc.match_like(values, pattern)
        else:
            hit = _TESTS[op.removeprefix("!")](values, pa.scalar(self.values[0], values.type))
        # NOT keeps unknown unknown, as SQL does: `!=` and NOT IN never match a missing value.
        negated = self.op == "!=" or self.op.startswith("NOT ")
        truth: pa.BooleanArray = pc.invert(hit) if negated else hit
        return truth


# "!=" is evaluated as the negation of "=".
_TESTS = {
    "=": pc.equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}


@dataclass(frozen=True)
class And(FilterExpr):
    """All ``parts`` hold (SQL AND: false wins over unknown)."""

    parts: tuple[FilterExpr, ...]

    def _columns(self) -> frozenset[str]:
        return frozenset().union(*(part._columns() for part in self.parts))

    def _evaluate(self, columns: _Columns) -> pa.BooleanArray:
        truths = [part._evaluate(columns) for part in self.parts]
        return functools.reduce(pc.and_kleene, truths)


@dataclass(frozen=True)
class Or(FilterExpr):
    """Any of ``parts`` holds (SQL OR: true wins over unknown)."""

    parts: tuple[FilterExpr, ...]

    def _columns(self) -> frozenset[str]:
        return frozenset().union(*(part._columns() for part in self.parts))

    def _evaluate(self, columns: _Columns) -> pa.BooleanArray:
        truths = [part._evaluate(columns) for part in self.parts]
        return functools.reduce(pc.or_kleene, truths)


@dataclass(frozen=True)
class Not(FilterExpr):
    """``operand`` does not hold (SQL NOT: unknown stays unknown)."""

    operand: FilterExpr

    def _columns(self) -> frozenset[str]:
        return self.operand._columns()

    def _evaluate(self, columns: _Columns) -> pa.BooleanArray:
        return pc.invert(self.operand._evaluate(columns))


@lru_cache(maxsize=512)
def _like_regex(pattern: str) -> str:
    """Translates a LIKE pattern to an equivalent regular expression for ``fullmatch``.

    Raises ValueError if the pattern ends with a lone escape character.
    """
    parts: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise ValueError("LIKE pattern ends with an escape character '\\'")
            parts.append(re.escape(escaped))
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return "".join(parts)


_Getter: TypeAlias = Callable[[str, FieldKind], "pa.Array[Any] | None"]


class _Columns:
    """The columns a filter names, as Arrow arrays with null where a value is missing: numbers
    and times (epoch milliseconds) as float64, strings as str. Converted once per evaluation,
    however many clauses use them; a column the data lacks is all null."""

    def __init__(self, size: int, convert: _Getter) -> None:
        self._size = size
        self._convert = convert
        self._cache: dict[tuple[str, FieldKind], pa.Array[Any]] = {}

    def get(self, column: str, kind: FieldKind) -> pa.Array[Any]:
        key = (column, kind)
        found = self._cache.get(key)
        if found is None:
            found = self._convert(column, kind)
            if found is None:
                target = pa.string() if kind == "string" else pa.float64()
                found = pa.nulls(self._size, target)
            self._cache[key] = found
        return found


def _frame_column(frame: pd.DataFrame) -> _Getter:
    """Columns of a pandas frame, whatever their dtypes (object, nullable, datetimes)."""

    def convert(column: str, kind: FieldKind) -> pa.Array[Any] | None:
        if column not in frame.columns:
            return None
        series = frame[column]
        if kind == "string":
            strings, present = _as_strings(series)
            return pa.array(strings.to_numpy(), pa.string(), mask=~present)
        numbers = epoch_milliseconds(series) if kind == "time" else _as_float(series)
        return pa.array(numbers, pa.float64(), from_pandas=True)  # NaN: missing

    return convert


def _arrow_column(table: pa.Table) -> _Getter:
    """Columns of an Arrow table: as they are where the type fits, else through pandas."""

    def convert(column: str, kind: FieldKind) -> pa.Array[Any] | None:
        if column not in table.column_names:
            return None
        array = table.column(column).combine_chunks()
        kind_of = array.type
        if kind == "string" and (pa.types.is_string(kind_of) or pa.types.is_null(kind_of)):
            return array.cast(pa.string())
        if kind == "number" and (pa.types.is_floating(kind_of) or pa.types.is_integer(kind_of)):
            array = array.cast(pa.float64())
            # NaN is a missing value here, as in the frames: make it null.
            return cast("pa.Array[Any]", pc.if_else(pc.is_nan(array), None, array))
        if kind == "time" and pa.types.is_string(kind_of):
            # A time Arrow's parser does not take is left to pandas, below.
            with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                array = array.cast(pa.timestamp("us", tz="UTC"))
        if kind == "time" and pa.types.is_timestamp(kind_of := array.type):
            micros = array.cast(pa.timestamp("us", tz=kind_of.tz)).cast(pa.int64())
            # Floored to whole milliseconds (also before 1970), as MLflow stores times.
            return cast("pa.Array[Any]", pc.floor(pc.divide(micros.cast(pa.float64()), 1000.0)))
        return _frame_column(pd.DataFrame({column: array.to_pandas()}))(column, kind)

    return convert


def _as_float(series: pd.Series) -> _FloatArray:  # type: ignore[type-arg]
    if not pd.api.types.is_numeric_dtype(series.dtype):
        series = pd.to_numeric(series, errors="coerce")
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def epoch_milliseconds(series: pd.Series) -> _FloatArray:  # type: ignore[type-arg]
    """Datetimes as floored epoch milliseconds in float64 (NaN for NaT).

    Naive datetimes count as UTC; numbers are taken to be epoch milliseconds already. Float64 is
    exact here: epoch milliseconds stay far below 2**53.
    """
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert(None)
    elif pd.api.types.is_numeric_dtype(dtype):
        return _as_float(series)
    elif not pd.api.types.is_datetime64_dtype(dtype):
        # ISO 8601 whatever each string's precision: inferred from the first string, the
        # format would turn "...:00+00:00" next to "...:00.5+00:00" into NaT.
        series = pd.to_datetime(series, utc=True, errors="coerce", format="ISO8601")
        series = series.dt.tz_convert(None)
    # numpy's unit cast floors (also before 1970), matching integer milliseconds.
    stamps = series.to_numpy().astype("datetime64[ms]")
    millis = stamps.view(np.int64).astype(np.float64)
    millis[np.isnat(stamps)] = np.nan
    return millis


def _as_strings(series: pd.Series) -> tuple[pd.Series[str], _BoolArray]:  # type: ignore[type-arg]
    present = series.notna().to_numpy(dtype=bool)
    values = pd.Series(series.to_numpy(dtype=object), dtype=object).where(present, "")
    # Params and tags are strings by contract; a hand-built frame may hold other scalars.
    if pd.api.types.infer_dtype(values, skipna=False) not in ("string", "empty"):
        values = values.map(str)
    return values, present


# ---------------------------------------------------------------------------------------------
# Parser


class _Parser:
    """Recursive descent over the grammar in the module docstring."""

    def __init__(self, text: str) -> None:
        self._source = _Source("filter", text)
        self._lexer = _Lexer(self._source)
        self._token = self._lexer.next()
        self._depth = 0

    def parse(self) -> FilterExpr:
        expr = self._or()
        token = self._token
        if token.kind == ")":
            raise self._source.error(token.pos, "unmatched ')'")
        if token.kind != "end":
            raise self._unexpected(token, "expected AND, OR or the end of the filter")
        return expr

    def _advance(self) -> Token:
        token = self._token
        self._token = self._lexer.next()
        return token

    def _at(self, kind: TokenKind) -> bool:
        # A method rather than an inline test: mypy would keep a narrowed self._token across
        # _advance() calls and reject the later comparisons as impossible.
        return self._token.kind == kind

    def _at_keyword(self, *words: str) -> bool:
        return self._token.kind == "keyword" and self._token.value in words

    def _unexpected(self, token: Token, hint: str | None = None) -> SearchSyntaxError:
        return self._source.error(token.pos, f"unexpected {_describe(token, 'filter')}", hint)

    def _or(self) -> FilterExpr:
        parts = [self._and()]
        while self._at_keyword("OR"):
            self._advance()
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def _and(self) -> FilterExpr:
        parts = [self._not()]
        while self._at_keyword("AND"):
            self._advance()
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def _not(self) -> FilterExpr:
        token = self._token
        if self._at_keyword("NOT") or token.kind == "(":
            self._depth += 1
            if self._depth > _MAX_DEPTH:
                raise self._source.error(
                    token.pos, f"filter nested more than {_MAX_DEPTH} levels deep"
                )
            self._advance()
            if token.kind == "(":
                expr = self._or()
                if self._token.kind != ")":
                    raise self._unexpected(
                        self._token, f"expected ')' to close the '(' at position {token.pos}"
                    )
                self._advance()
            else:
                expr = Not(self._not())
            self._depth -= 1
            return expr
        if token.kind != "name":
            raise self._unexpected(token, _COLUMN_HINT + ", NOT or '('")
        return self._comparison()

    def _comparison(self) -> Comparison:
        name = self._advance()
        column = _resolve(self._source, name)
        token = self._token
        if token.kind == "op":
            self._advance()
            allowed = _STRING_OPS if column.kind == "string" else _NUMBER_OPS
            if token.value not in allowed:
                raise self._misapplied(token, name, column)
            value = self._literal(name, column)
            return Comparison(column.column, column.kind, token.value, (value,))
        negated = self._at_keyword("NOT")
        if negated:
            self._advance()
            if not self._at_keyword("LIKE", "ILIKE", "IN"):
                raise self._unexpected(self._token, "expected LIKE, ILIKE or IN after NOT")
            token = self._token
        prefix = "NOT " if negated else ""
        if self._at_keyword("LIKE", "ILIKE"):
            if column.kind != "string":
                raise self._misapplied(token, name, column)
            self._advance()
            pattern_token = self._token
            pattern = self._literal(name, column)
            try:
                _like_regex(str(pattern))
            except ValueError as exc:
                raise self._source.error(pattern_token.pos, str(exc)) from None
            return Comparison(column.column, column.kind, prefix + token.value, (pattern,))
        if self._at_keyword("IN"):
            self._advance()
            if not self._at("("):
                raise self._unexpected(self._token, "expected '(' after IN")
            self._advance()
            if self._at(")"):
                raise self._source.error(self._token.pos, "empty IN list")
            values = [self._literal(name, column)]
            while self._at(","):
                self._advance()
                values.append(self._literal(name, column))
            if not self._at(")"):
                raise self._unexpected(self._token, "expected ',' or ')' in the IN list")
            self._advance()
            return Comparison(column.column, column.kind, prefix + "IN", tuple(values))
        if self._at_keyword("IS"):
            self._advance()
            op = "IS NULL"
            if self._at_keyword("NOT"):
                self._advance()
                op = "IS NOT NULL"
            if not self._at_keyword("NULL"):
                raise self._unexpected(self._token, "expected NULL")
            self._advance()
            return Comparison(column.column, column.kind, op)
        raise self._unexpected(
            token, "expected a comparison: =, !=, <, <=, >, >=, LIKE, ILIKE, IN or IS"
        )

    def _misapplied(self, op: Token, name: Token, column: _Field) -> SearchSyntaxError:
        usable = (
            "=, !=, LIKE, ILIKE, IN or IS NULL"
            if column.kind == "string"
            else "=, !=, <, <=, >, >=, IN or IS NULL"
        )
        return self._unexpected(
            op, f"{name.text} holds {_KIND_WORDS[column.kind]}, so use {usable}"
        )

    def _literal(self, name: Token, column: _Field) -> float | str:
        """One literal of the column's type: float for number and time columns, else str."""
        token = self._token
        if token.kind == "number" and column.kind != "string":
            self._advance()
            return float(token.value)
        if token.kind == "string" and column.kind == "string":
            self._advance()
            return token.value
        if token.kind == "number":
            raise self._unexpected(
                token, f"{name.text} holds strings, so quote the value: '{token.text}'"
            )
        if token.kind == "string":
            raise self._unexpected(
                token, f"{name.text} holds {_KIND_WORDS[column.kind]}, so write a number"
            )
        if self._at_keyword("NULL"):
            raise self._unexpected(token, "test for missing values with IS NULL or IS NOT NULL")
        wanted = "a quoted string" if column.kind == "string" else "a number"
        raise self._unexpected(token, f"expected {wanted}")


@lru_cache(maxsize=256)
def _parse_cached(text: str) -> FilterExpr | None:
    if not text.strip():
        return None
    return _Parser(text).parse()


def parse_filter(text: str) -> FilterExpr | None:
    """Parses an MLflow filter string; None when it is empty or blank.

    Raises :class:`SearchSyntaxError` (a ``ValueError``) pointing at the offending token. Results
    are cached: filters are reused across calls and trees are immutable.
    """
    if not isinstance(text, str):
        raise TypeError(f"filter must be a str, not {type(text).__name__}")
    return _parse_cached(text)


def filter_frame(frame: pd.DataFrame, text: str) -> pd.DataFrame:
    """The rows of ``frame`` matching ``text``; ``frame`` itself when the filter is blank."""
    expr = parse_filter(text)
    if expr is None:
        return frame
    # A positional mask sidesteps index alignment, which fails on duplicate labels.
    return cast(pd.DataFrame, frame.loc[expr._mask_array(frame)])
