"""One recorder's metric history as a pandas frame, and thinning a history for plotting.

The history of many recorders at once is :func:`tracklite.search.history.load_metrics`, on the
reading side with the search it selects recorders through.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..store.ref import RecorderRef
from . import segments

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def recorder_history(
    ref: RecorderRef, key: str | None = None, *, max_points: int | None = None
) -> pd.DataFrame:
    """One recorder's points: columns key, step, value, timestamp; logging order per key."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = segments.read_points(ref.metrics_dir)
    if key is not None:
        table = table.filter(pc.equal(table["key"], pa.scalar(key, pa.string())))
    if max_points is not None:
        table = downsample(table, max_points, ["key"])
    return table.to_pandas()


def downsample(table: pa.Table, max_points: int, group: Sequence[str]) -> pa.Table:
    """At most ``max_points`` rows per group, evenly spaced, always the first and the last."""
    import numpy as np
    import pyarrow as pa

    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 2:
        raise ValueError(f"max_points must be an integer >= 2, got {max_points!r}")
    n = table.num_rows
    if n <= max_points:
        return table
    # Group ids in row order, then each row's position and its group's size.
    keys = table.select(list(group)).to_pandas()
    import pandas as pd

    gid = keys.groupby(list(group), sort=False, observed=True).ngroup().to_numpy()
    pos = pd.Series(np.ones(n, dtype=np.int64)).groupby(gid).cumsum().to_numpy() - 1
    size = np.bincount(gid)[gid]
    span = np.maximum(size - 1, 1)
    slot = np.rint(pos * (max_points - 1) / span)
    target = np.rint(slot * span / (max_points - 1))
    keep = (size <= max_points) | (pos == target)
    return table.filter(pa.array(keep))
