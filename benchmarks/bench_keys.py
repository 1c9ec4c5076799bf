"""Recorders with many metric keys: is every path linear in the number of keys?

For each key count N, one recorder logs N keys once (step 0), then one key again (step 1). Timed:

- ``flush 1 key``: a flush of a single point into a recorder that has N keys (the metadata
  rewrite, which carries the latest-metrics summary);
- ``flush all``: a flush of one point of every key (a segment of N points and the whole
  summary rewritten: the most any flush writes);
- ``search cold``: ``tracklite.search_records(..., use_cache=False)``: reads ``recorder.json``;
- ``search warm``: ``tracklite.search_records`` with the experiment's summary cache current;
- ``runs``: ``tracklite runs EXPERIMENT`` in this process (summary current) on a 160-column
  terminal (``COLUMNS=160``: the table shows what fits), output discarded;
- ``runs piped``: the same with no terminal and no ``$COLUMNS``: the whole text table, a column
  for every key;
- ``runs csv``: ``tracklite --format csv runs EXPERIMENT``: every key of the row written out;
- ``ui runs``, ``ui summary``, ``report``: ``tracklite ui``'s answer for the runs table
  (keys and rows as JSON), a new server's summary of every key of the run, and the data of
  ``tracklite report`` as JSON;
- ``floor``: ``json.loads`` of the recorder's ``recorder.json`` plus, past a thousand keys,
  ``pyarrow.parquet.read_table`` of its ``latest.parquet``: the least any reader of the
  summary pays. ``json KB`` and ``file MB`` are their sizes.

Each time is the best of ``--repeat`` runs, with its ratio to the floor and its cost per key
(constant per key = linear)::

    python benchmarks/bench_keys.py                 # 2,500 5,000 10,000 100,000 keys
    python benchmarks/bench_keys.py --keys 1000 --repeat 1

``--page`` times only what ``tracklite ui``'s runs table asks for, over HTTP from a real server
(``--runs`` recorders of N keys each): ``every key`` is ``/api/runs`` with no ``metrics=`` (each
row carries all its keys: what the page asked for before), ``first page`` the page's first
request with two metric columns (their keys in each row, plus the key lists of the table) and
``next page`` its requests while scrolling (the two keys only). Then ``/api/rows`` of the
runs (the selected runs of *Compare* and *Charts*): ``rows every key`` with no ``metrics=``
(what the page asked for before), ``rows Compare`` with the 200 keys Compare lists first (the
two columns, then the first keys by name), ``rows Charts`` with the two columns' keys and
``rows found`` with one key found by name (its values only: ``keys=0``). Sizes in KB, times
best of ``--repeat``, ratio to ``every key`` (to ``rows every key`` for ``/api/rows``)::

    python benchmarks/bench_keys.py --page --keys 10000 100000 --runs 2
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Cache rows younger than the racy window are re-read on every search; the benchmark times a
# settled store, so the window is closed (before tracklite is imported).
os.environ["TRACKLITE_SUMMARY_RACY"] = "0"


def best(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(keys: int, repeat: int, root: Path, columns: int) -> dict[str, float]:
    import tracklite
    from tracklite import ExpManager, QlibRecorder
    from tracklite.cli import main

    store = root / f"keys-{keys}"
    R = QlibRecorder(ExpManager(uri=str(store)))
    with R.start(experiment_name="keys"):
        R.log_metrics(step=0, **{f"metric_{i:06d}": float(i) for i in range(keys)})
        R.flush()
        rec = R.get_recorder()
        step = iter(range(1, 1_000_000))

        def flush_one() -> None:
            R.log_metrics(step=next(step), metric_000001=1.0)
            R.flush()

        flush = best(flush_one, repeat)
        everything = {f"metric_{i:06d}": float(i) for i in range(keys)}

        def flush_all() -> None:
            R.log_metrics(step=next(step), **everything)
            R.flush()

        flush_every = best(flush_all, repeat)
        flush_one()  # the last flush leaves one entry in recorder.json, as a live run would
    import pyarrow.parquet as pq

    meta_file = rec.ref.meta_path
    data = meta_file.read_bytes()
    side = rec.ref.dir / "latest.parquet"

    def read_floor() -> None:
        json.loads(data)
        if side.exists():
            pq.read_table(side)

    floor = best(read_floor, repeat)
    file_mb = side.stat().st_size / 1e6 if side.exists() else 0.0
    cold = best(lambda: tracklite.search_records(str(store), use_cache=False), repeat)
    tracklite.search_records(str(store))  # builds the summary cache
    search = best(lambda: tracklite.search_records(str(store)), repeat)

    def runs(*options: str) -> Callable[[], None]:
        def run() -> None:
            with contextlib.redirect_stdout(io.StringIO()):
                assert main(["--uri", str(store), *options, "runs", "keys"]) == 0

        return run

    if columns:
        os.environ["COLUMNS"] = str(columns)
    try:
        listing = best(runs(), repeat)
    finally:
        os.environ.pop("COLUMNS", None)
    piped = best(runs(), repeat)
    csv = best(runs("--format", "csv"), repeat)
    ui_runs, ui_summary, report = measure_ui(store, repeat)
    shutil.rmtree(store, ignore_errors=True)
    return {
        "flush": flush,
        "all": flush_every,
        "cold": cold,
        "search": search,
        "runs": listing,
        "piped": piped,
        "csv": csv,
        "ui runs": ui_runs,
        "ui summary": ui_summary,
        "report": report,
        "floor": floor,
        "kb": len(data) / 1e3,
        "file_mb": file_mb,
    }


def measure_ui(store: Path, repeat: int) -> tuple[float, float, float]:
    """What ``tracklite ui`` answers for the runs table (``/api/runs``: keys and rows, as
    JSON), for every key's summary of the run (``/api/summary``, read from the metric files:
    a new server each time) and what ``tracklite report`` builds (its data, as JSON)."""
    from tracklite.store.ref import RecorderRef
    from tracklite.ui.data import StoreData
    from tracklite.ui.report import build

    data = StoreData(store)
    exps = data.experiment_ids(None)

    def runs() -> list[dict[str, object]]:
        frame = data.search(exps)
        rows = data.rows(frame, 0, 100)
        json.dumps({"keys": data.keys(frame), "rows": rows}, allow_nan=False)
        return rows

    rows = runs()
    refs = [RecorderRef(data.store.root, str(r["exp"]), str(r["id"])) for r in rows]
    listing = best(runs, repeat)
    summary = best(lambda: json.dumps(StoreData(store).summaries(refs)), repeat)
    report = best(lambda: json.dumps(build(store), allow_nan=False), repeat)
    return listing, summary, report


def measure_page(keys: int, runs: int, repeat: int, root: Path) -> list[tuple[str, int, float]]:
    """``/api/runs`` of ``runs`` recorders of ``keys`` keys: (what, bytes, seconds) each."""
    import threading
    import urllib.request

    from tracklite import ExpManager, QlibRecorder
    from tracklite.ui.server import serve

    store = root / f"page-{keys}"
    R = QlibRecorder(ExpManager(uri=str(store)))
    for _ in range(runs):
        with R.start(experiment_name="keys"):
            R.log_metrics(step=0, **{f"metric_{i:06d}": float(i) for i in range(keys)})
    server = serve(str(store), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    two = ["metric_000001", f"metric_{keys - 1:06d}"]
    columns = "metrics=" + "%0A".join(two)
    runs_of = "/api/runs?exps=keys&limit=200"
    asked = {
        "every key": runs_of,
        "first page": f"{runs_of}&{columns}",
        "next page": f"{runs_of}&{columns}&keys=0",
    }
    found = []
    try:
        ids = ",".join(str(row["id"]) for row in _get_json(server, runs_of)["rows"])
        compare = [*two, *(f"metric_{i:06d}" for i in range(keys))]
        compare = list(dict.fromkeys(compare))[:200]
        rows_of = f"/api/rows?ids={ids}"
        asked["rows every key"] = rows_of
        asked["rows Compare"] = f"{rows_of}&metrics=" + "%0A".join(compare)
        asked["rows Charts"] = f"{rows_of}&{columns}"
        asked["rows found"] = f"{rows_of}&metrics=metric_{keys // 2:06d}&keys=0"
        for what, path in asked.items():
            url = f"http://{host}:{port}{path}"
            request = urllib.request.Request(url, headers={"X-Tracklite-Token": server.token})
            size = 0

            def get(request: urllib.request.Request = request) -> None:
                nonlocal size
                with urllib.request.urlopen(request, timeout=600) as response:
                    size = len(response.read())

            get()  # the search, once: the server keeps it for the requests of a scroll
            took = best(get, repeat)
            found.append((what, size, took))
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(store, ignore_errors=True)
    return found


def _get_json(server: Any, path: str) -> Any:
    import urllib.request

    host, port = server.server_address[:2]
    url = f"http://{host}:{port}{path}"
    request = urllib.request.Request(url, headers={"X-Tracklite-Token": server.token})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def page_table(args: argparse.Namespace) -> None:
    print(f"{'keys':>8} {'runs':>4} {'what':>14} {'KB':>9} {'s':>7} {'x every key':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for keys in args.keys:
            found = measure_page(keys, args.runs, args.repeat, Path(tmp))
            for what, size, took in found:
                if what in ("every key", "rows every key"):
                    whole, whole_s = size, took
                ratio = f"{size / whole:.4f} size, {took / whole_s:.3f} time"
                print(f"{keys:8,} {args.runs:4} {what:>14} {size / 1e3:9.1f} {took:7.3f} {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, nargs="*", default=[2_500, 5_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--columns", type=int, default=160, help="terminal width of `runs` (0: piped, no limit)"
    )
    parser.add_argument("--page", action="store_true", help="only the runs table's requests")
    parser.add_argument("--runs", type=int, default=2, help="recorders of --page")
    args = parser.parse_args()
    python = platform.python_version()
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {python}")
    print(f"load: {os.getloadavg()[0]:.1f}")
    if args.page:
        page_table(args)
        return
    head = f"{'keys':>8} {'json KB':>8} {'file MB':>7} {'floor s':>8}"
    whats = ("flush 1 key", "flush all", "search cold", "search warm", "runs", "runs piped")
    for what in (*whats, "runs csv", "ui runs", "ui summary", "report"):
        head += f" {what + ' s':>13} {'x floor':>7} {'us/key':>6}"
    print(head)
    with tempfile.TemporaryDirectory() as tmp:
        for keys in args.keys:
            row = measure(keys, args.repeat, Path(tmp), args.columns)
            line = f"{keys:8,} {row['kb']:8.1f} {row['file_mb']:7.2f} {row['floor']:8.3f}"
            shown = ("flush", "all", "cold", "search", "runs", "piped", "csv")
            for what in (*shown, "ui runs", "ui summary", "report"):
                value = row[what]
                line += f" {value:13.3f} {value / row['floor']:7.1f} {value / keys * 1e6:6.1f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
