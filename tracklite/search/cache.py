"""The per-experiment search summary: one row per recorder, rebuilt from ``recorder.json`` files.

``<experiment>/.summary.arrow`` (an Arrow IPC file) is a *cache*, never a second source of truth.
It holds, per recorder folder, the flattened ``recorder.json`` (info fields, latest metric values,
params, tags) and the folder's ``stat`` identity when it was read: inode, ``mtime_ns`` and
``ctime_ns``. Its schema metadata records the build time on the filesystem's own clock (the
``mtime`` of the freshly created temporary file, taken *before* any ``recorder.json`` of the build
is read).

Why a cached row can be trusted: every change to ``recorder.json`` is an atomic rename inside the
recorder folder (``tracklite.store.atomic``), which changes the folder's ``mtime`` and ``ctime``.
So a row is reused only if

* the folder still exists with the same inode, ``mtime_ns`` and ``ctime_ns``, and
* its ``mtime`` is older than the build time minus :data:`RACY_NS` (the "racy git" rule: on a
  filesystem whose timestamps are coarse, say one second on some NFS servers, a change made in
  the same tick as the read would leave the folder's ``mtime`` unchanged, so rows that recent are
  always re-read; the window also absorbs clock skew between the file servers of one store).

Every other folder (new, changed, racy) is read from its ``recorder.json``; rows of removed
folders are dropped. Validation therefore costs one ``scandir`` of the experiment folder and one
``stat`` per recorder folder. Liveness (``DEAD``) is never cached: it is judged at read time from
the stored status and owner. Writing the file is best effort: a read-only store, a full disk or
a lost race simply leaves the old file (or none), and searching works the same, only slower.
Deleting the file is always safe.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ..errors import CorruptMetadataError
from ..maintenance import check as _check
from ..store import atomic, layout, metadata

if TYPE_CHECKING:
    import pyarrow as pa

#: The cache file inside each experiment folder (hidden: listings and ``*.parquet`` globs of
#: the recorder folders never see it).
SUMMARY_FILE: Final = ".summary.arrow"
#: Schema metadata key holding ``{"version", "experiment_id", "built_ns"}``.
META_KEY: Final = b"tracklite.summary"
#: Bumped whenever the row layout changes; a file of another version is ignored and rebuilt.
CACHE_VERSION: Final = 1
#: Rows whose folder ``mtime`` is this recent relative to the build are re-read every time
#: (coarse timestamps and clock skew, see the module docstring). ``TRACKLITE_SUMMARY_RACY``
#: (seconds) changes it.
RACY_NS: Final = int(float(os.environ.get("TRACKLITE_SUMMARY_RACY", "5")) * 1e9)

#: Columns every row has (beside ``metrics.*``, ``params.*`` and ``tags.*``). Underscored ones
#: are internal and never reach a user's frame.
RUN_ID, EXPERIMENT_ID, START, END = "run_id", "experiment_id", "start_time", "end_time"
NAME, STATUS, LIFECYCLE, OWNER = "_name", "_status", "_lifecycle", "_owner"
INO, MTIME, CTIME = "_ino", "_mtime_ns", "_ctime_ns"
_STAT_COLUMNS: Final = (INO, MTIME, CTIME)

# tracklite check must not report the cache as an unknown file.
_check.EXTRA_EXPERIMENT_ENTRIES.add(SUMMARY_FILE)


#: A recorder folder's identity ``(inode, mtime_ns, ctime_ns)``: replacing its
#: ``recorder.json`` changes it.
FolderStat = tuple[int, int, int]


@dataclass
class BuildReport:
    """What :func:`experiment_rows` did (for tests and the benchmark)."""

    folders: int = 0
    reused: int = 0
    read: int = 0
    removed: int = 0
    wrote: bool = False


def scan_folders(exp_dir: Path) -> tuple[list[str], list[os.stat_result]]:
    """Recorder folders of an experiment and their ``stat`` (one each, nothing else read)."""
    try:
        with os.scandir(exp_dir) as listing:
            # layout.is_id_name, inlined: ids hold no dot, and every name tracklite keeps
            # beside them (hidden files, experiment.json) does. is_dir() costs no syscall.
            entries = [e for e in listing if "." not in e.name and e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return [], []
    try:
        # Comprehensions: at 10,000 folders the loop's own overhead rivals the stat calls.
        return [e.name for e in entries], [e.stat(follow_symlinks=False) for e in entries]
    except OSError:
        pass  # a folder removed since the listing: go one by one
    names: list[str] = []
    stats: list[os.stat_result] = []
    for entry in entries:
        try:
            stats.append(entry.stat(follow_symlinks=False))
        except OSError:
            continue
        names.append(entry.name)
    return names, stats


def _read_bytes(path: str) -> bytes:
    # os.open/os.read skip the buffered file object: a third of the cost of open() per file.
    # Never through a link (a recorder.json planted as one is skipped, like any unreadable file).
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
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
    experiment_id: str,
    folders: Iterable[tuple[str, FolderStat | None]],
    exp_dir: Path,
) -> pa.Table:
    """Reads the given recorder folders' metadata into a table of rows (column-wise)."""
    import pyarrow as pa

    # String paths: pathlib's joins cost more than the read itself.
    prefix = f"{os.fspath(exp_dir)}{os.sep}"
    suffix = f"{os.sep}{layout.RECORDER_FILE}"
    todo = [(name, stat, f"{prefix}{name}{suffix}") for name, stat in folders]
    tables: list[pa.Table] = []
    pending: list[tuple[str, FolderStat | None, str, bytes]] = []
    for batch in _read_batches(todo):
        pending.extend(batch)
        if len(pending) >= CHUNK:
            # Parsed while the reader threads go on with the next files.
            tables.append(_chunk_rows(experiment_id, pending))
            pending = []
    if pending or not tables:
        tables.append(_chunk_rows(experiment_id, pending))
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive")


