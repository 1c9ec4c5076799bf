"""Symbolic links planted in a store never lead tracklite out of it: nothing outside is read,
written, created, moved or deleted, by any operation, at any depth, also when a folder is
swapped for a link while the operation runs."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import tracklite
from tracklite import ExpManager, QlibRecorder, UnsafeLinkError
from tracklite.maintenance import check as chk
from tracklite.maintenance import gc
from tracklite.metrics import compaction
from tracklite.search import cache
from tracklite.store import layout
from tracklite.store.root import Store

SECRET = b"outside the store: never read, moved or deleted"


def outside_state(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    """A folder outside the store holding a secret; checked unchanged after every test."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_bytes(SECRET)
    before = outside_state(folder)
    yield folder
    assert outside_state(folder) == before


@pytest.fixture
def r(tmp_path: Path) -> Iterator[QlibRecorder]:
    rec = QlibRecorder(ExpManager(uri=str(tmp_path / "store")))
    yield rec
    if rec.exp_manager.active_experiment is not None:
        rec.end_exp("FAILED")


def finished(r: QlibRecorder) -> tracklite.Recorder:
    with r.start(experiment_name="e"):
        for step in range(3):
            r.log_metrics(step=step, loss=1.0 / (step + 1))
            r.flush()
        r.save_objects(**{"obj.pkl": [1, 2]}, artifact_path="d")
        rec = r.get_recorder()
    return rec


def test_download_of_a_folder_holding_a_planted_link(
    r: QlibRecorder, tmp_path: Path, outside: Path
) -> None:
    rec = finished(r)
    (rec.ref.artifacts_dir / "d" / "sub").mkdir()
    (rec.ref.artifacts_dir / "d" / "sub" / "leak.txt").symlink_to(outside / "secret.txt")
    dst = tmp_path / "dst"
    dst.mkdir()
    with pytest.raises(UnsafeLinkError, match=r"leak\.txt"):
        rec.download_artifact("d", str(dst))
    assert not any(p.is_file() and p.read_bytes() == SECRET for p in dst.rglob("*"))
    assert list(dst.iterdir()) == []  # refused before anything was copied
    (rec.ref.artifacts_dir / "d" / "sub" / "leak.txt").unlink()
    copied = Path(rec.download_artifact("d", str(dst)))
    assert sorted(p.name for p in copied.rglob("*")) == ["obj.pkl", "sub"]


def test_linked_artifacts_folder(r: QlibRecorder, outside: Path) -> None:
    rec = finished(r)
    artifacts = rec.ref.artifacts_dir
    os.rename(artifacts, artifacts.with_name("artifacts.real"))
    artifacts.symlink_to(outside)
    with r.start(experiment_name="e", recorder_id=rec.id, resume=True):
        with pytest.raises(UnsafeLinkError, match="symbolic link"):
            r.save_objects(**{"x.pkl": 1})
        with pytest.raises(UnsafeLinkError):
            r.save_objects(**{"x.pkl": 1}, artifact_path="deep/er")
        with pytest.raises(tracklite.LoadObjectError, match="symbolic link"):
            rec.load_object("secret.txt")
        with pytest.raises(UnsafeLinkError):
            rec.list_artifacts()
        with pytest.raises(UnsafeLinkError):
            rec.download_artifact("secret.txt")


def test_linked_metrics_folder_is_never_compacted(r: QlibRecorder, outside: Path) -> None:
    rec = finished(r)
    metrics = rec.ref.metrics_dir
    # Segments outside that a compaction through the link would merge, then delete.
    for name in sorted(os.listdir(metrics))[:1]:
        (outside / name).write_bytes((metrics / name).read_bytes())
        (outside / ("0" + name)).write_bytes((metrics / name).read_bytes())
    planted = outside_state(outside)
    os.rename(metrics, metrics.with_name("metrics.real"))
    metrics.symlink_to(outside)
    report = compaction.compact(r.exp_manager.uri)
    assert report.compacted == 0 and "symbolic link" in " ".join(report.errors)
    assert outside_state(outside) == planted
    for path in outside.glob("*.parquet"):
        path.unlink()


