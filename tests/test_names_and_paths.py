"""Names are data, never paths; artifact paths never leave ``artifacts/``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tracklite import ExpManager, QlibRecorder

pytestmark = pytest.mark.usefixtures("clean_env")

ID_RE = re.compile(r"^[0-9a-f]{32}$")

ODD_NAMES = [
    "with spaces  inside ",
    "实验 rolling 2024",
    "émoji 🚀 ok",
    "a/b/c",
    "../../escape",
    "..",
    ".",
    "/etc/passwd",
    "C:\\Windows\\x",
    "~",
    "tracklite.json",
    ".lock",
    "name\twith tab".replace("\t", " "),
]

BAD_NAMES = [
    ("", "empty"),
    ("nul\x00inside", "control character"),
    ("line\nbreak", "control character"),
    ("del\x7f", "control character"),
    ("x" * 1025, "1025 characters"),
]


def store_tree(root: Path) -> dict[str, bytes | None]:
    """Every entry of the store with file contents (folders map to None)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def assert_folders_are_ids(root: Path) -> None:
    for entry in root.iterdir():
        if entry.name in ("tracklite.json", ".lock"):
            continue
        assert entry.is_dir() and ID_RE.match(entry.name), entry
        for sub in entry.iterdir():
            if sub.name in ("experiment.json", ".lock", ".changes"):
                continue
            assert sub.is_dir() and ID_RE.match(sub.name), sub


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_names_round_trip_and_never_become_paths(
    name: str, R: QlibRecorder, store_uri: str, tmp_path: Path
) -> None:
    with R.start(experiment_name=name, recorder_name=name) as exp:
        rec = R.get_recorder()
        R.log_params(**{name: name})
        R.set_tags(**{name: name})
        R.log_metrics(step=1, **{name: 1.5})
    assert exp.name == name and rec.name == name
    fresh = QlibRecorder(ExpManager(uri=store_uri))
    assert list(fresh.list_experiments()) == [name]
    assert fresh.get_exp(experiment_name=name, create=False).id == exp.id
    found = fresh.get_recorder(recorder_name=name, experiment_name=name)
    assert found.id == rec.id and found.name == name
    assert found.list_params()[name] == name
    assert found.list_tags()[name] == name
    assert found.list_tags()["mlflow.runName"] == name
    assert found.list_metrics() == {name: 1.5}
    # The names are only in the JSON metadata; every folder is an id.
    root = Path(store_uri)
    assert_folders_are_ids(root)
    meta = json.loads((root / exp.id / "experiment.json").read_text("utf-8"))
    assert meta["name"] == name
    # Nothing was created next to the store or in the current folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "store"]
    assert list(Path.cwd().iterdir()) == []
    assert not Path("/etc/passwd").is_dir()


def test_two_experiments_whose_names_differ_only_by_path_spelling(R: QlibRecorder) -> None:
    names = ["a/b", "a//b", "a/./b", "a/b/"]
    ids = {R.get_exp(experiment_name=n).id for n in names}
    assert len(ids) == 4
    assert sorted(R.list_experiments()) == sorted(names)


@pytest.mark.parametrize(("bad", "why"), BAD_NAMES)
def test_bad_experiment_names_are_refused_and_change_nothing(
    bad: str, why: str, R: QlibRecorder, store_uri: str
) -> None:
    root = Path(store_uri)
    calls = [
        lambda: R.start_exp(experiment_name=bad),
        lambda: R.get_exp(experiment_name=bad),
        lambda: R.exp_manager.create_exp(bad),
        lambda: R.list_recorders(experiment_name=bad),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="experiment_name") as info:
            call()
        assert why in str(info.value)
    assert not root.exists()  # not even the store folder was made
    with R.start(experiment_name="ok"):
        pass
    before = store_tree(root)
    for call in calls:
        with pytest.raises(ValueError, match="experiment_name"):
            call()
        assert R.exp_manager.active_experiment is None
    assert store_tree(root) == before


