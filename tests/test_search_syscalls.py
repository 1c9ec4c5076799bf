"""A search with a current summary makes the same file system calls whatever the number of
unchanged recorders: counted with strace on a real process (Linux; CI installs strace)."""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tracklite.store.root import Store

pytestmark = pytest.mark.skipif(
    shutil.which("strace") is None or not sys.platform.startswith("linux"),
    reason="needs strace (apt-get install strace)",
)

# Everything is imported and the summary folded before the marks, so that only the search
# itself is counted between them.
_SEARCH = """
import concurrent.futures, os, sys
import pyarrow.json  # imported on a first parse: here, so that no import is counted
from tracklite.search.listing import search_records
from tracklite.store.root import Store
store = Store(sys.argv[1])
exp_id = store.find_experiment("e")["id"]
def search():
    search_records(store, [exp_id], filter_string="metrics.m > 3", order_by=["metrics.m"])

search()
if sys.argv[2] == "changed":  # one recorder rewritten since the summary was folded
    rec_id = store.recorder_ids(exp_id)[7]
    store.update_recorder(exp_id, rec_id, lambda meta: meta["tags"].__setitem__("k", "v"))
os.path.exists("/tracklite-mark-start")
search()
os.path.exists("/tracklite-mark-end")
"""
_FILE_CALLS = ("open", "openat", "stat", "lstat", "fstat", "newfstatat", "statx", "getdents64")


def _store(root: Path, n: int) -> Path:
    store = Store(root)
    store.ensure()
    exp_id = store.create_experiment("e")["id"]
    for i in range(n):
        store.create_recorder(
            exp_id,
            f"r{i}",
            status="FINISHED",
            extra={"metrics": {"m": {"value": float(i % 10), "step": 0, "timestamp": 0}}},
        )
    past = 1_600_000_000
    os.utime(root / exp_id, (past, past))  # out of the racy window, as after a few seconds
    return root


def _count(root: Path, tmp_path: Path, mode: str = "warm") -> collections.Counter[str]:
    """File system calls of one search, by name: ``warm`` (nothing changed since the last
    search) or ``changed`` (one recorder rewritten since)."""
    trace = tmp_path / f"{root.name}-{mode}.strace"
    subprocess.run(
        [
            "strace",
            "-f",
            "-qq",
            "-o",
            str(trace),
            "-e",
            f"trace={','.join(_FILE_CALLS)}",
            sys.executable,
            "-c",
            _SEARCH,
            str(root),
            mode,
        ],
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    lines = trace.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "tracklite-mark-start" in line)
    end = next(i for i, line in enumerate(lines) if "tracklite-mark-end" in line)
    calls: collections.Counter[str] = collections.Counter()
    for line in lines[start + 1 : end]:
        found = re.match(r"(?:\d+\s+)?(\w+)\(", line)
        if found and found.group(1) in _FILE_CALLS:
            calls[found.group(1)] += 1
        opened = re.match(r"(?:\d+\s+)?openat\(AT_FDCWD, \"([^\"]*)\"", line)
        # Only the store's files and the liveness check of a journal's writer (/proc): a
        # library starting threads would read /sys/devices/system/cpu/online, a varying
        # number of times, on top of what the search needs.
        path = opened.group(1) if opened else str(root)
        if path != str(root) and not path.startswith((f"{root}{os.sep}", "/proc/")):
            calls[f"open {path}"] += 1
    return calls


def test_a_warm_search_makes_as_many_calls_for_3000_recorders_as_for_300(
    tmp_path: Path,
) -> None:
    small = _count(_store(tmp_path / "small", 300), tmp_path)
    large = _count(_store(tmp_path / "large", 3000), tmp_path)
    assert sum(small.values()) > 0
    assert large == small, (small, large)
    # A handful of calls in all: no stat or open per recorder.
    assert sum(large.values()) < 100, large


def test_a_change_costs_calls_for_that_recorder_only(tmp_path: Path) -> None:
    small, large = _store(tmp_path / "small", 300), _store(tmp_path / "large", 3000)
    warm = _count(small, tmp_path)
    changed = {n: _count(root, tmp_path, "changed") for n, root in ((300, small), (3000, large))}
    outside = [call for calls in changed.values() for call in calls if call.startswith("open ")]
    assert not outside, outside
    assert changed[300] == changed[3000], changed
    # Its journal's new line and its recorder.json: a couple of opens more, not 300 or 3000.
    extra = sum(changed[300].values()) - sum(warm.values())
    assert 0 < extra <= 6, (warm, changed)
