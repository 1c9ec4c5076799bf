"""Logging benchmarks: tracklite against MLflow's file store (and qlib's R when installed).

Every workload runs on each system in the same process, one after the other, on fresh stores
in a temporary folder outside any git work tree, and the table prints the ratio.

    pip install ".[bench]"          # mlflow-skinny
    python benchmarks/bench_logging.py [--quick]

Timings are medians (latencies) or best-of-N (throughput); treat single runs on a shared
machine as orders of magnitude.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

ROWS: list[tuple[str, str, str, str, str]] = []


def row(workload: str, unit: str, ours: float | None, peer: float | None, better: str) -> None:
    """Record a table row; ``better`` is "lower" or "higher" (which way the ratio reads)."""
    if ours is None or peer is None or ours == 0 or peer == 0:
        ratio = "n/a"
    elif better == "lower":
        ratio = f"{peer / ours:,.0f}x faster" if peer / ours >= 10 else f"{peer / ours:,.1f}x"
    else:
        ratio = f"{ours / peer:,.0f}x more" if ours / peer >= 10 else f"{ours / peer:,.1f}x"
    ROWS.append((workload, unit, _fmt(ours), _fmt(peer), ratio))
    print(f"  {workload}: tracklite {_fmt(ours)} {unit}, peer {_fmt(peer)}", file=sys.stderr)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"


@contextlib.contextmanager
def fresh_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tl-bench-") as folder:
        old = os.getcwd()
        os.chdir(folder)  # outside git: no code_*.txt artifacts, as the targets say
        try:
            yield Path(folder)
        finally:
            os.chdir(old)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ----------------------------------------------------------------------------- tracklite


def tracklite_r(folder: Path) -> Any:
    from tracklite import ExpManager, QlibRecorder

    return QlibRecorder(ExpManager(uri=str(folder / "store")))


def tl_call_latency(calls: int) -> dict[str, float]:
    with fresh_dir() as folder:
        r = tracklite_r(folder)
        lat: list[int] = []
        clock = time.perf_counter_ns
        with r.start(experiment_name="bench"):
            time.sleep(0.5)  # the writer thread imports pyarrow at run start
            gc.collect()
            for i in range(calls):
                t = clock()
                r.log_metrics(step=i, loss=0.5 + i * 1e-9)
                lat.append(clock() - t)
        return {
            "median_us": statistics.median(lat) / 1e3,
            "p99_us": percentile(lat, 0.99) / 1e3,
            "max_ms": max(lat) / 1e6,
            "stalls": float(sum(1 for x in lat if x > 10_000_000)),
        }


def tl_throughput(calls: int) -> float:
    keys = [f"k{i}" for i in range(10)]
    with fresh_dir() as folder:
        r = tracklite_r(folder)
        with r.start(experiment_name="bench"):
            time.sleep(0.5)
            t = time.perf_counter()
            for i in range(calls):
                r.log_metrics(i, **dict.fromkeys(keys, i * 0.1))
            r.flush()
            elapsed = time.perf_counter() - t
        return calls * 10 / elapsed


def tl_small_run(runs: int) -> float:
    with fresh_dir() as folder:
        r = tracklite_r(folder)
        with r.start(experiment_name="warm"):
            pass
        times = []
        for i in range(runs):
            t = time.perf_counter()
            with r.start(experiment_name="small"):
                r.log_params(lr=0.1, depth=i)
                r.log_metrics(step=0, loss=0.5)
                r.save_objects(model={"w": [1, 2, 3]})
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1e3


def tl_history(points: int) -> float:
    import numpy as np

    with fresh_dir() as folder:
        r = tracklite_r(folder)
        with r.start(experiment_name="hist"):
            rec = r.get_recorder()
            rec.log_batch({"loss": np.random.rand(points)})
        rec = r.get_recorder(experiment_name="hist", recorder_id=rec.id)
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            frame = rec.get_metric_history()
            best = min(best, time.perf_counter() - t)
        assert len(frame) == points
        return best


def tl_many_histories(recorders: int, points: int) -> float:
    import numpy as np

    from tracklite.search.history import load_metrics

    with fresh_dir() as folder:
        r = tracklite_r(folder)
        exp = r.get_exp(experiment_name="many")
        for _ in range(recorders):
            rec = exp.create_recorder("r")
            rec.start_run()
            rec.log_batch({"loss": np.random.rand(points)})
            rec.end_run("FINISHED")
        best = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            frame = load_metrics(str(folder / "store"), experiments="many")
            best = min(best, time.perf_counter() - t)
        assert len(frame) == recorders * points
        return best


def tl_storage(points: int) -> tuple[int, float]:
    import numpy as np

    with fresh_dir() as folder:
        r = tracklite_r(folder)
        with r.start(experiment_name="size"):
            rng = np.random.default_rng(0)
            for i in range(points // 2):
                r.log_metrics(step=i, loss=float(rng.random()), acc=float(rng.random()))
            rec = r.get_recorder()
        files = list(rec.ref.metrics_dir.iterdir())
        size = sum(f.stat().st_size for f in files)
        return len(files), size / points


MEMORY_SCRIPT = r"""
import sys, time
from tracklite import ExpManager, QlibRecorder

