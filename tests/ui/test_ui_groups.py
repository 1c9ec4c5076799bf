"""Grouping the runs table by a param: the server's /api/groups against pandas, the live page's
group table against the report's, and group charts reading a bounded sample of each group."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pandas as pd
import pytest
from _ui_store import serving

import tracklite
from tracklite import ExpManager, QlibRecorder
from tracklite.ui.data import GROUP_SAMPLE
from tracklite.ui.server import UiServer

pytest.importorskip("plotly")

RUNS = 213
STATS = ["n", "mean", "median", "min", "max", "std"]


def _opt(i: int) -> str | None:
    """Every 17th run from run 5 lacks the param (13 runs); the others alternate, so sgd (101)
    has more runs than a group's curve sample, adam (99) fewer."""
    return None if i % 17 == 5 else ("adam" if i % 2 else "sgd")


def _build(root: Path) -> pd.DataFrame:
    """RUNS runs of experiment ``grp`` logging ``loss`` over 10 steps (last values distinct,
    not in the order of the runs) and, for every third run with the param, ``acc``. Returns
    what was logged: id, opt, last loss, last acc."""
    R = QlibRecorder(ExpManager(uri=str(root)))
    logged = []
    for i in range(RUNS):
        last = ((i * 37) % RUNS + 1) / 100
        acc = 0.5 + (i % 5) / 10 if _opt(i) is not None and i % 3 == 0 else None
        with R.start(experiment_name="grp", recorder_name=f"run-{i}"):
            if _opt(i) is not None:
                R.log_params(opt=_opt(i))
            for step in range(10):
                R.log_metrics(step=step, loss=last * (10 - step))
                if acc is not None:
                    R.log_metrics(step=step, acc=acc - (9 - step) / 100)
            logged.append({"id": R.get_recorder().id, "opt": _opt(i), "loss": last, "acc": acc})
    return pd.DataFrame(logged)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("groups") / "store"
    return root, _build(root)


@pytest.fixture(scope="module")
def server(store: tuple[Path, pd.DataFrame]) -> Iterator[UiServer]:
    with serving(store[0]) as srv:
        yield srv


