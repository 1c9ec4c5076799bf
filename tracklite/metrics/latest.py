"""The latest-value summary of a recorder (MLflow's rule: highest step, then newest timestamp,
then largest value), so ``list_metrics`` and search never read the metric segments.

A small summary lives whole in ``recorder.json`` (``"metrics"``). Past :data:`INLINE_KEYS` keys
it moves to ``latest.parquet`` beside it (the segments' four columns, one row per key), and
``recorder.json`` keeps only the entries logged since (and ``"metrics_file"``): a flush of a few
points then rewrites a few entries, never the whole summary. The file is replaced (whole, by a
rename) only when those entries outgrow :data:`INLINE_KEYS` again, and always holds a superset of
what it held before. The summary is the merge of both, by the rule above, so a reader that reads
``recorder.json`` first and the file second never misses an entry, whatever a writer does
meanwhile; and an entry written to both by a process killed in between counts once.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ..store import atomic, layout, metadata, safefs

if TYPE_CHECKING:
    import pyarrow as pa

#: Entries kept in ``recorder.json``; past that they are folded into ``latest.parquet``.
#: ``TRACKLITE_INLINE_METRICS``.
INLINE_KEYS: Final = int(os.environ.get("TRACKLITE_INLINE_METRICS", "1000"))
#: The ``recorder.json`` field saying that the summary continues in ``latest.parquet``.
FILE_FIELD: Final = "metrics_file"

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_DIRECTORY", 0)


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


# ------------------------------------------------------------------ beside recorder.json


def has_file(meta: Mapping[str, Any]) -> bool:
    """Whether part of ``meta``'s summary is in ``latest.parquet``."""
    return bool(meta.get(FILE_FIELD))


