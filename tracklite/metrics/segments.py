"""Metric segments: the Parquet files in a recorder's ``metrics/`` folder.

Each segment holds rows ``key`` (string), ``step`` (int64), ``value`` (float64) and ``timestamp``
(``timestamp[ms, UTC]``), in logging order. A segment is written whole under a hidden temporary
name and renamed into place, so a reader of ``metrics/*.parquet`` never sees a partial file.

A compacted segment lists the segments it replaces in its Parquet metadata
(``tracklite.replaces``); between its rename and the deletion of the old files, tracklite's
readers skip the replaced ones, so no point is ever seen twice or missed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..store import layout, safefs
from ..store.ids import new_id

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

REPLACES_KEY = b"tracklite.replaces"
#: Segments up to this size are read whole for their footer (a footer is near the end anyway).
_READ_WHOLE = 1 << 16

#: How every segment is encoded. Steps and timestamps grow steadily, so delta encoding stores
#: them in a bit or two; keys repeat, so they are dictionary-encoded; zstd does the rest (about
#: 8 bytes a point for random values). The statistics (smallest and largest key, step and
#: timestamp) are what ``tracklite check`` compares with the summary without reading any point.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "use_dictionary": ["key"],
    "column_encoding": {"step": "DELTA_BINARY_PACKED", "timestamp": "DELTA_BINARY_PACKED"},
    "write_statistics": ["key", "step", "timestamp"],
}


def schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [  # type: ignore[arg-type]  # the stubs reject a list of fields
            pa.field("key", pa.string(), nullable=False),
            pa.field("step", pa.int64(), nullable=False),
            pa.field("value", pa.float64(), nullable=False),
            pa.field("timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),
        ]
    )


def segment_names(metrics_dir: Path) -> list[str]:
    """Published segment file names, in creation order (names sort by time)."""
    try:
        names = os.listdir(metrics_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(n for n in names if n.endswith(layout.SEGMENT_SUFFIX) and not n.startswith("."))


def write_segment(
    metrics_dir: Path,
    table: pa.Table,
    *,
    replaces: list[str] | None = None,
    name: str | None = None,
) -> Path:
    """Publish ``table`` as a new segment; returns its path."""
    import pyarrow.parquet as pq

    metrics_dir.mkdir(parents=True, exist_ok=True)
    if replaces:
        meta = dict(table.schema.metadata or {})
        meta[REPLACES_KEY] = json.dumps(replaces).encode()
        table = table.replace_schema_metadata(meta)
    target = metrics_dir / (name or f"{new_id()}{layout.SEGMENT_SUFFIX}")

    def write(handle: Any) -> None:
        pq.write_table(
            table,
            handle,
            **PARQUET_OPTIONS,
            # The writer's dictionary-typed key column must read back as plain strings, so its
            # segments carry no Arrow schema; a compacted one does, for ``replaces``.
            store_schema=bool(replaces),
        )

    # Never into a metrics/ folder that is a link (it could lead outside the store).
    with safefs.open_dir(metrics_dir, follow=False) as folder:
        folder.publish(target.name, write)
    return target


#: Rows a merged segment buffers before writing a row group: bounds compaction's memory to a
#: few tens of MB whatever the recorder's size.
MERGE_ROW_GROUP = 1 << 18


def write_merged(folder: safefs.Dir, names: list[str], *, replaces: list[str], name: str) -> None:
    """Publish one segment in ``folder`` holding the points of the named segments, read one at
    a time, each opened without following links.

    Segments listed in another's ``tracklite.replaces`` are skipped; rows keep their order
    (segment by segment), so each key keeps its logging order.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    replaced: set[str] = set()
    for segment in names:
        replaced.update(replaces_in(folder, segment))
    kept = [segment for segment in names if segment not in replaced]
    target_schema = schema().with_metadata({REPLACES_KEY: json.dumps(replaces).encode()})

    def write(handle: Any) -> None:
        with pq.ParquetWriter(handle, target_schema, **PARQUET_OPTIONS) as out:
            pending: list[pa.Table] = []
            rows = 0
            for segment in kept:
                table = read_in(folder, segment)
                table = table.replace_schema_metadata(None)
                pending.append(table.cast(schema()))
                rows += table.num_rows
                if rows >= MERGE_ROW_GROUP:
                    out.write_table(pa.concat_tables(pending).replace_schema_metadata(None))
                    pending, rows = [], 0
            if pending:
                out.write_table(pa.concat_tables(pending))

    folder.publish(name, write)


def read_in(folder: safefs.Dir, name: str) -> pa.Table:
    """Segment ``name`` of an open folder, opened without following a link."""
    fd = folder.open_fd(name)
    try:
        return read_file(Path(folder.fd_path(fd)))
    finally:
        os.close(fd)