def test_linked_metrics_folder_of_a_running_run(r: QlibRecorder, outside: Path) -> None:
    rec = finished(r)
    metrics = rec.ref.metrics_dir
    with r.start(experiment_name="e", recorder_id=rec.id, resume=True):
        os.rename(metrics, metrics.with_name("metrics.real"))
        metrics.symlink_to(outside)
        r.log_metrics(step=9, loss=9.0)
        with pytest.raises(tracklite.MetricWriteError, match="symbolic link"):
            r.flush()
        metrics.unlink()  # repaired: the kept points are written by the next flush
        os.rename(metrics.with_name("metrics.real"), metrics)
        r.flush()
    assert rec.list_metrics()["loss"] == 9.0


def test_linked_experiment_and_recorder_folders_receive_nothing(
    r: QlibRecorder, outside: Path
) -> None:
    rec = finished(r)
    exp_dir, rec_dir = rec.ref.dir.parent, rec.ref.dir
    # A lookalike of the recorder outside: tracklite must not tag it, nor start runs beside it.
    twin = outside / rec_dir.name
    shutil.copytree(rec_dir, twin)
    (outside / "experiment.json").write_bytes((exp_dir / "experiment.json").read_bytes())
    planted = outside_state(outside)
    os.rename(rec_dir, rec_dir.with_name(rec_dir.name + ".real"))
    rec_dir.symlink_to(twin)
    with pytest.raises((UnsafeLinkError, tracklite.MetricWriteError), match="symbolic link"):
        rec.set_tags(k="v")
    rec_dir.unlink()
    os.rename(rec_dir.with_name(rec_dir.name + ".real"), rec_dir)
    rec.flush()  # repaired: the kept tag lands in the real folder
    assert rec.list_tags()["k"] == "v"
    os.rename(exp_dir, exp_dir.with_name(exp_dir.name + ".real"))
    exp_dir.symlink_to(outside)
    with pytest.raises(UnsafeLinkError, match="symbolic link"):
        r.start_exp(experiment_id=rec.experiment_id, recorder_name="new")
    assert outside_state(outside) == planted
    shutil.rmtree(twin)
    (outside / "experiment.json").unlink()
    exp_dir.unlink()
    os.rename(exp_dir.with_name(exp_dir.name + ".real"), exp_dir)


def test_planted_lock_link_creates_nothing_outside(r: QlibRecorder, outside: Path) -> None:
    rec = finished(r)
    lock = rec.ref.dir / layout.RECORDER_LOCK
    lock.unlink()
    lock.symlink_to(outside / "created-by-tracklite")
    with pytest.raises((UnsafeLinkError, tracklite.MetricWriteError), match="symbolic link"):
        rec.set_tags(k="v")
    assert not (outside / "created-by-tracklite").exists()
    lock.unlink()  # repaired: the queued tag is written by the next flush
    rec.flush()
    assert rec.list_tags()["k"] == "v"
    store_lock = Path(r.exp_manager.uri) / layout.STORE_LOCK
    store_lock.unlink()
    store_lock.symlink_to(outside / "store-lock")
    with pytest.raises(UnsafeLinkError):
        r.get_exp(experiment_name="new-one")
    assert not (outside / "store-lock").exists()


def test_check_reports_every_link_and_fix_moves_the_links(
    r: QlibRecorder, tmp_path: Path, outside: Path
) -> None:
    rec = finished(r)
    root = Path(r.exp_manager.uri)
    links = [
        root / "toplink",
        rec.ref.dir.parent / "0123456789abcdef0123456789abcdef",  # an id-named linked recorder
        rec.ref.dir / "extra",
        rec.ref.metrics_dir / "zz.parquet",
        rec.ref.artifacts_dir / "d" / "deep" / "deeper" / "leak.txt",
    ]
    (rec.ref.artifacts_dir / "d" / "deep" / "deeper").mkdir(parents=True)
    for link in links:
        link.symlink_to(outside / "secret.txt" if link.suffix else outside)
    # A linked artifacts/ of a second recorder.
    with r.start(experiment_name="e"):
        r.log_metrics(step=0, x=1.0)
        second = r.get_recorder()
    second.ref.artifacts_dir.symlink_to(outside)
    links.append(second.ref.artifacts_dir)
    report = chk.check(root)
    assert sorted(f.path for f in report.of_kind(chk.UNSAFE_LINK)) == sorted(links)
    fixed = chk.check(root, fix=True)
    assert fixed.ok and len(fixed.of_kind(chk.UNSAFE_LINK)) == len(links)
    assert fixed.quarantine is not None
    for link in links:
        assert not os.path.lexists(link)
        assert (fixed.quarantine / link.relative_to(root)).is_symlink()
    assert chk.check(root).clean