def _read_batches(
    todo: list[tuple[str, FolderStat | None, str]],
) -> Iterator[list[tuple[str, FolderStat | None, str, bytes]]]:
    """The files' contents in order, batch by batch (read by a thread pool when many)."""
    batches = [todo[lo : lo + _READ_BATCH] for lo in range(0, len(todo), _READ_BATCH)]
    if len(batches) < 2 or READERS < 2:
        yield from map(_read_batch, batches)
        return
    from concurrent.futures import ThreadPoolExecutor

    # A pool per call: no thread outlives the search (forks and interpreter exit stay simple).
    with ThreadPoolExecutor(min(READERS, len(batches)), "tracklite-search") as pool:
        yield from pool.map(_read_batch, batches)


def _read_batch(
    batch: list[tuple[str, FolderStat | None, str]],
) -> list[tuple[str, FolderStat | None, str, bytes]]:
    done = []
    for name, stat, path in batch:
        try:
            done.append((name, stat, path, _read_bytes(path)))
        except (FileNotFoundError, NotADirectoryError):
            continue  # a folder being created, deleted or quarantined right now
        except OSError as exc:  # a folder in the file's place, an unreadable file
            metadata.skipped(metadata.error(path, exc.strerror or str(exc)), stacklevel=6)
    return done


def _chunk_rows(
    experiment_id: str, chunk: list[tuple[str, FolderStat | None, str, bytes]]
) -> pa.Table:
    """Rows of one chunk of files: Arrow's parser, else the json module file by file."""
    names = [c[0] for c in chunk]
    stats = [c[1] for c in chunk]
    table = _arrow_rows(experiment_id, names, [c[3] for c in chunk], stats)
    if table is not None:
        return table
    kept = [(n, m, st) for n, st, p, b in chunk if (m := parse_meta(p, b)) is not None]
    return metas_table(
        experiment_id, [k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept]
    )


