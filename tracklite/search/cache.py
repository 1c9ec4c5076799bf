"""Recorder rows of an experiment, read from ``recorder.json`` files through a search summary.

The summary (``<experiment>/.changes/summary-<generation>.arrow``, an Arrow IPC file) is a
*cache*, never a second source of truth. It holds one row per recorder (the flattened
``recorder.json``: info fields, params, tags, and the latest metric values in one list column
of ``(key, value)`` pairs, so that the width of the table does not grow with the number of
metric keys: a recorder may have a hundred thousand) and, in its schema metadata,
how far it has read each change journal of the experiment (:mod:`tracklite.store.changes`) and
the experiment folder's ``stat`` identity.

A search reads the newest summary, then only what changed since it was built: the new lines of
each journal name the recorders rewritten since, and the experiment folder's ``stat`` tells
whether recorder folders were added or removed (by tracklite or by hand), in which case its names
are listed again. So a search with nothing changed costs one listing of ``.changes/``, one
``stat``, one small read per live journal and the summary read, whatever the number of
recorders. Why it is never stale:

* journals are read *before* the recorders they name, and a writer appends its ``-`` line
  *after* its rename: a change whose line is past the offsets read now is re-read next time;
* a recorder whose ``+`` line has no ``-`` yet (a write in flight, or a writer killed between the
  two) is re-read at every search until the ``-`` comes or its writer is known gone;
* the folder's identity is trusted only if its ``mtime`` is older than the summary's build time
  minus :data:`RACY_NS` (git's "racy clean" rule, on the filesystem's own clock: on a coarse clock
  a change in the same tick as the listing would not move the ``mtime``);
* a new summary is published under the next generation number with ``link``, which fails if
  another reader got there first: two readers folding at once never overwrite each other, and
  journals are deleted (once closed or their writer is dead, and folded) only by the reader
  whose summary folded them. A reader that finds a newer generation, or a journal gone, after
  reading starts again.

Liveness (``DEAD``) is never cached: it is judged at read time from the stored owner. Writing the
summary is best effort (a read-only store or a full disk leave it as it was) and deleting it is
always safe.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ..errors import CorruptMetadataError, UnsafeLinkError
from ..metrics import latest
from ..store import atomic, changes, layout, metadata, safefs
from ..store.root import Store

if TYPE_CHECKING:
    import pyarrow as pa

#: The summary file of earlier releases, in the experiment folder (deleted when seen).
LEGACY_SUMMARY_FILE: Final = layout.LEGACY_SUMMARY_FILE
#: Schema metadata key holding the summary's state (see :class:`Summary`).
META_KEY: Final = b"tracklite.summary"
#: Bumped whenever the row layout changes; a file of another version is ignored and rebuilt.
CACHE_VERSION: Final = 4
#: The experiment folder's identity is trusted only when its ``mtime`` is this much older than
#: the summary's build (coarse timestamps and clock skew). ``TRACKLITE_SUMMARY_RACY`` (seconds).
RACY_NS: Final = int(float(os.environ.get("TRACKLITE_SUMMARY_RACY", "5")) * 1e9)
#: Journal bytes folded, past which a search publishes a new summary rather than re-reading
#: them next time.
FOLD_BYTES: Final = 64 * 1024

#: Columns every row has (beside ``metrics.*``, ``params.*`` and ``tags.*``). Underscored ones
#: are internal and never reach a user's frame.
RUN_ID, EXPERIMENT_ID, START, END = "run_id", "experiment_id", "start_time", "end_time"
NAME, STATUS, LIFECYCLE, OWNER = "_name", "_status", "_lifecycle", "_owner"
#: Unix milliseconds of the newest latest-metric point (the recorder's last logging activity).
LAST_POINT = "_last_point_ms"
#: Latest metric values: ``metrics.<key>`` columns (float64) for the keys most rows share, and
#: the other keys' values as entries of this ``list<struct<key: string, value: float64>>``
#: column (sorted by key within a row).
METRICS = "_metrics"
#: At most this many metric keys of a table of rows get a column of their own: those that at
#: least half of its rows have (every run of a script logs the same names), most common first.
#: The others, a recorder's 100,000 keys say, are entries of :data:`METRICS`, so the width of
#: the table never grows with them.
WIDE_KEYS: Final = 256


@dataclass
class BuildReport:
    """What :func:`experiment_rows` did (for tests and the benchmark)."""

    folders: int = 0  # recorder folders listed (0 when the folder was not listed at all)
    reused: int = 0  # rows taken from the summary
    read: int = 0  # recorder.json files read
    removed: int = 0  # rows of folders gone
    wrote: bool = False  # a new summary was published
    full: bool = False  # every recorder.json was read

    def reset(self) -> None:
        self.folders = self.reused = self.read = self.removed = 0
        self.wrote = self.full = False


def folder_names(exp_dir: Path, shown: Path | None = None) -> list[str]:
    """Recorder folders of an experiment (one listing, nothing else read); ``shown`` is the
    folder's path for messages when ``exp_dir`` is a descriptor's."""
    try:
        with os.scandir(exp_dir) as listing:
            # layout.is_id_name, inlined: ids hold no dot, and every name tracklite keeps
            # beside them (hidden files, experiment.json) does. is_dir() costs no syscall.
            entries = [e for e in listing if "." not in e.name]
    except (FileNotFoundError, NotADirectoryError):
        return []
    names = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    if len(names) < len(entries):
        # A recorder folder replaced by a link is never read through: left out, with a warning.
        for entry in entries:
            if entry.is_symlink() and layout.is_id_name(entry.name):
                metadata.skipped(UnsafeLinkError((shown or exp_dir) / entry.name), 7, recorder=True)
    return names


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FILE_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = _FILE_FLAGS | getattr(os, "O_DIRECTORY", 0)


def _read_bytes(exp_fd: int, name: str) -> bytes:
    """``<name>/recorder.json`` below the open experiment folder ``exp_fd``, neither the
    recorder folder nor the file followed if it is a link (``OSError``)."""
    # os.open/os.read skip the buffered file object: a third of the cost of open() per file.
    rec_fd = os.open(name, _DIR_FLAGS, dir_fd=exp_fd)
    try:
        fd = os.open(layout.RECORDER_FILE, _FILE_FLAGS, dir_fd=rec_fd)
    finally:
        os.close(rec_fd)
    try:
        chunks = [os.read(fd, 1 << 16)]
        while len(chunks[-1]) == 1 << 16:
            chunks.append(os.read(fd, 1 << 16))
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_meta(path: str, data: bytes) -> dict[str, Any] | None:
    """``recorder.json``'s content, or None (with a warning) if it is not usable."""
    try:
        return metadata.parse(path, data, os.path.basename(os.path.dirname(path)))
    except CorruptMetadataError as exc:
        metadata.skipped(exc, stacklevel=6)
        return None


