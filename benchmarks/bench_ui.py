"""Speed of tracklite's page: writing a report, opening it, the live server on many recorders,
and drawing long curves.

Each figure is printed beside a floor measured in the same run on the same data:

- report written: ``tracklite report`` (a fresh process) against reading every metric point of
  the same runs with pyarrow (the least a report that looks at every point must do);
- report interactive: opening the report in headless chromium until the runs table answers,
  against parsing the same file with scripts off;
- ui first rows: opening the live page until the first rows are drawn, against
  ``tracklite.search_records`` alone on the same store;
- long curves: the server's thinned answer drawn by plotly in chromium, against reading the
  points with pyarrow; the server's read-and-thin time is printed too;
- group by a param: the server's ``/api/groups`` against fetching every row through
  ``/api/runs`` pages of 500, as the page did before grouping moved to the server (the
  requests only: the page's own grouping of the rows is left out, to the old way's favour);
- sort by a metric's min: the server's ``/api/runs`` ordered by each run's min of one key,
  first (reading that key's points) and repeated (files unchanged), against pyarrow reading
  the same key's points of the same runs (``pq.read_table`` with a key filter, one thread).

Usage: ``python benchmarks/bench_ui.py [--runs 1000 --keys 10 --steps 10000 --recorders
100000 --long-runs 50 --long-points 1000000 --group-runs 20000 --sort-runs 2000]`` (the
defaults are the
targets; use smaller numbers for a quick look). Stores are built under a temporary folder,
through tracklite's own store and segment writer, and removed afterwards. Needs plotly,
playwright and /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def build(root: Path, runs: int, keys: int, steps: int, name: str) -> list[tuple[str, str]]:
    """``runs`` finished recorders of ``keys`` metric keys x ``steps`` steps each (one segment
    per recorder, as after a run's compaction); returns (experiment id, recorder id) pairs."""
    import pyarrow as pa

    from tracklite.metrics import segments
    from tracklite.store.clock import ms_to_iso
    from tracklite.store.root import Store

    store = Store(root)
    store.ensure()
    exp = store.get_or_create_experiment(name)[0]["id"]
    rng = np.random.default_rng(1)
    start = 1_700_000_000_000
    key_names = [f"metric_{k}" for k in range(keys)]
    labels = pa.DictionaryArray.from_arrays(
        pa.array(np.repeat(np.arange(keys, dtype=np.int32), steps)), pa.array(key_names)
    ).cast(pa.string())
    step_column = pa.array(np.tile(np.arange(steps, dtype=np.int64), keys))
    made = []
    for i in range(runs):
        t0 = start + i * 60_000
        values = np.cumsum(rng.normal(0, 0.01, keys * steps)) + 1.0
        stamps = t0 + np.tile(np.arange(steps, dtype=np.int64) * 10, keys)
        latest = {
            k: {"value": float(values[(j + 1) * steps - 1]), "step": steps - 1, "timestamp": t0}
            for j, k in enumerate(key_names)
        }
        meta = store.create_recorder(
            exp,
            f"run{i}",
            status="FINISHED",
            start_time=ms_to_iso(t0),
            extra={
                "end_time": ms_to_iso(t0 + steps * 10),
                "params": {"lr": str(10 ** -(i % 4)), "seed": str(i % 7)},
                "tags": {"mlflow.runName": f"run{i}"},
                "metrics": latest,
            },
        )
        table = pa.table(
            {
                "key": labels,
                "step": step_column,
                "value": pa.array(values),
                "timestamp": pa.array(stamps).cast(pa.timestamp("ms", tz="UTC")),
            },
            schema=segments.schema(),
        )
        segments.write_segment(root / exp / meta["id"] / "metrics", table)
        made.append((exp, meta["id"]))
    return made


def build_many(root: Path, count: int) -> None:
    """``count`` small finished recorders (a few params and one metric, no points)."""
    from tracklite.store.clock import ms_to_iso
    from tracklite.store.root import Store

    store = Store(root)
    store.ensure()
    exp = store.get_or_create_experiment("many")[0]["id"]
    start = 1_700_000_000_000
    for i in range(count):
        store.create_recorder(
            exp,
            f"run{i}",
            status="FINISHED",
            start_time=ms_to_iso(start + i),
            extra={
                "end_time": ms_to_iso(start + i + 1000),
                "params": {"lr": str(i % 10), "seed": str(i % 3)},
                "tags": {"mlflow.runName": f"run{i}"},
                "metrics": {"loss": {"value": 1.0 / (i + 1), "step": 0, "timestamp": start}},
            },
        )


def seconds(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = call()
    return time.perf_counter() - started, value


def read_all(root: Path, refs: list[tuple[str, str]]) -> int:
    """Every point of the recorders, read with pyarrow (the floor of any full read)."""
    import pyarrow.parquet as pq

    total = 0
    for exp, rec in refs:
        folder = root / exp / rec / "metrics"
        for name in os.listdir(folder):
            total += pq.read_table(folder / name).num_rows
    return total


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def bench_report(work: Path, runs: int, keys: int, steps: int, rows: list[list[str]]) -> None:
    root = work / "report-store"
    print(f"building {runs} runs x {keys} keys x {steps} steps ...", flush=True)
    refs = build(root, runs, keys, steps, "report")
    out = work / "report.html"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    floor, points = seconds(lambda: read_all(root, refs))
    took, _ = seconds(
        lambda: subprocess.run(
            [sys.executable, "-m", "tracklite", "--uri", str(root), "report", "-o", str(out)],
            check=True,
            env=env,
            stderr=subprocess.DEVNULL,
        )
    )
    size = out.stat().st_size
    rows.append(
        [
            f"report written ({runs} runs, {points:,} points)",
            f"{took:.2f} s",
            f"{floor:.2f} s (pyarrow reads every point)",
            f"{took / floor:.1f}x",
            "<= 10 s",
        ]
    )
    rows.append(["report size", f"{size / 1e6:.1f} MB", "", "", "<= 15 MB"])
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        ready, _ = seconds(
            lambda: (
                page.goto(out.as_uri()),
                page.wait_for_selector("body[data-ready='1'] #runs-rows .trow", timeout=60_000),
            )
        )
        # Interactive: a click on a header sorts the 1,000 rows and redraws them.
        clicked, _ = seconds(
            lambda: (
                page.click(".hcell[data-col='m:metric_0:last']"),
                page.wait_for_function(
                    "document.querySelector('.hcell[data-col=\"m:metric_0:last\"]')"
                    ".textContent.includes('▲')"
                ),
            )
        )
        plain = browser.new_page(java_script_enabled=False)
        parse, _ = seconds(lambda: plain.goto(out.as_uri()))
    rows.append(
        [
            "report interactive in chromium (table drawn)",
            f"{ready:.2f} s",
            f"{parse:.2f} s (same file, scripts off)",
            f"{ready / parse:.1f}x",
            "<= 2 s",
        ]
    )
    rows.append(["  then a sort of every row", f"{clicked:.2f} s", "", "", ""])


def bench_many(work: Path, count: int, rows: list[list[str]]) -> None:
    import tracklite
    from tracklite.ui.server import serve

    root = work / "many-store"
    print(f"building {count} recorders ...", flush=True)
    build_many(root, count)
    tracklite.search_records(str(root))  # the search summary, as after any earlier search
    floor, frame = seconds(lambda: tracklite.search_records(str(root)))
    server = serve(str(root), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(server.url)  # warm: the server builds its page once
            page.wait_for_selector("#runs-rows .trow[data-id]")
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            first, _ = seconds(
                lambda: (
                    page.goto(server.url),
                    page.wait_for_selector("#runs-rows .trow[data-id]", timeout=60_000),
                )
            )
            scrolled, _ = seconds(
                lambda: (
                    page.eval_on_selector("#runs-table", "el => el.scrollTop = el.scrollHeight"),
                    page.wait_for_selector("#runs-rows .run-link:text-is('run0')", timeout=60_000),
                )
            )
            drawn = page.eval_on_selector_all("#runs-rows .trow", "r => r.length")
    finally:
        server.shutdown()
        server.server_close()
    rows.append(
        [
            f"ui first rows, {len(frame):,} recorders",
            f"{first:.2f} s",
            f"{floor:.2f} s (search_records alone)",
            f"{first / floor:.1f}x",
            "<= 1 s",
        ]
    )
    scroll = f"  scroll to the last row ({drawn} rows in the page)"
    rows.append([scroll, f"{scrolled:.2f} s", "", "", ""])


def bench_long(work: Path, runs: int, points: int, rows: list[list[str]]) -> None:
    import json
    import urllib.request

    from tracklite.ui.server import serve

    root = work / "long-store"
    print(f"building {runs} runs x {points} points ...", flush=True)
    refs = build(root, runs, 1, points, "long")
    floor, total = seconds(lambda: read_all(root, refs))
    server = serve(str(root), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        runs_arg = ",".join(f"{rec}:{exp}" for exp, rec in refs)
        url = (
            # 500 buckets: what the page asks for a chart 500 pixels wide (two charts a row).
            f"http://{host}:{port}/api/series?token={server.token}&key=metric_0&buckets=500"
            f"&runs={runs_arg}"
        )
        thinned, body = seconds(lambda: urllib.request.urlopen(url, timeout=600).read())
        again, _ = seconds(lambda: urllib.request.urlopen(url, timeout=600).read())
        series = json.loads(body)["series"]
        shown = sum(len(s["step"]) for s in series)
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(server.url)
            page.wait_for_selector("body[data-ready='1']")
            page.evaluate(
                "async () => { while (!window.Plotly) { document.querySelector("
                "'#tabs button[data-view=charts]').click(); await new Promise(r => "
                "setTimeout(r, 200)); } }"
            )
            draw_js = """series => {
                    const div = document.createElement('div');
                    div.style.cssText = 'width:500px;height:300px';
                    document.body.append(div);
                    const traces = series.map(s => ({x: s.step, y: s.value, type: 'scatter',
                                                     mode: 'lines'}));
                    const t0 = performance.now();
                    return Plotly.newPlot(div, traces).then(() => performance.now() - t0);
                }"""
            draw = page.evaluate(draw_js, series)  # the page's first chart
            redraw = page.evaluate(draw_js, series)  # plotly warmed up, as for the next ones
    finally:
        server.shutdown()
        server.server_close()
    rows.append(
        [
            f"chart of {runs} runs x {points:,} points: draw after thinning",
            f"{draw / 1000:.2f} s",
            f"{floor:.2f} s (pyarrow reads the {total:,} points)",
            "",
            "<= 1 s",
        ]
    )
    rows.append(
        [f"  server reads and thins them ({shown:,} points kept)", f"{thinned:.2f} s", "", "", ""]
    )
    rows.append(["  the same request again (files unchanged)", f"{again:.2f} s", "", "", ""])
    rows.append(["  drawn again (plotly warmed up)", f"{redraw / 1000:.2f} s", "", "", ""])


def bench_groups(work: Path, count: int, rows: list[list[str]]) -> None:
    import json
    import statistics
    import urllib.request
    from urllib.parse import urlencode

    from tracklite.ui.data import GROUP_SAMPLE
    from tracklite.ui.server import PAGE_ROWS, serve

    root = work / "groups-store"
    print(f"building {count} recorders ...", flush=True)
    build_many(root, count)
    server = serve(str(root), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    table = {"token": server.token, "exps": "", "filter": "", "order": "metrics.loss ASC"}

    def ask(path: str, **more: Any) -> Any:
        url = f"http://{host}:{port}{path}?{urlencode({**table, **more})}"
        with urllib.request.urlopen(url, timeout=600) as answer:
            return json.loads(answer.read())

    def grouped() -> Any:
        return ask("/api/groups", by="lr", metrics="loss", curves="loss")

    def every_row() -> int:
        total, offset, got = 1, 0, 0
        while offset < total:
            page = ask("/api/runs", offset=offset, limit=PAGE_ROWS, metrics="loss", keys="0")
            total, offset, got = page["total"], offset + PAGE_ROWS, got + len(page["rows"])
        return got

    def timed(call: Callable[[], Any]) -> tuple[float, Any]:
        found = []
        for _ in range(3):
            server.searches.clear()  # each way starts from a search, as after the table's
            found.append(seconds(call))
        return statistics.median(t for t, _ in found), found[-1][1]

    try:
        ask("/api/runs", limit=1)  # the search summary read once, as by the table
        new, answer = timed(grouped)
        old, fetched = timed(every_row)
    finally:
        server.shutdown()
        server.server_close()
    groups = len(answer["values"])
    read = sum(len(sample) for sample in answer["curves"]["loss"]["sample"])
    rows.append(
        [
            f"ui group by a param, {count:,} runs ({groups} groups): /api/groups",
            f"{new:.2f} s",
            f"{old:.2f} s (every row: {-(-fetched // PAGE_ROWS)} /api/runs pages, as before)",
            f"{old / new:.0f}x faster",
            "",
        ]
    )
    rows.append(
        [
            f"  runs whose curves a group chart reads (first {GROUP_SAMPLE} per group)",
            f"{read:,}",
            f"{fetched:,} (every run, as before)",
            "",
            "",
        ]
    )


def bench_stat_sort(work: Path, runs: int, rows: list[list[str]]) -> None:
    import json
    import urllib.request
    from urllib.parse import urlencode

    import pyarrow.parquet as pq

    from tracklite.ui.server import serve

    root = work / "sort-store"
    print(f"building {runs} recorders x 10 keys x 1,000 steps ...", flush=True)
    refs = build(root, runs, 10, 1000, "sort")
    key = "metric_0"

    def floor() -> int:
        total = 0
        for exp, rec in refs:
            folder = root / exp / rec / "metrics"
            for name in os.listdir(folder):
                total += pq.read_table(folder / name, filters=[("key", "=", key)]).num_rows
        return total

    server = serve(str(root), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    query = {"token": server.token, "stat": f"min:asc:{key}", "limit": 100, "fresh": 1}
    url = f"http://{host}:{port}/api/runs?{urlencode(query)}"

    def sort() -> int:
        with urllib.request.urlopen(url, timeout=600) as answer:
            return int(json.loads(answer.read())["total"])

    try:
        read, points = seconds(floor)
        first, total = seconds(sort)
        again, _ = seconds(sort)
    finally:
        server.shutdown()
        server.server_close()
    assert total == runs, total
    rows.append(
        [
            f"ui sort by {key}'s min, {runs:,} runs x 10 keys x 1,000 steps: first",
            f"{first:.2f} s",
            f"{read:.2f} s (pyarrow reads the key's {points:,} points)",
            f"{first / read:.1f}x",
            "",
        ]
    )
    ratio = f"{again / read:.2f}x"
    rows.append(["  the same sort again (files unchanged)", f"{again:.2f} s", "", ratio, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--recorders", type=int, default=100_000)
    parser.add_argument("--long-runs", type=int, default=50)
    parser.add_argument("--long-points", type=int, default=1_000_000)
    parser.add_argument("--group-runs", type=int, default=20_000)
    parser.add_argument("--sort-runs", type=int, default=2000)
    sections = ["report", "many", "long", "groups", "sort"]
    parser.add_argument("--only", choices=sections, action="append")
    args = parser.parse_args(argv)
    only = set(args.only or sections)
    rows: list[list[str]] = []
    work = Path(tempfile.mkdtemp(prefix="tracklite-bench-ui-"))
    try:
        if "report" in only:
            bench_report(work, args.runs, args.keys, args.steps, rows)
        if "many" in only:
            bench_many(work, args.recorders, rows)
        if "long" in only:
            bench_long(work, args.long_runs, args.long_points, rows)
        if "groups" in only:
            bench_groups(work, args.group_runs, rows)
        if "sort" in only:
            bench_stat_sort(work, args.sort_runs, rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    head = ["what", "tracklite", "floor, same run", "ratio", "target"]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for row in [head, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
