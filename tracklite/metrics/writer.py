"""The metric writer: one background thread per process that batches every recorder's points.

A caller only validates and appends to the recorder's column buffers (``array`` objects: about
28 bytes a point, no Python object per point). The thread turns each buffer into one Parquet
segment per flush, and folds the batch's latest values, params and tags into ``recorder.json``
with a single locked rewrite. A flush happens:

- every ``flush_interval`` seconds (default 1 s, ``TRACKLITE_FLUSH_INTERVAL``);
- when a buffer holds ``flush_points`` points;
- on ``flush()`` / ``end_run`` / any read of the recorder in this process (in the caller's thread);
- at interpreter exit (``atexit``) and when SIGTERM ends the process (see ``exit_hooks``).

Nothing accepted is dropped silently: when a write fails, the batch goes back to the front of
the buffer and the error is raised by the recorder's next call, flush or ``end_run``. Memory is
bounded: a caller whose buffer holds ``max_points`` waits for it to be written (back-pressure).
After ``os.fork`` the child starts with empty buffers and no thread; the parent's pending points
stay the parent's to write.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
import warnings
from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import write_error
from ..liveness import HEARTBEAT_INTERVAL, beat
from ..store.names import check_key
from ..store.ref import RecorderRef
from ..store.root import Meta, Store
from . import latest, segments
from .values import PLAIN_TYPES, check_values, to_float, to_step

if TYPE_CHECKING:
    from types import FrameType

    import pyarrow as pa

FLUSH_INTERVAL = float(os.environ.get("TRACKLITE_FLUSH_INTERVAL", "1.0"))
FLUSH_POINTS = int(os.environ.get("TRACKLITE_FLUSH_POINTS", "262144"))
MAX_POINTS = int(os.environ.get("TRACKLITE_MAX_BUFFERED_POINTS", "1048576"))
#: Where tracklite's own files lie (as its frames name them), for warnings that point past them.
_PACKAGE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "")

_time_ns = time.time_ns
_INT64_MIN = -(2**63)


class RecorderBuffer:
    """Pending points and metadata changes of one recorder in this process.

    Points are kept as columns: ``codes``/``values`` per point, and per *run* (one logging call,
    or one point of the batch API) its step, timestamp and size, expanded at flush time. A
    one-key call costs 32 bytes; a ten-key call 14 bytes a point.
    """

    __slots__ = (
        "codes",
        "error",
        "flush_lock",
        "full",
        "key_codes",
        "keys",
        "lock",
        "params",
        "pending_latest",
        "ref",
        "run_sizes",
        "run_stamps",
        "run_steps",
        "running",
        "shapes",
        "tags",
        "values",
        "writer",
    )

    def __init__(self, writer: MetricWriter, ref: RecorderRef) -> None:
        self.writer = writer
        self.ref = ref
        self.lock = threading.Lock()
        # Held for a whole swap-and-write, so flush() waits for a write in flight.
        self.flush_lock = threading.RLock()
        self.keys: list[str] = []
        self.key_codes: dict[str, int] = {}
        # The codes of each tuple of keys seen: a training loop logs the same few tuples.
        self.shapes: dict[tuple[str, ...], array[int]] = {}
        self._reset_columns()
        self.params: dict[str, str] = {}
        self.tags: dict[str, str | None] = {}  # None marks a deleted tag
        self.pending_latest: dict[str, Any] = {}
        self.error: BaseException | None = None
        # Set when the buffer reached ``max_points``: the next call first writes it (the
        # caller waits), and is refused, with nothing kept, if that write fails.
        self.full = False
        self.running = False

    def _reset_columns(self) -> None:
        self.codes = array("i")
        self.values = array("d")
        self.run_sizes = array("i")
        self.run_steps = array("q")
        self.run_stamps = array("q")

    # -------------------------------------------------------------- caller side (hot path)

    def log(self, step: Any, items: dict[str, Any], stamp: int | None = None) -> None:
        """Validate one call's points and append them; the whole call or nothing. ``stamp``
        (Unix ms, now by default) is the points' timestamp."""
        if self.error is not None:
            self.raise_error()
        if self.full:
            self.writer.relieve(self)
        if step is None:
            step = 0
        elif type(step) is not int:
            step = to_step(step)
        keys = tuple(items)
        # A memo of each key set's codes (``_codes_for`` gives the same ones again): only
        # timing could tell it missing (not mutation-tested).
        codes = self.shapes.get(keys)  # pragma: no mutate
        if codes is None:
            if not keys:
                return
            codes = self._codes_for(keys)
        if not PLAIN_TYPES.issuperset(map(type, items.values())):
            items = check_values(items)  # TypeError naming the key; nothing is queued
        if stamp is None:
            stamp = _time_ns() // 1_000_000
        size = 0
        with self.lock:
            values = self.values
            mark = len(values)
            try:
                # The C-level append checks every value (floats, ints, bools, numpy scalars).
                values.extend(items.values())
            except Exception:
                del values[mark:]  # nothing of a bad call is kept
            else:
                # Points first, then the run: a signal landing between two appends leaves
                # points without a run, which the flush trims (that call never returned).
                # The step goes first: it is the one append that can fail (outside int64), and
                # a refused call must leave no values behind to shift onto later runs.
                try:
                    self.run_steps.append(step)
                except OverflowError:
                    del values[mark:]
                    raise ValueError(f"step {step} is outside the int64 range") from None
                self.codes.extend(codes)
                self.run_sizes.append(len(keys))
                self.run_stamps.append(stamp)
                size = mark + len(keys)
        if size:
            if size >= self.writer.flush_points:
                self.writer.pressure(self, size)
            return
        # The types were checked above, so only an int beyond the float range gets here.
        for key, value in items.items():
            to_float(key, value)  # raises, naming the key
        # Unreachable while to_float and array("d") agree (not mutation-tested).
        raise AssertionError(f"{sorted(items)} refused but pass to_float")  # pragma: no mutate

    def log_key_columns(self, key: str, steps: Any, values: Any, stamps: Any) -> None:
        """Append one key's already validated numpy columns (int64, float64, int64)."""
        if self.error is not None:
            self.raise_error()
        if self.full:
            self.writer.relieve(self)
        import numpy as np

        code = self._codes_for((key,))[0]
        count = len(values)
        with self.lock:
            self.codes.frombytes(np.full(count, code, dtype=np.int32).tobytes())
            self.values.frombytes(values.tobytes())
            self.run_sizes.frombytes(np.ones(count, dtype=np.int32).tobytes())
            self.run_steps.frombytes(steps.tobytes())
            self.run_stamps.frombytes(stamps.tobytes())
            size = len(self.values)
        if size >= self.writer.flush_points:
            self.writer.pressure(self, size)

    def _codes_for(self, keys: tuple[str, ...]) -> array[int]:
        for key in keys:
            if key not in self.key_codes:
                check_key(key, "metric key")
        with self.lock:
            for key in keys:
                if key not in self.key_codes:
                    self.key_codes[key] = len(self.keys)
                    self.keys.append(key)
            codes = array("i", [self.key_codes[key] for key in keys])
            # The memo of key sets (see ``log``; not mutation-tested).
            if len(self.shapes) > 1024:  # pragma: no mutate
                self.shapes.clear()  # pragma: no mutate  # keys vary per call: bound the memo
            self.shapes[keys] = codes  # pragma: no mutate
        return codes

    def update_meta(
        self, params: dict[str, str] | None = None, tags: dict[str, str | None] | None = None
    ) -> None:
        """Queue param and tag changes (a tag value of None deletes the tag)."""
        if self.error is not None:
            self.raise_error()
        with self.lock:
            if params:
                self.params.update(params)
            if tags:
                self.tags.update(tags)

    def raise_error(self) -> None:
        error, self.error = self.error, None
        assert error is not None
        raise write_error(self.ref.recorder_id, self.ref.dir, error) from error

    def pending(self) -> int:
        return len(self.values)

    def dirty(self) -> bool:
        return bool(self.values or self.params or self.tags or self.pending_latest)

    # -------------------------------------------------------------- writing (any thread)

    def _take(self) -> tuple[Any, ...]:
        """Swap the columns out (caller holds ``lock``)."""
        taken = (self.codes, self.values, self.run_sizes, self.run_steps, self.run_stamps)
        self._reset_columns()
        return taken

    def _put_back(self, taken: tuple[Any, ...]) -> None:
        """Return swapped-out columns to the front (caller holds ``lock``)."""
        codes, values, sizes, steps, stamps = taken
        self.codes = codes + self.codes
        self.values = values + self.values
        self.run_sizes = sizes + self.run_sizes
        self.run_steps = steps + self.run_steps
        self.run_stamps = stamps + self.run_stamps

    def flush(self, finish: Callable[[Meta], None] | None = None) -> None:
        """Write what is pending as one segment and one metadata rewrite.

        ``finish`` is applied to the metadata in the same rewrite (``end_run`` uses it to set
        the final status). On failure everything goes back into the buffer and the error is
        raised here (and kept for the next call when raised in the writer thread).
        """
        with self.flush_lock:
            with self.lock:
                taken = self._take()
                self.full = False
                keys = list(self.keys)
                params, tags = self.params, self.tags
                self.params, self.tags = {}, {}
            taken = _aligned(taken)
            written = False
            try:
                columns = _columns(taken)
                if columns is not None:
                    batch_latest = _batch_latest(keys, *columns)
                    segments.write_segment(self.ref.metrics_dir, _to_table(keys, *columns))
                    written = True
                    latest.merge_entries(self.pending_latest, batch_latest)
                if self.pending_latest or params or tags or finish is not None:
                    summary = self.pending_latest

                    def fold(meta: Meta) -> None:
                        latest.merge_entries(meta["metrics"], summary)
                        meta["params"].update(params)
                        for key, value in tags.items():
                            if value is None:
                                meta["tags"].pop(key, None)
                            else:
                                meta["tags"][key] = value
                        if finish is not None:
                            finish(meta)
                        # Past a thousand keys the summary goes to a file of its own, rewritten
                        # only when the entries logged since outgrow that again.
                        latest.spill(self.ref.dir, meta)

                    Store(self.ref.root).update_recorder(
                        self.ref.experiment_id, self.ref.recorder_id, fold
                    )
                    self.pending_latest = {}
            except BaseException:
                with self.lock:
                    if not written:
                        self._put_back(taken)
                        self.full = len(self.values) >= self.writer.max_points
                    params.update(self.params)
                    self.params = params
                    tags.update(self.tags)
                    self.tags = tags
                raise

    def reset_after_fork(self) -> None:
        self.lock = threading.Lock()
        self.flush_lock = threading.RLock()
        self._reset_columns()
        self.params, self.tags, self.pending_latest = {}, {}, {}
        self.error = None
        self.full = False


