"""What atomic publication writes and asks of the kernel: the bytes of a metadata file, which
publications are fsynced, how a metadata file is opened, and the names of its temporaries.

The system calls are watched with strace attached to the test's own thread (Linux; CI installs
strace), so the code under test runs in this process, exactly as a caller runs it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from tracklite.store import atomic, safefs


def _traced_by(tid: int) -> int:
    status = Path(f"/proc/self/task/{tid}/status").read_text()
    return int(re.search(r"^TracerPid:\s*(\d+)", status, re.M).group(1))  # type: ignore[union-attr]


@contextlib.contextmanager
def _syscalls(tmp_path: Path, calls: str) -> Iterator[list[str]]:
    """The ``calls`` (strace's ``-e trace=`` list) this thread makes inside the block."""
    if shutil.which("strace") is None or not sys.platform.startswith("linux"):
        pytest.skip("needs strace (apt-get install strace)")
    tid = threading.get_native_id()
    out = tmp_path / f"strace-{time.monotonic_ns()}.txt"
    tracer = subprocess.Popen(
        ["strace", "-qq", "-e", f"trace={calls}", "-o", str(out), "-p", str(tid)],
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while _traced_by(tid) != tracer.pid:
        if tracer.poll() is not None or time.monotonic() > deadline:
            tracer.kill()
            pytest.skip(f"strace cannot attach here: {tracer.communicate()[1]!r}")
        time.sleep(0.01)
    lines: list[str] = []
    try:
        yield lines
    finally:
        tracer.send_signal(signal.SIGINT)  # detaches, having written every call it saw
        tracer.wait(timeout=60)
        while _traced_by(tid) != 0:
            time.sleep(0.01)
        lines.extend(out.read_text().splitlines())


def _fsyncs(lines: list[str]) -> int:
    return sum(1 for line in lines if re.match(r"f(data)?sync\(", line))


def _write(data: bytes) -> object:
    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    return write


@pytest.fixture
def no_fsync_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    # TRACKLITE_FSYNC=1 fsyncs every file: the difference below is what ``durable`` adds.
    monkeypatch.setattr(atomic, "FSYNC", False)


@pytest.mark.usefixtures("no_fsync_setting")
def test_only_durable_publications_are_fsynced(tmp_path: Path) -> None:
    target = tmp_path / "meta.json"
    plain = {
        "publish": lambda: atomic.publish(target, _write(b"1"), durable=False),  # type: ignore[arg-type]
        "publish, default": lambda: atomic.publish(target, _write(b"2")),  # type: ignore[arg-type]
        "write_bytes, default": lambda: atomic.write_bytes(target, b"3"),
        "write_json, default": lambda: atomic.write_json(target, 4),
    }
    durable = {
        "publish": lambda: atomic.publish(target, _write(b"5"), durable=True),  # type: ignore[arg-type]
        "write_bytes": lambda: atomic.write_bytes(target, b"6", durable=True),
        "write_json": lambda: atomic.write_json(target, 7, durable=True),
    }
    counted: dict[str, int] = {}
    for kind, calls in (("plain", plain), ("durable", durable)):
        for name, call in calls.items():
            with _syscalls(tmp_path, "fsync,fdatasync") as lines:
                call()
            counted[f"{kind} {name}"] = _fsyncs(lines)
    assert counted == {
        "plain publish": 0,
        "plain publish, default": 0,
        "plain write_bytes, default": 0,
        "plain write_json, default": 0,
        "durable publish": 1,
        "durable write_bytes": 1,
        "durable write_json": 1,
    }
    assert target.read_bytes() == b"7\n"


def test_fsync_setting_fsyncs_every_publication(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(atomic, "FSYNC", True)
    with _syscalls(tmp_path, "fsync,fdatasync") as lines:
        atomic.write_json(tmp_path / "meta.json", {"a": 1})
    assert _fsyncs(lines) == 1


def test_metadata_is_utf8_on_one_line(tmp_path: Path) -> None:
    target = tmp_path / "recorder.json"
    meta = {"name": "día 1 · 実験", "tags": {"k": "v\nw"}, "n": 1.5}
    atomic.write_json(target, meta)
    raw = target.read_bytes()
    # Readable as written (not \u escapes), one line, a newline at the end.
    assert "día 1 · 実験".encode() in raw
    assert raw.count(b"\n") == 1 and raw.endswith(b"}\n")
    assert atomic.read_json(target) == meta
    assert atomic.dump_json(meta) == raw


def test_a_metadata_file_larger_than_one_read_reads_whole(tmp_path: Path) -> None:
    # A recorder with thousands of metric keys has a recorder.json of megabytes: read in
    # several chunks, joined exactly.
    target = tmp_path / "recorder.json"
    meta = {"metrics": {f"key/{i:06d}": {"step": i, "value": i / 7} for i in range(20_000)}}
    atomic.write_json(target, meta)
    assert target.stat().st_size > 4 * (1 << 16)
    assert atomic.read_json(target) == meta


def test_a_metadata_file_saved_with_a_byte_order_mark_still_reads(tmp_path: Path) -> None:
    # Some editors (Notepad) save UTF-8 with a BOM when a user hand-edits a file.
    target = tmp_path / "experiment.json"
    target.write_bytes(b"\xef\xbb\xbf" + json.dumps({"name": "é"}, ensure_ascii=False).encode())
    assert atomic.read_json(target) == {"name": "é"}


def test_a_metadata_file_is_opened_read_only_and_never_through_a_link(tmp_path: Path) -> None:
    target = tmp_path / "recorder.json"
    atomic.write_json(target, {"id": "x"})
    with _syscalls(tmp_path, "open,openat") as lines:
        assert atomic.read_json(target) == {"id": "x"}
    opened = [line for line in lines if '/recorder.json"' in line]
    assert len(opened) == 1, lines
    flags = set(re.search(r'", ([A-Z_|]+)', opened[0]).group(1).split("|"))  # type: ignore[union-attr]
    assert {"O_RDONLY", "O_NOFOLLOW"} <= flags and not flags & {"O_WRONLY", "O_RDWR", "O_CREAT"}
    # And a child process never inherits it.
    assert "O_CLOEXEC" in flags


def test_a_temporary_is_hidden_beside_its_target_and_names_it(tmp_path: Path) -> None:
    target = tmp_path / "summary"
    names = {atomic.temp_name(target) for _ in range(20)}
    assert len(names) == 20  # unique
    for name in names:
        assert name.parent == tmp_path
        assert re.fullmatch(rf"\.tmp-summary\.{os.getpid()}\.[0-9a-f]{{8}}", name.name), name
        assert name.name.startswith(atomic.TEMP_PREFIX) and safefs.TEMP_PREFIX.startswith(".")
