"""tracklite doctor's filesystem verifier, run for real on the test machine's filesystem."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tracklite.maintenance.doctor import count_overlaps, verify_filesystem


def test_local_filesystem_passes(tmp_path: Path) -> None:
    tmp_path = tmp_path / "fs"
    tmp_path.mkdir()
    report = verify_filesystem(tmp_path, processes=3, seconds=1.5)
    assert report.ok, str(report)
    assert [p.name for p in report.probes] == ["lock", "rename", "visibility", "clock"]
    lock = report.probe("lock")
    assert lock.operations > 3 and "0 overlapping" in lock.detail
    assert report.probe("rename").operations > 10
    assert report.probe("visibility").operations > 3
    assert "can use" in str(report)
    assert os.listdir(tmp_path) == []  # the probes clean up after themselves


def test_arguments_are_checked(tmp_path: Path) -> None:
    tmp_path = tmp_path / "fs"
    tmp_path.mkdir()
    with pytest.raises(ValueError, match="processes"):
        verify_filesystem(tmp_path, processes=1)
    with pytest.raises(ValueError, match="seconds"):
        verify_filesystem(tmp_path, seconds=0)
    with pytest.raises(FileNotFoundError, match="not an existing folder"):
        verify_filesystem(tmp_path / "missing")
    assert os.listdir(tmp_path) == []


def test_overlap_detection() -> None:
    assert count_overlaps([(0.0, 1.0, 0), (1.0, 2.0, 1), (2.5, 3.0, 0)]) == 0
    assert count_overlaps([(0.0, 1.0, 0), (0.5, 2.0, 1)]) == 1
    # An interval inside a long earlier hold of another process still overlaps.
    assert count_overlaps([(0.0, 10.0, 0), (1.0, 2.0, 1), (3.0, 4.0, 2)]) == 2
    assert count_overlaps([]) == 0