def test_linked_quarantine_moves_nothing_out(r: QlibRecorder, outside: Path) -> None:
    rec = finished(r)
    root = Path(r.exp_manager.uri)
    (root / layout.QUARANTINE_DIR).symlink_to(outside)
    victim = rec.ref.metrics_dir / sorted(os.listdir(rec.ref.metrics_dir))[0]
    victim.write_bytes(b"torn")
    report = chk.check(root, fix=True)
    assert report.ok, report
    quarantine = root / layout.QUARANTINE_DIR
    assert quarantine.is_dir() and not quarantine.is_symlink()
    moved = list(quarantine.rglob(victim.name))
    assert [p.read_bytes() for p in moved] == [b"torn"]
    assert [p for p in quarantine.rglob("*") if p.is_symlink()] == [
        quarantine / report.quarantine.name / layout.QUARANTINE_DIR  # type: ignore[union-attr]
    ]
    assert chk.check(root).clean


def test_gc_never_moves_or_deletes_through_a_link(r: QlibRecorder, outside: Path) -> None:
    rec = finished(r)
    root = Path(r.exp_manager.uri)
    r.get_exp(experiment_name="e").delete_recorder(recorder_id=rec.id)
    exp_dir = rec.ref.dir.parent
    # The experiment folder swapped for a link to a copy-lookalike outside.
    (outside / rec.ref.recorder_id).mkdir()
    (outside / rec.ref.recorder_id / "recorder.json").write_bytes(
        (rec.ref.dir / "recorder.json").read_bytes()
    )
    (outside / "experiment.json").write_bytes((exp_dir / "experiment.json").read_bytes())
    before = outside_state(outside)
    items = gc.plan(root).items
    os.rename(exp_dir, exp_dir.with_name(exp_dir.name + ".real"))
    exp_dir.symlink_to(outside)
    result = gc.collect(root, items)
    assert not result.removed and "symbolic link" in result.skipped[0][1]
    assert outside_state(outside) == before
    (outside / rec.ref.recorder_id / "recorder.json").unlink()
    (outside / rec.ref.recorder_id).rmdir()
    (outside / "experiment.json").unlink()


def test_swapping_a_folder_for_a_link_while_reading(
    r: QlibRecorder, tmp_path: Path, outside: Path
) -> None:
    """A writer of the store flips ``artifacts/d`` between the real folder and a link to the
    outside while downloads, loads and listings run: none ever returns outside bytes."""
    rec = finished(r)
    (outside / "obj.pkl").write_bytes(SECRET)
    folder = rec.ref.artifacts_dir / "d"
    real = folder.with_name("d.real")
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            os.rename(folder, real)
            folder.symlink_to(outside)
            time.sleep(0.0005)
            folder.unlink()
            os.rename(real, folder)
            time.sleep(0.0005)

    flipper = threading.Thread(target=flip)
    flipper.start()
    leaked: list[str] = []
    try:
        deadline = time.monotonic() + 1.5
        n = 0
        while time.monotonic() < deadline:
            n += 1
            dst = tmp_path / f"dst{n}"
            dst.mkdir()
            try:
                got = Path(rec.download_artifact("d", str(dst)))
                if any(p.is_file() and p.read_bytes() == SECRET for p in got.rglob("*")):
                    leaked.append("download")
            except (OSError, ValueError):
                pass
            try:
                if rec.load_object("d/obj.pkl") != [1, 2]:
                    leaked.append("load")
            except tracklite.LoadObjectError:
                pass
    finally:
        stop.set()
        flipper.join()
        (outside / "obj.pkl").unlink()
    assert leaked == []


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A folder outside the store that a test fills with a lookalike of a store's folder and
    checks unchanged (:func:`planted`) once it has linked it into the store."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def planted(folder: Path) -> dict[str, bytes]:
    return outside_state(folder)


