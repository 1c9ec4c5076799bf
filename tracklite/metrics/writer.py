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
import os
import threading
import time
from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import MetricWriteError
from ..liveness import HEARTBEAT_INTERVAL, beat
from ..store.names import check_key
from ..store.ref import RecorderRef
from ..store.root import Meta, Store
from . import latest, segments
from .values import to_float, to_step

if TYPE_CHECKING:
    import pyarrow as pa

FLUSH_INTERVAL = float(os.environ.get("TRACKLITE_FLUSH_INTERVAL", "1.0"))
FLUSH_POINTS = int(os.environ.get("TRACKLITE_FLUSH_POINTS", "262144"))
MAX_POINTS = int(os.environ.get("TRACKLITE_MAX_BUFFERED_POINTS", "2097152"))

_time_ns = time.time_ns


class RecorderBuffer:
    """Pending points and metadata changes of one recorder in this process."""

    __slots__ = (
        "codes",
        "error",
        "flush_lock",
        "key_codes",
        "keys",
        "lock",
        "params",
        "pending_latest",
        "ref",
        "running",
        "stamps",
        "steps",
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
        self.codes = array("i")
        self.values = array("d")
        self.steps = array("q")
        self.stamps = array("q")
        self.params: dict[str, str] = {}
        self.tags: dict[str, str | None] = {}  # None marks a deleted tag
        self.pending_latest: dict[str, Any] = {}
        self.error: BaseException | None = None
        self.running = False

    # -------------------------------------------------------------- caller side (hot path)

    def log(self, step: Any, items: dict[str, Any]) -> None:
        """Validate one call's points and append them; the whole call or nothing."""
        if self.error is not None:
            self.raise_error()
        if step is None:
            step = 0
        elif type(step) is not int:
            step = to_step(step)
        stamp = _time_ns() // 1_000_000
        key_codes = self.key_codes
        if len(items) == 1:
            for key, value in items.items():
                code = key_codes.get(key)
                if code is None:
                    code = self._new_code(key)
                if type(value) is not float:
                    value = to_float(key, value)
                with self.lock:
                    self.codes.append(code)
                    self.values.append(value)
                    self.steps.append(step)
                    self.stamps.append(stamp)
                    size = len(self.stamps)
        else:
            codes = []
            values = []
            for key, value in items.items():
                code = key_codes.get(key)
                if code is None:
                    code = self._new_code(key)
                codes.append(code)
                values.append(value if type(value) is float else to_float(key, value))
            count = len(codes)
            if not count:
                return
            with self.lock:
                self.codes.extend(codes)
                self.values.extend(values)
                self.steps.extend((step,) * count)
                self.stamps.extend((stamp,) * count)
                size = len(self.stamps)
        if size >= self.writer.flush_points:
            self.writer.pressure(self, size)

    def log_key_columns(self, key: str, steps: Any, values: Any, stamps: Any) -> None:
        """Append one key's already validated numpy columns (int64, float64, int64)."""
        if self.error is not None:
            self.raise_error()
        import numpy as np

        code = self.key_codes.get(key)
        if code is None:
            code = self._new_code(key)
        codes = np.full(len(values), code, dtype=np.int32)
        with self.lock:
            self.codes.frombytes(codes.tobytes())
            self.values.frombytes(values.tobytes())
            self.steps.frombytes(steps.tobytes())
            self.stamps.frombytes(stamps.tobytes())
            size = len(self.stamps)
        if size >= self.writer.flush_points:
            self.writer.pressure(self, size)

    def _new_code(self, key: str) -> int:
        check_key(key, "metric key")
        with self.lock:
            code = self.key_codes.get(key)
            if code is None:
                code = len(self.keys)
                self.keys.append(key)
                self.key_codes[key] = code
            return code

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
        raise MetricWriteError(
            f"writing metrics of recorder {self.ref.recorder_id} to {self.ref.dir} failed: "
            f"{error}; the points are kept in memory and will be written by the next flush"
        ) from error

    def pending(self) -> int:
        return len(self.stamps)

    def dirty(self) -> bool:
        return bool(self.stamps or self.params or self.tags or self.pending_latest)

    # -------------------------------------------------------------- writing (any thread)

    def flush(self, finish: Callable[[Meta], None] | None = None) -> None:
        """Write what is pending as one segment and one metadata rewrite.

        ``finish`` is applied to the metadata in the same rewrite (``end_run`` uses it to set
        the final status). On failure everything goes back into the buffer and the error is
        raised here (and kept for the next call when raised in the writer thread).
        """
        with self.flush_lock:
            with self.lock:
                n = min(len(self.codes), len(self.values), len(self.steps), len(self.stamps))
                # A call interrupted by a signal between two appends left a partial tail; it
                # never returned, so it was never accepted: keep the columns aligned.
                codes, values, steps, stamps = (
                    self.codes[:n],
                    self.values[:n],
                    self.steps[:n],
                    self.stamps[:n],
                )
                keys = list(self.keys)
                self.codes, self.values = array("i"), array("d")
                self.steps, self.stamps = array("q"), array("q")
                params, tags = self.params, self.tags
                self.params, self.tags = {}, {}
            written = False
            try:
                if n:
                    table = _to_table(keys, codes, values, steps, stamps)
                    batch_latest = _batch_latest(table)
                    segments.write_segment(self.ref.metrics_dir, table)
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

                    Store(self.ref.root).update_recorder(
                        self.ref.experiment_id, self.ref.recorder_id, fold
                    )
                    self.pending_latest = {}
            except BaseException:
                with self.lock:
                    if not written and n:
                        self.codes = codes + self.codes
                        self.values = values + self.values
                        self.steps = steps + self.steps
                        self.stamps = stamps + self.stamps
                    params.update(self.params)
                    self.params = params
                    tags.update(self.tags)
                    self.tags = tags
                raise

    def reset_after_fork(self) -> None:
        self.lock = threading.Lock()
        self.flush_lock = threading.RLock()
        self.codes, self.values = array("i"), array("d")
        self.steps, self.stamps = array("q"), array("q")
        self.params, self.tags, self.pending_latest = {}, {}, {}
        self.error = None


def _to_table(
    keys: list[str],
    codes: array[int],
    values: array[float],
    steps: array[int],
    stamps: array[int],
) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    key_col = pa.DictionaryArray.from_arrays(
        pa.array(np.frombuffer(codes, dtype=np.int32)),  # type: ignore[arg-type]
        pa.array(keys, pa.string()),
    ).cast(pa.string())
    return pa.table(
        [
            key_col,
            pa.array(np.frombuffer(steps, dtype=np.int64)),
            pa.array(np.frombuffer(values, dtype=np.float64)),
            pa.array(np.frombuffer(stamps, dtype=np.int64)).cast(pa.timestamp("ms", tz="UTC")),
        ],
        schema=segments.schema(),
    )


def _batch_latest(table: pa.Table) -> dict[str, Any]:
    """The latest point of each key in a batch, by MLflow's rule (vectorised)."""
    import numpy as np
    import pyarrow as pa

    keys = table["key"].to_numpy(zero_copy_only=False)
    steps = table["step"].to_numpy()
    values = table["value"].to_numpy()
    stamps = table["timestamp"].cast(pa.int64()).to_numpy()
    rank = np.where(np.isnan(values), -np.inf, values)
    order = np.lexsort((rank, stamps, steps, keys))
    sorted_keys = keys[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = sorted_keys[1:] != sorted_keys[:-1]
    return {
        str(keys[i]): {
            "value": float(values[i]),
            "step": int(steps[i]),
            "timestamp": int(stamps[i]),
        }
        for i in order[last]
    }


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
        self._last_beat = 0.0
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

    def log(self, ref: RecorderRef, step: Any, items: dict[str, Any]) -> None:
        buf = self.buffer(ref)
        buf.log(step, items)
        if not buf.running:
            # A recorder not started in this process (qlib logs synchronously to those).
            self.flush(ref)

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
        if buf.error is not None:
            buf.raise_error()
        try:
            buf.flush(finish)
        except Exception as exc:
            raise MetricWriteError(
                f"writing metrics of recorder {buf.ref.recorder_id} to {buf.ref.dir} failed: "
                f"{exc}; the points are kept in memory and will be written by the next flush"
            ) from exc

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
        """Called by a caller whose buffer is large: wake the thread, or wait if it is full."""
        self._wake.set()
        if size >= self.max_points:
            # Back-pressure: write in the caller's thread rather than grow without bound.
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
        while not self._closed:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._closed:
                break
            for buf in list(self._buffers.values()):
                if buf.dirty() and buf.error is None:
                    try:
                        buf.flush()
                    except Exception as exc:
                        buf.error = exc
            now = time.monotonic()
            if now - self._last_beat >= HEARTBEAT_INTERVAL:
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
                import sys

                print(
                    f"tracklite: could not write pending metrics of {buf.ref.dir}: {exc}",
                    file=sys.stderr,
                )

    def _after_fork_in_child(self) -> None:
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        # Buffers stay registered (recorder objects in the child hold them) but empty: the
        # parent writes its own pending points, the child only what it logs itself.
        for buf in self._buffers.values():
            buf.reset_after_fork()
        if self._buffers:
            self._start_thread()


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


def _close_at_exit() -> None:
    if _writer is not None:
        _writer.close()


def _after_fork_in_child() -> None:
    global _writer_guard
    _writer_guard = threading.Lock()
    if _writer is not None:
        _writer._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