def _warm_up() -> None:
    # Pays the first use of numpy and pyarrow in the writer thread; the table is thrown away
    # and errors are ignored, so only timing could tell a change here (not mutation-tested).
    import numpy as np

    codes = np.zeros(1, dtype=np.int32)  # pragma: no mutate
    stamps = np.zeros(1, dtype=np.int64)  # pragma: no mutate
    _to_table(["warm-up"], codes, np.zeros(1), stamps, stamps)  # pragma: no mutate
    import portalocker  # noqa: F401  # the metadata rewrite's lock
    import pyarrow.parquet  # noqa: F401


def _aligned(taken: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the partial tail a signal may leave (points appended, run not): such a call never
    returned, so it was never accepted. Keeps put-back columns consistent too."""
    import numpy as np

    codes, values, sizes, steps, stamps = taken
    runs = min(len(sizes), len(steps), len(stamps))
    if runs != len(sizes) or runs != len(steps) or runs != len(stamps):
        sizes, steps, stamps = sizes[:runs], steps[:runs], stamps[:runs]
    total = int(np.frombuffer(sizes, dtype=np.int32).sum()) if runs else 0
    if len(codes) != total or len(values) != total:
        codes, values = codes[:total], values[:total]
    return codes, values, sizes, steps, stamps


def _columns(taken: tuple[Any, ...]) -> tuple[Any, Any, Any, Any] | None:
    """Per-point numpy columns (codes, values, steps, stamps) from aligned buffers."""
    import numpy as np

    codes, values, sizes, steps, stamps = taken
    if not sizes:
        return None
    sizes_np = np.frombuffer(sizes, dtype=np.int32)
    return (
        np.frombuffer(codes, dtype=np.int32),
        np.frombuffer(values, dtype=np.float64),
        np.repeat(np.frombuffer(steps, dtype=np.int64), sizes_np),
        np.repeat(np.frombuffer(stamps, dtype=np.int64), sizes_np),
    )


def _to_table(keys: list[str], codes: Any, values: Any, steps: Any, stamps: Any) -> pa.Table:
    import pyarrow as pa

    # Written as a dictionary column (no per-point string is ever built); segments are written
    # without the Arrow schema, so every reader sees a plain string column.
    key_col = pa.DictionaryArray.from_arrays(_arrow(codes, pa.int32()), _strings(keys))
    return pa.table(
        {
            "key": key_col,
            "step": _arrow(steps, pa.int64()),
            "value": _arrow(values, pa.float64()),
            "timestamp": _arrow(stamps, pa.timestamp("ms", tz="UTC")),
        }
    )


def _strings(keys: list[str]) -> pa.Array[Any]:
    """An Arrow string array built from its buffers (see :func:`_arrow` for why)."""
    import numpy as np
    import pyarrow as pa

    encoded = [key.encode() for key in keys]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(item) for item in encoded], out=offsets[1:])
    return pa.StringArray.from_buffers(  # type: ignore[no-any-return]
        len(encoded), pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(encoded))
    )


def _arrow(column: Any, kind: pa.DataType) -> pa.Array[Any]:
    """A zero-copy Arrow array over a contiguous numpy column.

    ``pa.array(...)`` would first ask whether the object is a pandas Series, importing pandas
    (half a second) in the writer thread, or failing outright at interpreter exit.
    """
    import numpy as np
    import pyarrow as pa

    data = np.ascontiguousarray(column)
    return pa.Array.from_buffers(kind, len(data), [None, pa.py_buffer(data)])  # type: ignore[arg-type]


def _batch_latest(
    keys: list[str], codes: Any, values: Any, steps: Any, stamps: Any
) -> dict[str, Any]:
    """The latest point of each key in a batch, by MLflow's rule: highest step, then newest
    timestamp, then largest value. Narrowed one criterion at a time with ``maximum.at``, which
    is linear, instead of a four-key sort."""
    import numpy as np

    # The first pass runs over the whole batch; it usually leaves one row per key (a step is
    # logged once), so the later passes, and their temporaries, are tiny.
    best_step = np.full(len(keys), _INT64_MIN, dtype=np.int64)
    np.maximum.at(best_step, codes, steps)
    rows = np.flatnonzero(steps == best_step[codes])
    for column, lowest in ((stamps, _INT64_MIN), (values, -np.inf)):
        row_codes = codes[rows]
        row_values = column[rows]
        if column is values:  # NaN ranks lowest, so a later real value can win a tie
            row_values = np.where(np.isnan(row_values), -np.inf, row_values)
        best = np.full(len(keys), lowest, dtype=row_values.dtype)
        np.maximum.at(best, row_codes, row_values)
        rows = rows[row_values == best[row_codes]]
    # Rows left tie on all three criteria within their key: keep one per key.
    _, first = np.unique(codes[rows], return_index=True)
    return {
        keys[int(codes[i])]: {
            "value": float(values[i]),
            "step": int(steps[i]),
            "timestamp": int(stamps[i]),
        }
        for i in rows[first]
    }


def _outside_tracklite(frame: FrameType) -> int:
    """The ``stacklevel`` that points a warning raised in ``frame`` at the line that called
    into tracklite (the caller of its outermost frame), however deep the call came in
    (``R.flush``, ``Recorder.flush``, ``R.end_exp``, a ``with R.start()`` block)."""
    level = found = 1
    while frame.f_back is not None:
        if frame.f_code.co_filename.startswith(_PACKAGE):
            found = level + 1
        frame = frame.f_back
        level += 1
    return found


class MetricWriter:
    """This process's writer: buffers by recorder and the background thread."""

    def __init__(self) -> None:
        self.flush_interval = FLUSH_INTERVAL
        self.flush_points = FLUSH_POINTS
        self.max_points = MAX_POINTS
        self._buffers: dict[RecorderRef, RecorderBuffer] = {}
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._warmed = threading.Event()
        self._last_beat = 0.0
        self._last_flush = time.monotonic()
        self._closed = False

    def configure(
        self,
        *,
        flush_interval: float | None = None,
        flush_points: int | None = None,
        max_points: int | None = None,
    ) -> None:
        """Change the flush bounds of this process's writer."""
        if flush_interval is not None:
            if not flush_interval > 0:
                raise ValueError(f"flush_interval must be > 0 seconds, got {flush_interval!r}")
            self.flush_interval = float(flush_interval)
        if flush_points is not None:
            if flush_points < 1:
                raise ValueError(f"flush_points must be >= 1, got {flush_points!r}")
            self.flush_points = int(flush_points)
        if max_points is not None:
            if max_points < self.flush_points:
                raise ValueError("max_points must be >= flush_points")
            self.max_points = int(max_points)
        self._wake.set()

    # -------------------------------------------------------------- recorders

    def buffer(self, ref: RecorderRef) -> RecorderBuffer:
        """The buffer of ``ref`` (created on first use)."""
        buf = self._buffers.get(ref)
        if buf is None:
            with self._guard:
                buf = self._buffers.get(ref)
                if buf is None:
                    buf = self._buffers[ref] = RecorderBuffer(self, ref)
        if self._thread is None:
            self._start_thread()
        return buf

    def attach(self, ref: RecorderRef) -> RecorderBuffer:
        """Register ``ref`` as running in this process (heartbeats, time-based flushes)."""
        buf = self.buffer(ref)
        buf.running = True
        return buf

    def flush(self, ref: RecorderRef | None = None) -> None:
        """Write everything pending for ``ref`` (or every recorder) and raise a kept error."""
        if ref is None:
            errors = []
            for buf in list(self._buffers.values()):
                try:
                    self._flush_buffer(buf)
                except Exception as exc:
                    errors.append(exc)
            if errors:
                raise errors[0]
            return
        found = self._buffers.get(ref)
        if found is not None:
            self._flush_buffer(found)

    def _flush_buffer(
        self, buf: RecorderBuffer, finish: Callable[[Meta], None] | None = None
    ) -> None:
        # An error the thread kept is not raised before trying again: the points it refused
        # are still queued, and a flush that now succeeds has lost nothing. It is reported
        # either way: raised with the new failure, or as a warning once the points are safe.
        earlier, buf.error = buf.error, None
        try:
            buf.flush(finish)
        except Exception as exc:
            raise write_error(buf.ref.recorder_id, buf.ref.dir, exc) from exc
        if earlier is not None:
            warnings.warn(
                f"an earlier background write of recorder {buf.ref.recorder_id} failed "
                f"({earlier}); its points were kept and are now written",
                RuntimeWarning,
                stacklevel=_outside_tracklite(sys._getframe()),
            )

    def finish(self, ref: RecorderRef, finish: Callable[[Meta], None]) -> None:
        """Final flush of a run: points and one metadata rewrite that also applies ``finish``
        (status, end time), then compaction into one segment. The buffer is forgotten."""
        from .compaction import compact_recorder

        buf = self.buffer(ref)
        buf.running = False
        self._flush_buffer(buf, finish)
        compact_recorder(ref)
        with self._guard:
            if not buf.dirty():
                self._buffers.pop(ref, None)

    def pressure(self, buf: RecorderBuffer, size: int) -> None:
        """Called after a caller's append made its buffer large: wake the thread, and mark a
        full buffer so the recorder's next call writes it first."""
        self._wake.set()
        if size >= self.max_points:
            buf.full = True

    def relieve(self, buf: RecorderBuffer) -> None:
        """Back-pressure: write a full buffer in the caller's thread before it may append
        again. A failed write raises here, before the caller's points are taken, so memory
        stays bounded and nothing the caller was told is accepted gets lost. (The flush clears
        ``full`` when it takes the points, or sets it again if it fails.)"""
        self._flush_buffer(buf)

    # -------------------------------------------------------------- the thread

    def _start_thread(self) -> None:
        with self._guard:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="tracklite-writer", daemon=True)
            self._thread = thread
            self._closed = False
            thread.start()
        _flush_at_multiprocessing_exit(self)

    def _run(self) -> None:
        # Import the writing stack here, at the start of a run, rather than at the first flush
        # in the middle of a training loop (pyarrow's first use costs ~0.3 s).
        try:
            # Its errors (e.g. at shutdown) are left for the first flush to tell; none can be
            # provoked in a test, as the warm-up is only timing (not mutation-tested).
            with contextlib.suppress(Exception):  # pragma: no mutate
                _warm_up()
        finally:
            self._warmed.set()
        while not self._closed:
            try:
                self._cycle()
            except Exception as exc:  # the thread must outlive anything unexpected
                print(f"tracklite: metric writer error: {exc!r}", file=sys.stderr)

    def _cycle(self) -> None:
        """One wake-up: flush what is pending when due (or asked), refresh heartbeats when due.

        The thread sleeps until the earlier of the two: heartbeats never wait for a flush, so a
        flush interval longer than ``STALE_AFTER`` cannot make a live run read DEAD elsewhere.
        """
        due_flush = self._last_flush + self.flush_interval
        due_beat = self._last_beat + HEARTBEAT_INTERVAL
        woken = self._wake.wait(max(0.0, min(due_flush, due_beat) - time.monotonic()))
        self._wake.clear()
        if self._closed:
            return
        now = time.monotonic()
        if woken or now >= due_flush:
            self._last_flush = now
            for buf in list(self._buffers.values()):
                if buf.dirty() and buf.error is None:
                    try:
                        buf.flush()
                    except Exception as exc:
                        buf.error = exc  # raised by the recorder's next call, flush or end_run
        if now >= due_beat:
            self._last_beat = now
            for buf in list(self._buffers.values()):
                if buf.running:
                    beat(buf.ref.dir)

    def close(self) -> None:
        """Flush everything and stop the thread (interpreter exit)."""
        self._closed = True
        self._wake.set()
        for buf in list(self._buffers.values()):
            try:
                buf.flush()
            except Exception as exc:  # nothing to raise to at exit: report it
                print(
                    f"tracklite: could not write pending metrics of {buf.ref.dir}: {exc}",
                    file=sys.stderr,
                )

    def _before_fork(self) -> None:
        # A fork while this thread imports would leave the child a module import lock that no
        # thread of the child holds: the child's next import of that module hangs forever.
        thread = self._thread
        if thread is not None and thread is not threading.current_thread() and thread.is_alive():
            self._warmed.wait(timeout=30)

    def _after_fork_in_child(self) -> None:
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._warmed = threading.Event()
        self._thread = None
        # Buffers stay registered (recorder objects in the child hold them) but empty: the
        # parent writes its own pending points, the child only what it logs itself.
        for buf in self._buffers.values():
            buf.reset_after_fork()
        if self._buffers:
            self._start_thread()
            if "multiprocessing" in sys.modules:
                from multiprocessing import util

                # A multiprocessing child clears the finalizers registered so far (the one
                # _start_thread just added included) after this hook, then runs its after-fork
                # callbacks: register the exit flush again from there.
                util.register_after_fork(self, _flush_at_multiprocessing_exit)


