"""The page's data layer, without a browser: thinning, summaries, previews, safe paths, qlib
panels, the report file and the missing-extra error."""

from __future__ import annotations

import base64
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _ui_store import XSS_PARAM, build_store

import tracklite
from tracklite import ExpManager, QlibRecorder, SigAnaRecord, SignalRecord, UsageError
from tracklite.ui import data as ui_data
from tracklite.ui.data import OutsideArtifacts, StoreData, summaries_of
from tracklite.ui.thin import curves, digest, m4

pytest.importorskip("plotly")


class Touch:
    """A pickle that creates a file when loaded: proof that something unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.touch, (self.marker,))


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, dict[str, str]]:
    root = tmp_path / "store"
    return str(root), build_store(root)


def test_m4_keeps_extremes_first_and_last_per_bucket() -> None:
    rng = np.random.default_rng(0)
    n = 100_000
    y = rng.normal(size=n)
    y[31_337] = 50.0  # a spike a stride would miss
    y[77_777] = -50.0
    y[5] = np.nan  # never chosen as an extreme
    x = np.arange(n, dtype=np.float64)
    keep = m4(x, y, 100)
    kept = np.zeros(n, dtype=bool)
    kept[keep] = True
    assert kept[0] and kept[-1] and kept[31_337] and kept[77_777]
    assert 200 <= kept.sum() <= 400 and (np.diff(keep) > 0).all()
    for b in range(100):  # every bucket keeps its first, last, min and max
        part = slice(b * 1000, (b + 1) * 1000)
        inside = np.flatnonzero(kept[part])
        assert inside[0] == 0 and inside[-1] == 999
        assert kept[part][np.nanargmin(y[part])] and kept[part][np.nanargmax(y[part])]
    assert list(m4(x[:400], y[:400], 100)) == list(range(400))  # short curves: whole


def test_curves_group_keys_and_sort_steps_stably() -> None:
    import pyarrow as pa

    table = pa.table(
        {
            "key": ["b", "a", "b", "a", "b"],
            "step": pa.array([2, 0, 1, 1, 1], pa.int64()),
            "value": [1.0, 2.0, 3.0, 4.0, 5.0],
            "timestamp": pa.array([1, 2, 3, 4, 5], pa.int64()).cast(pa.timestamp("ms", "UTC")),
        }
    )
    got = {c.key: (c.step.tolist(), c.value.tolist(), c.time.tolist()) for c in curves(table)}
    assert got == {
        "a": ([0.0, 1.0], [2.0, 4.0], [2.0, 4.0]),
        "b": ([1.0, 1.0, 2.0], [3.0, 5.0, 1.0], [3.0, 5.0, 1.0]),
    }


def test_summaries_last_min_max_best_step(store: tuple[str, dict[str, str]]) -> None:
    uri, ids = store
    data = StoreData(uri)
    ref = data.ref(ids["run-1"])
    got = data.summaries([ref])[ids["run-1"]]
    assert got["loss"] == {"last": 2 / 50, "min": 2 / 50, "max": 2.0, "best_step": 49, "points": 50}
    assert got["acc"]["best_step"] == 0  # higher is better: the first step reaching the max
    import pyarrow as pa

    table = pa.table(
        {
            "key": ["m", "m", "m"],
            "step": pa.array([5, 1, 5], pa.int64()),
            "value": [1.0, float("nan"), 2.0],
            "timestamp": pa.array([1, 2, 3], pa.int64()).cast(pa.timestamp("ms", "UTC")),
        }
    )
    (summary,) = summaries_of(digest(table, 100, ui_data.LOWER_IS_BETTER))
    assert summary["last"] == 2.0  # highest step, the last logged winning


def test_artifact_paths_never_leave_the_recorder(
    store: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    uri, ids = store
    data = StoreData(uri)
    ref = data.ref(ids["xss"])
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    os.symlink(secret, ref.artifacts_dir / "link.txt")
    for bad in ("../recorder.json", "/etc/passwd", "a/../../recorder.json", "link.txt"):
        with pytest.raises(OutsideArtifacts):
            data.preview(ref, bad)
    listed = [a["path"] for a in data.artifacts(ref)]
    assert "link.txt" not in listed and "notes.json" in listed
    assert data.preview(ref, "notes.json")["text"] == '{\n  "a": [\n    1,\n    2,\n    3\n  ]\n}'
    assert data.preview(ref, "table.csv")["rows"] == [["1", "2"], ["3", "4"]]
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    (ref.artifacts_dir / "dot.png").write_bytes(png)
    shown = data.preview(ref, "dot.png")
    assert shown["mime"] == "image/png" and base64.b64decode(shown["data"]) == png


def test_pickles_are_never_opened(store: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    uri, ids = store
    data = StoreData(uri)
    ref = data.ref(ids["xss"])
    marker = tmp_path / "unpickled"
    (ref.artifacts_dir / "trap.pkl").write_bytes(pickle.dumps(Touch(marker)))
    shown = data.preview(ref, "trap.pkl")
    assert shown["kind"] == "pickle" and set(shown) == {"path", "kind", "size"}
    data.run(ref)
    tracklite.report(uri=uri, output=tmp_path / "r.html")
    assert not marker.exists()


def _signal_records(R: QlibRecorder) -> str:
    dates = pd.date_range("2024-01-01", periods=6)
    index = pd.MultiIndex.from_product([dates, [f"s{i}" for i in range(20)]])
    index.names = ["datetime", "instrument"]
    rng = np.random.default_rng(1)
    label = pd.DataFrame({"label": rng.normal(size=len(index))}, index=index)
    pred = pd.DataFrame({"score": label["label"] + rng.normal(size=len(index))}, index=index)

    class Model:
        def predict(self, dataset: Any) -> Any:
            return pred

    class Dataset:
        def prepare(self, *args: Any, **kwargs: Any) -> Any:
            return label

    with R.start(experiment_name="qlib"):
        rec = R.get_recorder()
        SignalRecord(Model(), Dataset(), rec).generate()
        SigAnaRecord(rec).generate()
        returns = pd.DataFrame(
            {"return": [0.01, -0.02, 0.005, 0.03], "bench": [0.0, 0.0, 0.0, 0.0]},
            index=pd.date_range("2024-01-01", periods=4),
        )
        returns["cost"] = 0.001
        rec.save_objects(artifact_path="portfolio_analysis", **{"report_normal_1day.pkl": returns})
        return str(rec.id)


def test_qlib_panels_from_parquet_copies(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    R = QlibRecorder(ExpManager(uri=uri))
    run_id = _signal_records(R)
    data = StoreData(uri)
    ref = data.ref(run_id)
    assert (ref.artifacts_dir / "sig_analysis" / "ic.parquet").is_file()  # the templates' copy
    panels = data.qlib_panels(ref)
    assert panels is not None and len(panels["ic"]["ic"]) == 6 and "returns" not in panels
    trusted = data.qlib_panels(ref, trust_pickles=True)  # the report's --trust-pickles
    assert trusted is not None
    (returns,) = trusted["returns"]
    assert returns["without_cost"] == pytest.approx([0.01, -0.01, -0.005, 0.025])
    (drawdowns,) = trusted["drawdowns"]
    worst = drawdowns["rows"][0]
    assert worst["max_drawdown"] == pytest.approx(-0.02)
    assert (worst["peak"], worst["trough"], worst["recovery"]) == (
        "2024-01-01",
        "2024-01-02",
        "2024-01-04",
    )


def test_report_file_holds_data_as_text_and_thins_long_curves(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    R = QlibRecorder(ExpManager(uri=uri))
    build_store(tmp_path / "store")
    with R.start(experiment_name="long", recorder_name="long"):
        R.get_recorder().log_batch(
            {"curve": np.sin(np.arange(20_000) / 100.0)}, steps=np.arange(20_000)
        )
    from tracklite.ui.report import build

    data = build(uri, ["long"], budget=400)
    ((_run, _key, held, total),) = data["series"]["index"]
    assert total == 20_000 and held <= 4 * data["series"]["buckets"] < total
    result = tracklite.report(uri=uri, output=tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert result.runs == 6 and html == result.html
    assert XSS_PARAM not in html and "window.__pwned" in html  # escaped, still there as data
    assert "srcdoc=" in result._repr_html_() and "<script>window" not in result._repr_html_()
    assert repr(result).startswith("<tracklite report of 6 runs, ")
    one = tracklite.report(uri=uri, experiments=["long"])
    assert repr(one).startswith("<tracklite report of 1 run, ")


def test_missing_plotly_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, store: tuple[str, dict[str, str]]
) -> None:
    uri, _ = store
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.offline", None)
    with pytest.raises(UsageError, match=r"tracklite\[ui\]"):
        tracklite.report(uri=uri)
    from tracklite.cli.main import main

    assert main(["--uri", uri, "ui", "--port", "0"]) == 1


def test_cli_report_with_filter(store: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    uri, _ = store
    out = tmp_path / "lgb.html"
    done = subprocess.run(
        [sys.executable, "-m", "tracklite", "--uri", uri, "report", "lgb",
         "--filter", "params.lr = '0.01'", "-o", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert ": 1 run," in done.stderr and out.stat().st_size > 1_000_000
    bad = subprocess.run(
        [sys.executable, "-m", "tracklite", "--uri", uri, "report", "nope"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 1 and "nope" in bad.stderr


assert ui_data.best_is_min("val_loss") and not ui_data.best_is_min("Rank IC")
