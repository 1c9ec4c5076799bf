"""A run with thousands of metric keys: the server's answers and the report are made in whole
array passes (no work a key in Python), and the page lists, charts and summarises a bounded
number of keys, finding the others by name."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from _ui_store import serving

from tests._calls import python_calls
from tracklite import ExpManager, QlibRecorder
from tracklite.ui.data import StoreData
from tracklite.ui.server import UiServer

KEYS = 3_000


def _store(root: Path, keys: int, runs: int = 1) -> str:
    """Runs ``wide-run``, ``wide-run-1``... of experiment ``wide``: keys ``metric_0000`` ... ,
    key ``i`` logged as ``i + 1`` at step 0 and ``i + j / 2`` at step 1 in run ``j`` (so in
    the first run its min is ``i``, at step 1)."""
    uri = str(root / "store")
    R = QlibRecorder(ExpManager(uri=uri))
    for j in range(runs):
        with R.start(experiment_name="wide", recorder_name="wide-run" + (f"-{j}" if j else "")):
            R.log_metrics(step=0, **{f"metric_{i:04d}": float(i + 1) for i in range(keys)})
            R.log_metrics(step=1, **{f"metric_{i:04d}": i + j / 2 for i in range(keys)})
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


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two runs of :data:`KEYS` keys each."""
    return _store(tmp_path_factory.mktemp("pair"), KEYS, runs=2)


@pytest.fixture
def server(wide: str) -> Iterator[UiServer]:
    with serving(wide) as srv:
        yield srv


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


def _ids(srv: UiServer) -> dict[str, str]:
    """The runs' ids by name."""
    rows = json.loads(_get(srv, "/api/runs?exps=wide"))["rows"]
    return {row["name"]: row["id"] for row in sorted(rows, key=lambda row: row["name"])}


def _texts(rows: list[dict[str, Any]]) -> int:
    """The bytes of the rows' params and tags (the command line is a param, the user a tag)."""
    return sum(len(json.dumps(row["p"])) + len(json.dumps(row["t"])) for row in rows)


def test_selected_runs_carry_only_the_keys_asked_for(pair: str) -> None:
    with serving(pair) as srv:
        ids = ",".join(_ids(srv).values())
        every = json.loads(_get(srv, f"/api/rows?ids={ids}"))
        assert [len(row["m"]) for row in every["rows"]] == [KEYS, KEYS]  # no `metrics=`
        asked = "metrics=metric_0007%0Ametric_2999%0Anot_a_key"
        answer = _get(srv, f"/api/rows?ids={ids}&{asked}")
        found = _get(srv, f"/api/rows?ids={ids}&metrics=metric_2999&keys=0")
    body = json.loads(answer)
    assert {row["name"]: row["m"] for row in body["rows"]} == {
        "wide-run": {"metric_0007": 7.0, "metric_2999": 2999.0},
        "wide-run-1": {"metric_0007": 7.5, "metric_2999": 2999.5},
    }
    assert body["metrics"] == ["metric_0007", "metric_2999", "not_a_key"]
    assert body["keys"]["metrics"] == [f"metric_{i:04d}" for i in range(KEYS)]
    assert body["keys"]["params"][-1] == "lr" and all(r["p"]["lr"] == "0.1" for r in body["rows"])
    # Every key's name once, and a few hundred bytes a row besides its params and tags.
    names = len(json.dumps(body["keys"], ensure_ascii=False))
    assert len(answer) < names + 2 * 500 + _texts(body["rows"]), (len(answer), names)
    assert every["metrics"] is None
    values = json.loads(found)  # the values of a key found by name: no key lists
    assert "keys" not in values and [len(row["m"]) for row in values["rows"]] == [1, 1]
    assert len(found) < 2 * 500 + _texts(values["rows"]), len(found)


def test_selected_runs_of_a_narrow_store_carry_every_key(tmp_path: Path) -> None:
    with serving(_store(tmp_path, 10, runs=2)) as srv:
        body = json.loads(
            _get(srv, f"/api/rows?ids={','.join(_ids(srv).values())}&metrics=metric_0007")
        )
    assert body["metrics"] is None and [len(row["m"]) for row in body["rows"]] == [10, 10]
    assert body["keys"]["metrics"] == [f"metric_{i:04d}" for i in range(10)]


def test_compare_and_charts_ask_for_the_keys_they_show(pair: str, guarded: Any) -> None:
    with serving(pair) as srv:
        ids = list(_ids(srv).values())  # wide-run first: the baseline
        # Two metric columns chosen, both runs selected, the first pinned: straight to Compare.
        view = {"view": "compare", "cols": ["m:metric_0007:last", "m:metric_1500:last"]}
        view.update(sel=ids, base=ids[0], exps=[])
        g = guarded(f"http://127.0.0.1:{srv.server_address[1]}/")
        page = g.open(srv.url + "#" + quote(json.dumps(view)))
        page.wait_for_selector("#compare-metrics tr")
        keys = page.eval_on_selector_all(
            "#compare-metrics tr", "trs => trs.map(t => t.dataset.key)"
        )
        # The table's columns first, then the first keys by name: 200 rows, a box for the rest.
        assert keys[:4] == ["metric_0007", "metric_1500", "metric_0000", "metric_0001"]
        assert len(keys) == 200 and "metric_2999" not in keys
        assert _cells(page, "metric_1500") == ["metric_1500", "1500", "1500.5+0.5"]
        assert _cells(page, "metric_0198") == ["metric_0198", "198", "198.5+0.5"]
        _find(page, "compare", "#compare-metrics tr", "metric_2999")
        found = "#compare-metrics tr[data-key=metric_2999]"
        page.wait_for_function(f"document.querySelector('{found}')?.children.length === 3")
        assert _cells(page, "metric_2999") == ["metric_2999", "2999", "2999.5+0.5"]
        page.fill("#compare-find", "")
        page.click("#tabs button[data-view=charts]")
        page.wait_for_selector("#charts-some")
        assert page.text_content("#charts-some").startswith("2 of 3000 metric keys")
        drawn = "#charts .chart[data-curves='2']"
        page.wait_for_function(f'document.querySelectorAll("{drawn}").length === 2')
        charts = page.eval_on_selector_all("#charts .chart", "els => els.map(e => e.dataset.key)")
        assert charts == ["metric_0007", "metric_1500"]
        asked = [urlsplit(url) for url in g.requests if "/api/rows" in url]
        queries = [parse_qs(url.query) for url in asked]
        assert len(asked) >= 3 and all("metrics" in q for q in queries), queries
        # The key found is asked for alone, without the key lists; no answer carried every key.
        assert (["metric_2999"], ["0"]) in [(q["metrics"], q["keys"]) for q in queries]
        for url in asked:
            answer = _get(srv, f"{url.path}?{url.query}")
            rows = json.loads(answer)["rows"]
            assert len(rows) == 2 and all(len(row["m"]) <= 200 for row in rows)
            assert len(answer) < 20 * KEYS, len(answer)  # every key of 2 runs: ~230 KB
    assert g.refused == [] and g.errors == []


def _cells(page: Any, key: str) -> list[str]:
    """The texts of Compare's row of metric ``key``."""
    row = f"#compare-metrics tr[data-key={key}] td"
    texts: list[str] = page.eval_on_selector_all(row, "tds => tds.map(t => t.textContent)")
    return texts


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