#: Files parsed together by Arrow's JSON reader; a chunk it cannot take whole (a hand-edited
#: file, a type clash) falls back to the json module, so one odd file costs one chunk's speed.
CHUNK: Final = 2048
#: Threads reading ``recorder.json`` files when there are many. Reads release the GIL, and on
#: NFS or Lustre each one waits for a round trip: reading in parallel is what makes a cold
#: search of thousands of recorders fast there (locally it overlaps reading with parsing).
READERS: Final = int(os.environ.get("TRACKLITE_SEARCH_READERS", "8"))
_READ_BATCH: Final = 256


def rows_table(
    experiment_id: str, names: Iterable[str], exp_dir: Path, exp: safefs.Dir | None = None
) -> pa.Table:
    """Reads the given recorder folders' metadata into a table of rows (column-wise); ``exp``
    is the experiment folder ``exp_dir`` opened (else it is opened here, from its parent)."""
    import pyarrow as pa

    # String paths (for messages): pathlib's joins cost more than the read itself.
    prefix = f"{os.fspath(exp_dir)}{os.sep}"
    suffix = f"{os.sep}{layout.RECORDER_FILE}"
    todo = [(name, f"{prefix}{name}{suffix}") for name in names]
    tables: list[pa.Table] = []
    pending: list[tuple[str, str, bytes]] = []
    with contextlib.ExitStack() as stack:
        if exp is None and todo:
            exp = _open_experiment(exp_dir)
            if exp is None:
                todo = []
            else:
                stack.enter_context(exp)
        exp_fd = exp.fd if exp is not None else -1
        for batch in _read_batches(exp_fd, todo):
            pending.extend(batch)
            if len(pending) >= CHUNK:
                # Parsed while the reader threads go on with the next files.
                tables.append(_chunk_rows(experiment_id, pending, exp_fd))
                pending = []
    if pending or not tables:
        tables.append(_chunk_rows(experiment_id, pending, exp_fd))
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive")


def _read_batches(
    exp_fd: int, todo: list[tuple[str, str]]
) -> Iterator[list[tuple[str, str, bytes]]]:
    """The files' contents in order, batch by batch (read by a thread pool when many)."""
    batches = [todo[lo : lo + _READ_BATCH] for lo in range(0, len(todo), _READ_BATCH)]
    if len(batches) < 2 or READERS < 2:
        yield from (_read_batch(exp_fd, batch) for batch in batches)
        return
    from concurrent.futures import ThreadPoolExecutor

    # A pool per call: no thread outlives the search (forks and interpreter exit stay simple).
    with ThreadPoolExecutor(min(READERS, len(batches)), "tracklite-search") as pool:
        yield from pool.map(_read_batch, [exp_fd] * len(batches), batches)


def _read_batch(exp_fd: int, batch: list[tuple[str, str]]) -> list[tuple[str, str, bytes]]:
    done = []
    for name, path in batch:
        try:
            done.append((name, path, _read_bytes(exp_fd, name)))
        except (FileNotFoundError, NotADirectoryError):
            if _is_link(exp_fd, name):  # a recorder folder replaced by a link
                metadata.skipped(UnsafeLinkError(os.path.dirname(path)), 6, recorder=True)
            # otherwise a folder being created, deleted or quarantined right now
        except OSError as exc:  # a link or folder in the file's place, an unreadable file
            if _is_link(exp_fd, name):
                metadata.skipped(UnsafeLinkError(os.path.dirname(path)), 6, recorder=True)
            else:
                metadata.skipped(metadata.error(path, exc.strerror or str(exc)), stacklevel=6)
    return done


def _open_experiment(exp_dir: Path) -> safefs.Dir | None:
    """The experiment folder, opened from the store root without following a link; None (with
    a warning if it is a link) when there is none to read."""
    try:
        return safefs.open_under(exp_dir.parent, [exp_dir.name])
    except (FileNotFoundError, NotADirectoryError):
        return None
    except UnsafeLinkError as exc:
        metadata.skipped(exc, 6)
        return None