def get(srv: UiServer, path: str, token: str | None = "ok") -> tuple[int, Any]:
    """Status and JSON body of a GET (``token="ok"``: the server's)."""
    host, port = srv.server_address[:2]
    url = f"http://{host}:{port}{path}"
    if token is not None:
        url += ("&" if "?" in url else "?") + f"token={srv.token if token == 'ok' else token}"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _expected(logged: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per group in the order of first appearance: runs, and per key the stats pandas gives."""
    opt = logged["opt"].fillna("(none)")
    grouped = logged.groupby(opt, sort=False)
    out = pd.DataFrame({"runs": grouped.size()})
    for key in keys:
        values = grouped[key] if key in logged else logged.assign(x=None).groupby(opt)["x"]
        out[[f"{key}.{s}" for s in STATS]] = values.agg(
            ["count", "mean", "median", "min", "max", lambda x: x.std(ddof=0)]
        ).astype(float)
    return out


@pytest.mark.parametrize("filt", ["", "metrics.loss < 0.7"])
def test_groups_match_pandas(server: UiServer, store: tuple[Path, pd.DataFrame], filt: str) -> None:
    logged = store[1].sort_values("loss")  # the table's order below
    if filt:
        logged = logged[logged["loss"] < 0.7]
    keys = ["loss", "acc", "never-logged"]
    query = f"by=opt&order={quote('metrics.loss ASC')}&metrics={quote(chr(10).join(keys))}"
    code, body = get(server, f"/api/groups?{query}&curves=loss%0Aacc&filter={quote(filt)}")
    assert code == 200, body
    want = _expected(logged, keys)
    assert body["total"] == len(logged)
    assert body["values"] == want.index.tolist() and "(none)" in body["values"]
    assert body["counts"] == want["runs"].tolist()
    for key in keys:
        for stat in STATS:
            pairs = zip(want[f"{key}.n"], want[f"{key}.{stat}"], strict=True)
            expected = [
                None if n == 0 else pytest.approx(v, rel=1e-12, abs=1e-15) for n, v in pairs
            ]
            assert body["stats"][key][stat] == expected, (key, stat)
    assert body["stats"]["acc"]["n"][body["values"].index("(none)")] is None  # no acc logged
    # Curves: per group, its first GROUP_SAMPLE runs having the key, in the table's order.
    runs = body["runs"]
    for key in ("loss", "acc"):
        have = logged[logged[key].notna()]
        for i, value in enumerate(body["values"]):
            members = have[have["opt"].fillna("(none)") == value]["id"].tolist()
            assert body["curves"][key]["of"][i] == len(members)
            sample = [runs[j][0] for j in body["curves"][key]["sample"][i]]
            assert sample == members[:GROUP_SAMPLE]


def test_groups_need_the_token_and_a_param(server: UiServer) -> None:
    assert get(server, "/api/groups?by=opt", token=None)[0] == 401
    assert get(server, "/api/groups?by=opt", token="wrong")[0] == 403
    assert get(server, "/api/groups?metrics=loss")[0] == 400


def _group_page(g: Any, url: str, view: dict[str, Any]) -> tuple[Any, list[str]]:
    """The page at ``url`` showing the groups of ``view``, once the loss chart is drawn:
    the page and the group table's cells."""
    page = g.page
    page.goto(url + "#" + quote(json.dumps(view)))
    page.reload()  # a new hash alone is no new page: the view is read when the page loads
    page.wait_for_selector("body[data-ready='1'] #group-table td.num")
    plot = "document.querySelector(\"#group-charts .chart[data-key='loss'] .plot\")"
    page.wait_for_function(f"{plot}?.data?.length === 6")  # a band and a line per group
    cells = page.eval_on_selector_all("#group-table td", "tds => tds.map(t => t.textContent)")
    return page, cells


def test_live_groups_match_the_report_and_read_a_sample(
    guarded: Any, server: UiServer, store: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    report = tmp_path / "report.html"
    tracklite.report(uri=str(store[0]), output=report)
    live = guarded(f"http://127.0.0.1:{server.server_address[1]}/")
    offline = guarded("file://")
    base = {"view": "compare", "group": "opt", "sort": ["m:loss:last", "asc"]}
    for view in (base, {**base, "agg": "median", "band": "std"}):
        live_page, live_cells = _group_page(live, server.url, view)
        report_page, report_cells = _group_page(offline, report.as_uri(), view)
        assert live_cells == report_cells and len(live_cells) == 3 * 4, live_cells
        assert live_cells[:2] == ["sgd", "101"] and live_cells[8:10] == ["(none)", "13"]
        assert ("±" in live_cells[2]) == (view is not base), live_cells
        for page in (live_page, report_page):
            notes = page.eval_on_selector_all(
                "#group-charts .chart",
                "els => Object.fromEntries(els.map(e => [e.dataset.key,"
                " e.querySelector('.sample-note').textContent]))",
            )  # acc: 17 runs, each group whole
            sampled = "curves from 212 of 213 runs: the first 100 per group"
            assert notes == {"loss": sampled, "acc": ""}
    # The live page asked for groups, never for every row, and for 100 runs per group a key.
    group_of = dict(zip(store[1]["id"], store[1]["opt"].fillna("(none)"), strict=True))
    asked = [parse_qs(urlsplit(url).query) for url in live.requests]
    assert any("by" in q for q in asked) and not any(q.get("limit") == ["500"] for q in asked)
    series = [q for q in asked if "buckets" in q and q["key"] == ["loss"]]
    assert series
    for q in series:
        runs = [item.split(":")[0] for item in q["runs"][0].split(",")]
        per_group = pd.Series([group_of[r] for r in runs]).value_counts()
        assert len(runs) == 212 and per_group.max() == GROUP_SAMPLE, per_group
    assert live.refused == [] and live.errors == [] and offline.errors == []


def test_an_answer_for_an_earlier_view_draws_nothing_beside_the_current_one(
    guarded: Any, server: UiServer
) -> None:
    """The grouping is changed while the first /api/groups is on its way: that answer,
    arriving last, must not add a second group table to the page."""
    live = guarded(f"http://127.0.0.1:{server.server_address[1]}/")
    page = live.page
    held: list[Any] = []

    def hold_the_first(route: Any) -> None:
        if held:
            route.fallback()  # on to the recording route, which lets it through
        else:
            held.append(route)  # answered only when the test says so

    page.route("**/api/groups*", hold_the_first)
    view = {"view": "compare", "group": "opt", "sort": ["m:loss:last", "asc"]}
    page.goto(server.url + "#" + quote(json.dumps(view)))
    page.wait_for_function("document.querySelector('#group-agg') !== null")
    while not held:
        page.wait_for_timeout(20)  # lets Playwright deliver the intercepted request
    page.select_option("#group-agg", "median")
    page.wait_for_selector("#group-table td.num")
    with page.expect_response("**/api/groups*"):
        held[0].fallback()
    page.wait_for_load_state("networkidle")  # the earlier render has drawn what it would
    assert page.locator("#group-table").count() == 1
    assert page.eval_on_selector("#group-agg", "s => s.value") == "median"
    assert live.refused == [] and live.errors == []