@pytest.mark.parametrize(("bad", "why"), BAD_NAMES)
def test_bad_recorder_names_are_refused_and_change_nothing(
    bad: str, why: str, R: QlibRecorder, store_uri: str
) -> None:
    root = Path(store_uri)
    with pytest.raises(ValueError, match="recorder_name") as info:
        R.start_exp(recorder_name=bad)
    assert why in str(info.value)
    assert not root.exists()
    assert R.exp_manager.active_experiment is None
    with R.start(experiment_name="ok"):
        pass
    before = store_tree(root)
    exp = R.get_exp(experiment_name="ok")
    calls = [
        lambda: R.start_exp(experiment_name="ok", recorder_name=bad),
        lambda: R.start_exp(experiment_name="new", recorder_name=bad),
        lambda: R.start_exp(experiment_name="ok", recorder_name=bad, resume=True),
        lambda: exp.start(recorder_name=bad),
        lambda: exp.create_recorder(bad).start_run(),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="recorder_name"):
            call()
        assert R.exp_manager.active_experiment is None
        assert exp.active_recorder is None
    assert store_tree(root) == before


@pytest.mark.parametrize(("bad", "why"), BAD_NAMES)
def test_bad_keys_are_refused(bad: str, why: str, R: QlibRecorder) -> None:
    with R.start():
        rec = R.get_recorder()
        with pytest.raises(ValueError, match="param key"):
            R.log_params(**{bad: 1})
        with pytest.raises(ValueError, match="tag key"):
            R.set_tags(**{bad: 1})
        with pytest.raises(ValueError, match="metric key"):
            R.log_metrics(**{bad: 1.0})
        R.log_params(fine=1)
        assert bad not in rec.list_params()
        assert bad not in rec.list_tags()
        assert rec.list_metrics() == {}


def test_a_non_string_name_is_a_type_error(R: QlibRecorder, store_uri: str) -> None:
    with pytest.raises(TypeError, match="experiment_name"):
        R.start_exp(experiment_name=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="recorder_name"):
        R.start_exp(recorder_name=b"bytes")  # type: ignore[arg-type]
    assert not Path(store_uri).exists()


def test_a_1024_character_name_is_accepted(R: QlibRecorder) -> None:
    name = "é" * 1024
    with R.start(experiment_name=name, recorder_name=name):
        assert R.get_recorder().name == name
    assert list(R.list_experiments()) == [name]


def test_ids_that_look_like_paths_find_nothing(R: QlibRecorder) -> None:
    with R.start(experiment_name="e") as exp:
        rec_id = R.get_recorder().id
    for weird in ("..", ".", f"../{exp.id}", f"{exp.id}/{rec_id}", "/", "", "a\x00b", ".lock"):
        with pytest.raises(ValueError):
            R.get_exp(experiment_id=weird, create=False)
        with pytest.raises(ValueError):
            R.get_recorder(recorder_id=weird, experiment_name="e")


# ---------------------------------------------------------------------- artifact paths


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("secret", encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    "path",
    ["../x", "../../x", "a/../../x", "/abs", "/tmp/abs", "..", "a/../..", "C:/x", "ok\x00no"],
)
def test_artifact_paths_that_leave_artifacts_are_refused(
    path: str, R: QlibRecorder, tmp_path: Path
) -> None:
    source = tmp_path / "f.txt"
    source.write_text("x", encoding="utf-8")
    with R.start():
        rec = R.get_recorder()
        run_dir = Path(rec.get_local_dir())
        before = store_tree(run_dir.parent.parent)
        calls = [
            lambda: R.save_objects(artifact_path=path, obj=1),
            lambda: R.save_objects(local_path=source, artifact_path=path),
            lambda: R.log_artifact(source, artifact_path=path),
            lambda: rec.list_artifacts(path),
            lambda: rec.download_artifact(path, str(tmp_path)),
        ]
        for call in calls:
            with pytest.raises(ValueError, match=r"artifact|path"):
                call()
        assert store_tree(run_dir.parent.parent) == before
    assert not (tmp_path / "x").exists()
    assert not Path("/abs").exists()


