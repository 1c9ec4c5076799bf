"""``tracklite.dataset``: every metric point of a store once, with the right ids, for pyarrow,
pandas and DuckDB, through compaction and its leftovers."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import tracklite
from tracklite import NotFoundError, QlibRecorder, Recorder
from tracklite.metrics import segments
from tracklite.search.dataset import live_segments


def logged_run(R: QlibRecorder, experiment: str, offset: float) -> Recorder:
    """A run with loss and acc at steps 0..5 in three segments: the run's own (compacted when
    it ended) and two more, as a resumed run's flushes would add."""
    with R.start(experiment_name=experiment):
        recorder = R.get_recorder()
        for step in range(2):
            R.log_metrics(step=step, loss=offset + step, acc=offset - step)
    metrics_dir = Path(recorder.get_local_dir()) / "metrics"
    for first in (2, 4):
        steps = [first, first, first + 1, first + 1]
        table = pa.table(
            {
                "key": ["loss", "acc"] * 2,
                "step": steps,
                "value": [offset + first, offset - first, offset + first + 1, offset - first - 1],
                "timestamp": pa.array([1_700_000_000_000 + s for s in steps], pa.int64()).cast(
                    pa.timestamp("ms", tz="UTC")
                ),
            },
            schema=segments.schema(),
        )
        segments.write_segment(metrics_dir, table)
    return recorder


def expected(recorders: list[Recorder]) -> pd.DataFrame:
    """The points each recorder's own history reports, with the ids attached."""
    frames = []
    for rec in recorders:
        history = rec.get_metric_history()
        frames.append(history.assign(experiment_id=rec.experiment_id, recorder_id=rec.id))
    return _sorted(pd.concat(frames, ignore_index=True))


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    columns = ["experiment_id", "recorder_id", "key", "step", "value"]
    frame = frame[[*columns, "timestamp"]].astype(
        {"experiment_id": object, "recorder_id": object, "key": object}
    )
    return frame.sort_values(columns).reset_index(drop=True)


def points(dataset: pads.Dataset) -> pd.DataFrame:
    return _sorted(dataset.to_table().to_pandas())


@pytest.fixture
def runs(R: QlibRecorder) -> list[Recorder]:
    return [logged_run(R, "a", 10.0), logged_run(R, "a", 20.0), logged_run(R, "b", 30.0)]


def test_schema_and_every_point_once(runs: list[Recorder], store_uri: str) -> None:
    data = tracklite.dataset(store_uri)
    assert data.schema.names == [
        "key",
        "step",
        "value",
        "timestamp",
        "experiment_id",
        "recorder_id",
    ]
    assert len(live_segments(Path(runs[0].get_local_dir()) / "metrics")) == 3
    got = points(data)
    assert len(got) == 3 * 6 * 2
    pd.testing.assert_frame_equal(got, expected(runs))


def test_filters_on_the_ids_prune_files(runs: list[Recorder], store_uri: str) -> None:
    data = tracklite.dataset(store_uri)
    one = data.to_table(filter=pc.field("recorder_id") == runs[1].id).to_pandas()
    assert set(one["recorder_id"]) == {runs[1].id} and len(one) == 12
    fragments = list(data.get_fragments(filter=pc.field("recorder_id") == runs[1].id))
    assert len(fragments) == 3  # only that recorder's files are opened


def test_choosing_experiments_by_name_or_id(runs: list[Recorder], store_uri: str) -> None:
    by_name = points(tracklite.dataset(store_uri, experiments="b"))
    pd.testing.assert_frame_equal(by_name, expected(runs[2:]))
    by_id = points(tracklite.dataset(store_uri, experiments=[runs[0].experiment_id]))
    pd.testing.assert_frame_equal(by_id, expected(runs[:2]))
    with pytest.raises(NotFoundError, match="nope"):
        tracklite.dataset(store_uri, experiments=["nope"])


def test_after_compaction(runs: list[Recorder], store_uri: str) -> None:
    before = expected(runs)
    report = tracklite.compact(store_uri)
    assert report.compacted == 3
    for rec in runs:
        assert len(live_segments(Path(rec.get_local_dir()) / "metrics")) == 1
    pd.testing.assert_frame_equal(points(tracklite.dataset(store_uri)), before)


