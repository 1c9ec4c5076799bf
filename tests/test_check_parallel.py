"""A read-only check shared out to worker processes finds what a check in one process finds, in
the same order, writes nothing, and reports progress in order."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _reliability import child_env

import tracklite
from tracklite import ExpManager, QlibRecorder
from tracklite.maintenance import check as chk
from tracklite.maintenance import check_workers
from tracklite.store import layout, mounts

OLD = time.time() - chk.TEMP_STALE_AFTER - 60


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def damaged_store(root: Path, outside: Path) -> tuple[str, list[str]]:
    """One experiment of 14 recorders, most of them damaged in a different way, plus strays
    and links among them. Returns (experiment id, recorder ids in folder order)."""
    r = QlibRecorder(ExpManager(uri=str(root)))
    ids = []
    for i in range(14):
        with r.start(experiment_name="many"):
            r.log_params(i=i)
            for step in range(3):
                r.log_metrics(step=step, loss=1.0 / (step + 1 + i))
                r.flush()
            ids.append(r.get_recorder().id)
            exp_id = r.get_recorder().experiment_id
    ids.sort()
    exp = root / exp_id
    rec = [exp / i for i in ids]

    def segment(folder: Path) -> Path:
        return sorted((folder / layout.METRICS_DIR).glob("*.parquet"))[0]

    def edit(folder: Path, change: Any) -> None:
        path = folder / layout.RECORDER_FILE
        meta = json.loads(path.read_text())
        change(meta)
        path.write_text(json.dumps(meta))

    (rec[0] / layout.RECORDER_FILE).write_bytes(b'{"format_version": 1, "id": ')
    edit(rec[1], lambda m: m.update(status="EXPLODED"))
    data = segment(rec[2]).read_bytes()
    segment(rec[2]).write_bytes(data[:-20])
    pq.write_table(pa.table({"a": [1]}), rec[3] / layout.METRICS_DIR / "zz.parquet")
    (rec[4] / "notes.txt").write_text("mine")
    stale = rec[5] / layout.METRICS_DIR / ".tmp-x.parquet.123.abcdef01"
    stale.write_bytes(b"partial")
    os.utime(stale, (OLD, OLD))
    edit(rec[6], lambda m: m["metrics"]["loss"].update(step=1))
    (rec[7] / layout.ARTIFACTS_DIR).mkdir(exist_ok=True)
    (rec[7] / layout.ARTIFACTS_DIR / "escape").symlink_to(outside)
    (rec[8] / layout.RECORDER_FILE).unlink()
    edit(rec[9], lambda m: m.update(format_version=99))
    # Among the recorders in the listing's order: a stray, a stale staging folder, a link.
    (exp / f"{ids[10][:5]}-stray.txt").write_text("x")
    staging = exp / f".{ids[11]}.creating"
    staging.mkdir()
    os.utime(staging, (OLD, OLD))
    (exp / f"{ids[12][:6]}-link").symlink_to(outside)
    return exp_id, ids


def findings(report: chk.CheckReport) -> list[tuple[Path, str, str, bool]]:
    """(path, kind, message, fixed) of each finding, in order; an abandoned entry's age is left
    out of its message (two checks a second apart see it a second older)."""
    return [(f.path, f.kind, re.sub(r"\d+ s ago", "s ago", f.message), f.fixed) for f in report]


def share_small_experiments(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Jobs of two entries, from 8 entries on; returns the list every job given to the workers
    is added to."""
    monkeypatch.setattr(chk, "CHUNK", 2)
    monkeypatch.setattr(chk, "SHARE_FROM", 8)
    jobs: list[tuple[Any, ...]] = []
    real_map = check_workers.Workers.map

    def counting_map(self: check_workers.Workers, given: Any) -> Any:
        jobs.extend(given)
        return real_map(self, given)

    monkeypatch.setattr(check_workers.Workers, "map", counting_map)
    return jobs


def test_workers_find_the_same_as_one_process_in_the_same_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "store"
    outside = tmp_path / "outside"
    outside.mkdir()
    _, ids = damaged_store(root, outside)
    before = snapshot(root)

    serial_progress: list[tuple[int, int]] = []
    serial = tracklite.check(root, workers=1, progress=lambda *a: serial_progress.append(a))

    # This experiment is shared out among three.
    jobs = share_small_experiments(monkeypatch)
    shared_progress: list[tuple[int, int]] = []
    shared = tracklite.check(root, workers=3, progress=lambda *a: shared_progress.append(a))

    assert len(jobs) >= 8  # 17 entries in jobs of 2: really shared out
    assert findings(shared) == findings(serial)
    # Every kind of damage was found (so the comparison is not of two empty reports).
    assert set(serial.kinds()) >= {
        chk.CORRUPT_METADATA,
        chk.CORRUPT_SEGMENT,
        chk.SUMMARY_MISMATCH,
        chk.UNKNOWN_FILE,
        chk.STALE_TEMP,
        chk.UNSAFE_LINK,
        chk.MISSING_METADATA,
        chk.UNKNOWN_VERSION,
    }, str(serial)
    assert snapshot(root) == before  # neither wrote anything
    # Progress: in order, each recorder counted once, up to all of them.
    counts = [done for done, _ in shared_progress]
    assert counts == sorted(counts) and shared_progress[-1] == (len(ids), len(ids))
    assert serial_progress[-1] == (len(ids), len(ids))

    # And --fix (in one process, whatever workers says) repairs what it can.
    fixed = tracklite.check(root, fix=True, workers=3)
    assert fixed.kinds() == serial.kinds()
    after = tracklite.check(root, workers=3)
    assert {f.kind for f in after} <= {chk.UNKNOWN_FILE, chk.UNKNOWN_VERSION}, str(after)


