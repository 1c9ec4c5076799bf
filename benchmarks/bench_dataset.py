"""100 million metric points over 10,000 recorders, queried through ``tracklite.dataset()``.

The store is generated once in ``--data`` (default ``/work/data/points-100m``, outside the
repository; about 1 GB) by writing one Parquet segment per recorder directly with pyarrow (10
keys x 1,000 steps = 10,000 points each), with each ``recorder.json`` holding the latest values,
as tracklite writes them. Then, median of ``--repeat`` runs, each query against a floor in the
same run (the same engine reading the segment files by a glob, without tracklite):

* DuckDB: best ``loss`` per recorder over the dataset (``group by recorder_id``);
* pandas: the ``loss`` points of every recorder into one frame (a filtered scan), then the best
  per recorder (the floor reads the same files by a glob into pandas, without ids or group-by).

    python benchmarks/bench_dataset.py [--data /work/data/points-100m] [--repeat 3]
"""

from __future__ import annotations

import argparse
import glob as globbing
import os
import platform
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RECORDERS, KEYS, STEPS = 10_000, 10, 1_000
EXPERIMENT = "points"


def build(root: Path) -> None:
    """The store: ``RECORDERS`` finished recorders of ``KEYS`` x ``STEPS`` points each."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tracklite.metrics import segments
    from tracklite.store import atomic
    from tracklite.store.clock import ms_to_iso
    from tracklite.store.ids import new_id
    from tracklite.store.root import Store

    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    store = Store(partial)
    store.ensure()
    exp_id = store.create_experiment(EXPERIMENT)["id"]
    rng = np.random.default_rng(7)
    names = [f"m{k}" if k else "loss" for k in range(KEYS)]
    keys = pa.array(np.repeat(names, STEPS)).dictionary_encode()
    steps = pa.array(np.tile(np.arange(STEPS, dtype=np.int64), KEYS))
    start = 1_700_000_000_000
    stamps = pa.array(np.tile(start + np.arange(STEPS, dtype=np.int64), KEYS)).cast(
        pa.timestamp("ms", tz="UTC")
    )
    schema = segments.schema()
    for i in range(RECORDERS):
        rec_id = new_id()
        folder = partial / exp_id / rec_id
        (folder / "metrics").mkdir(parents=True)
        values = rng.random(KEYS * STEPS)
        table = pa.table(
            {"key": keys.cast(pa.string()), "step": steps, "value": values, "timestamp": stamps},
            schema=schema,
        )
        pq.write_table(table, folder / "metrics" / f"{new_id()}.parquet")
        latest = {
            name: {
                "value": float(values[k * STEPS + STEPS - 1]),
                "step": STEPS - 1,
                "timestamp": start + STEPS - 1,
            }
            for k, name in enumerate(names)
        }
        meta = {
            "format_version": 1,
            "id": rec_id,
            "name": f"run{i}",
            "experiment_id": exp_id,
            "status": "FINISHED",
            "lifecycle": "active",
            "start_time": ms_to_iso(start + i),
            "end_time": ms_to_iso(start + i + 1),
            "deleted_time": None,
            "owner": None,
            "params": {"seed": str(random.Random(i).randrange(100))},
            "tags": {},
            "metrics": latest,
        }
        (folder / "recorder.json").write_bytes(atomic.dump_json(meta))
        if i and i % 1000 == 0:
            print(f"  built {i:,} of {RECORDERS:,} recorders", file=sys.stderr)
    partial.rename(root)


Timing = tuple[float, float]


def timing(call: Callable[[], Any], repeat: int) -> Timing:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/data/points-100m"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root: Path = args.data
    if not (root / "tracklite.json").is_file():
        began = time.perf_counter()
        print(f"building {root}", file=sys.stderr)
        root.parent.mkdir(parents=True, exist_ok=True)
        build(root)
        print(f"  built in {time.perf_counter() - began:.0f} s", file=sys.stderr)

    import duckdb
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    import tracklite

    load = os.getloadavg()[0]
    print(f"{platform.platform()}, {os.cpu_count()} CPUs, load {load:.1f}", file=sys.stderr)
    glob = f"{root}/*/*/metrics/*.parquet"
    con = duckdb.connect()
    con.execute("set threads to 2")

    def duck_dataset() -> Any:
        points = tracklite.dataset(root)  # noqa: F841 - DuckDB finds it by name
        return con.sql(
            "select recorder_id, min(value) as best from points where key = 'loss' "
            "group by recorder_id"
        ).to_arrow_table()

    def duck_floor() -> Any:
        return con.sql(
            f"select split_part(filename, '/', -3) as recorder_id, min(value) as best "
            f"from read_parquet('{glob}', filename = true) where key = 'loss' group by all"
        ).to_arrow_table()

    def pandas_dataset() -> Any:
        table = tracklite.dataset(root).to_table(
            columns=["recorder_id", "step", "value"], filter=pc.field("key") == "loss"
        )
        return table.to_pandas().groupby("recorder_id")["value"].min()

    files = sorted(globbing.glob(glob))

    def pandas_floor() -> Any:
        # The same files listed by a glob, read by pyarrow into pandas: no ids, no group-by.
        table = pads.dataset(files, format="parquet").to_table(
            columns=["step", "value"], filter=pc.field("key") == "loss"
        )
        return table.to_pandas()

    assert duck_dataset().num_rows == RECORDERS
    rows = [
        (
            "DuckDB: best loss per recorder",
            timing(duck_dataset, args.repeat),
            timing(duck_floor, args.repeat),
        ),
        (
            "pandas: loss points to a frame, best per recorder",
            timing(pandas_dataset, args.repeat),
            timing(pandas_floor, args.repeat),
        ),
    ]
    print(f"load {os.getloadavg()[0]:.1f} at the end", file=sys.stderr)
    print(
        "| query (100,000,000 points, 10,000 recorders) | through tracklite.dataset() | "
        "floor: same engine on the files | ratio |"
    )
    print("|---|---:|---:|---:|")
    for name, ours, floor in rows:
        print(
            f"| {name} | {ours[0]:.2f} s ({ours[1]:.2f} s) | {floor[0]:.2f} s ({floor[1]:.2f} s)"
            f" | {ours[0] / floor[0]:.1f}x |"
        )


if __name__ == "__main__":
    main()
