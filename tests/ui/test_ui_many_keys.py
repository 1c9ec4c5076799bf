"""A run with thousands of metric keys: the server's answers and the report are made in whole
array passes (no work a key in Python), and the page lists, charts and summarises a bounded
number of keys, finding the others by name."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests._calls import python_calls
from tracklite import ExpManager, QlibRecorder
from tracklite.ui.data import StoreData
from tracklite.ui.server import UiServer, serve

KEYS = 3_000


def _store(root: Path, keys: int) -> str:
    """One run of experiment ``wide``: keys ``metric_0000`` ... , key ``i`` logged as ``i + 1``
    at step 0 and ``i`` at step 1 (so its min is ``i``, at step 1)."""
    uri = str(root / "store")
    R = QlibRecorder(ExpManager(uri=uri))
    with R.start(experiment_name="wide", recorder_name="wide-run"):
        R.log_metrics(step=0, **{f"metric_{i:04d}": float(i + 1) for i in range(keys)})
        R.log_metrics(step=1, **{f"metric_{i:04d}": float(i) for i in range(keys)})
        R.log_params(lr=0.1)
    return uri


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _store(tmp_path_factory.mktemp("wide"), KEYS)


def test_rows_summaries_and_report_make_no_call_a_key(wide: str, tmp_path: Path) -> None:
    data = StoreData(wide)
    frame = data.search(data.experiment_ids(None))
    with python_calls() as calls:
        (row,) = data.rows(frame)
    assert len(row["m"]) == KEYS and row["m"]["metric_2999"] == 2999.0
    # The same frame with a tenth of the keys: pandas' own calls are the same, the keys' none.
    few = frame.drop(columns=[f"metrics.metric_{i:04d}" for i in range(KEYS // 10, KEYS)])
    with python_calls() as fewer:
        data.rows(few)
    assert calls[0] - fewer[0] < KEYS / 10, (calls[0], fewer[0])
    ref = data.ref(row["id"])
    StoreData(wide).summaries([ref])  # modules imported (a server remembers what it read)
    with python_calls() as calls:
        summaries = data.summaries([ref])[row["id"]]
    assert len(summaries) == KEYS
    assert summaries["metric_0007"] == {
        "last": 7.0, "points": 2, "min": 7.0, "max": 8.0, "best_step": 0,
    }  # fmt: skip
    assert calls[0] < KEYS / 10, calls[0]
    from tracklite.ui.report import build

    narrow = _store(tmp_path, KEYS // 10)
    build(narrow)  # modules imported
    with python_calls() as calls:
        built = build(wide)
    with python_calls() as fewer:
        build(narrow)
    assert len(built["series"]["index"]) == KEYS
    assert calls[0] - fewer[0] < KEYS / 10, (calls[0], fewer[0])


@pytest.fixture
def server(wide: str) -> Iterator[UiServer]:
    srv = serve(wide, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _get(srv: UiServer, path: str) -> bytes:
    host, port = srv.server_address[:2]
    request = urllib.request.Request(f"http://{host}:{port}{path}")
    request.add_header("X-Tracklite-Token", srv.token)
    with urllib.request.urlopen(request, timeout=60) as response:
        body: bytes = response.read()
    return body


def test_a_page_of_rows_carries_only_the_keys_asked_for(server: UiServer) -> None:
    every = _get(server, "/api/runs?exps=wide")
    (row,) = json.loads(every)["rows"]
    assert len(row["m"]) == KEYS  # no `metrics=`: every key, as before
    # The table's two metric columns, and the sort's key; the key lists once per search.
    asked = "metrics=metric_0007%0Ametric_2999%0Ametric_0100%0Anot_a_key&order=metrics.metric_0100"
    first = _get(server, f"/api/runs?exps=wide&{asked}")
    body = json.loads(first)
    (row,) = body["rows"]
    assert row["m"] == {"metric_0007": 7.0, "metric_2999": 2999.0, "metric_0100": 100.0}
    assert row["p"]["lr"] == "0.1" and row["name"] == "wide-run"
    assert len(body["keys"]["metrics"]) == KEYS and body["total"] == 1
    assert body["metrics"] == ["metric_0007", "metric_2999", "metric_0100", "not_a_key"]
    more = _get(server, f"/api/runs?exps=wide&{asked}&offset=0&keys=0")
    page = json.loads(more)
    # Beyond the row's params and tags (the command line is a param, the user a tag), a few
    # hundred bytes: no key lists.
    (row,) = page["rows"]
    texts = len(json.dumps(row["p"])) + len(json.dumps(row["t"]))
    assert "keys" not in page and len(more) < 2_000 + texts, (len(more), texts)
    assert len(first) < len(every) / 2, (len(first), len(every))  # the key lists: ~1/3


def test_the_page_finds_any_of_thousands_of_keys(server: UiServer, guarded: Any) -> None:
    g = guarded(f"http://127.0.0.1:{server.server_address[1]}/")
    page = g.open(server.url)
    page.wait_for_function("document.querySelector('#count').textContent === '1 runs'")
    page.click("#columns-button")
    _find(page, "columns", "#columns-metrics > div", "metric_2999")
    page.check("#columns-metrics input[data-col='m:metric_2999:min']")
    cell = "#runs-rows .cell[data-col='m:metric_2999:min']"
    page.wait_for_function(f"document.querySelector(\"{cell}\")?.textContent === '2999'")
    asked = [url for url in g.requests if "/api/summary" in url]
    assert asked and all("keys=metric_2999" in url for url in asked)
    # A metric column added after the first load: the rows are asked for again, with its key.
    page.fill("#columns-find", "metric_1500")
    page.wait_for_function("document.querySelectorAll('#columns-metrics > div').length === 1")
    page.check("#columns-metrics input[data-col='m:metric_1500:last']")
    cell = "#runs-rows .cell[data-col='m:metric_1500:last']"
    page.wait_for_function(f"document.querySelector(\"{cell}\")?.textContent === '1500'")
    runs = [urlsplit(url) for url in g.requests if "/api/runs" in url]
    assert all("metrics=" in url.query for url in runs), runs
    assert "metric_1500" not in runs[0].query and "metric_1500" in runs[-1].query
    # What the page asked for last: 8 metric keys of one row, and the key lists once.
    answer = json.loads(_get(server, f"{runs[-1].path}?{runs[-1].query}"))
    assert len(answer["rows"][0]["m"]) == 8 and len(answer["keys"]["metrics"]) == KEYS
    page.click("#tabs button[data-view=charts]")
    page.wait_for_selector("#charts-some")
    charts = page.eval_on_selector_all("#charts .chart", "els => els.map(e => e.dataset.key)")
    assert {"metric_2999", "metric_1500"} <= set(charts) and len(charts) == 8  # 6 default, 2 added
    page.click("#tabs button[data-view=runs]")
    page.click("#runs-rows .run-link")
    page.wait_for_selector("#run-metrics")
    _find(page, "run-metrics", "#run-metrics tbody tr", "metric_1234")
    cells = page.eval_on_selector_all("#run-metrics tbody td", "tds => tds.map(t => t.textContent)")
    assert cells == ["metric_1234", "1234", "1234", "1235", "0", "2"]  # best: the max
    page.click("#tabs button[data-view=runs]")
    page.check("#runs-rows input.select")
    page.click("#tabs button[data-view=compare]")
    page.wait_for_selector("#compare-metrics tr")
    _find(page, "compare", "#compare-metrics tr", "metric_2999")
    cells = page.eval_on_selector_all("#compare-metrics td", "tds => tds.map(t => t.textContent)")
    assert cells == ["metric_2999", "2999"]
    page.select_option("#group-by", "lr")
    page.wait_for_selector("#group-table td.num")
    heads = page.eval_on_selector_all("#group-table th", "ths => ths.map(t => t.textContent)")
    assert len(heads) == 2 + 8 and heads[-1] == "metric_1500", heads  # the table's columns
    cells = page.eval_on_selector_all("#group-table td", "tds => tds.map(t => t.textContent)")
    assert cells[-1] == "1500 [1500, 1500]", cells
    assert g.refused == [] and g.errors == []


def _find(page: Any, name: str, items: str, key: str) -> None:
    """List ``name`` shows 200 ``items`` and says there are more; its box finds ``key``."""
    listed = page.eval_on_selector_all(items, "rows => rows.length")
    assert listed == 200 and page.is_visible(f"#{name}-more")
    page.fill(f"#{name}-find", key)
    page.wait_for_function(f"document.querySelectorAll('{items}').length === 1")
