"""Recorders with many metric keys: search and ``tracklite runs`` give every key's value."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli_helpers import run_cli
from tracklite import ExpManager, QlibRecorder

KEYS = 20_000


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    """Three recorders of experiment ``wide``, each with the same 20,000 keys: in recorder
    ``r``, key ``i`` is ``r * 100_000 + i``, except that ``metric_019999`` orders them
    ``b, c, a``."""
    uri = str(tmp_path_factory.mktemp("keys") / "store")
    R = QlibRecorder(ExpManager(uri=uri))
    ids = []
    for r, name in enumerate("abc"):
        with R.start(experiment_name="wide", recorder_name=name):
            values = {f"metric_{i:06d}": float(r * 100_000 + i) for i in range(KEYS)}
            values["metric_019999"] = {"a": 1.0, "b": 3.0, "c": 2.0}[name]
            R.log_metrics(step=0, **values)
            R.log_params(kind=name)
            ids.append(R.get_recorder().id)
    return uri, ids


def test_search_filters_and_orders_on_any_of_many_keys(wide: tuple[str, list[str]]) -> None:
    uri, (a, b, c) = wide
    R = QlibRecorder(ExpManager(uri=uri))
    exp_id = R.get_exp(experiment_name="wide").id
    frame = R.search_records(
        [exp_id], filter_string="metrics.metric_000007 > 50000", order_by=["metrics.metric_019999"]
    )
    assert frame["run_id"].tolist() == [c, b]
    metric_columns = [col for col in frame.columns if col.startswith("metrics.")]
    assert metric_columns == sorted(f"metrics.metric_{i:06d}" for i in range(KEYS))
    assert frame["metrics.metric_012345"].tolist() == [212_345.0, 112_345.0]
    assert frame["metrics.metric_019999"].tolist() == [2.0, 3.0]
    assert frame["params.kind"].tolist() == ["c", "b"]
    everything = R.search_records([exp_id])
    assert everything.shape[0] == 3
    assert sum(col.startswith("metrics.") for col in everything.columns) == KEYS
    assert everything.set_index("run_id").loc[a, "metrics.metric_000000"] == 0.0


def test_runs_lists_every_key_of_the_matching_rows(
    wide: tuple[str, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    uri, (a, b, _c) = wide
    outcome = run_cli(
        capsys,
        "--uri",
        uri,
        "--format",
        "csv",
        "runs",
        "wide",
        "--filter",
        "metrics.metric_000007 < 150000",
        "--order-by",
        "metrics.metric_019999 DESC",
    )
    assert outcome.code == 0, outcome.err
    rows = outcome.csv()
    assert [row["id"] for row in rows] == [b, a]
    header = list(rows[0])
    # The ordered-by and filtered-on keys come first among the keys, then every other one.
    keys = [h for h in header if h.startswith("metrics.")]
    assert keys[:2] == ["metrics.metric_019999", "metrics.metric_000007"]
    assert len(keys) == KEYS
    assert [float(row["metrics.metric_018000"]) for row in rows] == [118_000.0, 18_000.0]
    assert [row["params.kind"] for row in rows] == ["b", "a"]


def test_runs_columns_pick_a_few_of_many_keys(
    wide: tuple[str, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    uri, (a, b, c) = wide
    outcome = run_cli(
        capsys, "--uri", uri, "--format", "json", "runs", "wide", "--columns", "metric_00001?"
    )
    assert outcome.code == 0, outcome.err
    found = {row["id"]: row for row in outcome.json()}
    assert set(found) == {a, b, c}
    assert sorted(k for k in found[c] if k.startswith("metrics.")) == [
        f"metrics.metric_{i:06d}" for i in range(10, 20)
    ]
    assert found[c]["metrics.metric_000013"] == 200_013.0
    assert Path(uri).is_dir()
