"""A run with thousands of metric keys: the server's answers and the report are made in whole
array passes (no work a key in Python), and the page lists, charts and summarises a bounded
number of keys, finding the others by name."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    page.click("#tabs button[data-view=charts]")
    page.wait_for_selector("#charts-some")
    charts = page.eval_on_selector_all("#charts .chart", "els => els.map(e => e.dataset.key)")
    assert "metric_2999" in charts and len(charts) == 7  # the six default columns, and it
    page.click("#tabs button[data-view=runs]")
    page.click("#runs-rows .run-link")
    page.wait_for_selector("#run-metrics")
    _find(page, "run-metrics", "#run-metrics tbody tr", "metric_1234")
    cells = page.eval_on_selector_all("#run-metrics tbody td", "tds => tds.map(t => t.textContent)")
    assert cells == ["metric_1234", "1234", "1234", "1235", "0", "2"]  # best: the max
    assert g.refused == [] and g.errors == []


def _find(page: Any, name: str, items: str, key: str) -> None:
    """List ``name`` shows 200 ``items`` and says there are more; its box finds ``key``."""
    listed = page.eval_on_selector_all(items, "rows => rows.length")
    assert listed == 200 and page.is_visible(f"#{name}-more")
    page.fill(f"#{name}-find", key)
    page.wait_for_function(f"document.querySelectorAll('{items}').length === 1")
