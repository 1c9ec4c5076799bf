"""The report in a real browser, opened from file:// with every other request blocked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _ui_store import XSS_ARTIFACT, XSS_NAME, XSS_PARAM, XSS_TAG, build_store

import tracklite
from tracklite.ui import page as ui_page

pytest.importorskip("plotly")

EMPTY = "H4sIAAAAAAAAAwMAAAAAAAAAAAA="  # gzip of nothing, base64


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("report")
    ids = build_store(root / "store")
    out = root / "report.html"
    tracklite.report(uri=str(root / "store"), output=out)
    return out, ids


def names(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "#runs-rows .trow", "rows => rows.map(r => r.querySelector('.run-link').textContent)"
    )


def test_report_offline_table_sort_filter_charts_compare_run(
    guarded: Any, report_file: tuple[Path, dict[str, str]]
) -> None:
    path, _ = report_file
    g = guarded("file://")
    page = g.open(path.as_uri())
    assert page.text_content("#experiments").count("lgb") == 1
    assert sorted(names(page)) == sorted([XSS_NAME, "run-0", "run-1", "run-2", "run-3"])

    page.click("#experiments label[data-exp] >> text=lgb")  # only this experiment
    page.wait_for_function("document.querySelectorAll('#runs-rows .trow').length === 4")
    page.click(".hcell[data-col='m:loss:last']")  # ascending loss: run-0 has the smallest
    page.wait_for_function(
        "document.querySelector('.hcell[data-col=\"m:loss:last\"]').textContent.includes('▲')"
    )
    assert names(page) == ["run-0", "run-1", "run-2", "run-3"]
    page.click(".hcell[data-col='m:loss:last']")
    page.wait_for_function(
        "document.querySelector('.hcell[data-col=\"m:loss:last\"]').textContent.includes('▼')"
    )
    assert names(page) == ["run-3", "run-2", "run-1", "run-0"]

    page.fill(".quick input[data-col='p:lr']", "0.01")
    page.press(".quick input[data-col='p:lr']", "Enter")
    page.wait_for_function("document.querySelectorAll('#runs-rows .trow').length === 1")
    assert names(page) == ["run-2"]
    page.fill(".quick input[data-col='p:lr']", "")
    page.press(".quick input[data-col='p:lr']", "Enter")
    page.fill(".quick input[data-col='m:loss:last']", "< 0.05")  # numbers compare
    page.press(".quick input[data-col='m:loss:last']", "Enter")
    page.wait_for_function("document.querySelectorAll('#runs-rows .trow').length === 2")
    assert names(page) == ["run-1", "run-0"]
    page.click("text=Clear quick filters")
    page.wait_for_function("document.querySelectorAll('#runs-rows .trow').length === 4")

    for name in ("run-0", "run-1", "run-3"):
        page.click(f"#runs-rows .trow:has(.run-link:text-is('{name}')) input.select")
    page.click("#runs-rows .trow:has(.run-link:text-is('run-0')) .pin")
    page.click("#tabs button[data-view=charts]")
    chart = page.wait_for_selector(".chart[data-key='loss'][data-curves]")
    assert chart.get_attribute("data-curves") == "3"
    assert page.eval_on_selector(".chart[data-key='loss'] .plot", "el => el.data.length") == 3
    assert chart.query_selector(".points-note").text_content() == "150 of 150 points shown"
    first = page.eval_on_selector(
        ".chart[data-key='loss'] .plot", "el => [el.data[0].x.slice(0, 3), el.data[0].y.slice(-1)]"
    )  # run-0's loss, 1 / (step + 1), decoded from the packed columns
    assert first[0] == [0, 1, 2] and first[1] == [pytest.approx(1 / 50, rel=1e-6)]
    page.eval_on_selector(
        "#smoothing", "el => { el.value = 0.6; el.dispatchEvent(new Event('change')); }"
    )
    plot = "document.querySelector(\".chart[data-key='loss'] .plot\")"
    page.wait_for_function(f"{plot}?.data?.length === 6")  # a smoothed curve over each raw one

    page.click("#tabs button[data-view=compare]")
    page.wait_for_selector("#compare-table")
    differing = page.eval_on_selector_all(
        "#compare-table tr.diff", "rows => rows.map(r => r.dataset.key)"
    )
    assert set(differing) == {"lr", "seed"}
    assert "run-0 ★" in page.text_content("#compare-table")  # the pinned baseline comes first
    page.select_option("#group-by", "seed")
    page.wait_for_selector("#group-table")
    assert page.eval_on_selector_all("#group-table tr", "rows => rows.length") == 3  # head + 2

    page.click("#compare-table th button >> text=run-3")
    page.wait_for_selector("#run-page")
    assert "0.001" in page.text_content("#run-params")
    assert page.eval_on_selector_all("#run-metrics tr", "rows => rows.length") == 3
    assert g.refused == [] and all(url.startswith("file://") for url in g.requests)
    assert g.errors == []


def test_store_strings_render_as_text_and_run_nothing(
    guarded: Any, report_file: tuple[Path, dict[str, str]]
) -> None:
    path, ids = report_file
    g = guarded("file://")
    page = g.open(path.as_uri())
    row = f"#runs-rows .trow[data-id='{ids['xss']}']"
    assert page.text_content(f"{row} .run-link") == XSS_NAME
    page.click(f"{row} input.select")
    page.click("#tabs button[data-view=compare]")
    page.wait_for_selector("#compare-table")
    assert XSS_PARAM in page.text_content("#compare-table")
    assert XSS_NAME in page.text_content("#compare-table tr")
    page.click("#tabs button[data-view=charts]")  # plotly's legend: the name as text too
    page.wait_for_selector(".chart[data-key='loss'] .legendtext")
    assert page.text_content(".chart[data-key='loss'] .legendtext") == XSS_NAME
    assert page.query_selector_all(".chart a, .chart image") == []
    page.click("#tabs button[data-view=runs]")
    page.click(f"{row} .run-link")
    page.wait_for_selector("#run-page")
    assert XSS_TAG in page.text_content("#run-tags")
    page.click(f"#run-artifacts tr[data-path='{XSS_ARTIFACT}'] .preview-button")
    page.wait_for_selector("#preview pre")
    assert page.text_content("#preview pre") == "<script>window.__pwned='artifact'</script>"
    assert "pickle (not opened)" in page.text_content("#run-artifacts")
    page.click("#run-artifacts tr[data-path='notes.json'] .preview-button")
    page.wait_for_function("document.querySelector('#preview pre')?.textContent.includes('\"a\"')")
    assert page.evaluate("window.__pwned") is None
    assert page.query_selector_all("img[src='x'], svg[onload]") == []
    # Only the page's own scripts: config, data, packed plotly, the app, and plotly inflated
    # for the charts.
    assert page.eval_on_selector_all("script", "s => s.length") == 5
    assert g.refused == [] and g.errors == []


@pytest.mark.parametrize("n", [20_000, pytest.param(100_000, marks=pytest.mark.slow)])
def test_virtual_scrolling_draws_only_visible_rows(guarded: Any, tmp_path: Path, n: int) -> None:
    rows = [
        {"id": f"{i:032x}", "exp": "e", "name": f"r{i}", "status": "FINISHED", "start": 1.7e12 + i,
         "end": 1.7e12 + i + 1000, "m": {"loss": i / n}, "p": {"i": str(i)}, "t": {}}
        for i in range(n)
    ]  # fmt: skip
    data = {
        "generated": "", "store": "", "filter": "",
        "experiments": [{"id": "e", "name": "big", "runs": n}],
        "runs": rows, "keys": {"metrics": ["loss"], "params": ["i"], "tags": []},
        "summaries": {}, "details": {},
        "series": {"buckets": 16, "index": [], "step": ["f8", True, EMPTY],
                   "value": ["f4", False, EMPTY], "time": ["f8", True, EMPTY]},
    }  # fmt: skip
    html, _ = ui_page.render("report", data)
    path = tmp_path / "big.html"
    path.write_text(html)
    g = guarded("file://")
    page = g.open(path.as_uri())
    assert page.text_content("#count") == f"{n} runs"
    drawn = page.eval_on_selector_all("#runs-rows .trow", "rows => rows.length")
    assert 10 < drawn < 100
    page.eval_on_selector("#runs-table", "el => { el.scrollTop = el.scrollHeight; }")
    page.wait_for_selector("#runs-rows .run-link:text-is('r0')")  # newest first: r0 is last
    assert page.eval_on_selector_all("#runs-rows .trow", "rows => rows.length") < 100
    assert g.errors == []
