"""Artifacts: ``save_objects``, ``load_object``, ``log_artifact``, ``download_artifact``,
``list_artifacts``, ``get_local_dir`` and ``get_artifact_uri``."""

from __future__ import annotations

import os
import pickle
import tempfile
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from tracklite import LoadObjectError, QlibRecorder, Recorder, TrackliteError

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def somedir(tmp_path: Path) -> Path:
    """``somedir/top.txt`` and ``somedir/sub/f.txt``."""
    root = tmp_path / "somedir"
    (root / "sub").mkdir(parents=True)
    (root / "top.txt").write_text("top", encoding="utf-8")
    (root / "sub" / "f.txt").write_text("deep", encoding="utf-8")
    return root


def artifact_files(rec: Recorder) -> list[str]:
    """Every file under the recorder's artifacts/ folder, as posix paths."""
    base = Path(rec.get_local_dir()) / "artifacts"
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())


# ---------------------------------------------------------------------- save_objects


def test_save_objects_pickles_each_keyword_under_its_exact_name(R: QlibRecorder) -> None:
    with R.start():
        R.save_objects(**{"pred.pkl": {"a": [1, 2]}, "trained_model": (3, "x")})
        R.save_objects(artifact_path="sig", **{"ic.pkl": 0.5})
        rec = R.get_recorder()
        assert artifact_files(rec) == ["pred.pkl", "sig/ic.pkl", "trained_model"]
        assert rec.load_object("pred.pkl") == {"a": [1, 2]}
        assert rec.load_object("trained_model") == (3, "x")
        assert rec.load_object("sig/ic.pkl") == 0.5
        assert R.load_object("sig/ic.pkl") == 0.5
    # Plain pickle files, readable without tracklite.
    with open(Path(rec.get_local_dir()) / "artifacts" / "pred.pkl", "rb") as handle:
        assert pickle.load(handle) == {"a": [1, 2]}


def test_save_objects_overwrites(R: QlibRecorder) -> None:
    with R.start():
        R.save_objects(x=1)
        R.save_objects(x=2)
        assert R.load_object("x") == 2
        assert artifact_files(R.get_recorder()) == ["x"]


def test_save_objects_pickles_lambdas_and_local_classes(R: QlibRecorder) -> None:
    class Local:
        def __init__(self) -> None:
            self.value = 41

    with R.start():
        R.save_objects(fn=lambda x: x + 1, obj=Local())
        assert R.load_object("fn")(1) == 2
        assert R.load_object("obj").value == 41


def test_save_objects_a_file(R: QlibRecorder, somedir: Path) -> None:
    with R.start():
        R.save_objects(local_path=somedir / "top.txt")
        R.save_objects(local_path=str(somedir / "top.txt"), artifact_path="nested/deeper")
        rec = R.get_recorder()
    assert artifact_files(rec) == ["nested/deeper/top.txt", "top.txt"]
    base = Path(rec.get_local_dir()) / "artifacts"
    assert (base / "top.txt").read_text("utf-8") == "top"
    assert not (base / "top.txt").is_symlink()


def test_save_objects_a_folder_copies_its_contents(R: QlibRecorder, somedir: Path) -> None:
    with R.start():
        R.save_objects(local_path=somedir, artifact_path="dircopy")
        R.save_objects(local_path=str(somedir))
        rec = R.get_recorder()
    assert artifact_files(rec) == ["dircopy/sub/f.txt", "dircopy/top.txt", "sub/f.txt", "top.txt"]
    assert (Path(rec.get_local_dir()) / "artifacts/dircopy/sub/f.txt").read_text("utf-8") == (
        "deep"
    )


def test_save_objects_local_path_and_objects_is_an_error(R: QlibRecorder, somedir: Path) -> None:
    with R.start():
        rec = R.get_recorder()
        with pytest.raises(ValueError, match="only one of"):
            R.save_objects(local_path=somedir, obj=1)
        with pytest.raises(ValueError, match="only one of"):
            rec.save_objects(local_path=somedir, obj=1)
        assert rec.list_artifacts() == []


def test_save_objects_a_missing_local_path(R: QlibRecorder, tmp_path: Path) -> None:
    with R.start():
        with pytest.raises(FileNotFoundError):
            R.save_objects(local_path=tmp_path / "nope")
        assert R.get_recorder().list_artifacts() == []


def test_object_names_with_a_slash_are_refused(R: QlibRecorder) -> None:
    with R.start():
        with pytest.raises(ValueError, match="artifact_path"):
            R.save_objects(**{"a/b.pkl": 1})
        assert R.get_recorder().list_artifacts() == []


def test_an_unpicklable_object_saves_nothing(R: QlibRecorder) -> None:
    with R.start():
        with pytest.raises(TypeError, match="'bad'"):
            R.save_objects(good=1, bad=threading.Lock())
        assert R.get_recorder().list_artifacts() == []


# ---------------------------------------------------------------------- load_object


def test_load_object_errors_are_load_object_errors(R: QlibRecorder, tmp_path: Path) -> None:
    not_pickle = tmp_path / "plain.txt"
    not_pickle.write_text("xyz", encoding="utf-8")
    with R.start():
        R.log_artifact(not_pickle)
        R.save_objects(artifact_path="folder", x=1)
        rec = R.get_recorder()
        for name in ("missing", "plain.txt", "folder", "../outside", "/etc/passwd"):
            with pytest.raises(LoadObjectError) as info:
                rec.load_object(name)
            assert isinstance(info.value, TrackliteError)
            assert info.value.__cause__ is not None
        with pytest.raises(LoadObjectError, match="missing"):
            R.load_object("missing")


