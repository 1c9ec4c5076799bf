"""One ``pyarrow.dataset.Dataset`` over every metric point of a store, for any engine.

The dataset lists the published metric segments (``<exp>/<rec>/metrics/*.parquet``) and gives
each file the partition expression ``experiment_id == <exp> and recorder_id == <rec>``, so the
two id columns appear in every row without being stored, and a filter on them prunes whole
files. No file is read to build it, except the footer of segments in a folder holding more than
one (to skip segments a compaction has replaced but not deleted yet: their points are in the
compacted file, and must not be seen twice).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..errors import NotFoundError
from ..metrics import segments
from ..store import layout
from ..store.root import Store
from . import cache

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds


def dataset_schema() -> pa.Schema:
    """The columns of :func:`dataset`: a segment's columns plus the two ids."""
    import pyarrow as pa

    return (
        segments.schema()
        .append(pa.field("experiment_id", pa.string()))
        .append(pa.field("recorder_id", pa.string()))
    )


def dataset(
    uri: str | os.PathLike[str] | None = None,
    experiments: str | Iterable[str] | None = None,
    *,
    include_deleted: bool = False,
) -> ds.Dataset:
    """Every metric point of a store as a ``pyarrow.dataset.Dataset``.

    Columns: ``key``, ``step``, ``value``, ``timestamp`` (UTC), ``experiment_id``,
    ``recorder_id``. ``experiments`` are names or ids (every active experiment by default);
    soft-deleted experiments and recorders are left out unless ``include_deleted``. The file
    list is a snapshot: rebuild the dataset after new points were flushed or a compaction ran.

    >>> import duckdb, tracklite                                       # doctest: +SKIP
    >>> points = tracklite.dataset("store")                            # doctest: +SKIP
    >>> duckdb.sql("select recorder_id, max(value) from points where key = 'loss' "
    ...            "group by recorder_id").df()                        # doctest: +SKIP
    """
    import pyarrow.compute as pc
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

    from ..metrics.writer import get_writer

    get_writer().flush()  # points this process logged before the call are in the files
    store = Store.from_uri(layout.default_uri() if uri is None else uri)
    paths: list[str] = []
    partitions: list[pc.Expression] = []
    for exp_id in _experiment_ids(store, experiments, include_deleted):
        for rec_id in _recorder_ids(store, exp_id, include_deleted):
            files = live_segments(store.recorder_dir(exp_id, rec_id) / layout.METRICS_DIR)
            if not files:
                continue
            where = (pc.field("experiment_id") == exp_id) & (pc.field("recorder_id") == rec_id)
            paths.extend(files)
            partitions.extend([where] * len(files))
    return pads.FileSystemDataset.from_paths(
        paths,
        schema=dataset_schema(),
        format=pads.ParquetFileFormat(),
        filesystem=pafs.LocalFileSystem(),
        partitions=partitions,
    )


def live_segments(metrics_dir: os.PathLike[str] | str) -> list[str]:
    """Paths of a recorder's segments that hold its points, replaced ones left out."""
    import pyarrow.parquet as pq

    folder = os.fspath(metrics_dir)
    names = segments.segment_names(metrics_dir)  # type: ignore[arg-type]
    if len(names) < 2:
        # A replaced segment only ever sits beside the segment that replaced it.
        return [os.path.join(folder, name) for name in names]
    replaced: set[str] = set()
    present: list[str] = []
    for name in names:
        try:
            meta = pq.read_schema(os.path.join(folder, name)).metadata or {}
        except FileNotFoundError:
            continue  # deleted by a compaction that finished meanwhile
        present.append(name)
        if segments.REPLACES_KEY in meta:
            replaced.update(json.loads(meta[segments.REPLACES_KEY]))
    return [os.path.join(folder, name) for name in present if name not in replaced]


def _experiment_ids(
    store: Store, experiments: str | Iterable[str] | None, include_deleted: bool = False
) -> list[str]:
    if experiments is None:
        return [meta["id"] for meta in store.iter_experiments(include_deleted=include_deleted)]
    wanted = [experiments] if isinstance(experiments, str) else list(experiments)
    ids: list[str] = []
    for item in wanted:
        meta = store.read_experiment(item) or store.find_experiment(item)
        if meta is None:
            raise NotFoundError(f"no experiment with id or name {item!r} in {store.root}")
        ids.append(meta["id"])
    return list(dict.fromkeys(ids))


def _recorder_ids(store: Store, experiment_id: str, include_deleted: bool) -> list[str]:
    """Recorders whose points to include, through the search summary (no JSON per recorder
    when it is current)."""
    rows = cache.experiment_rows(store.root, experiment_id)
    if not include_deleted:
        lifecycle = rows.column(cache.LIFECYCLE).to_numpy(zero_copy_only=False)
        rows = rows.filter(lifecycle != "deleted")
    ids: list[str] = rows.column(cache.RUN_ID).to_pylist()  # type: ignore[assignment]
    return sorted(ids)
