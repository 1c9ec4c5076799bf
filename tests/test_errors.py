"""tracklite's errors: one base class, structured attributes, and pickling (multiprocessing)."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from pathlib import Path

import pytest

import tracklite
from tracklite import (
    CorruptMetadataError,
    LockTimeoutError,
    MetricPermissionError,
    MetricWriteError,
    NotFoundError,
    StoreError,
    TrackliteError,
    UsageError,
)
from tracklite.errors import write_error
from tracklite.store.locks import locked


def test_a_lock_timeout_is_a_tracklite_error_naming_the_lock(tmp_path: Path) -> None:
    lock = tmp_path / ".lock"
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with locked(lock):
            held.set()
            release.wait(120)

    # Another process holding the lock: a child started by fork keeps it until told.
    ctx = multiprocessing.get_context("fork")
    ready, done = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold_lock, args=(str(lock), ready, done))
    child.start()
    try:
        assert ready.wait(60)
        with pytest.raises(TrackliteError) as info, locked(lock, timeout=0.2):
            pass
        assert isinstance(info.value, TimeoutError)  # what code written before catches
        assert isinstance(info.value, LockTimeoutError)
        assert info.value.path == str(lock)
    finally:
        done.set()
        child.join(60)
    # Another thread of this process holding it.
    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(60)
        with pytest.raises(LockTimeoutError) as info, locked(lock, timeout=0.2):
            pass
        assert info.value.path == str(lock)
    finally:
        release.set()
        thread.join()
    assert tracklite.LockTimeoutError is LockTimeoutError


def _hold_lock(path: str, ready: object, done: object) -> None:
    with locked(Path(path)):
        ready.set()  # type: ignore[attr-defined]
        done.wait(120)  # type: ignore[attr-defined]


def _samples(tmp_path: Path) -> list[TrackliteError]:
    return [
        TrackliteError("plain"),
        NotFoundError("no such run", recorder_id="abc"),
        UsageError("bad call"),
        StoreError("bad store", path=tmp_path),
        CorruptMetadataError("torn", path=tmp_path / "recorder.json", recorder_id="r1"),
        LockTimeoutError("slow", path=tmp_path / ".lock"),
        write_error("r2", tmp_path, OSError(28, "No space left on device", str(tmp_path / "m"))),
        write_error("r3", tmp_path, PermissionError(13, "Permission denied", str(tmp_path))),
    ]


def _same(a: BaseException, b: BaseException) -> None:
    assert type(a) is type(b)
    assert str(a) == str(b)
    assert a.args == b.args
    assert getattr(a, "path", None) == getattr(b, "path", None)
    assert getattr(a, "recorder_id", None) == getattr(b, "recorder_id", None)


def test_errors_carry_path_and_recorder_id_and_pickle(tmp_path: Path) -> None:
    samples = _samples(tmp_path)
    written = samples[-2]
    assert isinstance(written, MetricWriteError)
    assert written.recorder_id == "r2" and written.path == str(tmp_path / "m")
    assert isinstance(samples[-1], MetricPermissionError)
    assert isinstance(samples[-1], PermissionError)
    assert samples[-1].recorder_id == "r3"
    for error in samples:
        _same(error, pickle.loads(pickle.dumps(error)))


def _raise(index: int, folder: str) -> None:
    raise _samples(Path(folder))[index]


def test_errors_cross_a_multiprocessing_boundary(tmp_path: Path) -> None:
    count = len(_samples(tmp_path))
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        for index in range(count):
            with pytest.raises(TrackliteError) as info:
                pool.apply(_raise, (index, str(tmp_path)))
            _same(info.value, _samples(tmp_path)[index])
