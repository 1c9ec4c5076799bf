"""The metric writer: the one object through which metric points reach the disk.

The API layer only calls :func:`get_writer` and the methods of :class:`MetricWriter`, so the
writing strategy can change without touching it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..store.ref import RecorderRef
from ..store.root import Store
from . import latest, segments


class MetricWriter:
    """Writes each call's points as a Parquet segment, synchronously."""

    def log(
        self, ref: RecorderRef, step: int, timestamp_ms: int, keys: Sequence[str],
        values: Sequence[float],
    ) -> None:
        """Accept one call's points (already validated)."""
        n = len(keys)
        self.log_columns(ref, keys, [step] * n, values, [timestamp_ms] * n)

    def log_columns(
        self, ref: RecorderRef, keys: Sequence[str], steps: Sequence[int],
        values: Sequence[float], timestamps_ms: Sequence[int],
    ) -> None:
        """Accept many points as columns (already validated)."""
        if not keys:
            return
        import pyarrow as pa

        table = pa.table(
            [
                pa.array(keys, pa.string()),
                pa.array(steps, pa.int64()),
                pa.array(values, pa.float64()),
                pa.array(timestamps_ms, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            ],
            schema=segments.schema(),
        )
        segments.write_segment(ref.metrics_dir, table)

        def fold(meta: dict[str, Any]) -> None:
            latest.merge(meta["metrics"], keys, steps, values, timestamps_ms)

        Store(ref.root).update_recorder(ref.experiment_id, ref.recorder_id, fold)

    def flush(self, ref: RecorderRef | None = None) -> None:
        """Make every accepted point of ``ref`` (or of all recorders) visible on disk."""

    def close(self, ref: RecorderRef) -> None:
        """Flush ``ref`` and forget it (called by ``end_run``)."""
        self.flush(ref)


_writer: MetricWriter | None = None


def get_writer() -> MetricWriter:
    """This process's metric writer."""
    global _writer
    if _writer is None:
        _writer = MetricWriter()
    return _writer
