"""The latest-value summary kept in ``recorder.json`` (MLflow's rule: highest step, then newest
timestamp, then largest value), so ``list_metrics`` and search never read Parquet."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def merge(
    summary: dict[str, Any],
    keys: Sequence[str],
    steps: Sequence[int],
    values: Sequence[float],
    timestamps: Sequence[int],
) -> None:
    """Fold points into ``summary`` (``{key: {"value", "step", "timestamp"}}``) in place."""
    for key, step, value, stamp in zip(keys, steps, values, timestamps, strict=True):
        current = summary.get(key)
        if current is None or _rank(step, stamp, value) >= _rank(
            current["step"], current["timestamp"], current["value"]
        ):
            summary[key] = {"value": value, "step": step, "timestamp": stamp}


def merge_entries(summary: dict[str, Any], entries: dict[str, Any]) -> None:
    """Fold another summary's entries into ``summary`` in place."""
    for key, entry in entries.items():
        current = summary.get(key)
        if current is None or _rank(entry["step"], entry["timestamp"], entry["value"]) >= _rank(
            current["step"], current["timestamp"], current["value"]
        ):
            summary[key] = entry


def _rank(step: int, stamp: int, value: float) -> tuple[int, int, float]:
    # NaN compares false with everything; rank it lowest so a later real value can win a tie.
    return (step, stamp, -math.inf if math.isnan(value) else value)


def values_of(summary: dict[str, Any]) -> dict[str, float]:
    """``{key: latest value}`` from a stored summary."""
    return {key: float(entry["value"]) for key, entry in summary.items()}