def summary(folder: Path, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The whole summary of the recorder in ``folder`` whose ``recorder.json`` is ``meta`` (read
    before calling this): its entries merged with those of ``latest.parquet``."""
    inline = meta.get("metrics")
    entries: dict[str, Any] = dict(inline) if isinstance(inline, dict) else {}
    if not has_file(meta):
        return entries
    table = read_file(folder)
    if table is None:
        return entries
    return entries_of(combine([table, table_of(entries)]))


def read_file(folder: Path | str, dir_fd: int | None = None) -> pa.Table | None:
    """``latest.parquet`` of a recorder folder (``folder`` relative to ``dir_fd`` if given),
    neither followed if a link; None if there is none, :class:`CorruptMetadataError` if it
    cannot be read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(folder, layout.LATEST_FILE) if dir_fd is None else None
    try:
        rec_fd = os.open(folder, _DIR_FLAGS, dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        fd = os.open(layout.LATEST_FILE, os.O_RDONLY | _NOFOLLOW | _CLOEXEC, dir_fd=rec_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise metadata.error(path or Path(str(folder), layout.LATEST_FILE), str(exc)) from exc
    finally:
        os.close(rec_fd)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        table = pq.read_table(pa.BufferReader(b"".join(chunks)))
        return _normal(table)
    except (OSError, pa.ArrowException, KeyError, ValueError) as exc:
        raise metadata.error(path or Path(str(folder), layout.LATEST_FILE), str(exc)) from exc
    finally:
        os.close(fd)


def _normal(table: pa.Table) -> pa.Table:
    """``key`` (string), ``step`` (int64), ``value`` (float64), ``timestamp`` (int64 ms)."""
    import pyarrow as pa

    columns: dict[str, Any] = {
        "key": table.column("key").cast(pa.string()),
        "step": table.column("step").cast(pa.int64()),
        "value": table.column("value").cast(pa.float64()),
        "timestamp": table.column("timestamp").cast(pa.int64()),
    }
    return pa.table(columns)


def table_of(entries: Mapping[str, Any]) -> pa.Table:
    """Summary entries as a table (the columns of :func:`_normal`); malformed ones left out."""
    import pyarrow as pa

    keys, steps, values, stamps = [], [], [], []
    for key, entry in entries.items():
        try:
            step, value, stamp = int(entry["step"]), float(entry["value"]), int(entry["timestamp"])
        except (TypeError, KeyError, ValueError, OverflowError):
            continue  # a hand-edited entry: tracklite check reports and rebuilds it
        keys.append(key)
        steps.append(step)
        values.append(value)
        stamps.append(stamp)
    return pa.table(
        {
            "key": pa.array(keys, pa.string()),
            "step": pa.array(steps, pa.int64()),
            "value": pa.array(values, pa.float64()),
            "timestamp": pa.array(stamps, pa.int64()),
        }
    )


def combine(tables: Sequence[pa.Table]) -> pa.Table:
    """The latest entry of each key among the rows of ``tables`` (each :func:`_normal`), by the
    rule of :func:`merge`: one sort of every row, linear in the keys but for the sort."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    tables = [t for t in tables if t.num_rows]
    if len(tables) == 1:
        return tables[0]
    if not tables:
        return table_of({})
    rows = pa.concat_tables(tables).combine_chunks()
    encoded: Any = pc.dictionary_encode(rows.column("key")).combine_chunks()
    codes = encoded.indices.to_numpy()
    values = rows.column("value").to_numpy()
    ranked = np.where(np.isnan(values), -np.inf, values)
    # Last by (code, step, timestamp, value): lexsort's last key sorts first.
    order = np.lexsort(
        (ranked, rows.column("timestamp").to_numpy(), rows.column("step").to_numpy(), codes)
    )
    sorted_codes = codes[order]
    last = np.flatnonzero(np.append(sorted_codes[1:] != sorted_codes[:-1], True))
    return rows.take(order[last])


def entries_of(table: pa.Table) -> dict[str, Any]:
    """A table of the columns of :func:`_normal` as summary entries."""
    keys: list[str] = table.column("key").to_pylist()  # type: ignore[assignment]
    steps = table.column("step").to_pylist()
    values = table.column("value").to_pylist()
    stamps = table.column("timestamp").to_pylist()
    return {
        key: {"value": value, "step": step, "timestamp": stamp}
        for key, step, value, stamp in zip(keys, steps, values, stamps, strict=True)
    }


def spill(folder: Path, meta: dict[str, Any], *, force: bool = False) -> None:
    """Called under the recorder's lock, before ``meta`` is written back: when ``meta``
    holds more than :data:`INLINE_KEYS` entries (or ``force``), fold them into
    ``latest.parquet`` (published whole) and leave ``meta`` none."""
    inline = meta.get("metrics")
    if not isinstance(inline, dict) or (len(inline) <= INLINE_KEYS and not force):
        return
    current = read_file(folder) if has_file(meta) else None
    merged = combine([t for t in (current, table_of(inline)) if t is not None])
    write_file(folder, merged)
    meta["metrics"] = {}
    meta[FILE_FIELD] = layout.LATEST_FILE


def replace(folder: Path | safefs.Dir, meta: dict[str, Any], entries: dict[str, Any]) -> None:
    """Make ``entries`` the whole summary of ``meta`` (under the recorder's lock, before
    ``meta`` is written back): ``tracklite check`` rebuilding it from the segments, an import
    writing it from the source's points."""
    meta["metrics"] = entries
    if has_file(meta) or len(entries) > INLINE_KEYS:
        # The file is replaced, never removed: a reader that read the old recorder.json
        # (naming the file) must still find it.
        write_file(folder, table_of(entries))
        meta["metrics"] = {}
        meta[FILE_FIELD] = layout.LATEST_FILE


def write_file(folder: Path | safefs.Dir, table: pa.Table) -> None:
    """Publish ``latest.parquet`` in ``folder`` (whole, by a rename, never through a link)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    stored = table.set_column(
        3, "timestamp", table.column("timestamp").cast(pa.timestamp("ms", tz="UTC"))
    )

    def write(handle: Any) -> None:
        # Without the Arrow schema, as the segments: every reader sees plain columns.
        pq.write_table(stored, handle, store_schema=False, compression="zstd")

    if isinstance(folder, safefs.Dir):
        folder.publish(layout.LATEST_FILE, write)
    else:
        atomic.publish(folder / layout.LATEST_FILE, write)