def _is_link(exp_fd: int, name: str) -> bool:
    with contextlib.suppress(OSError):
        return stat.S_ISLNK(os.stat(name, dir_fd=exp_fd, follow_symlinks=False).st_mode)
    return False


#: A ``recorder.json`` this large (an older release's, holding a summary of many thousand
#: keys) is read by the json module: Arrow's parser would make a column per key.
_LARGE: Final = 1 << 18
_FILE_MARK: Final = f'"{latest.FILE_FIELD}"'.encode()


def _chunk_rows(experiment_id: str, chunk: list[tuple[str, str, bytes]], exp_fd: int) -> pa.Table:
    """Rows of one chunk of files: Arrow's parser, else the json module file by file.
    Recorders whose summary continues in ``latest.parquet`` (and large files) are read one by
    one."""
    alone = [c for c in chunk if len(c[2]) > _LARGE or _FILE_MARK in c[2]]
    if alone:
        rest = [c for c in chunk if not (len(c[2]) > _LARGE or _FILE_MARK in c[2])]
        tables = [_single_rows(experiment_id, alone, exp_fd)]
        if rest:
            tables.insert(0, _chunk_rows(experiment_id, rest, exp_fd))
        return _concat(tables) if len(tables) > 1 else tables[0]
    table = _arrow_rows(experiment_id, [c[0] for c in chunk], [c[2] for c in chunk])
    if table is not None:
        return table
    kept = [(n, m) for n, p, b in chunk if (m := parse_meta(p, b)) is not None]
    return metas_table(experiment_id, [k[0] for k in kept], [k[1] for k in kept])


def _single_rows(experiment_id: str, chunk: list[tuple[str, str, bytes]], exp_fd: int) -> pa.Table:
    """Rows of files read by the json module, each summary merged with its ``latest.parquet``
    (read relative to the experiment folder, never through a link)."""
    names: list[str] = []
    metas: list[Mapping[str, Any]] = []
    summaries: list[pa.Table] = []
    for name, path, blob in chunk:
        meta = parse_meta(path, blob)
        if meta is None:
            continue
        inline = meta.get("metrics")
        entries = latest.table_of(inline if isinstance(inline, dict) else {})
        if latest.has_file(meta):
            try:
                stored = latest.read_file(name, dir_fd=exp_fd)
            except CorruptMetadataError as exc:
                metadata.skipped(exc, stacklevel=6, recorder=True)
                continue
            entries = latest.combine([t for t in (stored, entries) if t is not None])
        names.append(name)
        metas.append(meta)
        summaries.append(entries)
    return metas_table(experiment_id, names, metas, summaries)


def _arrow_rows(experiment_id: str, names: list[str], blobs: list[bytes]) -> pa.Table | None:
    """The rows of ``recorder.json`` files parsed by Arrow's JSON reader (in C++, about four
    times faster than ``json.loads`` plus flattening), or None if anything about them is not
    as tracklite writes it; the caller then takes the ``json`` module's path."""
    import pyarrow as pa

    if not names or any(not b.lstrip().startswith(b"{") for b in blobs):
        return None
    try:
        parsed = _parse_json_lines(blobs)
        if not _one_object_per_folder(parsed, names):
            return None
        return pa.table({**_info_columns(parsed, names, experiment_id), **_entity_columns(parsed)})
    except (pa.ArrowException, TypeError, ValueError, KeyError):
        return None


def _parse_json_lines(blobs: list[bytes]) -> pa.Table:
    """The files as one Arrow table, one row each, every stored string kept a string."""
    import pyarrow as pa

    # tracklite writes one line per file; older stores were indented over many lines,
    # which Arrow parses too, only without splitting the work at newlines.
    one_line = all(b.find(b"\n", 0, len(b) - 1) < 0 for b in blobs)
    data = b"\n".join(b.rstrip(b"\n") for b in blobs) if one_line else b"\n".join(blobs)
    string = pa.string()
    # Arrow infers timestamps from strings that look like times ("2020-01-01" as a param):
    # every value tracklite stores as a string is declared one, so it reads back verbatim.
    known = [pa.field(key, string) for key in _STRING_KEYS]
    parsed = _read_json(data, known, one_line)
    fixed = [
        pa.field(key, pa.struct([pa.field(f.name, string) for f in column.type]))
        for key in ("params", "tags")
        if key in parsed.column_names
        and pa.types.is_struct((column := parsed.column(key)).type)
        and any(not pa.types.is_string(f.type) for f in column.type)
    ]
    return _read_json(data, known + fixed, one_line) if fixed else parsed


def _one_object_per_folder(parsed: pa.Table, names: list[str]) -> bool:
    """One object per file, in order, whose ids match the folders, of a version we read."""
    import pyarrow.compute as pc

    if parsed.num_rows != len(names) or "id" not in parsed.column_names:
        return False
    if parsed.column("id").to_pylist() != names:
        return False
    if "format_version" in parsed.column_names:
        newest = pc.max(parsed.column("format_version")).as_py()
        if not isinstance(newest, int) or newest > layout.FORMAT_VERSION:
            return False  # the json path warns about each such file
    return True