def _flush_at_multiprocessing_exit(writer: MetricWriter) -> None:
    """multiprocessing children leave through ``os._exit``, skipping ``atexit``; its own exit
    finalizers do run, so register the final flush there too."""
    import sys

    if "multiprocessing" in sys.modules:
        from multiprocessing import util

        util.Finalize(writer, writer.close, exitpriority=100)


_writer: MetricWriter | None = None
_writer_guard = threading.Lock()


def get_writer() -> MetricWriter:
    """This process's metric writer."""
    global _writer
    writer = _writer
    if writer is None:
        with _writer_guard:
            if _writer is None:
                _writer = MetricWriter()
                atexit.register(_close_at_exit)
            writer = _writer
    return writer


def configure(
    *,
    flush_interval: float | None = None,
    flush_points: int | None = None,
    max_points: int | None = None,
) -> None:
    """Tune this process's metric writer.

    :param flush_interval: seconds between background flushes (default 1, or
        ``$TRACKLITE_FLUSH_INTERVAL``): how stale another process's view may be.
    :param flush_points: a recorder holding this many points is flushed at once.
    :param max_points: a recorder holding this many points makes its caller wait
        (back-pressure) until they are written; bounds memory at ~32 bytes a point.
    """
    get_writer().configure(
        flush_interval=flush_interval, flush_points=flush_points, max_points=max_points
    )


def _close_at_exit() -> None:
    if _writer is not None:
        _writer.close()


def _before_fork() -> None:
    if _writer is not None:
        _writer._before_fork()


def _after_fork_in_child() -> None:
    global _writer_guard
    _writer_guard = threading.Lock()
    if _writer is not None:
        _writer._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