def test_leftover_replaced_segments_are_skipped(runs: list[Recorder], store_uri: str) -> None:
    """A compaction killed after publishing its merged file, before deleting the old ones."""
    before = expected(runs)
    metrics_dir = Path(runs[0].get_local_dir()) / "metrics"
    names = segments.segment_names(metrics_dir)
    merged = segments.read_named(metrics_dir, names)
    assert merged is not None
    merged_path = segments.write_segment(metrics_dir, merged, replaces=names)
    assert len(segments.segment_names(metrics_dir)) == 4  # old ones still there
    assert live_segments(metrics_dir) == [str(merged_path)]
    pd.testing.assert_frame_equal(points(tracklite.dataset(store_uri)), before)
    # Reading the raw files without the replaces rule would count those points twice.
    raw = pq.ParquetDataset(sorted(str(p) for p in metrics_dir.glob("*.parquet"))).read()
    assert raw.num_rows == 2 * 12


def test_deleted_recorders_left_out_unless_asked(
    R: QlibRecorder,
    runs: list[Recorder],
    store_uri: str,
) -> None:
    R.get_exp(experiment_name="a").delete_recorder(runs[0].id)
    kept = points(tracklite.dataset(store_uri))
    pd.testing.assert_frame_equal(kept, expected(runs[1:]))
    everything = points(tracklite.dataset(store_uri, include_deleted=True))
    pd.testing.assert_frame_equal(everything, expected(runs))


def test_empty_store_and_recorders_without_points(R: QlibRecorder, store_uri: str) -> None:
    with R.start(experiment_name="quiet"):
        pass
    data = tracklite.dataset(store_uri)
    assert data.to_table().num_rows == 0
    assert data.schema.names[-2:] == ["experiment_id", "recorder_id"]


def test_default_uri(runs: list[Recorder], store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKLITE_URI", store_uri)
    assert tracklite.dataset().count_rows() == 36


def test_pandas_reads_the_same_folder_without_tracklite(
    runs: list[Recorder], store_uri: str
) -> None:
    """The layout is the contract: plain pandas over the files gives the same points (a store
    without leftover replaced segments), ids taken from the paths."""
    frames = []
    for path in sorted(Path(store_uri).glob("*/*/metrics/*.parquet")):
        frame = pd.read_parquet(path)
        frames.append(frame.assign(experiment_id=path.parts[-4], recorder_id=path.parts[-3]))
    plain = _sorted(pd.concat(frames, ignore_index=True))
    pd.testing.assert_frame_equal(plain, points(tracklite.dataset(store_uri)))


def test_duckdb_queries_the_store_in_place(runs: list[Recorder], store_uri: str) -> None:
    duckdb = pytest.importorskip("duckdb")
    points_ds = tracklite.dataset(store_uri)
    con = duckdb.connect()
    con.register("points", points_ds)
    result = con.execute(
        "select recorder_id, max(value) as best, count(*) as n from points "
        "where key = 'loss' group by recorder_id order by best"
    ).fetchall()
    assert result == [(runs[0].id, 15.0, 6), (runs[1].id, 25.0, 6), (runs[2].id, 35.0, 6)]
    # DuckDB reading the Parquet files directly, ids from the path: the same counts.
    pattern = os.path.join(store_uri, "*", "*", "metrics", "*.parquet")
    direct = con.execute(
        "select split_part(filename, '/', -3) as recorder_id, count(*) from "
        f"read_parquet('{pattern}', filename = true) group by 1 order by 1"
    ).fetchall()
    assert direct == sorted((rec.id, 12) for rec in runs)


def test_points_just_logged_by_this_process_are_in(R: QlibRecorder, store_uri: str) -> None:
    with R.start(experiment_name="live"):
        for step in range(5):
            R.log_metrics(step=step, loss=1.0 / (step + 1))
        # No flush: building the dataset writes this process's queued points first.
        live = tracklite.dataset(store_uri).to_table().to_pandas()
        assert sorted(live["step"]) == [0, 1, 2, 3, 4]
        assert set(live["recorder_id"]) == {R.get_recorder().id}
