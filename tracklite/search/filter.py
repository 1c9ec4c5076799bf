"""MLflow's ``filter_string`` language, parsed by hand and evaluated column-wise with pandas.

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

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, TypeAlias, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

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
# "!=" is evaluated as the negation of "=" (see Comparison._evaluate).
_NUMBER_TESTS = {
    "=": np.equal,
    "!=": np.equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}
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


@dataclass(frozen=True)
class _Truth:
    """SQL three-valued truth per row: ``value`` = known true, ``known`` = not unknown."""

    value: _BoolArray
    known: _BoolArray


class FilterExpr(ABC):
    """A parsed filter. Immutable and shared between callers (parses are cached)."""

    def mask(self, frame: pd.DataFrame) -> pd.Series[bool]:
        """Rows of ``frame`` the filter matches, as a bool Series on ``frame.index``."""
        return cast("pd.Series[bool]", pd.Series(self._mask_array(frame), index=frame.index))

    def columns(self) -> set[str]:
        """Frame columns the filter reads, so a caller can load only those."""
        return set(self._columns())

    def _mask_array(self, frame: pd.DataFrame) -> _BoolArray:
        return self._evaluate(_Table(frame)).value

    @abstractmethod
    def _evaluate(self, table: _Table) -> _Truth: ...

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

    def _evaluate(self, table: _Table) -> _Truth:
        if self.op in ("IS NULL", "IS NOT NULL"):
            present = table.present(self.column, self.kind)
            return _Truth(present if self.op == "IS NOT NULL" else ~present, table.everywhere)
        negated = self.op == "!=" or self.op.startswith("NOT ")
        if self.kind == "string":
            hit, present = self._strings(table)
        else:
            numbers = table.numbers(self.column, self.kind)
            present = ~np.isnan(numbers)
            hit = self._numbers(numbers)
        if negated:
            hit = ~hit
        return _Truth(hit & present, present)

    def _numbers(self, numbers: _FloatArray) -> _BoolArray:
        """The positive form of the test (NaN rows are masked out by the caller)."""
        op = self.op.removeprefix("NOT ")
        if op == "IN":
            hit = np.isin(numbers, np.asarray(self.values, dtype=np.float64))
        else:
            hit = _NUMBER_TESTS[op](numbers, float(self.values[0]))
        return np.asarray(hit, dtype=np.bool_)

    def _strings(self, table: _Table) -> tuple[_BoolArray, _BoolArray]:
        op = self.op.removeprefix("NOT ")
        folded = op == "ILIKE"
        strings, present = table.strings(self.column, folded=folded)
        if op == "IN":
            hit = strings.isin(self.values)
        elif op in ("=", "!="):
            hit = strings == self.values[0]
        else:
            pattern = str(self.values[0])
            regex = _like_regex(pattern.lower() if folded else pattern)
            hit = strings.str.fullmatch(regex, flags=re.DOTALL)
        return np.asarray(hit, dtype=np.bool_), present


@dataclass(frozen=True)
class And(FilterExpr):
    """All ``parts`` hold (SQL AND: false wins over unknown)."""

    parts: tuple[FilterExpr, ...]

    def _columns(self) -> frozenset[str]:
        return frozenset().union(*(part._columns() for part in self.parts))

    def _evaluate(self, table: _Table) -> _Truth:
        truths = [part._evaluate(table) for part in self.parts]
        value = np.logical_and.reduce([t.value for t in truths])
        all_known = np.logical_and.reduce([t.known for t in truths])
        any_false = np.logical_or.reduce([t.known & ~t.value for t in truths])
        return _Truth(value, all_known | any_false)


@dataclass(frozen=True)
class Or(FilterExpr):
    """Any of ``parts`` holds (SQL OR: true wins over unknown)."""

    parts: tuple[FilterExpr, ...]

    def _columns(self) -> frozenset[str]:
        return frozenset().union(*(part._columns() for part in self.parts))

    def _evaluate(self, table: _Table) -> _Truth:
        truths = [part._evaluate(table) for part in self.parts]
        value = np.logical_or.reduce([t.value for t in truths])
        all_known = np.logical_and.reduce([t.known for t in truths])
        return _Truth(value, all_known | value)


@dataclass(frozen=True)
class Not(FilterExpr):
    """``operand`` does not hold (SQL NOT: unknown stays unknown)."""

    operand: FilterExpr

    def _columns(self) -> frozenset[str]:
        return self.operand._columns()

    def _evaluate(self, table: _Table) -> _Truth:
        truth = self.operand._evaluate(table)
        return _Truth(~truth.value & truth.known, truth.known)


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


class _Table:
    """The frame's columns converted once per ``mask`` call, however many clauses use them."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame
        self._size = len(frame)
        self.everywhere: _BoolArray = np.ones(self._size, dtype=bool)
        self._numbers: dict[tuple[str, FieldKind], _FloatArray] = {}
        self._strings: dict[tuple[str, bool], tuple[pd.Series[str], _BoolArray]] = {}

    def present(self, column: str, kind: FieldKind) -> _BoolArray:
        if kind == "string":
            return self.strings(column, folded=False)[1]
        return ~np.isnan(self.numbers(column, kind))

    def numbers(self, column: str, kind: FieldKind) -> _FloatArray:
        """Float64 values with NaN where missing; times as epoch milliseconds."""
        key = (column, kind)
        if key not in self._numbers:
            if column not in self._frame.columns:
                values = np.full(self._size, np.nan)
            elif kind == "time":
                values = epoch_milliseconds(self._frame[column])
            else:
                values = _as_float(self._frame[column])
            self._numbers[key] = values
        return self._numbers[key]

    def strings(self, column: str, *, folded: bool) -> tuple[pd.Series[str], _BoolArray]:
        """Values as an object Series of str with "" where missing (so every string operation is
        total), lower-cased if ``folded``, and the mask of rows where the value is present."""
        key = (column, folded)
        if key not in self._strings:
            if folded:
                strings, present = self.strings(column, folded=False)
                self._strings[key] = (strings.str.lower(), present)
            elif column not in self._frame.columns:
                empty = pd.Series([""] * self._size, dtype=object)
                self._strings[key] = (empty, np.zeros(self._size, dtype=bool))
            else:
                self._strings[key] = _as_strings(self._frame[column])
        return self._strings[key]


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
        series = pd.to_datetime(series, utc=True, errors="coerce").dt.tz_convert(None)
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