def _info_columns(parsed: pa.Table, names: list[str], experiment_id: str) -> dict[str, Any]:
    """The columns every row has: ids, name, status, lifecycle, times, owner."""
    import pyarrow as pa

    n = len(names)
    string = pa.string()

    def text(key: str, default: str | None = None) -> pa.Array[Any]:
        if key not in parsed.column_names:
            return pa.array([default] * n, string)
        column = parsed.column(key).combine_chunks()
        if not (pa.types.is_string(column.type) or pa.types.is_null(column.type)):
            raise TypeError(key)
        column = column.cast(string)
        return column.fill_null(default) if default is not None else column

    status = text("status")
    return {
        RUN_ID: pa.array(names, string),
        EXPERIMENT_ID: pa.array([experiment_id] * n, string),
        NAME: text("name"),
        STATUS: status,
        LIFECYCLE: text("lifecycle", "active"),
        START: text("start_time"),
        END: text("end_time"),
        OWNER: _running_owners(parsed, status),
    }


def _entity_columns(parsed: pa.Table) -> dict[str, Any]:
    """``metrics.<key>`` (latest values, float64), ``params.<key>`` and ``tags.<key>`` (str),
    and the newest point's time."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns: dict[str, Any] = {}
    stamps = []
    keys: list[str] = []
    values: list[Any] = []
    for key, child in _fields(parsed, "metrics"):
        entry = dict(_struct_fields(child))
        value = entry.get("value")
        if value is None or not (
            pa.types.is_floating(value.type) or pa.types.is_integer(value.type)
        ):
            raise TypeError(key)
        keys.append(key)
        values.append(value.cast(pa.float64()))
        stamp = entry.get("timestamp")
        if stamp is not None and pa.types.is_integer(stamp.type):
            stamps.append(stamp.cast(pa.int64()))
    n = parsed.num_rows
    wide = set(_wide(((k, n - v.null_count) for k, v in zip(keys, values, strict=True)), n))
    rest = sorted((k, v) for k, v in zip(keys, values, strict=True) if k not in wide)
    columns.update((f"metrics.{k}", v) for k, v in zip(keys, values, strict=True) if k in wide)
    columns[METRICS] = _metrics_from_columns(n, [k for k, _ in rest], [v for _, v in rest])
    columns[LAST_POINT] = (
        pc.max_element_wise(*stamps, skip_nulls=True)
        if stamps
        else pa.nulls(parsed.num_rows, pa.int64())
    )
    for prefix in ("params", "tags"):
        for key, child in _fields(parsed, prefix):
            if not (pa.types.is_string(child.type) or pa.types.is_null(child.type)):
                raise TypeError(key)
            columns[f"{prefix}.{key}"] = child.cast(pa.string())
    return columns


def _wide(counts: Iterable[tuple[str, int]], n: int) -> list[str]:
    """The keys that get a column of their own, from ``(key, rows having it)`` of ``n`` rows."""
    common = [(-count, key) for key, count in counts if count and 2 * count >= n]
    return [key for _, key in sorted(common)[:WIDE_KEYS]]


def _metrics_from_columns(n: int, keys: list[str], values: list[Any]) -> pa.Array[Any]:
    """The :data:`METRICS` column of ``n`` rows from one value column per key (null where a
    row lacks the key); ``keys`` sorted."""
    import numpy as np

    if not keys:
        return _metrics_array(np.zeros(n + 1, dtype=np.int32), [], np.zeros(0))
    present = np.column_stack([v.is_valid().to_numpy(zero_copy_only=False) for v in values])
    block = np.column_stack([v.to_numpy(zero_copy_only=False) for v in values])
    rows, cols = np.nonzero(present)  # row by row
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(present.sum(axis=1), out=offsets[1:])
    names = np.array(keys, dtype=object)
    return _metrics_array(offsets, names[cols].tolist(), block[rows, cols])


def _metrics_array(offsets: Any, keys: list[str] | pa.Array[Any], values: Any) -> pa.Array[Any]:
    import pyarrow as pa

    names = keys if isinstance(keys, pa.Array) else pa.array(keys, pa.string())
    entries = pa.StructArray.from_arrays(
        [names, pa.array(values, pa.float64())], names=["key", "value"]
    )
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), entries)


def _metric_value(entry: Any) -> float:
    """A stored entry's value; NaN if malformed (a hand-edited file)."""
    try:
        return float(entry["value"])
    except (TypeError, KeyError, IndexError, ValueError):
        return float("nan")