@pytest.mark.parametrize("name", ["..", "../x", "/abs", "a\\..\\..\\x"])
def test_object_names_that_leave_artifacts_are_refused(
    name: str, R: QlibRecorder, tmp_path: Path
) -> None:
    with R.start():
        rec = R.get_recorder()
        with pytest.raises(ValueError):
            R.save_objects(**{name: 1})
        assert rec.list_artifacts() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "store"]


def test_a_symlink_inside_artifacts_pointing_out_is_refused(
    R: QlibRecorder, outside: Path, tmp_path: Path
) -> None:
    source = tmp_path / "f.txt"
    source.write_text("x", encoding="utf-8")
    with R.start():
        rec = R.get_recorder()
        R.save_objects(inside=1)
        artifacts = Path(rec.get_local_dir()) / "artifacts"
        os.symlink(outside, artifacts / "link")
        os.symlink(outside / "secret.txt", artifacts / "filelink")
        writes = [
            lambda: R.save_objects(artifact_path="link", obj=1),
            lambda: R.save_objects(artifact_path="link/deeper/still", obj=1),
            lambda: R.log_artifact(source, artifact_path="link"),
            lambda: R.save_objects(local_path=source, artifact_path="link"),
            lambda: R.save_objects(filelink="overwrite"),
        ]
        for call in writes:
            with pytest.raises(ValueError, match="outside"):
                call()
        with pytest.raises(ValueError, match="outside"):
            rec.list_artifacts("link")
        with pytest.raises(ValueError, match="outside"):
            rec.download_artifact("link/secret.txt", str(tmp_path))
        from tracklite import LoadObjectError

        with pytest.raises(LoadObjectError, match="outside"):
            rec.load_object("filelink")
        assert R.load_object("inside") == 1
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text("utf-8") == "secret"


def test_save_a_folder_holding_a_link_out_copies_nothing(
    R: QlibRecorder, tmp_path: Path, outside: Path
) -> None:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "first.txt").write_text("1", encoding="utf-8")
    (src / "z_last.txt").write_text("2", encoding="utf-8")
    os.symlink(outside / "secret.txt", src / "m_link.txt")
    with R.start():
        rec = R.get_recorder()
        with pytest.raises(ValueError, match="outside"):
            R.save_objects(local_path=src)
        with pytest.raises(ValueError, match="outside"):
            R.save_objects(local_path=src, artifact_path="dst")
        with pytest.raises(ValueError, match="outside"):
            R.log_artifact(src)
        assert rec.list_artifacts() == []
    # The same with a linked folder instead of a linked file.
    os.unlink(src / "m_link.txt")
    os.symlink(outside, src / "m_dirlink")
    with R.start():
        rec = R.get_recorder()
        with pytest.raises(ValueError, match="outside"):
            R.save_objects(local_path=src)
        assert rec.list_artifacts() == []


def test_links_that_stay_inside_the_saved_folder_are_followed(
    R: QlibRecorder, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    (src / "real").mkdir(parents=True)
    (src / "real" / "data.txt").write_text("d", encoding="utf-8")
    os.symlink(src / "real" / "data.txt", src / "alias.txt")
    os.symlink(src / "real", src / "alias_dir")
    with R.start():
        rec = R.get_recorder()
        R.save_objects(local_path=src, artifact_path="copy")
        assert sorted(rec.list_artifacts("copy")) == [
            "copy/alias.txt",
            "copy/alias_dir",
            "copy/real",
        ]
        base = Path(rec.get_local_dir()) / "artifacts" / "copy"
        assert (base / "alias.txt").read_text("utf-8") == "d"
        assert not (base / "alias.txt").is_symlink()
        assert (base / "alias_dir" / "data.txt").read_text("utf-8") == "d"
