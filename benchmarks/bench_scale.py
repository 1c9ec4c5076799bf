"""Search, listing and CLI at 10,000 and 100,000 recorders, each against a floor measured in the
same run.

Stores are generated once, directly as files in tracklite's format (one experiment; per recorder
``recorder.json`` with 10 params, 9 metrics and 2 tags, an empty ``heartbeat`` and one small
metric segment), in ``--data`` (default ``/work/data``, outside the repository), and reused by
later runs (delete the folder to rebuild). Then, per size:

* warm search (filter + order, the summary current) against the floor: the same filter and sort
  by pandas on the same frame already in memory;
* search with no summary against the floor: reading and parsing every ``recorder.json`` once;
* ``list_recorders`` of the whole experiment;
* ``tracklite runs EXP --limit 20`` and ``tracklite experiments`` in a fresh process against the
  floor: ``python -c "import pandas, pyarrow"``;
* ``get_recorder`` by id, and starting plus ending a run, at this size.

    python benchmarks/bench_scale.py [--sizes 10000,100000] [--data /work/data] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

N_PARAMS, N_METRICS, N_TAGS = 10, 9, 2
EXPERIMENT = "scale"
FILTER = "metrics.m0 > 0.5 AND tags.t0 = 'v3'"
ORDER = ["metrics.m1 DESC"]


# ----------------------------------------------------------------------------- building


#: Distinct metric histories; recorder i gets history i % VARIANTS (its latest values in its
#: recorder.json), so the store is consistent (``tracklite check`` finds nothing to report).
VARIANTS = 1000
STAMP_MS = 1_700_000_000_000


def _segments(seed: int) -> list[tuple[bytes, dict[str, float]]]:
    """``VARIANTS`` small metric segments (9 keys x 10 steps) and the latest value of each key."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from tracklite.metrics import segments

    rng = random.Random(seed)
    made = []
    keys = [f"m{j}" for j in range(N_METRICS) for _ in range(10)]
    steps = [s for _ in range(N_METRICS) for s in range(10)]
    stamps = pa.array([STAMP_MS] * len(keys), pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    for _ in range(VARIANTS):
        values = [rng.random() for _ in keys]
        table = pa.table(
            {"key": keys, "step": steps, "value": values, "timestamp": stamps},
            schema=segments.schema(),
        )
        sink = io.BytesIO()
        pq.write_table(table, sink)
        latest = {f"m{j}": values[j * 10 + 9] for j in range(N_METRICS)}
        made.append((sink.getvalue(), latest))
    return made


def build_store(root: Path, n: int, seed: int = 7) -> str:
    """A store of ``n`` finished recorders in one experiment; returns the experiment id.

    Files are written directly (a folder, ``recorder.json``, ``heartbeat``, one segment per
    recorder), as tracklite lays them out: about 40 s for 100,000 recorders here.
    """
    from tracklite.store import atomic
    from tracklite.store.clock import ms_to_iso
    from tracklite.store.ids import new_id
    from tracklite.store.root import Store

    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    store = Store(partial)
    store.ensure()
    exp_id: str = store.create_experiment(EXPERIMENT)["id"]
    histories = _segments(seed)
    rng = random.Random(seed)
    exp_dir = partial / exp_id
    for i in range(n):
        rec_id = new_id()
        folder = exp_dir / rec_id
        (folder / "metrics").mkdir(parents=True)
        (folder / "artifacts").mkdir()
        began = STAMP_MS + i * 1000
        segment, latest = histories[i % VARIANTS]
        meta = {
            "format_version": 1,
            "id": rec_id,
            "name": f"run{i}",
            "experiment_id": exp_id,
            "status": "FINISHED",
            "lifecycle": "active",
            "start_time": ms_to_iso(began),
            "end_time": ms_to_iso(began + 900),
            "deleted_time": None,
            "owner": {"host": "bench", "pid": 1, "started": ms_to_iso(began)},
            "params": {f"p{j}": f"{rng.random():.6f}" for j in range(N_PARAMS)},
            "tags": {"t0": f"v{rng.randrange(10)}", "mlflow.runName": f"run{i}"},
            "metrics": {
                key: {"value": value, "step": 9, "timestamp": STAMP_MS}
                for key, value in latest.items()
            },
        }
        (folder / "recorder.json").write_bytes(atomic.dump_json(meta))
        (folder / "heartbeat").touch()
        (folder / "metrics" / f"{new_id()}.parquet").write_bytes(segment)
        if i and i % 10_000 == 0:
            print(f"  built {i:,} of {n:,} recorders", file=sys.stderr)
    partial.rename(root)
    return exp_id


def store_for(data: Path, n: int) -> tuple[Path, str]:
    """The store of ``n`` recorders under ``data``, built if missing."""
    from tracklite.store.root import Store

    root = data / f"scale-{n}"
    if not (root / "tracklite.json").is_file():
        started = time.perf_counter()
        print(f"building {root} ({n:,} recorders)", file=sys.stderr)
        data.mkdir(parents=True, exist_ok=True)
        build_store(root, n)
        print(f"  built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    meta = Store(root).find_experiment(EXPERIMENT)
    assert meta is not None
    return root, str(meta["id"])


# ----------------------------------------------------------------------------- timing


Timing = tuple[float, float]  # (median, best) seconds


def timing(call: Callable[[], Any], repeat: int) -> Timing:
    """Median and best of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


Row = tuple[str, int, Timing, Timing | None, str]  # operation, size, ours, floor, target


def measure(root: Path, exp_id: str, n: int, repeat: int) -> list[Row]:
    """Every operation of the table at one store size."""
    import pandas as pd

    from tracklite import R
    from tracklite.search import cache
    from tracklite.search.listing import search_records
    from tracklite.store.root import Store

    store = Store(root)
    rows: list[Row] = []

    def search(**kwargs: Any) -> pd.DataFrame:
        return search_records(store, [exp_id], filter_string=FILTER, order_by=ORDER, **kwargs)

    # Warm: the summary current (the first search folds whatever changed since the last run).
    search()
    full = search_records(store, [exp_id])
    want = search()

    def floor_search() -> pd.DataFrame:
        hit = full[(full["metrics.m0"] > 0.5) & (full["tags.t0"] == "v3")]
        return hit.sort_values("metrics.m1", ascending=False, kind="stable")

    assert list(floor_search()["run_id"]) == list(want["run_id"])
    rows.append(
        (
            "search, filter + order, summary current",
            n,
            timing(search, repeat),
            timing(floor_search, repeat),
            "<= 5x",
        )
    )

    # No summary: every recorder.json read and parsed, nothing written.
    def floor_parse() -> int:
        count = 0
        with os.scandir(root / exp_id) as listing:
            for entry in listing:
                if entry.is_dir() and "." not in entry.name:
                    with open(os.path.join(entry.path, "recorder.json"), "rb") as handle:
                        count += len(json.loads(handle.read()))
        return count

    cold_repeat = max(1, repeat // 2)
    rows.append(
        (
            "search, filter + order, no summary",
            n,
            timing(lambda: search(use_cache=False), cold_repeat),
            timing(floor_parse, cold_repeat),
            "<= 2x",
        )
    )

    def rebuild() -> None:
        cache.drop_summaries(root)
        search()

    rows.append(("search rebuilding the summary", n, timing(rebuild, 1), None, ""))

    R.set_uri(str(root))
    exp = R.get_exp(experiment_name=EXPERIMENT, create=False)
    listed = exp.list_recorders(rtype=exp.RT_L)
    assert len(listed) == n
    rows.append(
        (
            "list_recorders (Recorder objects)",
            n,
            timing(lambda: exp.list_recorders(rtype=exp.RT_L), repeat),
            None,
            "< 0.5 s",
        )
    )

    rec_ids = [r.id for r in random.Random(3).sample(listed, 200)]
    times = []
    for rec_id in rec_ids:
        start = time.perf_counter()
        R.get_recorder(recorder_id=rec_id, experiment_name=EXPERIMENT)
        times.append(time.perf_counter() - start)
    rows.append(
        ("get_recorder(recorder_id=...)", n, (statistics.median(times), min(times)), None, "flat")
    )

    rows.extend(_runs_at_size(root, n, repeat))
    rows.extend(_cli(root, n, repeat))
    return rows


def _runs_at_size(root: Path, n: int, repeat: int) -> list[Row]:
    """Starting and ending a run in the big experiment, and logging inside it; the recorders
    made are removed afterwards, so the store keeps its size."""
    from tracklite import R
    from tracklite.store.root import Store

    store = Store(root)
    exp = store.find_experiment(EXPERIMENT)
    assert exp is not None
    before = set(store.recorder_ids(exp["id"]))
    starts = []
    calls = []
    try:
        for _ in range(max(repeat, 5)):
            start = time.perf_counter()
            with R.start(experiment_name=EXPERIMENT):
                starts.append(time.perf_counter() - start)
                for i in range(2000):
                    began = time.perf_counter()
                    R.log_metrics(step=i, loss=1.0 / (i + 1))
                    calls.append(time.perf_counter() - began)
    finally:
        for rec_id in set(store.recorder_ids(exp["id"])) - before:
            shutil.rmtree(root / exp["id"] / rec_id)
    return [
        (
            "start a run (R.start, first line of the block)",
            n,
            (statistics.median(starts), min(starts)),
            None,
            "flat",
        ),
        (
            "R.log_metrics(step, loss), median call",
            n,
            (statistics.median(calls), min(calls)),
            None,
            "flat",
        ),
    ]


def _cli(root: Path, n: int, repeat: int) -> list[Row]:
    """The two CLI listings in fresh processes, against starting Python with pandas and pyarrow."""
    env = {**os.environ, "TRACKLITE_URI": str(root), "NO_COLOR": "1"}

    def run(*args: str) -> Callable[[], None]:
        def call() -> None:
            subprocess.run([sys.executable, *args], env=env, check=True, capture_output=True)

        return call

    floor = timing(run("-c", "import pandas, pyarrow"), repeat)
    return [
        (
            f"`tracklite runs {EXPERIMENT} --limit 20`",
            n,
            timing(run("-m", "tracklite", "runs", EXPERIMENT, "--limit", "20"), repeat),
            floor,
            "<= 2.5x",
        ),
        (
            "`tracklite experiments`",
            n,
            timing(run("-m", "tracklite", "experiments"), repeat),
            floor,
            "<= 2.5x",
        ),
    ]


def report(rows: list[Row]) -> str:
    lines = [
        "| operation | recorders | tracklite, median (best) | floor, median (best) | ratio "
        "| target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, n, ours, floor, target in rows:
        shown = "-" if floor is None else f"{fmt(floor[0])} ({fmt(floor[1])})"
        ratio = "-" if floor is None else f"{ours[0] / floor[0]:.1f}x"
        lines.append(
            f"| {name} | {n:,} | {fmt(ours[0])} ({fmt(ours[1])}) | {shown} | {ratio} | {target} |"
        )
    return "\n".join(lines)


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--data", type=Path, default=Path("/work/data"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    stores = [(n, *store_for(args.data, n)) for n in sizes]
    if args.build_only:
        return
    print(
        f"{platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load {_load()} at the start",
        file=sys.stderr,
    )
    rows: list[Row] = []
    for n, root, exp_id in stores:
        rows.extend(measure(root, exp_id, n, args.repeat))
        print(report(rows[-1:]).splitlines()[-1], file=sys.stderr)
    print(f"load {_load()} at the end", file=sys.stderr)
    print(report(rows))


if __name__ == "__main__":
    main()
