"""``search_records`` and ``list_recorders`` over real stores: the ``mlflow.search_runs`` frame,
lifecycles, limits, order, MLflow filters, and their error messages."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracklite
from tracklite import Experiment, NotFoundError, QlibRecorder, Recorder
from tracklite.search.filter import SearchSyntaxError
from tracklite.search.listing import search_records
from tracklite.store.root import Store

BASE = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]


def make_run(
    R: QlibRecorder,
    experiment: str = "e",
    *,
    status: str = "FINISHED",
    metrics: dict[str, float] | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    name: str | None = None,
) -> Recorder:
    """One ended run with the given data, through the public API."""
    R.start_exp(experiment_name=experiment, recorder_name=name)
    recorder = R.get_recorder()
    if params:
        R.log_params(**params)
    if metrics:
        R.log_metrics(step=0, **metrics)
    if tags:
        R.set_tags(**tags)
    R.end_exp(status)
    return recorder


# ---------------------------------------------------------------------- the frame


def test_frame_columns_dtypes_and_missing_values(R: QlibRecorder) -> None:
    first = make_run(R, metrics={"loss": 0.5}, params={"lr": 0.1}, tags={"kind": "a"})
    second = make_run(R, metrics={"acc": 0.9}, params={"depth": 3})
    frame = R.search_records()
    assert list(frame.columns[:6]) == BASE
    user = list(frame.columns[6:])
    metrics = [c for c in user if c.startswith("metrics.")]
    params = [c for c in user if c.startswith("params.")]
    tags = [c for c in user if c.startswith("tags.")]
    assert metrics == ["metrics.acc", "metrics.loss"]
    assert user == metrics + params + tags  # metrics, then params, then tags, keys sorted
    assert params == sorted(params) and tags == sorted(tags)
    assert {"params.lr", "params.depth", "tags.kind", "tags.mlflow.runName"} <= set(user)
    # Newest first.
    assert list(frame["run_id"]) == [second.id, first.id]
    for column in ("start_time", "end_time"):
        dtype = frame[column].dtype
        assert isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) == "UTC"
    assert frame["start_time"].iloc[0] >= frame["start_time"].iloc[1]
    assert (frame["end_time"] >= frame["start_time"]).all()
    for column in metrics:
        assert frame[column].dtype == np.float64
    for column in ["run_id", "experiment_id", "status", "artifact_uri", *params, *tags]:
        assert frame[column].dtype == object, column
    by_id = frame.set_index("run_id")
    assert by_id.at[first.id, "metrics.loss"] == 0.5
    assert math.isnan(by_id.at[first.id, "metrics.acc"])
    assert by_id.at[first.id, "params.lr"] == "0.1"
    assert by_id.at[first.id, "params.depth"] is None
    assert by_id.at[second.id, "params.depth"] == "3"
    assert by_id.at[second.id, "tags.kind"] is None
    assert by_id.at[first.id, "status"] == "FINISHED"
    assert by_id.at[first.id, "artifact_uri"] == first.artifact_uri
    assert by_id.at[first.id, "experiment_id"] == first.experiment_id
    assert isinstance(frame.index, pd.RangeIndex)


def test_columns_are_those_of_the_returned_recorders(R: QlibRecorder) -> None:
    make_run(R, metrics={"only_old": 1.0})
    newest = make_run(R, metrics={"loss": 0.1})
    frame = R.search_records(max_results=1)
    assert list(frame["run_id"]) == [newest.id]
    assert "metrics.only_old" not in frame.columns and "metrics.loss" in frame.columns


def test_empty_results_still_have_the_base_columns(R: QlibRecorder) -> None:
    assert list(R.search_records().columns) == BASE
    make_run(R, metrics={"loss": 1.0})
    frame = R.search_records(filter_string="metrics.loss > 5")
    assert frame.empty and list(frame.columns) == BASE


def test_experiment_search_records_and_experiment_ids(R: QlibRecorder) -> None:
    a = make_run(R, "a", metrics={"m": 1.0})
    b = make_run(R, "b", metrics={"m": 2.0})
    exp_a = R.get_exp(experiment_name="a")
    assert list(exp_a.search_records()["run_id"]) == [a.id]
    assert list(R.search_records([b.experiment_id])["run_id"]) == [b.id]
    assert list(R.search_records(b.experiment_id)["run_id"]) == [b.id]  # one id as a str
    assert list(R.search_records()["run_id"]) == [b.id, a.id]  # every active experiment
    both = R.search_records([a.experiment_id, b.experiment_id, a.experiment_id])
    assert sorted(both["run_id"]) == sorted([a.id, b.id])
    by_name = R.search_records(experiment_names=["a"])
    assert list(by_name["run_id"]) == [a.id]
    R.delete_exp(experiment_name="a")
    # A deleted experiment is left out by default but can still be searched by id.
    assert list(R.search_records()["run_id"]) == [b.id]
    assert list(R.search_records([a.experiment_id])["run_id"]) == [a.id]


def test_unknown_experiment_ids_are_refused_clearly(R: QlibRecorder) -> None:
    make_run(R, "named")
    with pytest.raises(NotFoundError, match="no experiment with id 'nope'"):
        R.search_records(["nope"])
    with pytest.raises(NotFoundError, match=r"is an experiment name: pass experiment_names"):
        R.search_records(["named"])
    with pytest.raises(NotFoundError, match="no active experiment named 'missing'"):
        R.search_records(experiment_names=["missing"])
    with pytest.raises(ValueError, match="not both"):
        R.search_records(["x"], experiment_names=["named"])


def test_keywords_checked(R: QlibRecorder) -> None:
    make_run(R)
    with pytest.raises(TypeError, match="filter"):
        R.search_records(filter="metrics.m > 1")
    assert len(R.search_records(output_format="pandas", search_all_experiments=True)) == 1
    # R.search_records also gives MLflow Run objects (tests/test_search_list.py); the module
    # level function returns the DataFrame only.
    with pytest.raises(ValueError, match="output_format"):
        tracklite.search_records(R.get_uri(), output_format="list")


def test_module_level_search_records_takes_a_uri(R: QlibRecorder, store_uri: str) -> None:
    run = make_run(R, metrics={"m": 1.0})
    assert list(tracklite.search_records(store_uri)["run_id"]) == [run.id]
    assert list(tracklite.search_records(f"file://{store_uri}")["run_id"]) == [run.id]


def test_module_level_search_records_refuses_ids_where_the_store_goes(
    R: QlibRecorder, store_uri: str
) -> None:
    run = make_run(R, metrics={"m": 1.0})
    for ids in ([run.experiment_id], (run.experiment_id,)):
        with pytest.raises(tracklite.UsageError, match=r"takes the store first.*R\.search_records"):
            tracklite.search_records(ids)  # type: ignore[arg-type]
    # Both signatures keep working: the store first here, the ids first on R.
    found = tracklite.search_records(store_uri, [run.experiment_id])
    assert list(found["run_id"]) == list(R.search_records([run.experiment_id])["run_id"])


def test_default_uri_from_the_environment(
    R: QlibRecorder, store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(R)
    monkeypatch.setenv("TRACKLITE_URI", store_uri)
    assert list(tracklite.search_records()["run_id"]) == [run.id]


# ---------------------------------------------------------------------- lifecycle and limits


def test_run_view_type(R: QlibRecorder) -> None:
    kept = make_run(R)
    gone = make_run(R)
    R.get_exp(experiment_name="e").delete_recorder(gone.id)
    assert list(R.search_records()["run_id"]) == [kept.id]
    assert list(R.search_records(run_view_type=1)["run_id"]) == [kept.id]
    assert list(R.search_records(run_view_type=2)["run_id"]) == [gone.id]
    assert list(R.search_records(run_view_type=3)["run_id"]) == [gone.id, kept.id]
    for bad in (0, 4, True, "1"):
        with pytest.raises(ValueError, match="run_view_type"):
            R.search_records(run_view_type=bad)


def test_max_results(R: QlibRecorder) -> None:
    ids = [make_run(R).id for _ in range(4)][::-1]
    assert list(R.search_records(max_results=2)["run_id"]) == ids[:2]
    assert list(R.search_records(max_results=0)["run_id"]) == []
    assert list(R.search_records(max_results=None)["run_id"]) == ids
    assert list(R.search_records(max_results=100)["run_id"]) == ids
    assert list(R.search_records(max_results=1, order_by=["start_time ASC"])["run_id"]) == [ids[-1]]
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="max_results"):
            R.search_records(max_results=bad)


def test_no_cap_on_the_number_of_results(store_uri: str) -> None:
    # More than MLflow's default page (1,000): every one comes back.
    store = Store(store_uri)
    store.ensure()
    exp = store.create_experiment("many")
    for i in range(1_050):
        store.create_recorder(
            exp["id"], f"r{i}", status="FINISHED", start_time=f"2024-01-01T00:00:{i % 60:02d}+00:00"
        )
    assert len(search_records(store, [exp["id"]])) == 1_050
    assert len(search_records(store_uri, [exp["id"]], max_results=None)) == 1_050


# ---------------------------------------------------------------------- order


def test_order_by_metric_missing_last_and_several_keys(R: QlibRecorder) -> None:
    low = make_run(R, metrics={"ic": 0.1}, params={"g": "x"})
    none = make_run(R, params={"g": "x"})
    high = make_run(R, metrics={"ic": 0.9}, params={"g": "y"})
    mid = make_run(R, metrics={"ic": 0.5}, params={"g": "y"})

    def order(*clauses: str) -> list[str | None]:
        return list(R.search_records(order_by=list(clauses))["run_id"])

    assert order("metrics.ic DESC") == [high.id, mid.id, low.id, none.id]
    assert order("metrics.ic") == [low.id, mid.id, high.id, none.id]
    assert order("params.g DESC", "metrics.ic ASC") == [mid.id, high.id, low.id, none.id]
    # Ties fall back to newest first.
    assert order("params.g") == [none.id, low.id, mid.id, high.id]
    assert order("attributes.start_time ASC") == [low.id, none.id, high.id, mid.id]
    with pytest.raises(ValueError, match="order_by clause") as info:
        R.search_records(order_by=["metrics.ic DOWN"])
    assert "'metrics.ic DOWN'" in str(info.value) and "^" in str(info.value)


# ---------------------------------------------------------------------- filters


@pytest.fixture
def zoo(R: QlibRecorder) -> dict[str, Recorder]:
    """Four recorders with assorted metrics, params, tags and statuses."""
    return {
        "a": make_run(
            R,
            name="alpha",
            metrics={"Rank IC": 0.08, "loss": 0.3},
            params={"lr": "0.01"},
            tags={"model": "lgb"},
        ),
        "b": make_run(
            R,
            name="beta",
            metrics={"Rank IC": 0.02, "loss": 0.7},
            params={"lr": "0.1"},
            tags={"model": "MLP"},
            status="FAILED",
        ),
        "c": make_run(R, name="gamma", metrics={"loss": 0.5}, params={"lr": "0.01"}),
        "d": make_run(R, name="alpha2", params={"model.depth": "6"}, tags={"model": "lgb"}),
    }


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("", "abcd"),
        ("metrics.loss < 0.6", "ac"),
        ("metric.loss >= 0.5", "bc"),
        ("metrics.`Rank IC` > 0.05", "a"),
        ('metrics."Rank IC" <= 0.05', "b"),
        ("params.lr = '0.01'", "ac"),
        ("param.lr != '0.01'", "b"),
        ("params.lr IN ('0.1', '0.5')", "b"),
        ("params.lr NOT IN ('0.1')", "ac"),
        ("tags.model LIKE 'l%'", "ad"),
        ("tags.model ILIKE 'mlp'", "b"),
        ("tag.model IS NULL", "c"),
        ("tags.model IS NOT NULL", "abd"),
        ("params.model.depth = '6'", "d"),
        ("attributes.status = 'FAILED'", "b"),
        ("status != 'FAILED'", "acd"),
        ("attributes.run_name LIKE 'alpha%'", "ad"),
        ("metrics.loss > 0.4 AND params.lr = '0.01'", "c"),
        ("metrics.loss < 0.4 OR tags.model = 'MLP'", "ab"),
        ("(metrics.loss < 0.4 OR tags.model = 'MLP') AND status = 'FINISHED'", "a"),
        ("NOT metrics.loss < 0.4", "bc"),
        ("metrics.unknown > 0", ""),
        ("params.unknown = 'x'", ""),
        ("params.unknown IS NULL", "abcd"),
    ],
)
def test_filters_over_a_real_store(
    R: QlibRecorder, zoo: dict[str, Recorder], filter_string: str, expected: str
) -> None:
    frame = R.search_records(filter_string=filter_string)
    by_id = {rec.id: key for key, rec in zoo.items()}
    assert "".join(sorted(by_id[i] for i in frame["run_id"])) == expected


def test_run_name_is_the_recorder_name_without_the_tag(store_uri: str) -> None:
    """Recorders made through the store (not R) have no mlflow.runName tag: run_name filters
    and the tag column still see their name."""
    store = Store(store_uri)
    store.ensure()
    exp = store.create_experiment("plain")["id"]
    bare = store.create_recorder(exp, "bare run", status="FINISHED")["id"]
    tagged = store.create_recorder(
        exp, "other", status="FINISHED", extra={"tags": {"mlflow.runName": "tagged run"}}
    )["id"]
    frame = search_records(store, [exp]).set_index("run_id")
    assert frame.at[bare, "tags.mlflow.runName"] == "bare run"
    assert frame.at[tagged, "tags.mlflow.runName"] == "tagged run"
    found = search_records(store, [exp], filter_string="attributes.run_name = 'bare run'")
    assert list(found["run_id"]) == [bare]


def test_filter_on_times_and_run_id(R: QlibRecorder, zoo: dict[str, Recorder]) -> None:
    frame = R.search_records()
    start_c = frame.set_index("run_id").at[zoo["c"].id, "start_time"]
    millis = int(start_c.timestamp() * 1000)
    after = R.search_records(filter_string=f"attributes.start_time >= {millis}")
    assert set(after["run_id"]) == {zoo["c"].id, zoo["d"].id}
    one = R.search_records(filter_string=f"attributes.run_id = '{zoo['b'].id}'")
    assert list(one["run_id"]) == [zoo["b"].id]


@pytest.mark.parametrize(
    ("filter_string", "token_at"),
    [
        ("metrics.loss >> 1", 14),
        ("params.lr = 0.01", 12),
        ("metrics.loss > 'x'", 15),
        ("nonsense.key = 'x'", 0),
        ("metrics.loss > 1 AND", 20),
        ("(metrics.loss > 1", 17),
    ],
)
def test_malformed_filter_quotes_the_clause_and_points_at_the_token(
    R: QlibRecorder, zoo: dict[str, Recorder], filter_string: str, token_at: int
) -> None:
    with pytest.raises(ValueError) as info:
        R.search_records(filter_string=filter_string)
    assert isinstance(info.value, SearchSyntaxError)
    message = str(info.value)
    assert filter_string in message
    assert f"position {token_at}" in message
    caret_line = message.splitlines()[-1]
    assert caret_line.index("^") - 2 == token_at  # the caret sits under the token


def test_malformed_arguments_write_nothing(R: QlibRecorder, store_uri: str) -> None:
    make_run(R)
    before = sorted(p.name for p in Path(store_uri).rglob("*"))
    for kwargs in (
        {"filter_string": "metrics.loss >>> 1"},
        {"order_by": ["metrics.x SIDEWAYS"]},
        {"max_results": -1},
        {"run_view_type": 9},
    ):
        with pytest.raises(ValueError):
            R.search_records(**kwargs)
    assert sorted(p.name for p in Path(store_uri).rglob("*")) == before


# ---------------------------------------------------------------------- list_recorders


def test_list_recorders_filter_status_and_max_results(
    R: QlibRecorder, zoo: dict[str, Recorder]
) -> None:
    exp = R.get_exp(experiment_name="e")
    listed = exp.list_recorders(filter_string="params.lr = '0.01'")
    assert isinstance(listed, dict)
    assert list(listed) == [zoo["c"].id, zoo["a"].id]  # newest first
    assert all(isinstance(r, Recorder) for r in listed.values())
    assert listed[zoo["a"].id].name == "alpha" and listed[zoo["a"].id].status == "FINISHED"
    assert listed[zoo["a"].id].info["start_time"] == zoo["a"].info["start_time"]
    assert list(exp.list_recorders(status="FAILED")) == [zoo["b"].id]
    assert list(exp.list_recorders(status="FAILED", filter_string="tags.model = 'lgb'")) == []
    as_list = exp.list_recorders(Experiment.RT_L, max_results=2, filter_string="tags.model = 'lgb'")
    assert isinstance(as_list, list)
    assert [r.id for r in as_list] == [zoo["d"].id, zoo["a"].id]
    assert list(exp.list_recorders(max_results=1)) == [zoo["d"].id]
    assert list(exp.list_recorders(filter_string="metrics.nothing > 0")) == []
    assert list(R.list_recorders(experiment_name="e")) == [zoo[k].id for k in "dcba"]
    with pytest.raises(ValueError, match="filter"):
        exp.list_recorders(filter_string="tags.model == 'x'")
    # A listed recorder is a full Recorder: its data is reachable.
    assert listed[zoo["a"].id].list_params()["lr"] == "0.01"


def test_list_recorders_skips_deleted(R: QlibRecorder) -> None:
    kept = make_run(R)
    gone = make_run(R)
    exp = R.get_exp(experiment_name="e")
    exp.delete_recorder(gone.id)
    assert list(exp.list_recorders()) == [kept.id]


def test_unreadable_recorder_is_skipped_with_a_warning(R: QlibRecorder, store_uri: str) -> None:
    good = make_run(R)
    bad = make_run(R)
    (Path(store_uri) / bad.experiment_id / str(bad.id) / "recorder.json").write_text("{ torn")
    with pytest.warns(RuntimeWarning, match="tracklite check"):
        frame = R.search_records()
    assert list(frame["run_id"]) == [good.id]


# ---------------------------------------------------------------------- against plain pandas

_VALUES = st.one_of(st.none(), st.floats(-5, 5, allow_nan=False).map(lambda v: round(v, 2)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(_VALUES, st.sampled_from([None, "a", "b", "ab"])), min_size=0, max_size=8
    ),
    op=st.sampled_from(["<", "<=", ">", ">=", "=", "!="]),
    threshold=st.sampled_from([-1.0, 0.0, 0.5, 2.0]),
    pattern=st.sampled_from(["a%", "%b", "a", "_"]),
    join=st.sampled_from(["AND", "OR"]),
)
def test_search_matches_a_plain_evaluation(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[float | None, str | None]],
    op: str,
    threshold: float,
    pattern: str,
    join: str,
) -> None:
    """search_records on a real store agrees with evaluating the filter row by row in Python."""
    import re

    root = tmp_path_factory.mktemp("plain")
    store = Store(root)
    store.ensure()
    exp = store.create_experiment("p")["id"]
    expected: list[str] = []
    tests = {
        "<": float.__lt__,
        "<=": float.__le__,
        ">": float.__gt__,
        ">=": float.__ge__,
        "=": float.__eq__,
        "!=": float.__ne__,
    }
    regex = re.compile(pattern.replace("%", ".*").replace("_", "."), re.DOTALL)
    for i, (value, param) in enumerate(rows):
        metrics = {} if value is None else {"m": {"value": value, "step": 0, "timestamp": 0}}
        params = {} if param is None else {"p": param}
        meta = store.create_recorder(
            exp,
            f"r{i}",
            status="FINISHED",
            start_time=f"2024-01-01T00:00:0{i}+00:00",
            extra={"metrics": metrics, "params": params},
        )
        # SQL semantics: a comparison with a missing value is never true.
        left = value is not None and tests[op](float(value), threshold)
        right = param is not None and regex.fullmatch(param) is not None
        if (left and right) if join == "AND" else (left or right):
            expected.append(meta["id"])
    text = f"metrics.m {op} {threshold} {join} params.p LIKE '{pattern}'"
    frame = search_records(store, [exp], filter_string=text, order_by=["attributes.run_id"])
    assert list(frame["run_id"]) == sorted(expected)