def test_a_script_without_a_main_guard_can_share_out(tmp_path: Path) -> None:
    """Workers are fresh interpreters: the calling script is not run again in them."""
    root = tmp_path / "store"
    outside = tmp_path / "outside"
    outside.mkdir()
    damaged_store(root, outside)
    script = tmp_path / "script.py"
    script.write_text(
        "import sys, tracklite\n"
        "from tracklite.maintenance import check\n"
        "check.CHUNK, check.SHARE_FROM = 2, 8\n"
        "print('script ran', file=sys.stderr)\n"
        f"print(len(tracklite.check({str(root)!r}, workers=2)))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=child_env(root),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("script ran") == 1, done.stderr
    assert int(done.stdout) == len(tracklite.check(root, workers=1))


def test_workers_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="workers"):
        tracklite.check(tmp_path, workers=0)


def test_filesystem_type() -> None:
    assert mounts.filesystem_type("/proc/self") == "proc"
    assert not mounts.is_network("/proc/self")
    assert mounts._unescape(r"/mnt/my\040disk") == "/mnt/my disk"


def test_footers_of_small_and_large_segments(tmp_path: Path) -> None:
    """check reads a small segment with one read and a large one through the file: both give
    the footer pyarrow reads, and a truncated large one is refused."""
    from tracklite.metrics import segments
    from tracklite.store import safefs

    folder = tmp_path / "m"
    folder.mkdir()
    for name, rows in (("small.parquet", 10), ("large.parquet", 50_000)):
        table = pa.table(
            {
                "key": [f"k{i % 7}" for i in range(rows)],
                "step": pa.array(range(rows), pa.int64()),
                "value": [i / 3 for i in range(rows)],
                "timestamp": pa.array(range(rows), pa.timestamp("ms", tz="UTC")),
            }
        )
        pq.write_table(table, folder / name)
    assert (folder / "large.parquet").stat().st_size > segments._READ_WHOLE
    with safefs.open_dir(folder) as opened:
        for name in ("small.parquet", "large.parquet"):
            assert segments.footer_in(opened, name).equals(pq.read_metadata(folder / name))
        data = (folder / "large.parquet").read_bytes()
        (folder / "large.parquet").write_bytes(data[: len(data) // 2])
        with pytest.raises(Exception):  # noqa: B017 - pyarrow's error class varies by version
            segments.footer_in(opened, "large.parquet")


def clean_job(tmp_path: Path) -> tuple[Any, ...]:
    """A worker's job of one undamaged recorder of :func:`damaged_store`."""
    root = tmp_path / "store"
    outside = tmp_path / "outside"
    outside.mkdir()
    exp_id, ids = damaged_store(root, outside)
    return (str(root), exp_id, [(ids[13], True)], chk.TEMP_STALE_AFTER, time.time())


def test_a_worker_error_is_raised_in_its_place(tmp_path: Path) -> None:
    good = clean_job(tmp_path)
    workers = check_workers.Workers(2)
    try:
        # Job 1 goes to the worker process, and fails there (a job of the wrong shape).
        results = workers.map([good, ("too", "few"), good])
        assert next(results) == ([], 1)
        with pytest.raises(TypeError):
            next(results)
    finally:
        workers.close()


def test_a_worker_that_dies_is_an_error_not_a_hang(tmp_path: Path) -> None:
    job = clean_job(tmp_path)
    workers = check_workers.Workers(2)
    try:
        results = workers.map([job] * 8)
        assert next(results) == ([], 1)  # this process's own job; the worker has two waiting
        (proc,) = workers._procs
        proc.kill()
        proc.wait()
        with pytest.raises(tracklite.StoreError, match="worker process ended"):
            list(results)  # what it answered before dying, then the error
    finally:
        workers.close()


class Odd(Exception):
    """Pickled, but not rebuilt: unpickling calls it with its one message argument."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}/{b}")


def test_an_error_that_cannot_travel_is_sent_as_text() -> None:
    import io
    import pickle

    out = io.BytesIO()
    check_workers._reply(out, (False, Odd(1, 2)))
    ok, error = pickle.loads(out.getvalue())
    assert not ok and isinstance(error, tracklite.StoreError) and "Odd: 1/2" in str(error)


def test_default_workers_are_the_cores(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    assert chk.default_workers(tmp_path) == min(cores, chk.CHECK_WORKERS)
