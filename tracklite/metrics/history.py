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

    from ..metrics.writer import get_writer
    from ..store.layout import default_uri
    from ..store.root import Store

    get_writer().flush()  # reads in this process see every point logged before them
    store = Store.from_uri(uri if uri is not None else default_uri())
    wanted_recorders = _as_set(recorders)
    exp_metas = _select_experiments(store, experiments, include_deleted)
    tables: list[pa.Table] = []
    for exp in exp_metas:
        for meta in store.iter_recorders(exp["id"], include_deleted=include_deleted):
            if wanted_recorders is not None and meta["id"] not in wanted_recorders:
                continue
            table = segments.read_points(RecorderRef(store.root, exp["id"], meta["id"]).metrics_dir)
            if not table.num_rows:
                continue
            n = table.num_rows
            tables.append(
                table.add_column(0, "recorder_name", pa.array([meta["name"]] * n, pa.string()))
                .add_column(0, "recorder_id", pa.array([meta["id"]] * n, pa.string()))
                .add_column(0, "experiment_name", pa.array([exp["name"]] * n, pa.string()))
                .add_column(0, "experiment_id", pa.array([exp["id"]] * n, pa.string()))
            )
    if tables:
        table = pa.concat_tables(tables)
    else:
        empty = segments.schema().empty_table()
        table = empty
        for name in ("recorder_name", "recorder_id", "experiment_name", "experiment_id"):
            table = table.add_column(0, name, pa.array([], pa.string()))
    wanted_keys = _as_set(keys)
    if wanted_keys is not None:
        table = table.filter(pc.is_in(table["key"], pa.array(sorted(wanted_keys), pa.string())))
    if max_points is not None:
        table = downsample(table, max_points, ["recorder_id", "key"])
    frame = table.to_pandas()
    if wide:
        frame = frame.drop_duplicates(["recorder_id", "step", "key"], keep="last").pivot(
            index=["recorder_id", "step"], columns="key", values="value"
        )
        frame.columns.name = None
    return frame


def _as_set(value: str | Iterable[str] | None) -> set[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {value}
    return set(value)


def _select_experiments(
    store: Any, experiments: str | Iterable[str] | None, include_deleted: bool
) -> list[dict[str, Any]]:
    all_exps = list(store.iter_experiments(include_deleted=include_deleted))
    wanted = _as_set(experiments)
    if wanted is None:
        return all_exps
    chosen = [e for e in all_exps if e["id"] in wanted or e["name"] in wanted]
    missing = wanted - {e["id"] for e in chosen} - {e["name"] for e in chosen}
    if missing:
        raise ValueError(
            f"no experiment with name or id {', '.join(sorted(map(repr, missing)))} in {store.root}"
        )
    return chosen