def test_listings_never_read_a_linked_recorder_folder(r: QlibRecorder, elsewhere: Path) -> None:
    # A finished run whose folder is moved out of the store and replaced by a link to it: its
    # recorder.json is valid, so a reader following the link would list it.
    rec = finished(r)
    with r.start(experiment_name="e", recorder_name="kept"):
        r.log_metrics(step=0, loss=0.5)
    shutil.move(str(rec.ref.dir), elsewhere / rec.id)
    rec.ref.dir.symlink_to(elsewhere / rec.id)
    before = planted(elsewhere)
    exp = r.get_exp(experiment_name="e")
    for cached in (True, False):  # through the search summary and through every recorder.json
        with pytest.warns(tracklite.CorruptMetadataWarning, match=rf"{rec.id}.*symbolic link"):
            found = exp.list_recorders()
        assert [x.info["name"] for x in found.values()] == ["kept"], cached
        with pytest.warns(tracklite.CorruptMetadataWarning, match="symbolic link"):
            frame = r.search_records([exp.id])
        assert rec.id not in set(frame["run_id"])
        for summary in (rec.ref.dir.parent / ".changes").glob("summary-*"):
            summary.unlink()  # the next pass reads every recorder.json again
    with pytest.warns(tracklite.CorruptMetadataWarning, match="symbolic link"):
        store = Store(rec.ref.dir.parent.parent)
        assert [m["name"] for m in store.iter_recorders(exp.id)] == ["kept"]
    with pytest.raises(UnsafeLinkError, match=rf"{rec.id}.*symbolic link"):
        exp.get_recorder(recorder_id=rec.id)
    assert planted(elsewhere) == before


def test_listings_never_read_a_linked_experiment_folder(r: QlibRecorder, elsewhere: Path) -> None:
    rec = finished(r)
    with r.start(experiment_name="other"):
        pass
    exp_dir = rec.ref.dir.parent
    twin = elsewhere / exp_dir.name
    shutil.move(str(exp_dir), twin)
    exp_dir.symlink_to(twin)
    before = planted(elsewhere)
    with pytest.warns(tracklite.CorruptMetadataWarning, match="symbolic link"):
        assert sorted(r.list_experiments()) == ["other"]
    with pytest.warns(tracklite.CorruptMetadataWarning, match="symbolic link"):
        frame = r.search_records()
    assert rec.id not in set(frame["run_id"])
    # Asked for directly: a clear error, nothing read.
    with pytest.raises(UnsafeLinkError, match="symbolic link"):
        r.search_records([rec.experiment_id])
    with pytest.raises(UnsafeLinkError, match="symbolic link"):
        r.get_exp(experiment_id=rec.experiment_id, create=False)
    with pytest.warns(tracklite.CorruptMetadataWarning, match="symbolic link"):
        assert cache.experiment_rows(exp_dir.parent, exp_dir.name).num_rows == 0
    assert planted(elsewhere) == before  # no search summary written outside


def test_search_never_writes_or_reads_through_a_linked_changes_folder(
    r: QlibRecorder, outside: Path
) -> None:
    rec = finished(r)
    changes_dir = rec.ref.dir.parent / ".changes"
    shutil.rmtree(changes_dir, ignore_errors=True)
    changes_dir.symlink_to(outside)
    frame = r.search_records([rec.experiment_id])
    assert list(frame["run_id"]) == [rec.id]  # read uncached; the outside is left unchanged


@pytest.mark.parametrize("fix", [False, True])
def test_check_reads_no_metadata_through_a_folder_swapped_for_a_link(
    r: QlibRecorder, elsewhere: Path, fix: bool
) -> None:
    # check lists a folder (not a link), then reads its recorder.json: a folder replaced by a
    # link between the two must be reported as a link, its target's file never read. The
    # checker is handed the folder as its walk would have listed it the instant before.
    rec = finished(r)
    rec_dir, root = rec.ref.dir, rec.ref.dir.parent.parent
    shutil.move(str(rec_dir), elsewhere / rec.id)
    (elsewhere / rec.id / layout.RECORDER_FILE).write_bytes(SECRET)  # corrupt if ever read
    rec_dir.symlink_to(elsewhere / rec.id)
    before = planted(elsewhere)
    checker = chk._Checker(root, fix, chk.TEMP_STALE_AFTER)
    checker.check_recorder(rec.experiment_id, rec_dir)
    kinds = [(f.kind, f.path, f.fixed) for f in checker.report.findings]
    assert kinds == [(chk.UNSAFE_LINK, rec_dir, fix)]
    assert rec_dir.is_symlink() is not fix  # --fix moved the link itself into the quarantine
    assert planted(elsewhere) == before