def peak_mb():
    # VmHWM is this process's own peak; ru_maxrss would include the parent's, kept over exec.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")

r = QlibRecorder(ExpManager(uri=sys.argv[1]))
r.start_exp(experiment_name="mem")
time.sleep(0.5)
# One-time costs before the baseline: libraries, their code pages and memory pools, all
# touched by one full-size flush; what is measured is what logging itself holds.
for i in range(30_000):
    r.log_metrics(i, a=0.1, b=0.2, c=0.3, d=0.4, e=0.5, f=0.6, g=0.7, h=0.8, i=0.9, j=1.0)
r.flush()
base = peak_mb()
n = int(sys.argv[2])
for i in range(n // 10):
    r.log_metrics(i, a=0.1, b=0.2, c=0.3, d=0.4, e=0.5, f=0.6, g=0.7, h=0.8, i=0.9, j=1.0)
r.end_exp()
print(peak_mb() - base)
"""


def tl_memory(points: int) -> float:
    with fresh_dir() as folder:
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_SCRIPT, str(folder / "store"), str(points)],
            capture_output=True,
            text=True,
            check=True,
        )
        return float(out.stdout.strip())


def import_time(module: str) -> float | None:
    def once(code: str) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        return time.perf_counter() - t

    try:
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        return None
    bare = min(once("pass") for _ in range(5))
    return max(0.0, min(once(f"import {module}") for _ in range(5)) - bare) * 1e3


# ----------------------------------------------------------------------------- MLflow


def have_mlflow() -> bool:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def mlflow_store() -> Iterator[Any]:
    import mlflow

    with fresh_dir() as folder:
        mlflow.set_tracking_uri((folder / "mlruns").as_uri())
        yield mlflow


def ml_call_latency(calls: int) -> dict[str, float]:
    with mlflow_store() as mlflow:
        client = mlflow.MlflowClient()
        exp = client.create_experiment("bench")
        run = client.create_run(exp)
        lat = []
        for i in range(calls):
            t = time.perf_counter_ns()
            client.log_metric(run.info.run_id, "loss", 0.5, step=i)
            lat.append(time.perf_counter_ns() - t)
        return {
            "median_us": statistics.median(lat) / 1e3,
            "p99_us": percentile(lat, 0.99) / 1e3,
            "max_ms": max(lat) / 1e6,
            "stalls": float(sum(1 for x in lat if x > 10_000_000)),
        }


def ml_throughput(calls: int) -> float:
    keys = [f"k{i}" for i in range(10)]
    with mlflow_store() as mlflow:
        mlflow.set_experiment("bench")
        with mlflow.start_run():
            t = time.perf_counter()
            for i in range(calls):
                mlflow.log_metrics(dict.fromkeys(keys, i * 0.1), step=i)
            elapsed = time.perf_counter() - t
        return calls * 10 / elapsed


def ml_small_run(runs: int) -> float:
    with mlflow_store() as mlflow:
        mlflow.set_experiment("small")
        times = []
        for i in range(runs):
            t = time.perf_counter()
            with mlflow.start_run():
                mlflow.log_params({"lr": 0.1, "depth": i})
                mlflow.log_metric("loss", 0.5, step=0)
                mlflow.log_dict({"w": [1, 2, 3]}, "model.json")
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1e3


def ml_history(points: int) -> float:
    from mlflow.entities import Metric

    with mlflow_store() as mlflow:
        client = mlflow.MlflowClient()
        run = client.create_run(client.create_experiment("hist"))
        now = int(time.time() * 1000)
        for start in range(0, points, 1000):
            batch = [Metric("loss", 0.5, now, i) for i in range(start, min(points, start + 1000))]
            client.log_batch(run.info.run_id, metrics=batch)
        t = time.perf_counter()
        history = client.get_metric_history(run.info.run_id, "loss")
        elapsed = time.perf_counter() - t
        assert len(history) == points
        return elapsed


# ----------------------------------------------------------------------------- qlib


def have_qlib() -> bool:
    try:
        import qlib  # noqa: F401
    except ImportError:
        return False
    return True


QLIB_FAILURES: list[str] = []


def qlib_small_run(runs: int) -> float:
    import qlib
    from qlib.workflow import R

    with fresh_dir() as folder:
        qlib.init(
            provider_uri=str(folder / "no-data"),
            exp_manager={
                "class": "MLflowExpManager",
                "module_path": "qlib.workflow.expm",
                "kwargs": {"uri": (folder / "mlruns").as_uri(), "default_exp_name": "E"},
            },
        )
        times = []
        for i in range(runs):
            t = time.perf_counter()
            try:
                with R.start(experiment_name="small"):
                    R.log_params(lr=0.1, depth=i)
                    R.log_metrics(step=0, loss=0.5)
                    R.save_objects(model={"w": [1, 2, 3]})
            except Exception as exc:  # qlib's async logger races MLflow's file store
                QLIB_FAILURES.append(f"{type(exc).__name__}: {exc}")
                continue
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1e3


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a CI smoke run)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument(
        "--only",
        choices=["latency", "throughput", "small-run", "history", "memory", "import"],
        action="append",
        help="run only these workloads (repeatable; default: all)",
    )
    args = parser.parse_args()
    only = set(args.only or ["latency", "throughput", "small-run", "history", "memory", "import"])
    quick = args.quick
    mlflow_ok = have_mlflow()
    qlib_ok = have_qlib()

    def peer(fn: Callable[[], Any]) -> Any:
        return fn() if mlflow_ok else None

    if "latency" in only:
        print("measuring log_metrics latency ...", file=sys.stderr)
        ours = tl_call_latency(50_000 if quick else 300_000)
        theirs = peer(lambda: ml_call_latency(500 if quick else 2_000))
        for key, unit, label in (
            ("median_us", "us", "log_metrics(step, loss) caller cost, median"),
            ("p99_us", "us", "log_metrics caller cost, p99"),
            ("max_ms", "ms", "log_metrics caller cost, max"),
            ("stalls", "calls", "calls stalled > 10 ms"),
        ):
            row(label, unit, ours[key], theirs[key] if theirs else None, "lower")

    if "throughput" in only:
        print("measuring sustained throughput ...", file=sys.stderr)
        row(
            "sustained, 10 keys/call, incl. final flush",
            "points/s",
            tl_throughput(30_000 if quick else 200_000),
            peer(lambda: ml_throughput(100 if quick else 500)),
            "higher",
        )

    if "small-run" in only:
        print("measuring a full small run ...", file=sys.stderr)
        small_runs = 20 if quick else 100
        ours_run = tl_small_run(small_runs)
        row(
            "full small run (start, 2 params, 1 metric, 1 object, end), median",
            "ms",
            ours_run,
            peer(lambda: ml_small_run(small_runs)),
            "lower",
        )
        if qlib_ok:
            row(
                "full small run vs qlib's R on MLflow, median",
                "ms",
                ours_run,
                qlib_small_run(small_runs),
                "lower",
            )

    if "history" in only:
        print("measuring history reads ...", file=sys.stderr)
        n_hist = 100_000 if quick else 1_000_000
        ours_hist = tl_history(n_hist)
        ml_n = 20_000 if quick else 100_000
        theirs_hist = peer(lambda: ml_history(ml_n))
        row(
            f"one recorder's {n_hist:,}-point history into pandas",
            "s",
            ours_hist,
            theirs_hist * n_hist / ml_n if theirs_hist is not None else None,
            "lower",
        )
        recs, pts = (100, 1_000) if quick else (1_000, 1_000)
        row(
            f"{recs:,} recorders x {pts:,} points into one long frame",
            "s",
            tl_many_histories(recs, pts),
            None,
            "lower",
        )

    if "memory" in only:
        print("measuring memory and storage ...", file=sys.stderr)
        n_mem = 2_000_000 if quick else 20_000_000
        row(f"peak memory growth logging {n_mem:,} points", "MB", tl_memory(n_mem), None, "lower")
        files, per_point = tl_storage(20_000 if quick else 200_000)
        row("metrics files per recorder after end_run", "files", float(files), None, "lower")
        row(
            "stored bytes per point after end_run (random values)",
            "bytes",
            per_point,
            None,
            "lower",
        )

    if "import" in only:
        print("measuring import time ...", file=sys.stderr)
        row("import time", "ms", import_time("tracklite"), import_time("mlflow"), "lower")

    print_table(mlflow_ok, qlib_ok)
    if QLIB_FAILURES:
        print(
            f"\nqlib's R failed {len(QLIB_FAILURES)} runs (left out of its median), e.g. "
            f"{QLIB_FAILURES[0]}"
        )
    if args.json:
        args.json.write_text(json.dumps(ROWS, indent=1))


def print_table(mlflow_ok: bool, qlib_ok: bool) -> None:
    versions = [f"tracklite {__import__('tracklite').__version__}"]
    if mlflow_ok:
        versions.append(f"mlflow {__import__('mlflow').__version__}")
    if qlib_ok:
        versions.append(f"pyqlib {__import__('qlib').__version__}")
    import pyarrow

    versions.append(f"pyarrow {pyarrow.__version__}")
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}"
    )
    print("versions: " + ", ".join(versions))
    print(
        "peer: MLflow file store (mlflow-skinny)"
        + (", qlib's R" if qlib_ok else "")
        + ("" if mlflow_ok else " -- not installed, peer columns empty")
        + "\n"
    )
    header = ("workload", "unit", "tracklite", "peer", "ratio")
    widths = [max(len(r[i]) for r in [header, *ROWS]) for i in range(5)]
    line = " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for r in ROWS:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
