"""Search and listing benchmarks: tracklite against MLflow's file store on the same data.

Builds stores of 1,000 and 10,000 recorders (10 params, 10 metrics, 5 tags each, the metric
histories written as Parquet segments) through tracklite's store and segment writer, and the
same runs in an MLflow file store through ``MlflowClient`` (the 10,000 case skips MLflow unless
``--mlflow-max`` allows it: building it alone takes many minutes). Then times, on each system:

* ``search_records`` with a filter and an order, *cold* (no tracklite summary: every
  ``recorder.json`` is read, and the summary is written) and *warm* (the summary is current);
  MLflow: ``mlflow.search_runs`` with the same filter and order (it has no cache);
* ``list_recorders`` of the whole experiment (tracklite ``Recorder`` objects, summary current);
  MLflow: ``MlflowClient.search_runs`` with qlib's cap, which is what qlib's ``list_recorders``
  calls;
* ``get_recorder(recorder_id=...)`` through ``R`` (experiment by name, then the recorder);
  MLflow: ``MlflowClient.get_run``.

    pip install ".[bench]"          # mlflow-skinny
    python benchmarks/bench_search.py [--sizes 1000,10000] [--mlflow-max 1000] [--repeat 5]

The OS page cache is warm for both systems ("cold" means no tracklite summary, not an empty
page cache). Median and best of ``--repeat`` runs (get_recorder: of 200 calls); on a shared
machine the best is the least disturbed by other processes; note the load the script prints.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

N_PARAMS, N_METRICS, N_TAGS = 10, 10, 5
FILTER = "metrics.m0 > 0.5 AND tags.t0 = 'v3'"
ORDER = ["metrics.m1 DESC"]


@dataclass
class Run:
    """One run's data, identical for both systems."""

    name: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, list[float]]  # key -> value per step
    start_ms: int


def make_runs(n: int, steps: int, seed: int = 7) -> list[Run]:
    rng = random.Random(seed)
    start = 1_700_000_000_000
    runs = []
    for i in range(n):
        runs.append(
            Run(
                name=f"run{i}",
                params={f"p{j}": f"{rng.random():.6f}" for j in range(N_PARAMS)},
                tags={f"t{j}": f"v{rng.randrange(10)}" for j in range(N_TAGS)},
                metrics={f"m{j}": [rng.random() for _ in range(steps)] for j in range(N_METRICS)},
                start_ms=start + i * 1000,
            )
        )
    return runs


# ----------------------------------------------------------------------------- building


def build_tracklite(root: Path, runs: list[Run]) -> str:
    """The runs as tracklite recorders, written directly through the store and segment writer
    (the path ``R`` takes minus per-call logging overhead); returns the experiment id."""
    import pyarrow as pa

    from tracklite.metrics import segments
    from tracklite.store.clock import ms_to_iso
    from tracklite.store.root import Store

    store = Store(root)
    store.ensure()
    exp_id: str = store.create_experiment("bench")["id"]
    schema = segments.schema()
    for run in runs:
        steps = len(next(iter(run.metrics.values())))
        stamp = run.start_ms + 500
        latest = {
            key: {"value": values[-1], "step": steps - 1, "timestamp": stamp}
            for key, values in run.metrics.items()
        }
        meta = store.create_recorder(
            exp_id,
            run.name,
            status="FINISHED",
            start_time=ms_to_iso(run.start_ms),
            extra={
                "end_time": ms_to_iso(run.start_ms + 900),
                "params": dict(run.params),
                "tags": {**run.tags, "mlflow.runName": run.name},
                "metrics": latest,
            },
        )
        keys = [key for key in run.metrics for _ in range(steps)]
        table = pa.table(
            {
                "key": keys,
                "step": [s for _ in run.metrics for s in range(steps)],
                "value": [v for values in run.metrics.values() for v in values],
                "timestamp": pa.array([stamp] * len(keys), pa.int64()).cast(
                    pa.timestamp("ms", tz="UTC")
                ),
            },
            schema=schema,
        )
        segments.write_segment(root / exp_id / meta["id"] / "metrics", table)
    return exp_id


