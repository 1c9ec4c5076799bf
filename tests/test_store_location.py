"""Where the store is: the default folder, ``TRACKLITE_URI``, ``set_uri``, ``uri_context``,
``start(uri=...)``, the URI spellings, and folders that must be refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tracklite import ExpManager, QlibRecorder, StoreError

pytestmark = pytest.mark.usefixtures("clean_env")

MLRUNS_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "qlib-mlflow3-mlruns" / "mlruns"


def snapshot(root: Path) -> dict[str, tuple[bool, int, int]]:
    """Every entry under ``root`` with (is_dir, size, mtime_ns): any write shows up."""
    out = {".": (True, 0, root.stat().st_mtime_ns)}
    for path in root.rglob("*"):
        st = path.lstat()
        out[str(path.relative_to(root))] = (path.is_dir(), st.st_size, st.st_mtime_ns)
    return out


def is_store(path: Path) -> bool:
    marker = path / "tracklite.json"
    return marker.is_file() and json.loads(marker.read_text("utf-8"))["format_version"] == 1


def one_run(R: QlibRecorder, **kwargs: str) -> str:
    with R.start(**kwargs):
        rec = R.get_recorder()
        R.log_params(p=1)
        return rec.get_local_dir()


# ---------------------------------------------------------------------- the default and overrides


def test_default_store_is_tracklite_store_in_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "project"
    here.mkdir()
    monkeypatch.chdir(here)
    R = QlibRecorder(ExpManager())
    assert R.get_uri() == str(here / "tracklite-store")
    local = one_run(R)
    assert is_store(here / "tracklite-store")
    assert Path(local).is_relative_to(here / "tracklite-store")
    assert sorted(p.name for p in here.iterdir()) == ["tracklite-store"]


def test_global_R_defaults_to_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tracklite

    monkeypatch.setattr(tracklite.R, "exp_manager", ExpManager())
    monkeypatch.chdir(tmp_path)
    assert tracklite.R.get_uri() == str(tmp_path / "tracklite-store")
    one_run(tracklite.R)
    assert is_store(tmp_path / "tracklite-store")


def test_tracklite_uri_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "from-env"
    monkeypatch.setenv("TRACKLITE_URI", f"file:{target}")
    R = QlibRecorder(ExpManager())
    assert R.get_uri() == f"file:{target}"
    local = one_run(R)
    assert is_store(target)
    assert Path(local).is_relative_to(target)
    assert not (Path.cwd() / "tracklite-store").exists()
    # An explicit URI wins over the environment.
    explicit = tmp_path / "explicit"
    one_run(QlibRecorder(ExpManager(uri=str(explicit))))
    assert is_store(explicit)


def test_set_uri(R: QlibRecorder, tmp_path: Path, store_uri: str) -> None:
    other = tmp_path / "other"
    R.set_uri(str(other))
    assert R.get_uri() == str(other)
    one_run(R)
    assert is_store(other) and not Path(store_uri).exists()
    assert list(R.list_experiments()) == ["Experiment"]


def test_uri_context_swaps_the_default_and_restores_it(
    R: QlibRecorder, tmp_path: Path, store_uri: str
) -> None:
    other = str(tmp_path / "other")
    one_run(R, experiment_name="home")
    with R.uri_context(other):
        assert R.get_uri() == other
        assert R.list_experiments() == {}
        one_run(R, experiment_name="away")
        assert list(R.list_experiments()) == ["away"]
    assert R.get_uri() == store_uri
    assert list(R.list_experiments()) == ["home"]
    with pytest.raises(RuntimeError), R.uri_context(other):
        raise RuntimeError
    assert R.get_uri() == store_uri


def test_start_uri_is_used_only_while_the_run_is_active(
    R: QlibRecorder, tmp_path: Path, store_uri: str
) -> None:
    """qlib's test_2_expmanager, replicated."""
    before = R.get_uri()
    params = {f"task.model.kwargs.p{i}": i for i in range(24)}
    uri = "file:./temp-test-exp-mag"
    with R.start(experiment_name="fake_workflow_for_expm", uri=uri):
        assert R.get_uri() == uri
        R.log_params(**params)
        rec = R.get_recorder()
        logged = rec.list_params()
    assert params.items() <= {k: int(v) for k, v in logged.items() if k in params}.items()
    assert len([k for k in logged if k.startswith("task.")]) == 24
    assert R.get_uri() == before == store_uri
    assert is_store(Path.cwd() / "temp-test-exp-mag")
    assert not Path(store_uri).exists()
    # The run is reachable through its store, not through the default one.
    with R.uri_context(uri):
        again = R.get_recorder(recorder_id=rec.id, experiment_name="fake_workflow_for_expm")
        assert again.status == "FINISHED"
    assert R.list_experiments() == {}


