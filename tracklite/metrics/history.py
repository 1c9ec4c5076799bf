"""Metric history as pandas frames: one recorder, or many at once."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

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


def load_metrics(
    uri: str | os.PathLike[str] | None = None,
    *,
    experiments: str | Iterable[str] | None = None,
    recorders: str | Iterable[str] | None = None,
    keys: str | Iterable[str] | None = None,
    wide: bool = False,
    max_points: int | None = None,
    include_deleted: bool = False,
) -> pd.DataFrame:
    """Every point of many recorders as one long frame.

    Columns: ``experiment_id``, ``experiment_name``, ``recorder_id``, ``recorder_name``,
    ``key``, ``step``, ``value``, ``timestamp``. ``experiments`` are names or ids (all active
    experiments by default); ``recorders`` are recorder ids; ``keys`` limits the metrics.
    ``wide=True`` gives one column per key indexed by (recorder_id, step), the last value
    logged at a step winning. ``max_points`` thins each (recorder, key) curve for plotting.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from ..search import cache
    from ..search.dataset import dataset
    from ..store.layout import default_uri
    from ..store.root import Store
    from .writer import get_writer

    get_writer().flush()  # reads in this process see every point logged before them
    store = Store.from_uri(uri if uri is not None else default_uri())
    points = dataset(store.root, experiments, include_deleted=include_deleted)
    where = None
    for column, wanted in (("recorder_id", _as_set(recorders)), ("key", _as_set(keys))):
        if wanted is not None:
            test = pc.field(column).isin(pa.array(sorted(wanted), pa.string()))
            where = test if where is None else where & test
    # Files are read in parallel by Arrow's threads; rows keep each file's (logging) order.
    table = points.to_table(filter=where)
    # Names come from the search summary (no recorder.json is read when it is current).
    exp_names: dict[str, str] = {}
    rec_names: dict[str, str] = {}
    exp_ids: list[str] = [str(v) for v in table["experiment_id"].unique().to_pylist()]
    for exp_id in exp_ids:
        meta = store.read_experiment(exp_id)
        exp_names[exp_id] = meta["name"] if meta else ""
        rows = cache.experiment_rows(store.root, exp_id)
        ids = rows.column(cache.RUN_ID).to_pylist()
        names = rows.column(cache.NAME).to_pylist()
        rec_names.update((str(i), str(n)) for i, n in zip(ids, names, strict=True))
    table = (
        table.append_column("experiment_name", _mapped(table["experiment_id"], exp_names))
        .append_column("recorder_name", _mapped(table["recorder_id"], rec_names))
        .select(
            [
                "experiment_id",
                "experiment_name",
                "recorder_id",
                "recorder_name",
                "key",
                "step",
                "value",
                "timestamp",
            ]
        )
    )
    if max_points is not None:
        table = downsample(table, max_points, ["recorder_id", "key"])
    frame = table.to_pandas()
    if wide:
        frame = frame.drop_duplicates(["recorder_id", "step", "key"], keep="last").pivot(
            index=["recorder_id", "step"], columns="key", values="value"
        )
        frame.columns.name = None
    return frame


def _mapped(ids: Any, names: dict[str, str]) -> Any:
    """``names[id]`` for every row, through a dictionary encoding (one lookup per distinct id)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(ids).combine_chunks()
    labels = pa.array([names.get(v, "") for v in encoded.dictionary.to_pylist()], pa.string())
    return pa.DictionaryArray.from_arrays(encoded.indices, labels).cast(pa.string())


def _as_set(value: str | Iterable[str] | None) -> set[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {value}
    return set(value)