def _arrow_rows(
    experiment_id: str, names: list[str], blobs: list[bytes], stats: list[FolderStat | None]
) -> pa.Table | None:
    """The rows of ``recorder.json`` files parsed by Arrow's JSON reader (in C++, about four
    times faster than ``json.loads`` plus flattening), or None if anything about them is not
    as tracklite writes it; the caller then takes the ``json`` module's path."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not names or any(not b.lstrip().startswith(b"{") for b in blobs):
        return None
    try:
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
        if fixed:
            parsed = _read_json(data, known + fixed, one_line)
        # One object per file, in order: the ids written inside must match the folders.
        if parsed.num_rows != len(names) or "id" not in parsed.column_names:
            return None
        if parsed.column("id").to_pylist() != names:
            return None
        if "format_version" in parsed.column_names:
            newest = pc.max(parsed.column("format_version")).as_py()
            if not isinstance(newest, int) or newest > layout.FORMAT_VERSION:
                return None  # the json path warns about each such file
        n = len(names)

        def text(key: str, default: str | None = None) -> pa.Array[Any]:
            if key not in parsed.column_names:
                return pa.array([default] * n, string)
            column = parsed.column(key).combine_chunks()
            if not (pa.types.is_string(column.type) or pa.types.is_null(column.type)):
                raise TypeError(key)
            column = column.cast(string)
            return column.fill_null(default) if default is not None else column

        status = text("status")
        columns: dict[str, Any] = {
            RUN_ID: pa.array(names, string),
            EXPERIMENT_ID: pa.array([experiment_id] * n, string),
            NAME: text("name"),
            STATUS: status,
            LIFECYCLE: text("lifecycle", "active"),
            START: text("start_time"),
            END: text("end_time"),
            OWNER: _running_owners(parsed, status),
            INO: pa.array([_signed(s[0]) if s else None for s in stats], pa.int64()),
            MTIME: pa.array([s[1] if s else None for s in stats], pa.int64()),
            CTIME: pa.array([s[2] if s else None for s in stats], pa.int64()),
        }
        for key, child in _fields(parsed, "metrics"):
            value = dict(_struct_fields(child)).get("value")
            if value is None or not (
                pa.types.is_floating(value.type) or pa.types.is_integer(value.type)
            ):
                raise TypeError(key)
            columns[f"metrics.{key}"] = value.cast(pa.float64())
        for prefix in ("params", "tags"):
            for key, child in _fields(parsed, prefix):
                if not (pa.types.is_string(child.type) or pa.types.is_null(child.type)):
                    raise TypeError(key)
                columns[f"{prefix}.{key}"] = child.cast(string)
        return pa.table(columns)
    except (pa.ArrowException, TypeError, ValueError, KeyError):
        return None


_STRING_KEYS: Final = (
    "id",
    "name",
    "experiment_id",
    "status",
    "lifecycle",
    "start_time",
    "end_time",
)


def _read_json(data: bytes, fields: list[pa.Field[Any]], one_line: bool) -> pa.Table:
    import io

    import pyarrow as pa
    import pyarrow.json as pj

    options = pj.ParseOptions(
        explicit_schema=pa.schema(fields),
        newlines_in_values=not one_line,
        unexpected_field_behavior="infer",
    )
    return pj.read_json(io.BytesIO(data), parse_options=options)


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
    stats: list[FolderStat | None],
) -> pa.Table:
    """Flattens recorder metadata into one row each; ids come from the folder names."""
    import pyarrow as pa

    n = len(metas)
    params = _columns_of([m.get("params") for m in metas])
    tags = _columns_of([m.get("tags") for m in metas])
    metrics = _columns_of([m.get("metrics") for m in metas])
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
        INO: pa.array([_signed(s[0]) if s else None for s in stats], pa.int64()),
        MTIME: pa.array([s[1] if s else None for s in stats], pa.int64()),
        CTIME: pa.array([s[2] if s else None for s in stats], pa.int64()),
    }
    for key, entries_of_key in metrics.items():
        columns[f"metrics.{key}"] = _metric_array(entries_of_key)
    for prefix, table in (("params", params), ("tags", tags)):
        for key, values in table.items():
            columns[f"{prefix}.{key}"] = _string_array(values)
    return pa.table(columns)


def _signed(ino: int) -> int:
    # Inodes are unsigned 64-bit; stored as int64 with the same bits.
    return ino - (1 << 64) if ino >= 1 << 63 else ino


def _string_array(values: list[Any]) -> pa.Array[Any]:
    import pyarrow as pa

    try:
        return pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Params and tags are strings by contract; a hand-edited file may hold other values.
        return pa.array([v if v is None or isinstance(v, str) else str(v) for v in values])


def _metric_array(entries: list[Any]) -> pa.Array[Any]:
    """Latest values from ``{"value", "step", "timestamp"}`` entries; NaN if malformed."""
    import pyarrow as pa

    try:
        return pa.array([None if e is None else e["value"] for e in entries], pa.float64())
    except (TypeError, KeyError, IndexError, pa.ArrowInvalid, pa.ArrowTypeError):
        pass  # a hand-edited entry somewhere in the column: go value by value
    values: list[float | None] = []
    for entry in entries:
        try:
            values.append(None if entry is None else float(entry["value"]))
        except (TypeError, KeyError, IndexError, ValueError):
            values.append(float("nan"))
    return pa.array(values, pa.float64())


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


def read_summary(path: Path, experiment_id: str) -> tuple[pa.Table, int] | None:
    """The cached rows and their build time, or None if absent, foreign or unreadable."""
    import pyarrow as pa

    try:
        # Read whole, never memory-mapped: on NFS another client replacing the file would
        # turn a mapped page into SIGBUS.
        data = _read_bytes(os.fspath(path))
        table = pa.ipc.open_file(pa.BufferReader(data)).read_all()
        info = json.loads((table.schema.metadata or {})[META_KEY])
        built = int(info["built_ns"])
        if info.get("version") != CACHE_VERSION or info.get("experiment_id") != experiment_id:
            return None
        for column in (RUN_ID, *_STAT_COLUMNS):
            table.column(column)  # KeyError if missing
    except Exception:  # absent or damaged just means "no cache": it is rebuilt
        return None
    return table, built


def experiment_rows(
    root: Path,
    experiment_id: str,
    *,
    use_cache: bool = True,
    racy_ns: int | None = None,
    report: BuildReport | None = None,
) -> pa.Table:
    """Every recorder row of one experiment (all lifecycles), through the summary cache.

    With ``use_cache=False`` every ``recorder.json`` is read and nothing is written.
    ``racy_ns`` defaults to :data:`RACY_NS`.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    racy = RACY_NS if racy_ns is None else racy_ns
    report = report if report is not None else BuildReport()
    exp_dir = root / experiment_id
    names, found = scan_folders(exp_dir)
    stats = [(st.st_ino, st.st_mtime_ns, st.st_ctime_ns) for st in found]
    report.folders = len(names)
    if not use_cache:
        table = rows_table(experiment_id, zip(names, stats, strict=True), exp_dir)
        report.read = table.num_rows
        return table.drop_columns(list(_STAT_COLUMNS))

    summary_path = exp_dir / SUMMARY_FILE
    cached = read_summary(summary_path, experiment_id)
    kept: pa.Table | None = None
    # Vectorised: this validation is the whole cost of a search with a current summary.
    ino = np.array([s[0] for s in stats], dtype=np.uint64).view(np.int64)
    mtime = np.array([s[1] for s in stats], dtype=np.int64)
    ctime = np.array([s[2] for s in stats], dtype=np.int64)
    reused = np.zeros(len(names), dtype=bool)
    if cached is not None:
        table, built = cached
        # Each cached row's position among the folders found now (-1: folder gone).
        where = pc.index_in(table.column(RUN_ID), value_set=pa.array(names, pa.string()))
        pos = np.asarray(where.fill_null(-1).to_numpy(), dtype=np.intp)
        present = pos >= 0
        at = np.where(present, pos, 0)
        old_mtime = _int_column(table, MTIME)
        # Reused only if the folder is the same (inode), untouched since it was read (mtime,
        # ctime) and not racy (old enough that a coarse clock cannot hide a later change).
        if names:
            keep = (
                present
                & (_int_column(table, INO) == ino[at])
                & (old_mtime == mtime[at])
                & (_int_column(table, CTIME) == ctime[at])
                & (old_mtime < built - racy)
            )
        else:  # every folder is gone
            keep = np.zeros(len(pos), dtype=bool)
        kept = table if keep.all() else table.filter(pa.array(keep))
        reused[pos[keep]] = True
        report.reused = kept.num_rows
        report.removed = int((~present).sum())
    fresh = [(names[i], stats[i]) for i in np.flatnonzero(~reused)]

    # Rewriting the file costs about as much as re-reading 1% of the rows, so a few changes
    # (runs still logging) are re-read each time rather than rewritten into the cache.
    settled_before = time.time_ns() - racy
    settled = int((mtime[~reused] < settled_before).sum()) + report.removed
    threshold = 1 if cached is None else max(1, len(names) // 100)
    temp: _Temp | None = None
    built_ns = 0
    if settled >= threshold:
        # Created *before* the rows are read: its mtime is the build time on the filesystem's
        # clock, which the racy rule compares folder mtimes with.
        temp, built_ns = _open_temp(summary_path)
    try:
        new_rows = rows_table(experiment_id, fresh, exp_dir)
        report.read = new_rows.num_rows
        rows = new_rows
        if kept is not None and not new_rows.num_rows:
            rows = kept
        elif kept is not None and kept.num_rows:
            rows = pa.concat_tables([kept, new_rows], promote_options="permissive")
        if temp is not None:
            report.wrote = _publish(temp, summary_path, rows, experiment_id, built_ns)
            temp = None
    finally:
        if temp is not None:
            _discard(temp)
    return rows.drop_columns(list(_STAT_COLUMNS))


def _int_column(table: pa.Table, name: str) -> Any:
    import numpy as np

    # Inodes are unsigned; comparing their int64 bit patterns is exact.
    column: Any = table.column(name)
    return column.fill_null(-2).to_numpy().astype(np.int64, copy=False)


@dataclass
class _Temp:
    path: Path
    file: Any


def _open_temp(target: Path) -> tuple[_Temp | None, int]:
    """A new temporary file beside ``target`` and the filesystem's clock at its creation."""
    tmp = atomic.temp_name(target)
    try:
        file = open(tmp, "wb")  # noqa: SIM115 - closed by _publish or _discard
    except OSError:
        return None, 0  # read-only store, quota, permissions: searching goes on uncached
    try:
        built = os.fstat(file.fileno()).st_mtime_ns
    except OSError:
        _discard(_Temp(tmp, file))
        return None, 0
    return _Temp(tmp, file), built


def _publish(temp: _Temp, target: Path, rows: pa.Table, experiment_id: str, built: int) -> bool:
    import pyarrow as pa

    info = {"version": CACHE_VERSION, "experiment_id": experiment_id, "built_ns": built}
    rows = rows.replace_schema_metadata({META_KEY: json.dumps(info).encode()})
    try:
        # Arrow IPC, uncompressed: reading it back is a copy, not a decode (10,000 rows in a
        # few milliseconds, where Parquet takes tens).
        with pa.ipc.new_file(temp.file, rows.schema) as writer:
            writer.write_table(rows)
        temp.file.flush()
        if atomic.FSYNC:
            os.fsync(temp.file.fileno())
        temp.file.close()
        os.replace(temp.path, target)
    except Exception:  # best effort: the rows are returned either way
        _discard(temp)
        return False
    return True


def _discard(temp: _Temp) -> None:
    with contextlib.suppress(OSError):
        temp.file.close()
    with contextlib.suppress(OSError):
        os.unlink(temp.path)


def drop_summaries(root: Path) -> int:
    """Deletes every experiment's summary file (always safe); returns how many existed."""
    dropped = 0
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return 0
    for name in names:
        if layout.is_id_name(name):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                os.unlink(root / name / SUMMARY_FILE)
                dropped += 1
    return dropped