def _metric_fields(
    metas: list[Mapping[str, Any]], summaries: list[pa.Table] | None
) -> dict[str, pa.Array[Any]]:
    """The ``metrics.<key>`` columns and the :data:`METRICS` column from the ``metrics`` of
    each meta, or from ``summaries`` (tables of :func:`tracklite.metrics.latest.table_of`, one
    per meta) when given: one pass over the entries, whatever the number of keys."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(metas)
    if summaries is not None:
        sizes = [t.num_rows for t in summaries]
        parents = np.repeat(np.arange(n, dtype=np.int64), sizes)
        keys: Any = pa.chunked_array([t.column("key") for t in summaries], pa.string())
        keys = keys.combine_chunks()
        values = np.concatenate([np.zeros(0)] + [t.column("value").to_numpy() for t in summaries])
    else:
        rows: list[int] = []
        names: list[str] = []
        numbers: list[float] = []
        for row, meta in enumerate(metas):
            entries = meta.get("metrics")
            for key, entry in entries.items() if isinstance(entries, dict) else ():
                if entry is not None:
                    rows.append(row)
                    names.append(key)
                    numbers.append(_metric_value(entry))
        parents = np.array(rows, dtype=np.int64)
        keys = pa.array(names, pa.string())
        values = np.array(numbers, dtype=np.float64)
    columns: dict[str, pa.Array[Any]] = {}
    where = np.full(len(keys), -1)
    if len(keys):
        counted = pc.value_counts(keys)
        names_counted = counted.field("values").to_pylist()
        wide = _wide(zip(names_counted, counted.field("counts").to_pylist(), strict=True), n)
        if wide:
            found = pc.index_in(keys, value_set=pa.array(wide, pa.string()))
            where = found.fill_null(-1).to_numpy()
            hit = where >= 0
            block = np.zeros((n, len(wide)))
            present = np.zeros((n, len(wide)), dtype=bool)
            block[parents[hit], where[hit]] = values[hit]
            present[parents[hit], where[hit]] = True
            for j, key in enumerate(wide):
                columns[f"metrics.{key}"] = pa.array(block[:, j], pa.float64(), mask=~present[:, j])
    rest = np.flatnonzero(where < 0)
    rest_keys = keys.take(rest)
    rest_parents = parents[rest]
    # Within a row, entries sorted by key: the same rows give the same table on every path.
    by_key = pc.array_sort_indices(rest_keys).to_numpy()
    order = by_key[np.argsort(rest_parents[by_key], kind="stable")]
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(rest_parents, minlength=n), out=offsets[1:])
    columns[METRICS] = _metrics_array(offsets, rest_keys.take(order), values[rest][order])
    return columns


_STRING_KEYS: Final = (
    "id",
    "name",
    "experiment_id",
    "status",
    "lifecycle",
    "start_time",
    "end_time",
)


#: Bytes of JSON Arrow parses as one block (its default); one thread parses a block.
_JSON_BLOCK: Final = 1 << 20


def _read_json(data: bytes, fields: list[pa.Field[Any]], one_line: bool) -> pa.Table:
    import io

    import pyarrow as pa
    import pyarrow.json as pj

    options = pj.ParseOptions(
        explicit_schema=pa.schema(fields),
        newlines_in_values=not one_line,
        unexpected_field_behavior="infer",
    )
    # Arrow's thread pool only pays off past one block; below that, starting its threads
    # would make a search that re-reads a few recorders cost thread starts (and, with
    # pyarrow 15, a varying number of system calls) on top of the reads themselves.
    reading = pj.ReadOptions(use_threads=len(data) > _JSON_BLOCK, block_size=_JSON_BLOCK)
    return pj.read_json(io.BytesIO(data), read_options=reading, parse_options=options)


def _fields(parsed: pa.Table, key: str) -> list[tuple[str, Any]]:
    """``(name, child array)`` of a struct column, the parent's nulls applied to each child."""
    import pyarrow as pa

    if key not in parsed.column_names:
        return []
    column = parsed.column(key).combine_chunks()
    if pa.types.is_null(column.type):
        return []
    return _struct_fields(column)


def _struct_fields(column: Any) -> list[tuple[str, Any]]:
    import pyarrow as pa

    if not pa.types.is_struct(column.type):
        raise TypeError(str(column.type))
    # flatten(), unlike field(i), turns rows where the whole object is null into nulls.
    return [(f.name, child) for f, child in zip(column.type, column.flatten(), strict=True)]


def _running_owners(parsed: pa.Table, status: Any) -> pa.Array[Any]:
    """The owner of each RUNNING recorder as JSON text (only those are ever looked at)."""
    import pyarrow as pa

    n = parsed.num_rows
    owners: list[str | None] = [None] * n
    running = [i for i, s in enumerate(status.to_pylist()) if s == "RUNNING"]
    if running and "owner" in parsed.column_names:
        column = parsed.column("owner")
        for i in running:
            owner = column[i].as_py()
            if isinstance(owner, dict):
                # Arrow gives every row the union of keys (None where absent): drop those,
                # so the owner reads exactly as stored.
                owners[i] = json.dumps({k: v for k, v in owner.items() if v is not None})
    return pa.array(owners, pa.string())


def metas_table(
    experiment_id: str,
    names: list[str],
    metas: list[Mapping[str, Any]],
    summaries: list[pa.Table] | None = None,
) -> pa.Table:
    """Flattens recorder metadata into one row each; ids come from the folder names. The
    latest metrics are each meta's ``metrics``, or ``summaries`` (whole summaries as tables of
    :func:`tracklite.metrics.latest.table_of`, one per meta) when given."""
    import pyarrow as pa

    n = len(metas)
    params = _columns_of([m.get("params") for m in metas])
    tags = _columns_of([m.get("tags") for m in metas])
    # Only a RUNNING recorder's owner is ever looked at (liveness at read time).
    owners = [
        json.dumps(m["owner"]) if m.get("status") == "RUNNING" and m.get("owner") else None
        for m in metas
    ]
    string = pa.string()
    columns: dict[str, pa.Array[Any]] = {
        RUN_ID: pa.array(names, string),
        EXPERIMENT_ID: pa.array([experiment_id] * n, string),
        NAME: _string_array([m.get("name") for m in metas]),
        STATUS: _string_array([m.get("status") for m in metas]),
        LIFECYCLE: _string_array([m.get("lifecycle", "active") for m in metas]),
        START: _string_array([m.get("start_time") for m in metas]),
        END: _string_array([m.get("end_time") for m in metas]),
        OWNER: pa.array(owners, string),
        LAST_POINT: pa.array(_last_points(metas, summaries), pa.int64()),
        **_metric_fields(metas, summaries),
    }
    for prefix, table in (("params", params), ("tags", tags)):
        for key, values in table.items():
            columns[f"{prefix}.{key}"] = _string_array(values)
    return pa.table(columns)