def test_load_object_reads_in_place(
    R: QlibRecorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp_root = tmp_path / "tmpdir"
    temp_root.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp_root))
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    with R.start():
        R.save_objects(obj=list(range(10)))
        rec = R.get_recorder()
        before = artifact_files(rec)
        for _ in range(5):
            assert rec.load_object("obj") == list(range(10))
            assert R.load_object("obj") == list(range(10))
        with pytest.raises(LoadObjectError):
            rec.load_object("missing")
        assert artifact_files(rec) == before
    assert list(temp_root.iterdir()) == []


def test_load_object_with_a_custom_unpickler(R: QlibRecorder) -> None:
    seen = []

    class Recording(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            seen.append(name)
            return super().find_class(module, name)

    with R.start():
        R.save_objects(obj=Path("x"))
        assert R.get_recorder().load_object("obj", unpickler=Recording) == Path("x")
    assert seen


# ---------------------------------------------------------------------- log_artifact


def test_log_artifact(R: QlibRecorder, somedir: Path) -> None:
    with R.start():
        R.log_artifact(somedir / "top.txt")
        R.log_artifact(str(somedir / "sub" / "f.txt"), artifact_path="here")
        rec = R.get_recorder()
        rec.log_artifact(somedir / "top.txt", "again")
    assert artifact_files(rec) == ["again/top.txt", "here/f.txt", "top.txt"]


# ---------------------------------------------------------------------- download_artifact


def test_download_artifact_returns_the_path(
    R: QlibRecorder, somedir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dst = tmp_path / "dst"
    dst.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(dst))  # no dst_path: a new folder in here
    with R.start():
        R.save_objects(local_path=somedir, artifact_path="d")
        R.save_objects(obj=7)
        rec = R.get_recorder()
        got = R.download_artifact("d/top.txt", str(dst))
        assert got is not None
        assert Path(got).read_text("utf-8") == "top"
        assert Path(got).parent == dst
        got_obj = rec.download_artifact("obj")
        assert Path(got_obj).parent.parent == dst
        with open(got_obj, "rb") as handle:
            assert pickle.load(handle) == 7
        folder = rec.download_artifact("d", str(dst))
        assert (Path(folder) / "sub" / "f.txt").read_text("utf-8") == "deep"
        with pytest.raises(FileNotFoundError):
            rec.download_artifact("missing", str(dst))
        with pytest.raises(FileNotFoundError):
            rec.download_artifact("obj", str(tmp_path / "no-such-folder"))
    # The store is untouched by downloads.
    assert artifact_files(rec) == ["d/sub/f.txt", "d/top.txt", "obj"]


# ---------------------------------------------------------------------- list_artifacts


def test_list_artifacts_lists_immediate_children_with_prefixes(R: QlibRecorder) -> None:
    with R.start():
        rec = R.get_recorder()
        assert rec.list_artifacts() == []
        R.save_objects(**{"pred.pkl": 1, "label.pkl": 2})
        R.save_objects(artifact_path="sig", **{"ic.pkl": 3})
        R.save_objects(artifact_path="sig/deeper", **{"x": 4})
        root = ["label.pkl", "pred.pkl", "sig"]
        assert sorted(rec.list_artifacts()) == root
        assert sorted(rec.list_artifacts("")) == root
        assert sorted(rec.list_artifacts(None)) == root
        assert sorted(rec.list_artifacts("sig")) == ["sig/deeper", "sig/ic.pkl"]
        assert rec.list_artifacts("sig/") == rec.list_artifacts("sig")
        assert rec.list_artifacts("sig/deeper") == ["sig/deeper/x"]
        assert rec.list_artifacts("missing") == []


# ---------------------------------------------------------------------- locations


def test_get_local_dir_and_artifact_uri(R: QlibRecorder, store_uri: str) -> None:
    with R.start(experiment_name="e") as exp:
        rec = R.get_recorder()
        local = Path(rec.get_local_dir())
        assert local.is_dir()
        assert local.name == rec.id and local.parent.name == exp.id
        assert local.parent.parent == Path(store_uri)
        assert (local / "recorder.json").is_file()
        uri = rec.get_artifact_uri()
        assert uri == rec.artifact_uri
        parsed = urlparse(uri)
        assert parsed.scheme == "file"
        assert Path(unquote(parsed.path)) == local / "artifacts"
    # A finished recorder found again has the same folders.
    again = R.get_recorder(recorder_id=rec.id, experiment_name="e")
    assert again.get_local_dir() == str(local)
    assert again.get_artifact_uri() == uri


def test_unsaved_recorder_has_no_folder(R: QlibRecorder) -> None:
    rec = R.get_exp().create_recorder()
    with pytest.raises(ValueError, match="created and started"):
        rec.get_local_dir()
    with pytest.raises(ValueError, match="created and started"):
        rec.get_artifact_uri()


def test_get_local_dir_of_a_vanished_folder(R: QlibRecorder) -> None:
    import shutil

    with R.start():
        rec = R.get_recorder()
    shutil.rmtree(rec.get_local_dir())
    with pytest.raises(RuntimeError, match="not saved in the local file system"):
        rec.get_local_dir()


def test_artifacts_of_unicode_and_spaced_names(R: QlibRecorder, tmp_path: Path) -> None:
    source = tmp_path / "données à voir.txt"
    source.write_text("ok", encoding="utf-8")
    with R.start():
        R.log_artifact(source, artifact_path="résumé dir")
        R.save_objects(**{"modèle final.pkl": 1})
        rec = R.get_recorder()
        assert sorted(rec.list_artifacts()) == ["modèle final.pkl", "résumé dir"]
        assert rec.list_artifacts("résumé dir") == ["résumé dir/données à voir.txt"]
        assert rec.load_object("modèle final.pkl") == 1
        assert os.path.isfile(rec.download_artifact("résumé dir/données à voir.txt"))