def test_start_uri_is_reset_after_a_failure(R: QlibRecorder, tmp_path: Path) -> None:
    with pytest.raises(KeyError), R.start(uri=str(tmp_path / "x")):
        raise KeyError
    assert R.get_uri() == R.exp_manager.default_uri


def test_get_local_dir_through_uri_context(tmp_path: Path, R: QlibRecorder) -> None:
    """qlib's test_get_local_dir: an empty folder holding only an empty .trash is accepted."""
    target = tmp_path / ".mlruns_tmp"
    (target / ".trash").mkdir(parents=True)
    with R.start(uri=str(target)):
        pass
    with R.uri_context(uri=str(target)):
        local = R.get_recorder().get_local_dir()
    assert Path(local).is_dir()
    assert is_store(target)


# ---------------------------------------------------------------------- URI spellings


@pytest.mark.parametrize(
    "spelling",
    [
        "plain-abs",
        "plain-rel",
        "dot-rel",
        "file-abs",
        "file-triple",
        "file-localhost",
        "file-rel",
        "file-dot-rel",
        "tilde",
    ],
)
def test_uri_spellings(
    spelling: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, R: QlibRecorder
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cwd = Path.cwd()
    target = {
        "plain-abs": (str(tmp_path / "a b"), tmp_path / "a b"),
        "plain-rel": ("rel/store", cwd / "rel" / "store"),
        "dot-rel": ("./rel2", cwd / "rel2"),
        "file-abs": (f"file:{tmp_path}/fa", tmp_path / "fa"),
        "file-triple": (f"file://{tmp_path}/ft", tmp_path / "ft"),
        "file-localhost": (f"file://localhost{tmp_path}/fl", tmp_path / "fl"),
        "file-rel": ("file:frel", cwd / "frel"),
        "file-dot-rel": ("file:./fdrel", cwd / "fdrel"),
        "tilde": ("~/st", tmp_path / "home" / "st"),
    }
    uri, expected = target[spelling]
    if spelling == "file-triple":
        assert uri.startswith("file:///")
    local = one_run(R, uri=uri)
    assert is_store(expected)
    assert Path(local).is_relative_to(expected)
    R.set_uri(uri)
    assert R.get_uri() == uri
    assert len(R.list_recorders()) == 1


def test_percent_escapes_in_file_uris(R: QlibRecorder, tmp_path: Path) -> None:
    one_run(R, uri=(tmp_path / "with space").as_uri())
    assert is_store(tmp_path / "with space")


@pytest.mark.parametrize("uri", ["http://host/x", "s3://bucket/x", "file://otherhost/x", "", "   "])
def test_unsupported_uris_are_refused(R: QlibRecorder, uri: str, store_uri: str) -> None:
    with pytest.raises(ValueError):
        R.start_exp(uri=uri)
    with pytest.raises(ValueError):
        R.set_uri(uri)
    assert R.exp_manager.active_experiment is None
    assert R.get_uri() == store_uri


# ---------------------------------------------------------------------- refused folders


@pytest.fixture
def mlruns(tmp_path: Path) -> Path:
    target = tmp_path / "mlruns"
    shutil.copytree(MLRUNS_FIXTURE, target, symlinks=True)
    return target


def _every_entry_point(R: QlibRecorder) -> list[object]:
    calls = [
        lambda: R.start_exp(),
        lambda: R.log_params(a=1),
        lambda: R.get_exp(),
        lambda: R.list_experiments(),
        lambda: R.list_recorders(),
        lambda: R.save_objects(x=1),
        lambda: R.exp_manager.create_exp("new"),
    ]
    errors: list[object] = []
    for call in calls:
        with pytest.raises(StoreError) as info:
            call()
        errors.append(info.value)
        assert R.exp_manager.active_experiment is None
    return errors


def test_an_mlflow_store_is_refused_and_never_written(R: QlibRecorder, mlruns: Path) -> None:
    before = snapshot(mlruns)
    R.set_uri(str(mlruns))
    for error in _every_entry_point(R):
        assert "MLflow" in str(error) and str(mlruns) in str(error)
        assert "another folder" in str(error)  # says what to do
    with pytest.raises(StoreError, match="MLflow"), R.start(uri=f"file:{mlruns}"):
        pass
    assert snapshot(mlruns) == before


def test_an_mlflow_store_without_trash_is_still_recognised(R: QlibRecorder, mlruns: Path) -> None:
    shutil.rmtree(mlruns / ".trash")
    before = snapshot(mlruns)
    with pytest.raises(StoreError, match="MLflow"):
        R.start_exp(uri=str(mlruns))
    assert snapshot(mlruns) == before


def test_an_unrelated_folder_is_refused_naming_what_was_found(
    R: QlibRecorder, tmp_path: Path
) -> None:
    folder = tmp_path / "papers"
    (folder / "drafts").mkdir(parents=True)
    (folder / "notes.txt").write_text("mine", encoding="utf-8")
    (folder / "drafts" / "a.tex").write_text("x", encoding="utf-8")
    before = snapshot(folder)
    R.set_uri(str(folder))
    for error in _every_entry_point(R):
        assert "notes.txt" in str(error) and "drafts" in str(error)
        assert "tracklite.json" in str(error)
        assert "TRACKLITE_URI" in str(error)  # says what to do
    assert snapshot(folder) == before


def test_a_file_is_refused(R: QlibRecorder, tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("x", encoding="utf-8")
    with pytest.raises(StoreError, match="not a folder"):
        R.start_exp(uri=str(target))
    assert target.read_text("utf-8") == "x"


def test_empty_folders_are_accepted(R: QlibRecorder, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    one_run(R, uri=str(empty))
    assert is_store(empty)
    trash = tmp_path / "with-trash"
    (trash / ".trash").mkdir(parents=True)
    one_run(R, uri=str(trash))
    assert is_store(trash)


def test_a_newer_format_version_is_refused(R: QlibRecorder, tmp_path: Path) -> None:
    R.set_uri(str(tmp_path / "future"))
    one_run(R)
    marker = tmp_path / "future" / "tracklite.json"
    marker.write_text(json.dumps({"format_version": 99, "created": "2030-01-01"}), "utf-8")
    before = snapshot(tmp_path / "future")
    other = QlibRecorder(ExpManager(uri=str(tmp_path / "future")))
    for call in (other.start_exp, other.list_experiments, other.get_exp):
        with pytest.raises(StoreError, match="format_version 99"):
            call()
    assert snapshot(tmp_path / "future") == before


def test_a_corrupt_marker_is_refused(R: QlibRecorder, tmp_path: Path) -> None:
    target = tmp_path / "corrupt"
    target.mkdir()
    (target / "tracklite.json").write_text("{not json", "utf-8")
    with pytest.raises(StoreError, match=r"tracklite\.json"):
        R.start_exp(uri=str(target))
    assert [p.name for p in target.iterdir()] == ["tracklite.json"]


def test_a_store_removed_while_the_process_runs_is_made_again(
    R: QlibRecorder, store_uri: str, tmp_path: Path
) -> None:
    one_run(R, experiment_name="a")
    shutil.rmtree(store_uri)
    one_run(R, experiment_name="a")
    assert is_store(Path(store_uri))
    assert len(R.list_recorders(experiment_name="a")) == 1
    # Replaced by something else meanwhile: refused, not written into.
    shutil.rmtree(store_uri)
    shutil.copytree(MLRUNS_FIXTURE, store_uri)
    before = snapshot(Path(store_uri))
    with pytest.raises(StoreError, match="MLflow"):
        one_run(R, experiment_name="b")
    assert snapshot(Path(store_uri)) == before


def test_manager_construction_does_no_io(tmp_path: Path) -> None:
    target = tmp_path / "lazy"
    R = QlibRecorder(ExpManager(uri=str(target)))
    R.get_uri()
    repr(R)
    R.end_exp()
    assert not target.exists()
