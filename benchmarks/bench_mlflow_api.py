"""``tracklite.mlflow`` against ``R`` (same store engine) and against MLflow's file store.

Each workload runs, in one process and one after the other, on fresh stores in a temporary
folder outside any git work tree: tracklite's MLflow API, tracklite's ``R`` doing the same, and
MLflow itself (mlflow-skinny, ``MLFLOW_ALLOW_FILE_STORE=true``) with the same calls.

    pip install ".[bench]"          # mlflow-skinny
    python benchmarks/bench_mlflow_api.py [--quick]

The table gives tracklite.mlflow's cost relative to ``R`` (target: at most 2x) and MLflow's
relative to tracklite.mlflow (target: at least 100x for ``log_metric``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

KEYS = [f"k{i}" for i in range(10)]


@contextlib.contextmanager
def fresh_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tl-bench-mlflow-") as folder:
        old = os.getcwd()
        os.chdir(folder)
        try:
            yield Path(folder)
        finally:
            os.chdir(old)


def per_call(calls: int, body: Callable[[int], Any]) -> tuple[float, float]:
    """Median and p99 of one call, in microseconds."""
    clock = time.perf_counter_ns
    lat = []
    gc.collect()
    for i in range(calls):
        t = clock()
        body(i)
        lat.append(clock() - t)
    lat.sort()
    return statistics.median(lat) / 1e3, lat[min(len(lat) - 1, int(0.99 * len(lat)))] / 1e3


def throughput(calls: int, body: Callable[[int], Any], finish: Callable[[], Any]) -> float:
    """Points per second for ``calls`` calls of 10 keys, including the final write."""
    t = time.perf_counter()
    for i in range(calls):
        body(i)
    finish()
    return calls * len(KEYS) / (time.perf_counter() - t)


# ----------------------------------------------------------------------------- the systems


def run_tracklite_mlflow(n: dict[str, int]) -> dict[str, float]:
    import tracklite.mlflow as mlflow

    out: dict[str, float] = {}
    with fresh_dir() as folder:
        mlflow.set_tracking_uri(str(folder / "store"))
        with mlflow.start_run():
            time.sleep(0.5)  # the writer thread imports pyarrow at run start
            out["median"], out["p99"] = per_call(
                n["calls"], lambda i: mlflow.log_metric("loss", 0.5 + i * 1e-9, step=i)
            )
            values = dict.fromkeys(KEYS, 0.1)
            out["sustained"] = throughput(
                n["sustained"],
                lambda i: mlflow.log_metrics(values, step=i),
                mlflow.flush_async_logging,
            )
        client = mlflow.MlflowClient()
        run_id = client.create_run("0").info.run_id
        out["batch"] = _client_batches(client, run_id, n["batches"], mlflow.entities.Metric)
        client.set_terminated(run_id)
        out["small_run"] = _small_runs(mlflow, n["runs"])
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    return out


def run_r(n: dict[str, int]) -> dict[str, float]:
    from tracklite import ExpManager, QlibRecorder

    out: dict[str, float] = {}
    with fresh_dir() as folder:
        r = QlibRecorder(ExpManager(uri=str(folder / "store")))
        with r.start(experiment_name="bench"):
            time.sleep(0.5)
            out["median"], out["p99"] = per_call(
                n["calls"], lambda i: r.log_metrics(step=i, loss=0.5 + i * 1e-9)
            )
            values = dict.fromkeys(KEYS, 0.1)
            out["sustained"] = throughput(
                n["sustained"], lambda i: r.log_metrics(i, **values), r.flush
            )
        times = []
        for i in range(n["runs"]):
            t = time.perf_counter()
            with r.start(experiment_name="small", recorder_name=f"r{i}"):
                r.log_params(lr=0.1, depth=6)
                r.log_metrics(loss=0.5)
            times.append(time.perf_counter() - t)
        out["small_run"] = statistics.median(times) * 1e3
    return out


def run_mlflow(n: dict[str, int]) -> dict[str, float]:
    import mlflow
    from mlflow.entities import Metric

    out: dict[str, float] = {}
    with fresh_dir() as folder:
        mlflow.set_tracking_uri((folder / "mlruns").as_uri())
        with mlflow.start_run():
            out["median"], out["p99"] = per_call(
                n["peer_calls"], lambda i: mlflow.log_metric("loss", 0.5 + i * 1e-9, step=i)
            )
            values = dict.fromkeys(KEYS, 0.1)
            out["sustained"] = throughput(
                n["peer_sustained"], lambda i: mlflow.log_metrics(values, step=i), lambda: None
            )
        client = mlflow.MlflowClient()
        run_id = client.create_run("0").info.run_id
        out["batch"] = _client_batches(client, run_id, n["peer_batches"], Metric)
        client.set_terminated(run_id)
        out["small_run"] = _small_runs(mlflow, n["peer_runs"])
    return out


def _client_batches(client: Any, run_id: str, batches: int, metric: Any) -> float:
    """Lightning's pattern: one ``log_batch`` of 10 metrics (with timestamps) per step."""
    t0 = int(time.time() * 1000)

    def body(i: int) -> None:
        client.log_batch(run_id, metrics=[metric(k, 0.1, t0 + i, i) for k in KEYS])

    return throughput(batches, body, lambda: client.get_run(run_id))


def _small_runs(mlflow: Any, runs: int) -> float:
    """Median ms of a whole small run: start, 2 params, 1 metric, end."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        with mlflow.start_run():
            mlflow.log_params({"lr": 0.1, "depth": 6})
            mlflow.log_metric("loss", 0.5)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


# ----------------------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    n = {
        "calls": 200_000 // scale,
        "sustained": 100_000 // scale,
        "batches": 5_000 // scale,
        "runs": 100 // scale,
        "peer_calls": 2_000 // scale,
        "peer_sustained": 300 // scale,
        "peer_batches": 300 // scale,
        "peer_runs": 50 // scale,
    }
    ours = run_tracklite_mlflow(n)
    r = run_r(n)
    try:
        peer: dict[str, float] | None = run_mlflow(n)
    except ImportError:
        peer = None
        print("MLflow is not installed: its column is empty", file=sys.stderr)

    def cell(value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"

    rows = [
        ("`log_metric(key, v, step)` caller cost, median", "µs", "median", "lower"),
        ("`log_metric` caller cost, p99", "µs", "p99", "lower"),
        (
            "`log_metrics` of 10 keys, sustained, incl. final write",
            "points/s",
            "sustained",
            "higher",
        ),
        ("`MlflowClient.log_batch` of 10 metrics per step", "points/s", "batch", "higher"),
        ("small run: start, 2 params, 1 metric, end; median", "ms", "small_run", "lower"),
    ]
    print(
        "| workload | unit | tracklite.mlflow | tracklite `R` | MLflow file store "
        "| vs `R` | MLflow vs tracklite.mlflow |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, unit, key, better in rows:
        mine, rs, theirs = ours.get(key), r.get(key), (peer or {}).get(key)
        if better == "lower":
            vs_r = f"{mine / rs:.2f}x the cost" if mine and rs else "-"
            vs_peer = f"{theirs / mine:,.0f}x slower" if mine and theirs else "-"
        else:
            vs_r = f"{rs / mine:.2f}x the cost" if mine and rs else "-"
            vs_peer = f"{mine / theirs:,.0f}x fewer" if mine and theirs else "-"
        cells = " | ".join([label, unit, cell(mine), cell(rs), cell(theirs), vs_r, vs_peer])
        print(f"| {cells} |")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\n{platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores, 1-minute load {load:.1f}"
    )


if __name__ == "__main__":
    main()
