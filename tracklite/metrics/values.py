"""Validation of metric values and steps at the call, before anything is queued."""

from __future__ import annotations

from typing import Any

#: Value types the writer's hot path appends without a per-value check. It starts with
#: Python's numbers and learns numpy's scalar types the first time :func:`to_float` accepts
#: one, so an unusual value (a complex, a string array) always reaches :func:`to_float`.
PLAIN_TYPES: set[type] = {float, int, bool}


def check_values(items: dict[str, Any]) -> dict[str, float]:
    """Every value converted by :func:`to_float` (raising for the first bad one), learning the
    scalar types that passed."""
    checked = {key: to_float(key, value) for key, value in items.items()}
    for value in items.values():
        kind = type(value)
        if (
            kind not in PLAIN_TYPES
            and getattr(value, "shape", None) == ()
            and not hasattr(value, "__array_function__")
        ):
            PLAIN_TYPES.add(kind)  # a numpy scalar type (arrays keep going the slow way)
    return checked


def to_float(key: str, value: Any) -> float:
    """A metric value as float64: Python/numpy numbers, bools and 0-d arrays; NaN and infinities
    are kept. Anything else raises ``TypeError`` naming the key and the type."""
    kind = type(value)
    if kind is float:
        return value  # type: ignore[no-any-return]
    if kind is int or kind is bool:
        try:
            return float(value)
        except OverflowError:
            raise ValueError(
                f"metric {key!r} value {_short(value)} is outside the float range"
            ) from None
    dtype = getattr(value, "dtype", None)
    if dtype is not None and getattr(value, "ndim", None) == 0 and dtype.kind in "biuf":
        return float(value)
    if isinstance(value, (int, float)):  # subclasses (IntEnum, numpy.float64 is a float)
        return float(value)
    raise TypeError(f"metric {key!r} must be a number, got {kind.__name__}: {_short(value)}")


def to_step(step: Any) -> int:
    """A step as int: None means 0 (as in qlib); integral numbers only."""
    if step is None:
        return 0
    kind = type(step)
    if kind is int:
        return step  # type: ignore[no-any-return]
    dtype = getattr(step, "dtype", None)
    if dtype is not None and getattr(step, "ndim", None) == 0 and dtype.kind in "iu":
        return int(step)
    if isinstance(step, int) and not isinstance(step, bool):
        return int(step)
    if isinstance(step, float) and step.is_integer():
        return int(step)
    raise TypeError(f"step must be an integer or None, got {kind.__name__}: {_short(step)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