def replaces_in(folder: safefs.Dir, name: str) -> list[str]:
    """The segments that segment ``name`` of an open folder replaces (its footer only)."""
    return replaces_of(footer_in(folder, name))


def footer_in(folder: safefs.Dir, name: str) -> pq.FileMetaData:
    """Segment ``name``'s Parquet footer (no data page read), opened without following a link.

    Raises what pyarrow raises when the file is not Parquet or is truncated (its footer is at
    the end of the file).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    # The reader alone: what ParquetFile adds (path handling, an index of nested columns)
    # costs as much again as reading a small footer, and check reads every segment's.
    reader = pq.ParquetReader()
    fd = folder.open_fd(name)
    try:
        size = os.fstat(fd).st_size
        if size <= _READ_WHOLE:
            # A small segment (most are): one read, and no second open through /proc.
            reader.open(pa.BufferReader(os.pread(fd, size, 0)))
            return reader.metadata
        # A native file, as in read_file: pq.read_schema's path handling (and building a table)
        # imports pandas, which cannot load at interpreter exit (a run ended by exit).
        with pa.OSFile(folder.fd_path(fd), "rb") as handle:
            reader.open(handle)
            return reader.metadata
    finally:
        os.close(fd)


def replaces_of(footer: pq.FileMetaData) -> list[str]:
    """The segment names a segment's footer says it replaces (a compaction's output)."""
    raw = (footer.metadata or {}).get(REPLACES_KEY)
    return list(json.loads(raw)) if raw else []  # most segments replace nothing


def read_file(path: Path, key: str | None = None) -> pa.Table:
    """One segment's table (only the points of metric ``key``, if given).

    Through ``ParquetFile`` rather than ``pq.read_table``, whose dataset machinery imports
    pandas: half a second in the writer thread, and an error when a run ends at interpreter
    exit (nothing may start a thread's atexit registration then).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    # A native file, not a Python one: buffers read from a Python file are Python objects, and
    # the decoding thread pool may drop the last of them after read() returned; at interpreter
    # exit that needs the GIL from a dying interpreter, and the process aborts.
    with pa.OSFile(str(path), "rb") as handle:
        segment = pq.ParquetFile(handle)
        if key is None:
            return segment.read(use_threads=False)
        # The key column's statistics skip the row groups that cannot hold the key.
        groups = [i for i in range(segment.num_row_groups) if _may_hold(segment, i, key)]
        table = segment.read_row_groups(groups, use_threads=False)
    return table.filter(pc.equal(table["key"], pa.scalar(key, pa.string())))


def _may_hold(segment: pq.ParquetFile, group: int, key: str) -> bool:
    """Whether row group ``group`` may hold points of ``key`` (by its key statistics)."""
    # By name, not position: the statistics follow the column wherever the schema puts it.
    column = segment.schema_arrow.get_field_index("key")
    stats = segment.metadata.row_group(group).column(column).statistics
    low, high = (stats.min, stats.max) if stats is not None and stats.has_min_max else (None, None)
    if low is None or high is None:
        return True
    return bool(low <= key <= high)


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def read_points(metrics_dir: Path, key: str | None = None) -> pa.Table:
    """Every point of one recorder (of metric ``key`` only, if given) as one table, in logging
    order, each point once."""
    for _attempt in range(100):
        table = read_named(metrics_dir, segment_names(metrics_dir), key)
        if table is not None:
            return table
        # A compaction removed a listed segment after we listed the folder; its points are
        # in a segment our listing missed, so list again.
    raise OSError(f"metrics of {metrics_dir} kept changing while being read")  # pragma: no cover


def read_named(metrics_dir: Path, names: list[str], key: str | None = None) -> pa.Table | None:
    """The points of the named segments (replaced ones skipped; of ``key`` only, if given), or
    None if one vanished."""
    import pyarrow as pa

    tables: dict[str, pa.Table] = {}
    replaced: set[str] = set()
    for name in names:
        try:
            # Never through a link planted at a segment's name (it could lead outside the store).
            fd = os.open(metrics_dir / name, _READ_FLAGS)
        except FileNotFoundError:
            return None
        try:
            table = read_file(Path(safefs.Dir.fd_path(fd)), key)
        finally:
            os.close(fd)
        tables[name] = table
        meta = table.schema.metadata or {}
        if REPLACES_KEY in meta:
            replaced.update(json.loads(meta[REPLACES_KEY]))
    kept = [t.replace_schema_metadata(None) for n, t in tables.items() if n not in replaced]
    if not kept:
        return schema().empty_table()
    return pa.concat_tables([t.cast(schema()) for t in kept])
