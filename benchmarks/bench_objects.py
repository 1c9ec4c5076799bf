"""Peak memory of saving and loading one large object: tracklite against the in-memory way.

Each measurement runs in a fresh process: it builds a ``bytes`` object of the given size (or a
float64 NumPy array), takes its peak resident set (``VmHWM``) as the baseline, then saves the
object with ``save_objects`` (or loads it back with ``load_object``) and reports how much the
peak grew. The floor is what the object itself takes: 0 to save it (streaming needs no copy),
its size to load it. The in-memory way (``pickle.dumps`` then write, ``read()`` then
``pickle.loads``) needs one more whole copy of the pickle on top of the floor.

    python benchmarks/bench_objects.py            # 256 MB and 1 GB
    python benchmarks/bench_objects.py --mb 64    # one size
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, os, pickle, sys, time
from pathlib import Path

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")

how, action, kind, size, root = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
import numpy as np
from tracklite import ExpManager, QlibRecorder
r = QlibRecorder(ExpManager(uri=root))
plain = Path(root) / "plain.pkl"
if action == "save":
    obj = b"x" * size if kind == "bytes" else np.ones(size // 8)
    with r.start(experiment_name="objects", recorder_name=how):
        r.log_params(warm=1)
        r.flush()
        base = hwm()
        start = time.perf_counter()
        if how == "tracklite":
            r.save_objects(big=obj)
        else:
            plain.write_bytes(pickle.dumps(obj, protocol=5))
        took = time.perf_counter() - start
else:
    rec = r.get_exp(experiment_name="objects").get_recorder(recorder_name="tracklite")
    rec.list_tags()
    base = hwm()
    start = time.perf_counter()
    if how == "tracklite":
        obj = rec.load_object("big")
    else:
        obj = pickle.loads(plain.read_bytes())
    took = time.perf_counter() - start
    assert len(obj) in (size, size // 8)
print(json.dumps({"growth": hwm() - base, "seconds": took}))
"""


def measure(how: str, action: str, kind: str, size: int, root: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, how, action, kind, str(size), root],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, nargs="*", default=[256, 1024], help="object sizes")
    parser.add_argument("--kind", choices=["bytes", "numpy"], nargs="*", default=["bytes", "numpy"])
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f}")
    print(
        "| object | action | tracklite peak growth | in-memory peak growth | floor | "
        "tracklite / size | tracklite s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for mb in args.mb:
        size = mb << 20
        for kind in args.kind:
            with tempfile.TemporaryDirectory(prefix="tracklite-bench-objects-") as scratch:
                root = str(Path(scratch) / "store")
                rows = {}
                for action in ("save", "load"):
                    for how in ("tracklite", "in-memory"):
                        rows[(action, how)] = measure(how, action, kind, size, root)
                for action in ("save", "load"):
                    ours, peer = rows[(action, "tracklite")], rows[(action, "in-memory")]
                    print(
                        f"| {kind} {mb} MB | {action} | {ours['growth'] / 2**20:,.0f} MB | "
                        f"{peer['growth'] / 2**20:,.0f} MB | {0 if action == 'save' else mb} MB | "
                        f"{ours['growth'] / size:.2f} | {ours['seconds']:.2f} |"
                    )
            time.sleep(0.1)


if __name__ == "__main__":
    main()
