"""Sorting a live runs table by a metric's min, max or best step: the server's order of
/api/runs against pandas over what was logged, its memory of each run's points, its bound, and
the live page's order against the report's."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import numpy as np
import pandas as pd
import pytest
from _ui_store import serving

import tracklite
from tracklite import ExpManager, QlibRecorder
from tracklite.ui import server as ui_server
from tracklite.ui.server import UiServer

pytest.importorskip("plotly")

RUNS = 30
STEPS = 12
NO_LOSS = {7, 19}  # runs that log acc only
NO_ACC = {11}  # and loss only


def _build(root: Path) -> pd.DataFrame:
    """RUNS runs of experiment ``sorts``: ``loss`` a noisy random walk (distinct values, so its
    min and last orders differ; a NaN point in run 3), ``acc`` small integers (ties in its max
    and best step). Returns every point logged: name, id, key, step, value."""
    R = QlibRecorder(ExpManager(uri=str(root)))
    rng = np.random.default_rng(7)
    logged = []
    for i in range(RUNS):
        loss = 5 + np.cumsum(rng.normal(0, 1, STEPS))
        acc = rng.integers(0, 4, STEPS).astype(float)
        with R.start(experiment_name="sorts", recorder_name=f"run-{i:02d}"):
            rid = R.get_recorder().id
            for step in range(STEPS):
                values = {}
                if i not in NO_LOSS:
                    values["loss"] = float("nan") if (i, step) == (3, 5) else float(loss[step])
                if i not in NO_ACC:
                    values["acc"] = float(acc[step])
                R.log_metrics(step=step, **values)
                logged += [(f"run-{i:02d}", rid, k, step, v) for k, v in values.items()]
    return pd.DataFrame(logged, columns=["name", "id", "key", "step", "value"])


def _expected(points: pd.DataFrame, base: list[str], key: str, stat: str, desc: bool) -> list[str]:
    """The names in ``base`` (the search's order) ordered by ``stat`` of ``key``, computed here
    from the logged points: NaN left out, best step the first step of the min for ``loss``
    and of the max for ``acc``; runs without the key last, ties in ``base``'s order."""
    mine = points[(points["key"] == key) & points["value"].notna()].sort_values(
        ["name", "step"], kind="stable"
    )
    grouped = mine.groupby("name")["value"]
    if stat == "min":
        per_run = grouped.min()
    elif stat == "max":
        per_run = grouped.max()
    else:
        best_at = grouped.idxmin() if key == "loss" else grouped.idxmax()  # first reaching it
        per_run = mine.loc[best_at, ["name", "step"]].set_index("name")["step"]
    table = pd.DataFrame({"name": base})
    table["value"] = table["name"].map(per_run)
    table = table.sort_values("value", ascending=not desc, kind="stable", na_position="last")
    return table["name"].tolist()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("stat-sort") / "store"
    return root, _build(root)


@pytest.fixture
def server(store: tuple[Path, pd.DataFrame]) -> Iterator[UiServer]:
    with serving(store[0]) as srv:
        yield srv


def get(srv: UiServer, path: str, **query: str) -> tuple[int, Any]:
    """Status and JSON body of a GET with the server's token."""
    host, port = srv.server_address[:2]
    url = f"http://{host}:{port}{path}?{urlencode({'token': srv.token, **query})}"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def names(srv: UiServer, **query: str) -> list[str]:
    code, body = get(srv, "/api/runs", exps="sorts", limit="500", **query)
    assert code == 200, body
    return [row["name"] for row in body["rows"]]


@pytest.mark.parametrize("key", ["loss", "acc"])
@pytest.mark.parametrize("stat", ["min", "max", "best_step"])
def test_runs_order_by_a_statistic_of_the_points(
    server: UiServer, store: tuple[Path, pd.DataFrame], key: str, stat: str
) -> None:
    points = store[1]
    base = names(server)  # the search's own order: what ties keep
    assert len(base) == RUNS
    for direction in ("asc", "desc"):
        got = names(server, stat=f"{stat}:{direction}:{key}")
        assert got == _expected(points, base, key, stat, direction == "desc"), direction
    if stat == "min" and key == "loss":  # the store is one where that order is not last's
        assert got != names(server, order="metrics.loss DESC")


def test_the_numbers_sorted_are_those_the_table_shows(server: UiServer) -> None:
    code, body = get(server, "/api/runs", exps="sorts", limit="500")
    assert code == 200
    refs = ",".join(f"{r['id']}:{r['exp']}" for r in body["rows"])
    shown = get(server, "/api/summary", runs=refs, keys="loss\nacc")[1]["summaries"]
    data = server.data
    for key in ("loss", "acc"):
        found = data.point_stats([data.ref(r["id"], r["exp"]) for r in body["rows"]], key)
        for row, stats in zip(body["rows"], found, strict=True):
            summary = shown.get(row["id"], {}).get(key, {})
            assert stats == {k: summary[k] for k in ("min", "max", "best_step") if k in summary}


def test_a_new_minimum_logged_by_a_running_run_reorders(tmp_path: Path) -> None:
    root = tmp_path / "store"
    R = QlibRecorder(ExpManager(uri=str(root)))
    for i in range(3):
        with R.start(experiment_name="sorts", recorder_name=f"done-{i}"):
            for step in range(5):
                R.log_metrics(step=step, loss=1.0 + i + step / 10)
    with serving(root) as srv, R.start(experiment_name="sorts", recorder_name="running"):
        for step in range(5):
            R.log_metrics(step=step, loss=5.0 - step / 10)
        R.get_recorder().flush()
        before = names(srv, stat="min:asc:loss", fresh="1")
        assert before == ["done-0", "done-1", "done-2", "running"]
        R.log_metrics(step=5, loss=0.5)  # a new minimum, and its last value
        R.get_recorder().flush()
        assert names(srv, stat="min:asc:loss", fresh="1")[0] == "running"
        assert names(srv, stat="max:asc:loss", fresh="1")[-1] == "running"  # max unchanged


def test_sorting_by_points_is_refused_past_the_bound(
    server: UiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ui_server, "STAT_SORT_RUNS", 5)
    code, body = get(server, "/api/runs", exps="sorts", stat="min:asc:loss")
    assert code == 400
    assert "reads every run's points" in body["error"] and "filter" in body["error"]
    assert "30 runs" in body["error"]
    code, body = get(server, "/api/groups", exps="sorts", stat="min:asc:loss", by="x")
    assert code == 400  # the groups of that table too
    small = "attributes.run_name IN ('run-00', 'run-01', 'run-02', 'run-03')"
    assert len(names(server, stat="min:asc:loss", filter=small)) == 4  # a narrowed table sorts
    assert len(names(server, order="metrics.loss ASC")) == RUNS  # other orders are not bounded
    assert get(server, "/api/runs", exps="sorts", stat="median:asc:loss")[0] == 400


def _rows(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "#runs-rows .trow", "rows => rows.map(r => r.querySelector('.run-link').textContent)"
    )


def _sorted_by(page: Any, col: str, arrow: str) -> list[str]:
    page.click(f".hcell[data-col='{col}']")
    page.wait_for_function(
        f"document.querySelector('.hcell[data-col=\"{col}\"]').textContent.includes('{arrow}')"
    )
    return _rows(page)


def test_live_min_header_sorts_as_the_report_does(
    guarded: Any,
    server: UiServer,
    store: tuple[Path, pd.DataFrame],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    report = tmp_path / "report.html"
    tracklite.report(uri=str(store[0]), output=report)
    view = {"cols": ["m:loss:last", "m:loss:min", "m:acc:best"]}
    hashed = "#" + quote(json.dumps(view))
    live = guarded(f"http://127.0.0.1:{server.server_address[1]}/")
    offline = guarded("file://")
    live_page, report_page = live.open(server.url + hashed), offline.open(report.as_uri() + hashed)
    assert live_page.get_attribute(".hcell[data-col='m:loss:min']", "title") == "sort"
    for arrow in ("▲", "▼"):
        shown = _sorted_by(live_page, "m:loss:min", arrow)
        assert shown == _sorted_by(report_page, "m:loss:min", arrow)
        assert len(shown) >= 20, shown
    # Past the bound: the server's message shows, the rows and their sort stay, the headers work.
    monkeypatch.setattr(ui_server, "STAT_SORT_RUNS", 5)
    live_page.click(".hcell[data-col='m:acc:best']")
    live_page.wait_for_function("document.querySelector('#error').textContent.includes('filter')")
    assert "reads every run's points" in live_page.text_content("#error")
    assert "▼" in live_page.text_content(".hcell[data-col='m:loss:min']")
    assert _rows(live_page) == shown
    by_name = _sorted_by(live_page, "name", "▲")
    assert by_name == sorted(by_name) and live_page.text_content("#error") == ""
    assert live.refused == [] and live.errors == [] and offline.errors == []
