"""Reading one metric key's points from segments: the right points, from the row groups that
can hold them."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tracklite.metrics import segments


def _points() -> pa.Table:
    """Twelve points of keys a, b, c (four each, in long runs, as logged)."""
    return pa.table(
        {
            "key": ["a"] * 4 + ["b"] * 4 + ["c"] * 4,
            "step": list(range(12)),
            "value": [float(v) for v in range(12)],
            "timestamp": pa.array([1_700_000_000_000] * 12).cast(pa.timestamp("ms", tz="UTC")),
        },
        schema=segments.schema(),
    )


def test_the_points_of_one_key_come_from_the_row_groups_that_hold_it(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    path = folder / "0001.parquet"
    pq.write_table(_points(), path, row_group_size=4)  # a row group a key
    # The key column's statistics rule out the other groups.
    assert [segments._may_hold(pq.ParquetFile(path), g, "b") for g in range(3)] == [
        False,
        True,
        False,
    ]
    assert segments.read_points(folder, "b")["step"].to_pylist() == [4, 5, 6, 7]
    assert segments.read_points(folder, "b")["value"].to_pylist() == [4.0, 5.0, 6.0, 7.0]
    assert segments.read_points(folder, "z").num_rows == 0
    assert segments.read_points(folder).num_rows == 12


def test_a_segment_without_key_statistics_is_read_whole(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    pq.write_table(
        _points(),
        folder / "0001.parquet",
        row_group_size=4,
        write_statistics=False,
    )
    assert segments.read_points(folder, "c")["step"].to_pylist() == [8, 9, 10, 11]
