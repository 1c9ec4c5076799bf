"""Benchmark ``tracklite.import_mlflow``: import N generated MLflow runs, then import them again.

    python benchmarks/bench_import.py --runs 500 --points 200 [--keys 4] [--link] [--dir DIR]

Writes an ``mlruns`` folder in MLflow's layout (one experiment; each run with ``--keys`` metric
histories of ``--points`` points, 3 params, 3 tags and a 100 kB artifact), then prints runs/s
for the first import and for a second, unchanged one (idempotent: fingerprints only).
``TRACKLITE_FSYNC=0`` measures without fsync.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from tracklite.mlflow_io.importer import import_mlflow


def write_mlruns(root: Path, runs: int, points: int, keys: int) -> None:
    """An MLflow file store with one experiment of ``runs`` runs."""
    exp = root / "1"
    exp.mkdir(parents=True)
    (root / ".trash").mkdir()
    (exp / "meta.yaml").write_text(
        "artifact_location: file:///gone/mlruns/1\ncreation_time: 1700000000000\n"
        "experiment_id: '1'\nlast_update_time: 1700000000000\nlifecycle_stage: active\n"
        "name: bench\n"
    )
    blob = os.urandom(100_000)
    for i in range(runs):
        rid = uuid.uuid4().hex
        run = exp / rid
        for part in ("metrics/train", "params", "tags", "artifacts"):
            (run / part).mkdir(parents=True)
        (run / "meta.yaml").write_text(
            f"artifact_uri: file:///gone/mlruns/1/{rid}/artifacts\nend_time: 1700000100000\n"
            f"experiment_id: '1'\nlifecycle_stage: active\nrun_id: {rid}\nrun_name: run{i}\n"
            "start_time: 1700000000000\nstatus: 3\nuser_id: bench\n"
        )
        for k in range(keys):
            name = f"train/loss{k}" if k % 2 else f"metric {k}"
            lines = "".join(f"{1700000000000 + s} {1.0 / (s + 1)} {s}\n" for s in range(points))
            (run / "metrics" / name).write_text(lines)
        for p in ("lr", "model.depth", "seed"):
            (run / "params" / p).write_text(str(i))
        for t in ("mlflow.runName", "team", "stage"):
            (run / "tags" / t).write_text(f"run{i}")
        (run / "artifacts" / "pred.pkl").write_bytes(blob)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--keys", type=int, default=4)
    parser.add_argument("--link", action="store_true", help="hard-link artifacts")
    parser.add_argument("--dir", help="work folder (default: a temporary one, removed after)")
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="tracklite-bench-import-"))
    try:
        src, dst = work / "mlruns", work / "store"
        started = time.perf_counter()
        write_mlruns(src, args.runs, args.points, args.keys)
        print(f"generated {args.runs} runs in {time.perf_counter() - started:.1f} s")
        for label in ("first import", "re-import (unchanged)"):
            started = time.perf_counter()
            report = import_mlflow(src, dst, link=args.link)
            elapsed = time.perf_counter() - started
            assert report.ok, report
            print(
                f"{label}: {report.runs} runs in {elapsed:.2f} s = "
                f"{report.runs / elapsed:.0f} runs/s "
                f"({report.runs_created} new, {report.runs_unchanged} unchanged)"
            )
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
