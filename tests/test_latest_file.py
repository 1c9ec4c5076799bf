"""Recorders with many metric keys: the latest-metrics summary beside ``recorder.json``.

Past ``INLINE_KEYS`` keys the summary lives in ``latest.parquet`` and ``recorder.json`` keeps only
the entries logged since, so a flush of a few points never rewrites the whole summary; every
reader (API, search with and without its cache, CLI, MLflow API, check) sees the whole summary;
stores of earlier releases (the whole summary inside ``recorder.json``) read the same and move
over at their next flush; a writer killed between the two files loses nothing.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from _reliability import read_line, spawn

import tracklite
from tests.test_cli_helpers import run_cli
from tracklite import CorruptMetadataWarning, ExpManager, QlibRecorder
from tracklite.cli import tables
from tracklite.maintenance import check as chk
from tracklite.metrics import latest
from tracklite.search import cache
from tracklite.store import layout

KEYS = 2_500  # past the default INLINE_KEYS (1,000)


def _values(n: int, offset: float = 0.0) -> dict[str, float]:
    return {f"m{i:05d}": float(i) + offset for i in range(n)}


def _recorder_json(folder: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((folder / layout.RECORDER_FILE).read_text())  # type: ignore[no-any-return]


@pytest.fixture
def R(tmp_path: Path) -> QlibRecorder:
    return QlibRecorder(ExpManager(uri=str(tmp_path / "store")))


def test_a_flush_of_one_point_does_not_rewrite_the_whole_summary(R: QlibRecorder) -> None:
    with R.start(experiment_name="wide"):
        R.log_metrics(step=0, **_values(KEYS))
        R.flush()
        folder = R.get_recorder().ref.dir
        side = folder / layout.LATEST_FILE
        stored = _recorder_json(folder)
        assert stored["metrics"] == {} and stored[latest.FILE_FIELD] == layout.LATEST_FILE
        assert len(pd.read_parquet(side)) == KEYS  # pandas alone reads it
        before = os.stat(side)
        R.log_metrics(step=1, m00007=-1.0)
        R.flush()
        stored = _recorder_json(folder)
        # recorder.json holds the one new entry; the file of 2,500 entries was not rewritten.
        assert list(stored["metrics"]) == ["m00007"]
        # Its size is its params' and tags' (the command line is a param, the user and host
        # tags) and a little more, not 2,500 keys'.
        size = len((folder / layout.RECORDER_FILE).read_bytes())
        assert size < 2_000 + len(json.dumps(stored["params"])) + len(json.dumps(stored["tags"]))
        after = os.stat(side)
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
        listed = R.get_recorder().list_metrics()
    assert len(listed) == KEYS and listed["m00007"] == -1.0 and listed["m02499"] == 2499.0


def test_every_reader_sees_the_whole_summary(
    R: QlibRecorder, capsys: pytest.CaptureFixture[str]
) -> None:
    with R.start(experiment_name="wide", recorder_name="w"):
        R.log_metrics(step=0, **_values(KEYS))
        R.flush()
        R.log_metrics(step=1, m00003=30.0)  # inline, newer than the file's entry
        R.log_metrics(step=0, extra=5.0)
        rec = R.get_recorder()
    uri = R.exp_manager.uri
    expected = {**_values(KEYS), "m00003": 30.0, "extra": 5.0}
    assert rec.list_metrics() == expected
    for use_cache in (False, True, True):
        frame = tracklite.search_records(uri, use_cache=use_cache)
        metrics = {c[len("metrics.") :]: v for c, v in frame.iloc[0].items() if c.startswith("m")}
        assert metrics == expected
    found = tracklite.search_records(uri, filter_string="metrics.m00003 = 30 and metrics.extra > 4")
    assert found["run_id"].tolist() == [rec.id]
    shown = run_cli(capsys, "--uri", uri, "--format", "json", "show", rec.id)
    assert shown.json()["metrics"]["m02000"]["value"] == 2000.0
    listing = run_cli(capsys, "--uri", uri, "--format", "csv", "runs", "wide")
    row = listing.csv()[0]
    assert row["metrics.m00003"] == "30.0" and row["metrics.m01234"] == "1234.0"
    from tracklite.mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    assert client.get_run(rec.id).data.metrics == expected
    assert tracklite.check(uri).clean


def test_the_search_summary_does_not_widen_with_the_keys(R: QlibRecorder) -> None:
    """Counting, not timing: the cached rows give at most ``WIDE_KEYS`` keys a column of
    their own; the others are entries of one list column."""
    widths = []
    for n in (10, 300, 3_000):
        with R.start(experiment_name=f"e{n}"):
            R.log_metrics(step=0, **_values(n))
            exp_id = R.get_exp().id
        tracklite.search_records(R.exp_manager.uri, experiment_ids=[exp_id])
        folder = Path(R.exp_manager.uri) / exp_id / layout.CHANGES_DIR
        (summary,) = folder.glob("summary-*.arrow")
        loaded = cache.read_summary(summary)
        assert loaded is not None
        widths.append(loaded.rows.num_columns)
    assert widths[1] == widths[2] == widths[0] - 10 + cache.WIDE_KEYS


def test_an_old_summary_inside_recorder_json_reads_and_moves_out(R: QlibRecorder) -> None:
    """A store of an earlier release: every entry inside recorder.json, no latest.parquet."""
    with R.start(experiment_name="old"):
        R.log_metrics(step=0, a=1.0)
        rec = R.get_recorder()
    folder = rec.ref.dir
    meta = _recorder_json(folder)
    meta["metrics"] = {
        key: {"value": value, "step": 0, "timestamp": 1_700_000_000_000}
        for key, value in _values(KEYS).items()
    }
    (folder / layout.RECORDER_FILE).write_text(json.dumps(meta))
    uri = R.exp_manager.uri
    for use_cache in (False, True):
        frame = tracklite.search_records(uri, use_cache=use_cache)
        assert frame.shape[1] > KEYS and frame["metrics.m01000"].tolist() == [1000.0]
    resumed = R.get_exp(experiment_name="old").get_recorder(recorder_id=rec.id, create=False)
    assert len(resumed.list_metrics()) == KEYS
    resumed.log_metrics(step=1, b=2.0)
    resumed.flush()
    assert (folder / layout.LATEST_FILE).exists()
    assert _recorder_json(folder)["metrics"] == {}
    assert resumed.list_metrics() == {**_values(KEYS), "b": 2.0}


def test_a_writer_killed_between_the_two_files_loses_nothing(tmp_path: Path) -> None:
    """SIGKILL after latest.parquet is published and before recorder.json is: the file holds
    the new entries, recorder.json the old ones; the merge reads the new ones."""
    root = tmp_path / "store"
    child = spawn(
        """
        import os, signal
        from tracklite import R
        from tracklite.metrics import latest
        from tracklite.store import root
        R.start_exp(experiment_name="k")
        R.log_metrics(step=0, **{f"m{i}": float(i) for i in range(8)})
        R.flush()
        rec = R.get_recorder()
        real = latest.write_file

        def write_then_die(folder, table):
            real(folder, table)
            os.kill(os.getpid(), signal.SIGKILL)  # before recorder.json is replaced

        latest.write_file = write_then_die
        print("READY", rec.experiment_id, rec.id, flush=True)
        R.log_metrics(step=1, **{f"m{i}": 100.0 + i for i in range(8)})
        R.flush()
        """,
        root,
        tmp_path,
        TRACKLITE_INLINE_METRICS="5",
    )
    exp_id, rec_id = read_line(child, "READY").split()
    assert child.wait(timeout=60) == -9
    folder = root / exp_id / rec_id
    # recorder.json is the one of the first flush (its entries all in the file since).
    assert _recorder_json(folder)["metrics"] == {}
    expected = {f"m{i}": 100.0 + i for i in range(8)}
    recorder = (
        ExpManager(uri=str(root))
        .get_exp(experiment_id=exp_id, create=False)
        .get_recorder(recorder_id=rec_id, create=False)
    )
    assert recorder.list_metrics() == expected
    frame = tracklite.search_records(str(root), use_cache=False)
    assert frame[[f"metrics.m{i}" for i in range(8)]].iloc[0].tolist() == list(expected.values())
    report = tracklite.check(root, fix=True)
    assert report.kinds() == {chk.DEAD_RUN: 1}, str(report)
    assert tracklite.check(root).clean


def test_check_rebuilds_a_wrong_or_unreadable_file(R: QlibRecorder) -> None:
    with R.start(experiment_name="wide"):
        R.log_metrics(step=0, **_values(KEYS))
        rec = R.get_recorder()
    side = rec.ref.dir / layout.LATEST_FILE
    table = pq.read_table(side)
    pq.write_table(table.slice(0, 10), side)  # keys lost
    report = tracklite.check(R.exp_manager.uri)
    assert report.kinds() == {chk.SUMMARY_MISMATCH: 1}, str(report)
    assert "missing from the summary" in report.findings[0].message
    side.write_bytes(b"not parquet")
    with pytest.warns(CorruptMetadataWarning, match="latest.parquet"):
        assert tracklite.search_records(R.exp_manager.uri, use_cache=False).empty
    assert tracklite.check(R.exp_manager.uri, fix=True).ok
    assert tracklite.check(R.exp_manager.uri).clean
    assert rec.list_metrics() == _values(KEYS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(tracklite.search_records(R.exp_manager.uri)) == 1


def test_a_listing_makes_no_column_for_keys_the_terminal_cannot_show(
    R: QlibRecorder, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting, not timing: on an 80-column terminal only the columns that could fit are
    built, whatever the number of keys; the last line counts the others."""
    from tracklite.cli.commands import browse

    with R.start(experiment_name="wide"):
        R.log_metrics(step=0, **_values(KEYS))
    made: list[str] = []

    class Counted(tables.Column):
        def __init__(self, key: str, *args: object, **kwargs: object) -> None:
            made.append(key)
            super().__init__(key, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(browse, "Column", Counted)
    monkeypatch.setenv("COLUMNS", "80")
    outcome = run_cli(capsys, "--uri", R.exp_manager.uri, "runs", "wide")
    assert outcome.code == 0, outcome.err
    assert len([k for k in made if k.startswith("metrics.")]) <= 80 // 3 + 1
    last = outcome.out.splitlines()[-1]
    shown = len([k for k in outcome.out.splitlines()[0].split() if k.startswith("m0")])
    assert f"({KEYS - shown} more columns not shown" in last


class _Slices(list):  # type: ignore[type-arg]
    """A list counting the slices taken of it."""

    taken = 0

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        if isinstance(index, slice):
            type(self).taken += 1
        return super().__getitem__(index)


def test_fitting_columns_to_a_terminal_is_linear() -> None:
    """Counting, not timing: one slice of the floors, not one per column count tried."""
    floors = _Slices([5] * 10_000)
    widths, shown = tables.fit([8] * 10_000, 80, floors)
    assert shown == 80 // 7 and widths == [5] * shown
    assert _Slices.taken <= 2


def test_an_import_of_many_keys_writes_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_mlflow_import import Mlruns
    from tracklite.mlflow_io.importer import import_mlflow

    monkeypatch.setattr(latest, "INLINE_KEYS", 20)
    src = Mlruns(tmp_path / "mlruns")
    src.experiment("1", "exp")
    points = {f"k{i:03d}": [(1_700_000_001_000, float(i), 0)] for i in range(50)}
    run = src.run("1", name="r", metrics=points)
    dst = tmp_path / "store"
    import_mlflow(src.root, dst)
    folder = dst / "1" / run.name
    assert _recorder_json(folder)["metrics"] == {}
    assert len(pd.read_parquet(folder / layout.LATEST_FILE)) == 50
    expected = {key: float(i) for i, key in enumerate(points)}
    frame = tracklite.search_records(str(dst), use_cache=False)
    assert {c[len("metrics.") :]: frame.at[0, c] for c in frame if c[:2] == "me"} == expected
    assert tracklite.check(dst).clean
    # Updated at the source: the import replaces the file.
    with open(run / "metrics" / "k007", "a") as f:
        f.write("1700000009000 -7.0 1\n")
    assert import_mlflow(src.root, dst).runs_updated == 1
    assert _recorder_json(folder)["metrics"] == {}
    assert pd.read_parquet(folder / layout.LATEST_FILE).set_index("key").at["k007", "value"] == -7.0
    assert tracklite.check(dst).clean


def test_keys_of_few_rows_are_list_entries_and_read_the_same(R: QlibRecorder) -> None:
    """A key most rows have gets a column of its own in the search rows, the others are list
    entries; a key can be one in some rows and the other in others (rows re-read since):
    filters, orders and frames read both the same."""
    ids = {}
    for name, metrics in (("r1", {"a": 1.0, "c": 0.0}), ("r2", {"b": 2.0}), ("r3", {"b": 3.0})):
        with R.start(experiment_name="mix", recorder_name=name):
            R.log_metrics(step=0, **metrics)
            ids[name] = R.get_recorder().id
    uri = R.exp_manager.uri
    exp_id = R.get_exp(experiment_name="mix").id
    rows = cache.experiment_rows(Path(uri), exp_id, use_cache=False)
    assert "metrics.b" in rows.column_names and "metrics.a" not in rows.column_names
    tracklite.search_records(uri)  # the summary: "a" an entry of r1's list
    recorder = R.get_exp(experiment_name="mix").get_recorder(recorder_id=ids["r2"], create=False)
    recorder.log_metrics(step=1, a=5.0)  # r2 re-read alone: "a" a column of its own there
    recorder.flush()
    for use_cache in (True, False):
        found = tracklite.search_records(
            uri, filter_string="metrics.a > 0", order_by=["metrics.a DESC"], use_cache=use_cache
        )
        assert found["run_id"].tolist() == [ids["r2"], ids["r1"]]
        assert found["metrics.a"].tolist() == [5.0, 1.0]
        assert found["metrics.b"].tolist()[0] == 2.0 and pd.isna(found["metrics.b"].iloc[1])
        assert pd.isna(found["metrics.c"].iloc[0]) and found["metrics.c"].iloc[1] == 0.0
    pd.testing.assert_frame_equal(
        tracklite.search_records(uri), tracklite.search_records(uri, use_cache=False)
    )


def test_readers_that_never_lock_see_every_key_while_a_writer_folds(tmp_path: Path) -> None:
    """A writer process folds its summary into latest.parquet at every flush (1,200 keys a
    step); readers, reading recorder.json first and the file second without any lock, always
    see every key, and never an older step than they saw before."""
    root = tmp_path / "store"
    child = spawn(
        """
        from tracklite import R
        R.start_exp(experiment_name="k")
        rec = R.get_recorder()
        R.log_metrics(step=0, **{f"m{i:04d}": 0.0 for i in range(1200)})
        R.flush()
        print("READY", rec.experiment_id, rec.id, flush=True)
        for step in range(1, 40):
            R.log_metrics(step=step, **{f"m{i:04d}": float(step) for i in range(1200)})
            R.flush()
        R.end_exp()
        print("DONE", flush=True)
        """,
        root,
        tmp_path,
    )
    exp_id, rec_id = read_line(child, "READY").split()
    folder = root / exp_id / rec_id
    seen = 0.0
    reads = 0
    while True:
        # A read that starts once the child has ended sees its last step, however few reads a
        # loaded machine allowed while it was writing.
        ended = child.poll() is not None
        meta = json.loads((folder / layout.RECORDER_FILE).read_bytes())
        values = latest.values_of(latest.summary(folder, meta))
        assert len(values) == 1200
        low = min(values.values())
        assert low >= seen
        seen = low
        frame = tracklite.search_records(str(root), use_cache=False)
        assert frame.filter(like="metrics.").notna().all(axis=None)
        reads += 1
        if ended and reads > 3:
            break
    assert child.wait(timeout=60) == 0, child.stderr.read() if child.stderr else ""
    assert seen == 39.0 and reads > 3
