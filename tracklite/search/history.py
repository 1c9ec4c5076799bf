"""The metric history of many recorders at once, as one pandas frame (``tracklite.load_metrics``).

Recorders are chosen, and named, through the search summary; their points come from
:func:`tracklite.search.dataset.dataset`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_metrics"]


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

    from ..metrics.history import downsample
    from ..metrics.writer import get_writer
    from ..store.layout import default_uri
    from ..store.root import Store
    from . import cache
    from .dataset import dataset

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
