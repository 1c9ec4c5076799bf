"""The batch API's input checking: many steps of many keys, validated as a whole."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..store.clock import now_ms
from ..store.names import check_key

Columns = list[tuple[str, Any, Any, Any]]  # key, steps int64, values float64, stamps int64


def columns_of(metrics: Any, steps: Any = None) -> Columns:
    """Validate a DataFrame or ``{key: array}`` into per-key numpy columns.

    Raises ``TypeError``/``ValueError`` naming the key or argument at fault; nothing is queued
    unless every column is valid.
    """
    import numpy as np

    data, steps = _key_arrays(metrics, steps)
    columns = _value_columns(data)
    if not columns:
        return []
    length = len(columns[0][1])
    step_col = np.arange(length, dtype=np.int64) if steps is None else _step_column(steps, length)
    stamps = np.full(length, now_ms(), dtype=np.int64)
    return [(key, step_col, values, stamps) for key, values in columns]


def _key_arrays(metrics: Any, steps: Any) -> tuple[Mapping[Any, Any], Any]:
    """``{key: array-like}`` and the steps: a DataFrame gives its columns, and its ``step``
    column (else its index) as the steps unless ``steps`` is given."""
    import sys

    # A DataFrame can only come from an imported pandas: don't pay its import otherwise.
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(metrics, pd.DataFrame):
        frame = metrics
        if steps is None:
            if "step" in frame.columns:
                steps = frame["step"].to_numpy()
                frame = frame.drop(columns="step")
            else:
                steps = frame.index.to_numpy()
        return {key: frame[key].to_numpy() for key in frame.columns}, steps
    if isinstance(metrics, Mapping):
        return metrics, steps
    raise TypeError(
        f"metrics must be a pandas DataFrame or a mapping of key to array, "
        f"got {type(metrics).__name__}"
    )


def _value_columns(data: Mapping[Any, Any]) -> list[tuple[str, Any]]:
    """Each key checked, with its values as float64; every column of one length."""
    import numpy as np

    columns: list[tuple[str, Any]] = []
    length: int | None = None
    for key, raw in data.items():
        if not isinstance(key, str):
            raise TypeError(f"metric key {key!r} must be a str, got {type(key).__name__}")
        check_key(key, "metric key")
        array = np.asarray(raw)
        if array.ndim != 1:
            raise ValueError(f"metric {key!r} must be one-dimensional, got shape {array.shape}")
        if array.dtype.kind not in "biuf":
            raise TypeError(f"metric {key!r} must hold numbers, got dtype {array.dtype}")
        if length is None:
            length = len(array)
        elif len(array) != length:
            raise ValueError(f"metric {key!r} has {len(array)} values; the others have {length}")
        columns.append((key, array.astype(np.float64)))
    return columns


def _step_column(steps: Any, length: int) -> Any:
    """The steps as int64: ``length`` integers (floats only if whole), all within int64."""
    import numpy as np

    raw_steps = np.asarray(steps)
    if raw_steps.ndim != 1 or len(raw_steps) != length:
        raise ValueError(
            f"steps must be one-dimensional with {length} values, got shape {raw_steps.shape}"
        )
    if raw_steps.dtype.kind == "f":
        if not np.all(np.isfinite(raw_steps)) or not np.all(raw_steps == np.round(raw_steps)):
            raise TypeError("steps must be integers")
    elif raw_steps.dtype.kind not in "iu":
        raise TypeError(f"steps must be integers, got dtype {raw_steps.dtype}")
    # A cast would wrap (uint64) or give garbage (floats) outside int64, silently.
    if length and (
        (raw_steps.dtype.kind == "u" and raw_steps.max() > np.iinfo(np.int64).max)
        or (
            raw_steps.dtype.kind == "f"
            and not -(2.0**63) <= raw_steps.min() <= raw_steps.max() < 2.0**63
        )
    ):
        raise ValueError("steps must fit in int64 (-2**63 .. 2**63-1)")
    return raw_steps.astype(np.int64)
