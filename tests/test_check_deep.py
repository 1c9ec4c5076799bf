"""``tracklite check --deep``: every point of every segment read, on real stores."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_check import make_store, snapshot
from test_check_parallel import damaged_store, findings, share_small_experiments
from test_cli_helpers import run_cli

import tracklite
from tracklite import ExpManager
from tracklite.maintenance import check as chk
from tracklite.store import layout


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, str, str, str]:
    root = tmp_path / "store"
    return (root, *make_store(root))


def edit_value(folder: Path, key: str, value: float) -> None:
    """A summary value edited by hand, its step and timestamp left as they were."""
    path = folder / layout.RECORDER_FILE
    meta = json.loads(path.read_text())
    meta["metrics"][key]["value"] = value
    path.write_text(json.dumps(meta))


def damage_data_page(root: Path, exp_id: str, rec_id: str) -> tuple[Path, bytes]:
    """A segment of 5,000 points whose ``value`` data page is overwritten in the middle of the
    file, its footer intact; later points keep the summary as it was. Returns (segment, bytes
    after the damage)."""
    recorder = (
        ExpManager(uri=str(root))
        .get_exp(experiment_id=exp_id, create=False)
        .get_recorder(recorder_id=rec_id, create=False)
    )
    metrics = root / exp_id / rec_id / layout.METRICS_DIR
    before = set(os.listdir(metrics))
    steps = list(range(100, 5100))
    values = [round(random.Random(s).random(), 2) for s in steps]  # zstd compresses them
    recorder.log_batch({"big": values}, steps=steps)
    recorder.flush()
    (victim,) = (metrics / n for n in set(os.listdir(metrics)) - before)
    recorder.log_metrics(step=6000, big=0.5)  # the summary's point is in a later segment
    recorder.flush()

    data = bytearray(victim.read_bytes())
    footer = pq.ParquetFile(victim).metadata
    column = footer.row_group(0).column(footer.schema.names.index("value"))
    # The middle of its compressed values, in the middle of the file.
    middle = column.data_page_offset + column.total_compressed_size // 2
    assert len(data) // 4 < middle < len(data) * 3 // 4
    data[middle : middle + 16] = bytes(255 - b for b in data[middle : middle + 16])
    victim.write_bytes(bytes(data))
    assert pq.ParquetFile(victim).metadata.num_rows == 5000  # the footer still reads
    with pytest.raises(Exception):  # noqa: B017 - pyarrow's error class varies by version
        pq.read_table(victim)
    return victim, bytes(data)


def test_a_value_edited_by_hand_is_found_only_deep(
    store: tuple[Path, str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, exp_id, rec_id, _ = store
    folder = root / exp_id / rec_id
    expected = json.loads((folder / layout.RECORDER_FILE).read_text())["metrics"]["loss"]
    edit_value(folder, "loss", 123.0)
    before = snapshot(root)

    assert tracklite.check(root).clean  # the footers cannot see a value
    report = tracklite.check(root, deep=True)
    assert [f.kind for f in report] == [chk.SUMMARY_MISMATCH], str(report)
    assert "'loss' is" in report.findings[0].message and "123.0" in report.findings[0].message
    assert report.findings[0].path == folder / layout.RECORDER_FILE
    assert snapshot(root) == before  # read-only: nothing written

    outcome = run_cli(capsys, "--uri", str(root), "check", "--deep")
    assert outcome.code == 1 and chk.SUMMARY_MISMATCH in outcome.out
    assert run_cli(capsys, "--uri", str(root), "check").code == 0
    fixed = run_cli(capsys, "--uri", str(root), "check", "--deep", "--fix")
    assert fixed.code == 0 and "[fixed]" in fixed.out, fixed.out
    rebuilt = json.loads((folder / layout.RECORDER_FILE).read_text())["metrics"]["loss"]
    assert rebuilt == expected
    assert tracklite.check(root, deep=True).clean


def test_a_damaged_data_page_is_found_only_deep(store: tuple[Path, str, str, str]) -> None:
    root, exp_id, rec_id, _ = store
    victim, damaged = damage_data_page(root, exp_id, rec_id)
    before = snapshot(root)

    assert tracklite.check(root).clean  # the footer is intact
    report = tracklite.check(root, deep=True)
    assert [f.kind for f in report] == [chk.CORRUPT_SEGMENT], str(report)
    assert report.findings[0].path == victim
    assert snapshot(root) == before

    fixed = tracklite.check(root, deep=True, fix=True)
    assert fixed.ok and [f.kind for f in fixed] == [chk.CORRUPT_SEGMENT], str(fixed)
    assert not victim.exists()
    assert fixed.quarantine is not None
    assert (fixed.quarantine / victim.relative_to(root)).read_bytes() == damaged
    assert tracklite.check(root, deep=True).clean


def test_deep_finds_what_a_normal_check_finds(tmp_path: Path) -> None:
    """On the damage a footer shows (torn segments, foreign files, broken metadata, lagging
    summaries, links...), deep reports the same findings, in the same order."""
    root = tmp_path / "store"
    outside = tmp_path / "outside"
    outside.mkdir()
    damaged_store(root, outside)
    normal = tracklite.check(root, workers=1)
    deep = tracklite.check(root, workers=1, deep=True)
    assert len(normal) >= 10 and chk.CORRUPT_SEGMENT in normal.kinds(), str(normal)
    assert findings(deep) == findings(normal)


def test_deep_through_worker_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "store"
    outside = tmp_path / "outside"
    outside.mkdir()
    exp_id, ids = damaged_store(root, outside)
    # Damage only a deep check sees, in recorders spread over several jobs.
    for rec_id in ids[10:14]:
        edit_value(root / exp_id / rec_id, "loss", -1.0)
    victim, _ = damage_data_page(root, exp_id, ids[13])
    before = snapshot(root)
    normal = tracklite.check(root, workers=1)
    serial = tracklite.check(root, workers=1, deep=True)
    assert len(serial) == len(normal) + 5, str(serial)  # four values and one data page
    assert victim in [f.path for f in serial.of_kind(chk.CORRUPT_SEGMENT)]

    jobs = share_small_experiments(monkeypatch)
    shared = tracklite.check(root, workers=2, deep=True)
    assert len(jobs) >= 8  # really shared out, between this process and one worker
    assert all(job[-1] is True for job in jobs)  # each job says deep
    assert findings(shared) == findings(serial)
    assert snapshot(root) == before
    # Without deep the workers find none of it.
    shared_normal = tracklite.check(root, workers=2)
    assert findings(shared_normal) == findings(normal)
    assert victim not in [f.path for f in normal]