def _last_points(
    metas: list[Mapping[str, Any]], summaries: list[pa.Table] | None = None
) -> list[int | None]:
    """Per recorder, the newest timestamp among its latest metric points (None if none)."""
    if summaries is not None:
        import pyarrow.compute as pc

        return [pc.max(t.column("timestamp")).as_py() for t in summaries]
    newest: list[int | None] = []
    for meta in metas:
        entries = meta.get("metrics")
        stamps = [
            e["timestamp"]
            for e in (entries.values() if isinstance(entries, dict) else ())
            if isinstance(e, dict) and type(e.get("timestamp")) is int
        ]
        newest.append(max(stamps) if stamps else None)
    return newest


def _string_array(values: list[Any]) -> pa.Array[Any]:
    import pyarrow as pa

    try:
        return pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Params and tags are strings by contract; a hand-edited file may hold other values.
        return pa.array([v if v is None or isinstance(v, str) else str(v) for v in values])


_EMPTY: Mapping[str, Any] = {}


def _columns_of(dicts: list[Any]) -> dict[str, list[Any]]:
    """``{key: [value or None per row]}`` from one dict per row (non-dicts count as empty).

    This and the JSON parsing are the whole cost of a cold search, so it runs at C speed where
    it can: when the rows share most of their keys (the usual case: every run of a script logs
    the same names) each column is one list comprehension; when they hardly overlap, that would
    cost rows x keys, and one pass over the entries is cheaper.
    """
    rows = [d if isinstance(d, dict) else _EMPTY for d in dicts]
    keys: set[str] = set().union(*rows) if rows else set()
    entries = sum(map(len, rows))
    if len(keys) * len(rows) <= 4 * entries + len(rows):
        return {key: [row.get(key) for row in rows] for key in keys}
    columns: dict[str, list[Any]] = {}
    n = len(rows)
    for position, row in enumerate(rows):
        for key, value in row.items():
            column = columns.get(key)
            if column is None:
                column = columns[key] = [None] * n
            column[position] = value
    return columns


# ------------------------------------------------------------------------------ the summary


FolderId = tuple[int, int, int]  # (inode, mtime_ns, ctime_ns)


@dataclass
class Summary:
    """A summary's rows and what it had read when it was built."""

    rows: pa.Table
    generation: int = 0
    built_ns: int = 0  # the filesystem's clock when the experiment folder was last listed
    folder: FolderId | None = None  # its identity then
    journals: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> journal state

    def state(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "built_ns": self.built_ns,
            "folder": list(self.folder) if self.folder else None,
            "journals": self.journals,
        }


def experiment_rows(
    root: Path,
    experiment_id: str,
    *,
    use_cache: bool = True,
    write_cache: bool = True,
    racy_ns: int | None = None,
    report: BuildReport | None = None,
) -> pa.Table:
    """Every recorder row of one experiment (all lifecycles), through the summary.

    With ``use_cache=False`` every ``recorder.json`` is read and nothing is written. With
    ``write_cache=False`` the newest summary is read and folded with the journals in memory,
    and nothing is written either (no ``.changes/`` folder, no new summary): for readers that
    promise to leave the store as they found it, such as ``tracklite ui``.
    ``racy_ns`` defaults to :data:`RACY_NS`.
    """
    report = report if report is not None else BuildReport()
    exp_dir = layout.experiment_dir(root, experiment_id)
    exp = _open_experiment(exp_dir)
    if exp is None:
        return rows_table(experiment_id, [], exp_dir)
    with contextlib.ExitStack() as stack:
        stack.enter_context(exp)
        # Everything below is reached through the open folder (a /proc/self/fd path), so
        # neither the experiment folder nor .changes/ can be swapped for a link meanwhile.
        here = Path(exp.fd_path(exp.fd))
        journals = _open_changes(exp, create=write_cache) if use_cache else None
        if journals is None:
            names = folder_names(here, exp_dir)
            report.folders, report.full = len(names), True
            table = rows_table(experiment_id, names, exp_dir, exp)
            report.read = table.num_rows
            return table
        stack.enter_context(journals)
        folder = Path(journals.fd_path(journals.fd))
        racy = RACY_NS if racy_ns is None else racy_ns
        for _attempt in range(3):
            rows = _Fold(exp_dir, experiment_id, racy, report, exp, folder, write_cache).run()
            if rows is not None:
                return rows
            report.reset()  # another reader moved on: start again
        return _Fold(exp_dir, experiment_id, racy, report, exp, folder).full(publish=False)


def _open_changes(exp: safefs.Dir, *, create: bool = True) -> safefs.Dir | None:
    """The experiment's ``.changes/`` folder (created if missing and ``create``), or None if it
    cannot be (a read-only store) or is a link (``tracklite check`` reports it): then read
    uncached."""
    try:
        return exp.child(changes.CHANGES_DIR, create=create)
    except (OSError, UnsafeLinkError):
        return None