@pytest.mark.parametrize("linked", ["recorder", "experiment"])
def test_heartbeat_never_lands_through_a_linked_folder(
    r: QlibRecorder, elsewhere: Path, linked: str
) -> None:
    from tracklite import liveness

    rec = finished(r)
    folder = rec.ref.dir if linked == "recorder" else rec.ref.dir.parent
    shutil.move(str(folder), elsewhere / folder.name)
    folder.symlink_to(elsewhere / folder.name)
    for beat in elsewhere.rglob(layout.HEARTBEAT_FILE):
        beat.unlink()  # a beat through the link would create it again
    before = planted(elsewhere)
    with pytest.raises(UnsafeLinkError, match="symbolic link"):
        liveness.beat(rec.ref.dir)
    assert planted(elsewhere) == before


def test_import_never_writes_through_a_link_in_the_destination(
    tmp_path: Path, elsewhere: Path
) -> None:
    from test_mlflow_import import Mlruns

    from tracklite.mlflow_io.importer import import_mlflow

    src = Mlruns(tmp_path / "mlruns")
    src.experiment("1", "exp")
    run = src.run("1", artifacts={"a.txt": b"first"})
    dst = tmp_path / "store"
    assert import_mlflow(src.root, dst).ok
    # The recorder's artifacts/ becomes a link; the source artifact changes, so a new import
    # rewrites it: never into the link's target.
    artifacts = dst / "1" / run.name / layout.ARTIFACTS_DIR
    shutil.move(str(artifacts), elsewhere / "artifacts")
    artifacts.symlink_to(elsewhere / "artifacts")
    (run / "artifacts" / "a.txt").write_bytes(b"second, longer")
    # The experiment folder becomes a link too for a run new at the source.
    exp_twin = elsewhere / "exp"
    shutil.copytree(dst / "1", exp_twin, symlinks=True)
    src.run("1", name="new", artifacts={"b.txt": b"new"})
    before = planted(elsewhere)
    report = import_mlflow(src.root, dst)
    assert not report.ok and any("symbolic link" in str(s) for s in report.skipped)
    assert planted(elsewhere) == before
    os.rename(dst / "1", tmp_path / "real-exp")
    (dst / "1").symlink_to(exp_twin)
    with pytest.warns(tracklite.CorruptMetadataWarning, match="symbolic link"):
        import_mlflow(src.root, dst)  # the linked experiment is left alone: a new one is made
    assert planted(elsewhere) == before


def test_export_never_reads_through_a_link_in_the_store(
    r: QlibRecorder, tmp_path: Path, elsewhere: Path
) -> None:
    from tracklite.mlflow_io.exporter import export_mlflow

    rec = finished(r)
    (elsewhere / "artifacts").mkdir()
    (elsewhere / "artifacts" / "leak.txt").write_bytes(SECRET)
    artifacts = rec.ref.artifacts_dir
    (artifacts / "d" / "leak.txt").symlink_to(elsewhere / "artifacts" / "leak.txt")
    out = tmp_path / "mlruns"
    report = export_mlflow(rec.ref.root, out)
    assert any("leak.txt is a symbolic link" in s for s in report.skipped)
    assert report.recorders == 1
    (artifacts / "d" / "leak.txt").unlink()
    shutil.rmtree(artifacts)
    artifacts.symlink_to(elsewhere / "artifacts")  # a linked artifacts/ folder
    report = export_mlflow(rec.ref.root, tmp_path / "mlruns2")
    assert any("symbolic link" in s for s in report.skipped)
    for exported in (out, tmp_path / "mlruns2"):
        assert not any(p.is_file() and p.read_bytes() == SECRET for p in exported.rglob("*"))