def build_mlflow(root: Path, runs: list[Run]) -> tuple[str, dict[str, str]]:
    """The same runs in an MLflow file store; returns the experiment id and run ids by name."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=root.as_uri())
    exp_id = client.create_experiment("bench")
    ids = {}
    for run in runs:
        created = client.create_run(exp_id, start_time=run.start_ms, run_name=run.name)
        run_id = created.info.run_id
        stamp = run.start_ms + 500
        client.log_batch(
            run_id,
            metrics=[
                Metric(key, value, stamp, step)
                for key, values in run.metrics.items()
                for step, value in enumerate(values)
            ],
            params=[Param(k, v) for k, v in run.params.items()],
            tags=[RunTag(k, v) for k, v in run.tags.items()],
        )
        client.set_terminated(run_id, "FINISHED", end_time=run.start_ms + 900)
        ids[run.name] = run_id
    return exp_id, ids


# ----------------------------------------------------------------------------- timing


Timing = tuple[float, float]  # (median, best) seconds


def timing(call: Callable[[], Any], repeat: int, before: Callable[[], Any] | None = None) -> Timing:
    """Median and best of ``repeat`` calls (``before`` runs untimed before each)."""
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


@dataclass
class Results:
    rows: list[tuple[str, int, Timing, Timing | None]] = field(default_factory=list)

    def add(self, name: str, n: int, ours: Timing, peer: Timing | None) -> None:
        self.rows.append((name, n, ours, peer))
        shown = "-" if peer is None else _pair(peer)
        print(f"  {name} n={n}: tracklite {_pair(ours)}, MLflow {shown}", file=sys.stderr)

    def get(self, name: str, n: int) -> Timing | None:
        for row in self.rows:
            if row[0] == name and row[1] == n:
                return row[2]
        return None


def _pair(value: Timing) -> str:
    return f"{_fmt(value[0])} ({_fmt(value[1])})"


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def bench_size(n: int, steps: int, with_mlflow: bool, repeat: int, results: Results) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    from tracklite import ExpManager, QlibRecorder
    from tracklite.search import cache
    from tracklite.search.listing import search_records
    from tracklite.store.root import Store

    runs = make_runs(n, steps)
    with tempfile.TemporaryDirectory(prefix="tl-bench-search-") as folder:
        root = Path(folder) / "tracklite"
        start = time.perf_counter()
        exp_id = build_tracklite(root, runs)
        print(
            f"built tracklite store of {n} in {time.perf_counter() - start:.1f} s", file=sys.stderr
        )
        if with_mlflow:
            start = time.perf_counter()
            ml_exp, ml_ids = build_mlflow(Path(folder) / "mlruns", runs)
            print(
                f"built MLflow store of {n} in {time.perf_counter() - start:.1f} s", file=sys.stderr
            )
        # The benchmark's own million floats must not slow the code measured: every full
        # garbage collection would walk them.
        del runs
        gc.collect()
        gc.freeze()
        # A summary is only trusted for folders older than the racy window; a real store gets
        # there by itself a few seconds after its last write.
        time.sleep(cache.RACY_NS / 1e9 + 1)

        store = Store(root)
        recorder = QlibRecorder(ExpManager(uri=str(root)))
        experiment = recorder.get_exp(experiment_name="bench", create=False)

        def ours_search() -> Any:
            return search_records(store, [exp_id], filter_string=FILTER, order_by=ORDER)

        ours_frame = ours_search()  # warms imports; writes the summary
        cache.drop_summaries(root)
        ours_search()  # and the cold path once, untimed
        cold = timing(ours_search, repeat, before=lambda: cache.drop_summaries(root))
        ours_search()
        warm = timing(ours_search, max(repeat, 10))
        listed = timing(lambda: experiment.list_recorders(), repeat)
        assert len(experiment.list_recorders()) == n
        all_ids = store.recorder_ids(exp_id)
        sample = random.Random(2).choices(all_ids, k=200)
        get_times = []
        for rec_id in sample:
            start = time.perf_counter()
            recorder.get_recorder(recorder_id=rec_id, experiment_name="bench")
            get_times.append(time.perf_counter() - start)
        get_one = statistics.median(get_times), min(get_times)

        peer_search = peer_list = peer_get = None
        if with_mlflow:
            client = MlflowClient(tracking_uri=(Path(folder) / "mlruns").as_uri())
            mlflow.set_tracking_uri((Path(folder) / "mlruns").as_uri())

            def peer_search_call() -> Any:
                return mlflow.search_runs([ml_exp], filter_string=FILTER, order_by=ORDER)

            peer_frame = peer_search_call()
            # Same data, same query: the same runs in the same order.
            by_id = {v: k for k, v in ml_ids.items()}
            peer_names = [by_id[i] for i in peer_frame["run_id"]]
            ours_names = []
            for rec_id in ours_frame["run_id"]:
                meta = store.read_recorder(exp_id, rec_id)
                ours_names.append(meta["name"] if meta else None)
            assert ours_names == peer_names, "the two systems disagree on the result"
            peer_search = timing(peer_search_call, repeat)
            peer_list = timing(lambda: client.search_runs([ml_exp], max_results=50_000), repeat)
            run_ids = list(ml_ids.values())
            sample_ml = random.Random(2).choices(run_ids, k=200)
            peer_times = []
            for run_id in sample_ml:
                start = time.perf_counter()
                client.get_run(run_id)
                peer_times.append(time.perf_counter() - start)
            peer_get = statistics.median(peer_times), min(peer_times)

        print(f"  result: {len(ours_frame)} of {n} match the filter", file=sys.stderr)
        results.add("search_records, filter + order, cold", n, cold, peer_search)
        results.add("search_records, filter + order, warm", n, warm, peer_search)
        results.add("list_recorders (whole experiment)", n, listed, peer_list)
        results.add("get_recorder(recorder_id=...)", n, get_one, peer_get)


def machine() -> list[str]:
    import mlflow
    import pandas as pd
    import pyarrow as pa

    import tracklite

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return [
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu})",
        f"Python {platform.python_version()}, tracklite {tracklite.__version__}, "
        f"pandas {pd.__version__}, pyarrow {pa.__version__}, mlflow-skinny {mlflow.__version__}",
    ]


def calibration() -> float:
    """Seconds for a fixed pure-Python loop: compare it across runs to see how loaded (or
    throttled) the machine was."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        sum(range(10**6))
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="recorder counts (comma-separated)")
    parser.add_argument("--mlflow-max", type=int, default=1000, help="largest size run on MLflow")
    parser.add_argument("--steps", type=int, default=10, help="points per metric")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    load_before = os.getloadavg()
    calibrate_before = calibration()
    results = Results()
    for n in sizes:
        bench_size(n, args.steps, n <= args.mlflow_max, args.repeat, results)
    load_after = os.getloadavg()
    calibrate_after = calibration()

    print("\nMedian (best) of the runs; the ratio compares medians.\n")
    print("| operation | recorders | tracklite | MLflow file store | MLflow / tracklite |")
    print("|---|---:|---:|---:|---:|")
    for name, n, ours, peer in results.rows:
        if peer is None:
            peer_text, ratio = f"skipped (> {args.mlflow_max})", "-"
        else:
            peer_text, ratio = _pair(peer), f"{peer[0] / ours[0]:,.0f}x"
        print(f"| {name} | {n:,} | {_pair(ours)} | {peer_text} | {ratio} |")
    if len(sizes) >= 2:
        small, large = min(sizes), max(sizes)
        print(f"\nScaling, {large:,} vs {small:,} recorders ({large / small:.0f}x the rows), best:")
        for name in dict.fromkeys(r[0] for r in results.rows):
            a, b = results.get(name, small), results.get(name, large)
            if a and b:
                print(f"- {name}: {_fmt(a[1])} -> {_fmt(b[1])} ({b[1] / a[1]:.1f}x)")
    print()
    for line in machine():
        print(line)
    print(
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
        f"(1-minute); CPU check sum(range(10**6)): {_fmt(calibrate_before)} before, "
        f"{_fmt(calibrate_after)} after"
    )
    print(f"filter {FILTER!r}, order {ORDER}, {args.steps} points per metric")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