def _listing(folder: Path) -> tuple[list[str], list[int]]:
    """Journal names and summary generations in ``.changes/`` (oldest first)."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return [], []
    journals = sorted(n for n in names if n.endswith(changes.JOURNAL_SUFFIX) and n[0] != ".")
    generations = []
    for name in names:
        if name.startswith(changes.SUMMARY_PREFIX) and name.endswith(changes.SUMMARY_SUFFIX):
            digits = name[len(changes.SUMMARY_PREFIX) : -len(changes.SUMMARY_SUFFIX)]
            if digits.isdigit():
                generations.append(int(digits))
    return journals, sorted(generations)


def summary_path(folder: Path, generation: int) -> Path:
    return folder / f"{changes.SUMMARY_PREFIX}{generation:012d}{changes.SUMMARY_SUFFIX}"


class _Fold:
    """One read of an experiment's rows: the newest summary plus what changed since."""

    def __init__(
        self,
        exp_dir: Path,
        experiment_id: str,
        racy: int,
        report: BuildReport,
        exp: safefs.Dir,
        folder: Path,
        write: bool = True,
    ):
        self.write = write  # False: fold in memory, never publish
        self.shown = exp_dir  # in messages
        self.exp = exp
        self.exp_dir = Path(exp.fd_path(exp.fd))  # the open folder itself
        self.folder = folder  # .changes/, likewise
        self.experiment_id = experiment_id
        self.racy = racy
        self.report = report
        self.journal_names, self.generations = _listing(self.folder)

    def run(self) -> pa.Table | None:
        """The rows, or None if another reader changed the summaries meanwhile (retry)."""
        if not self.generations:
            return self.full(publish=self.write)
        try:
            base = read_summary(summary_path(self.folder, self.generations[-1]))
        except FileNotFoundError:
            return None
        if base is None:
            return self.full(publish=self.write)
        if any(name not in self.journal_names for name in base.journals):
            return None  # folded and deleted by a newer summary
        try:
            tails = {name: self._tail(name, base.journals.get(name)) for name in self.journal_names}
        except FileNotFoundError:
            return None
        return self._incremental(base, tails)

    def _tail(self, name: str, state: dict[str, Any] | None) -> changes.Tail:
        state = state or {}
        tail = changes.read_tail(self.folder / name, state.get("offset", 0), state.get("begun"))
        tail.owner = tail.owner or state.get("owner")
        tail.closed = tail.closed or bool(state.get("closed"))
        return tail

    def _incremental(self, base: Summary, tails: dict[str, changes.Tail]) -> pa.Table | None:

        report = self.report
        # Rewritten since (a "-" line), or being rewritten (a "+" line without its "-" yet).
        todo = set().union(*(t.changed | set(t.begun) for t in tails.values()))
        folded = sum(t.offset - base.journals.get(n, {}).get("offset", 0) for n, t in tails.items())
        # Judged before anything is read: a writer gone now renamed nothing after the reads.
        done = {n for n, t in tails.items() if changes.writer_gone(t)}
        temp: _Temp | None = None
        built = base.built_ns
        folder_id = _folder_id(self.exp_dir)
        listed: set[str] | None = None
        if folder_id is None:
            listed = set()
        elif folder_id != base.folder or base.folder[1] >= base.built_ns - self.racy:
            # Recorder folders were added or removed (or may have been, within the racy
            # window): list them again, names only. Once the folder has settled, a new
            # summary records its identity with the filesystem's clock of this listing.
            if self.write and folder_id[1] < time.time_ns() - self.racy:
                temp, built = _open_temp(self.folder)
                folder_id = _folder_id(self.exp_dir)
            listed = set(folder_names(self.exp_dir, self.shown))
        cached = base.rows.column(RUN_ID)
        if listed is not None:
            report.folders = len(listed)
            todo |= listed - set(cached.to_pylist())
            todo &= listed
        fresh = rows_table(self.experiment_id, sorted(todo), self.shown, self.exp)
        kept = _without(base.rows, todo, listed)
        report.reused, report.read = kept.num_rows, fresh.num_rows
        if listed is not None:
            report.removed = len(set(cached.to_pylist()) - listed)
        rows = kept if not fresh.num_rows else _concat([kept, fresh])
        # A newer summary may have deleted journals this one still needs: start again.
        if _listing(self.folder)[1][-1:] != self.generations[-1:]:
            if temp is not None:
                _discard(temp)
            return None
        worth = (
            temp is not None
            or folded >= FOLD_BYTES
            or len(todo) >= max(1, base.rows.num_rows // 100)
            or bool(done)
        )
        if not worth or not self.write:
            return rows
        if temp is None:
            temp, _ = _open_temp(self.folder)
        state = Summary(rows, self.generations[-1] + 1, built, folder_id)
        state.journals = {n: _journal_state(t) for n, t in tails.items() if n not in done}
        self._publish(temp, state, done)
        return rows

    def full(self, *, publish: bool) -> pa.Table:
        """Every ``recorder.json`` read (journals first), published as the next summary."""
        self.report.full = True
        temp, built = _open_temp(self.folder) if publish else (None, 0)
        folder_id = _folder_id(self.exp_dir)
        tails: dict[str, changes.Tail] = {}
        for name in self.journal_names:
            with contextlib.suppress(FileNotFoundError):
                tails[name] = changes.read_tail(self.folder / name, 0)
        # Judged before anything is read: a writer gone now renamed nothing after the reads.
        done = {n for n, t in tails.items() if changes.writer_gone(t)}
        names = folder_names(self.exp_dir, self.shown)
        self.report.folders = len(names)
        rows = rows_table(self.experiment_id, names, self.shown, self.exp)
        self.report.read = rows.num_rows
        if temp is not None:
            generation = (self.generations[-1] if self.generations else 0) + 1
            state = Summary(rows, generation, built, folder_id)
            state.journals = {n: _journal_state(t) for n, t in tails.items() if n not in done}
            self._publish(temp, state, done)
        return rows

    def _publish(self, temp: _Temp | None, state: Summary, done: set[str]) -> None:
        """Publishes ``state`` as its generation; if that worked, deletes what it replaces."""
        if temp is None or not _publish(temp, summary_path(self.folder, state.generation), state):
            return
        self.report.wrote = True
        for generation in self.generations:
            with contextlib.suppress(OSError):
                os.unlink(summary_path(self.folder, generation))
        for name in done:
            with contextlib.suppress(OSError):
                os.unlink(self.folder / name)
        with contextlib.suppress(OSError):
            os.unlink(self.exp_dir / LEGACY_SUMMARY_FILE)


def _without(rows: pa.Table, ids: set[str], listed: set[str] | None) -> pa.Table:
    """``rows`` minus those of ``ids`` and, if ``listed`` is given, of folders not in it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = rows.column(RUN_ID)
    keep = None
    if ids:
        keep = pc.invert(pc.is_in(column, value_set=pa.array(sorted(ids), pa.string())))
    if listed is not None:
        present = pc.is_in(column, value_set=pa.array(sorted(listed), pa.string()))
        keep = present if keep is None else pc.and_(keep, present)
    return rows if keep is None else rows.filter(keep)


def _journal_state(tail: changes.Tail) -> dict[str, Any]:
    return {"offset": tail.offset, "begun": tail.begun, "owner": tail.owner, "closed": tail.closed}


def _folder_id(folder: Path) -> FolderId | None:
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns


def _concat(tables: list[pa.Table]) -> pa.Table:
    import pyarrow as pa

    return pa.concat_tables(tables, promote_options="permissive")


def read_summary(path: Path) -> Summary | None:
    """A summary file, or None if damaged or of another version (FileNotFoundError if gone)."""
    import pyarrow as pa

    # Read, never memory-mapped: on NFS another client replacing the file would turn a mapped
    # page into SIGBUS. An open file stays readable whole when it is replaced or deleted.
    # Opened without following a link planted at its name, then read through that descriptor.
    try:
        fd = os.open(path, _FILE_FLAGS)
    except FileNotFoundError:
        raise
    except OSError:  # a link or a folder in its place: no summary (check reports it)
        return None
    try:
        source = pa.OSFile(safefs.Dir.fd_path(fd), "r")
    finally:
        os.close(fd)
    try:
        table = pa.ipc.open_file(source).read_all()
        info = json.loads((table.schema.metadata or {})[META_KEY])
        if info.get("version") != CACHE_VERSION or table.column_names[:1] != [RUN_ID]:
            return None
        folder = info.get("folder")
        return Summary(
            table.replace_schema_metadata(None),
            int(info["generation"]),
            int(info["built_ns"]),
            (int(folder[0]), int(folder[1]), int(folder[2])) if folder else None,
            {str(k): dict(v) for k, v in info["journals"].items()},
        )
    except Exception:  # damaged just means "no summary": it is rebuilt
        return None
    finally:
        source.close()


@dataclass
class _Temp:
    path: Path
    file: Any


def _open_temp(folder: Path) -> tuple[_Temp | None, int]:
    """A new temporary file in ``folder`` and the filesystem's clock at its creation."""
    tmp = atomic.temp_name(folder / "summary")
    try:
        folder.mkdir(exist_ok=True)
        # "x": created exclusively, so a link planted at the name is refused, never followed.
        file = open(tmp, "xb")  # noqa: SIM115 - closed by _publish or _discard
    except OSError:
        return None, 0  # read-only store, quota, permissions: searching goes on uncached
    try:
        built = os.fstat(file.fileno()).st_mtime_ns
    except OSError:
        _discard(_Temp(tmp, file))
        return None, 0
    return _Temp(tmp, file), built


def _publish(temp: _Temp, target: Path, state: Summary) -> bool:
    """Writes the summary and links it into place unless that generation exists already."""
    import pyarrow as pa

    info = {"version": CACHE_VERSION, **state.state()}
    rows = state.rows.replace_schema_metadata({META_KEY: json.dumps(info).encode()})
    try:
        # Arrow IPC, uncompressed: reading it back is a copy, not a decode.
        with pa.ipc.new_file(temp.file, rows.schema) as writer:
            writer.write_table(rows)
        temp.file.flush()
        if atomic.FSYNC:
            os.fsync(temp.file.fileno())
        temp.file.close()
        # link, unlike rename, refuses to replace: of two readers publishing the same
        # generation, one wins and the other's (equally correct) result is simply not kept.
        os.link(temp.path, target)
    except Exception:  # best effort: the rows are returned either way
        _discard(temp)
        return False
    _discard(temp)
    return True


def _discard(temp: _Temp) -> None:
    with contextlib.suppress(OSError):
        temp.file.close()
    with contextlib.suppress(OSError):
        os.unlink(temp.path)


def drop_summaries(root: Path) -> int:
    """Deletes every experiment's search summaries (always safe); returns how many existed."""
    dropped = 0
    for experiment_id in Store(root).experiment_ids():
        exp_dir = layout.experiment_dir(root, experiment_id)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            os.unlink(exp_dir / LEGACY_SUMMARY_FILE)
        journals = changes.journal_dir(exp_dir)
        for generation in _listing(journals)[1]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(summary_path(journals, generation))
                dropped += 1
    return dropped
