"""``search_experiments``' filter and order: MLflow's small language over experiment fields.

Filters are clauses joined by ``AND``: ``name = 'x'``, ``name LIKE 'lgb%'``, ``name ILIKE ...``,
``name != ...``, ``tags.<key> = 'v'`` (``tag.``, backquoted keys), and ``creation_time`` /
``last_update_time`` compared with numbers (Unix ms). Orders are ``name``, ``experiment_id``,
``creation_time`` or ``last_update_time``, ``ASC`` (default) or ``DESC``; MLflow's default is
``creation_time DESC, experiment_id ASC``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

from .entities import Experiment
from .exceptions import INVALID_PARAMETER_VALUE, MlflowException

_CLAUSE = re.compile(
    r"""\s*(?P<field>(?:attributes?\.)?[a-z_]+|tags?\.(?:`[^`]+`|"[^"]+"|[\w.\-/ :]+?))\s*
    (?P<op>!=|<=|>=|=|<|>|\bNOT\s+ILIKE\b|\bNOT\s+LIKE\b|\bILIKE\b|\bLIKE\b)\s*
    (?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?)\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)
_STRING_FIELDS = {"name"}
_NUMBER_FIELDS = {"creation_time", "last_update_time"}
_ORDER_FIELDS = {"name", "experiment_id", "creation_time", "last_update_time"}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

Predicate = Callable[[Experiment], bool]


def _like(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    from ..search.filter import _like_regex  # the runs' LIKE, one translation for both

    try:
        return re.compile(_like_regex(pattern), re.DOTALL | (re.IGNORECASE if ignore_case else 0))
    except ValueError as exc:
        raise MlflowException(str(exc), INVALID_PARAMETER_VALUE) from exc


def _bad(filter_string: str, why: str) -> MlflowException:
    return MlflowException(f"Invalid filter '{filter_string}': {why}", INVALID_PARAMETER_VALUE)


def parse_filter(filter_string: str | None) -> list[Predicate]:
    """Predicates (all must hold) for a filter string; an empty filter matches everything."""
    if not filter_string or not filter_string.strip():
        return []
    predicates = []
    for part in _AND.split(filter_string.strip()):
        match = _CLAUSE.fullmatch(part)
        if match is None:
            raise _bad(filter_string, f"cannot parse {part.strip()!r}")
        predicates.append(_predicate(filter_string, match))
    return predicates


def _predicate(filter_string: str, match: re.Match[str]) -> Predicate:
    field = match.group("field")
    op = " ".join(match.group("op").upper().split())
    raw = match.group("value")
    quoted = raw[0] in "'\""
    value: Any = raw[1:-1] if quoted else float(raw)
    lowered = field.lower()
    if lowered.startswith(("tags.", "tag.")):
        key = field.split(".", 1)[1].strip('`"')

        def get(exp: Experiment) -> Any:
            return exp.tags.get(key)

        is_string = True
    else:
        name = lowered.split(".", 1)[1] if "." in lowered else lowered
        if name not in _STRING_FIELDS | _NUMBER_FIELDS:
            raise _bad(filter_string, f"unknown field {field!r}")
        is_string = name in _STRING_FIELDS

        def get(exp: Experiment) -> Any:
            return getattr(exp, name)

    if is_string != quoted:
        raise _bad(
            filter_string, f"{field} must be compared with a {'string' if is_string else 'number'}"
        )
    if "LIKE" in op:
        if not is_string:
            raise _bad(filter_string, f"{op} needs a string field")
        pattern = _like(value, ignore_case="ILIKE" in op)
        negate = op.startswith("NOT")

        def like(exp: Experiment) -> bool:
            got = get(exp)
            return got is not None and (pattern.fullmatch(got) is None) == negate

        return like
    compare = _COMPARE[op]

    def check(exp: Experiment) -> bool:
        got = get(exp)
        return got is not None and compare(got, value)

    return check


def parse_order_by(order_by: Sequence[str] | None) -> list[tuple[str, bool]]:
    """``(field, descending)`` pairs, MLflow's default when none are given."""
    if not order_by:
        return [("creation_time", True), ("experiment_id", False)]
    keys = []
    for clause in order_by:
        words = clause.split()
        field = words[0].split(".", 1)[-1].lower() if words else ""
        direction = words[1].upper() if len(words) > 1 else "ASC"
        if (
            len(words) not in (1, 2)
            or field not in _ORDER_FIELDS
            or direction not in ("ASC", "DESC")
        ):
            raise MlflowException(f"Invalid order_by clause '{clause}'.", INVALID_PARAMETER_VALUE)
        keys.append((field, direction == "DESC"))
    if all(field != "experiment_id" for field, _ in keys):
        keys.append(("experiment_id", False))
    return keys


def sort_experiments(
    experiments: list[Experiment], keys: list[tuple[str, bool]]
) -> list[Experiment]:
    """Stable sorts, last key first; missing values last."""
    out = list(experiments)
    for field, descending in reversed(keys):
        present = [e for e in out if getattr(e, field) is not None]
        missing = [e for e in out if getattr(e, field) is None]
        present.sort(key=lambda e: getattr(e, field), reverse=descending)
        out = present + missing
    return out
