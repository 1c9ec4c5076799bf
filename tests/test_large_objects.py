"""save_objects / load_object stream a large object to and from its file: saving needs no copy
of it in memory, loading needs only the object itself (measured as the growth of a fresh
process's peak resident set, ``VmHWM``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _reliability import child_env

CHILD = r"""
import json, sys
import numpy as np
import tracklite
from tracklite import ExpManager, QlibRecorder

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

action, kind, size, root = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
tracklite.configure(flush_interval=1000)  # no background flush inside the measurement
r = QlibRecorder(ExpManager(uri=root))
if action == "save":
    obj = b"x" * size if kind == "bytes" else np.arange(size // 8, dtype="float64")
    with r.start(experiment_name="big"):
        # A logged point makes the writer finish its own imports (pyarrow) before the baseline.
        r.log_params(warm=1)
        r.log_metrics(step=0, warm=1.0)
        r.flush()
        base = hwm()
        r.save_objects(obj=obj, small=[1, 2])
else:
    rec = r.get_exp(experiment_name="big").list_recorders(rtype="list")[0]
    assert rec.load_object("small") == [1, 2]
    base = hwm()
    obj = rec.load_object("obj")
    if kind == "bytes":
        assert len(obj) == size and obj[:3] == b"xxx"
    else:
        assert obj.shape == (size // 8,) and obj[-1] == size // 8 - 1
print(json.dumps(hwm() - base))
"""


def growth(root: Path, action: str, kind: str, size: int) -> int:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, action, kind, str(size), str(root)],
        env=child_env(root),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def check_streaming(tmp_path: Path, kind: str, size: int) -> None:
    root = tmp_path / kind
    saved = growth(root, "save", kind, size)
    # Pickling in memory first would grow by the whole object (and protocol 4 by another copy
    # of an array); streaming grows by buffers only.
    assert saved < size // 4, f"saving {size >> 20} MB grew the peak by {saved >> 20} MB"
    loaded = growth(root, "load", kind, size)
    # The object itself is the floor; reading the whole file before unpickling doubles it.
    assert loaded < size * 1.4, f"loading {size >> 20} MB grew the peak by {loaded >> 20} MB"
    (file,) = (p for p in root.rglob("obj") if p.is_file())
    assert file.stat().st_size >= size
    shutil.rmtree(root)  # pytest keeps recent temporary folders: do not keep gigabytes


@pytest.mark.parametrize("kind", ["bytes", "numpy"])
def test_a_large_object_streams_to_and_from_its_file(tmp_path: Path, kind: str) -> None:
    check_streaming(tmp_path, kind, 160 << 20)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bytes", "numpy"])
def test_a_2_gb_object_streams_to_and_from_its_file(tmp_path: Path, kind: str) -> None:
    check_streaming(tmp_path, kind, 2 << 30)
