"""Metric history as pandas frames."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..store.ref import RecorderRef
from . import segments

if TYPE_CHECKING:
    import pandas as pd


def recorder_history(ref: RecorderRef, key: str | None = None) -> pd.DataFrame:
    """One recorder's points: columns key, step, value, timestamp; logging order per key."""
    import pyarrow.compute as pc

    table = segments.read_points(ref.metrics_dir)
    if key is not None:
        table = table.filter(pc.equal(table["key"], key))
    return table.to_pandas()
