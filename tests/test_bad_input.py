"""Bad input and hostile paths: every public call refuses with an error that names the argument
and the problem, and leaves the store exactly as it was."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _reliability import REPO, disk_filler, read_only_view, small_tmpfs

import tracklite
from tracklite import ExpManager, LoadObjectError, NotFoundError, QlibRecorder, UsageError
from tracklite.store import layout


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root``: file bytes, link targets, folders."""
    out: dict[str, bytes | str] = {}
    if not root.exists():
        return out
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            out[key] = "link:" + os.readlink(path)
        elif path.is_file():
            # heartbeat mtimes move; its (empty) content does not
            out[key] = path.read_bytes()
        else:
            out[key] = "dir"
    return out


@pytest.fixture
def r(tmp_path: Path) -> Iterator[QlibRecorder]:
    rec = QlibRecorder(ExpManager(uri=str(tmp_path / "store")))
    yield rec
    if rec.exp_manager.active_experiment is not None:
        rec.end_exp("FAILED")


@pytest.fixture
def running(r: QlibRecorder, tmp_path: Path) -> QlibRecorder:
    """A store holding one finished run and one RUNNING run (the active one), flushed."""
    with r.start(experiment_name="done"):
        r.log_params(a=1)
        r.log_metrics(step=0, loss=1.0)
        r.save_objects(**{"obj.pkl": {"x": 1}})
    r.start_exp(experiment_name="exp")
    r.log_params(lr=0.1)
    r.log_metrics(step=0, loss=0.5)
    r.save_objects(**{"keep.pkl": [1]})
    r.flush()
    return r


def refuses(
    root: Path,
    call: Callable[[], Any],
    exc: type[BaseException] | tuple[type[BaseException], ...],
    *words: str,
) -> BaseException:
    """``call`` raises ``exc`` whose message holds every one of ``words``, and the store under
    ``root`` is byte-for-byte what it was."""
    before = snapshot(root)
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert snapshot(root) == before, "the failed call changed the store"
    return info.value


BAD_NAMES = [
    ("", "must not be empty"),
    ("x" * 5000, "characters long"),
    ("a\x00b", "control character"),
    ("line\nbreak", "control character"),
    ("bell\x07", "control character"),
    ("del\x7f", "control character"),
]


@pytest.mark.parametrize(("name", "problem"), BAD_NAMES)
def test_bad_experiment_names(r: QlibRecorder, tmp_path: Path, name: str, problem: str) -> None:
    root = tmp_path / "store"
    with r.start(experiment_name="seed"):
        pass
    refuses(root, lambda: r.start_exp(experiment_name=name), ValueError, "experiment_name", problem)
    assert r.exp_manager.active_experiment is None
    refuses(root, lambda: r.exp_manager.create_exp(name), ValueError, "experiment_name", problem)
    refuses(root, lambda: r.get_exp(experiment_name=name), ValueError, "experiment_name", problem)


@pytest.mark.parametrize(("name", "problem"), BAD_NAMES)
def test_bad_recorder_names(r: QlibRecorder, tmp_path: Path, name: str, problem: str) -> None:
    root = tmp_path / "store"
    with r.start(experiment_name="exp"):
        pass
    refuses(
        root,
        lambda: r.start_exp(experiment_name="exp", recorder_name=name),
        ValueError,
        "recorder_name",
        problem,
    )
    # Not even the experiment of a refused start is created.
    refuses(
        root,
        lambda: r.start_exp(experiment_name="fresh", recorder_name=name),
        ValueError,
        "recorder_name",
        problem,
    )
    assert r.exp_manager.active_experiment is None


@pytest.mark.parametrize(("name", "problem"), BAD_NAMES)
def test_bad_keys(running: QlibRecorder, tmp_path: Path, name: str, problem: str) -> None:
    root = tmp_path / "store"
    r = running
    refuses(root, lambda: r.log_params(**{name: 1}), ValueError, "param key", problem)
    refuses(root, lambda: r.set_tags(**{name: 1}), ValueError, "tag key", problem)
    refuses(
        root,
        lambda: r.log_metrics(step=1, **{"ok": 1.0, name: 1.0}),
        ValueError,
        "metric key",
        problem,
    )
    r.flush()
    assert r.get_recorder().list_metrics() == {"loss": 0.5}  # "ok" of the refused call is not kept


def test_names_are_data_not_paths(r: QlibRecorder, tmp_path: Path) -> None:
    root = tmp_path / "store"
    hostile = ["../../escape", "/etc/passwd", "a/b/c", "..", ".", "C:\\Windows", "名前 with space"]
    for name in hostile:
        with r.start(experiment_name=name, recorder_name=name):
            r.log_params(**{name: name})
            r.set_tags(**{name: name})
            r.log_metrics(step=0, **{name: 1.0})
        experiment = r.get_exp(experiment_name=name, create=False)
        assert experiment.name == name
        recorder = experiment.get_recorder(recorder_name=name, create=False)
        assert recorder.list_params()[name] == name and recorder.list_metrics()[name] == 1.0
    # Nothing was created outside the store, and inside only id-named folders.
    assert sorted(os.listdir(tmp_path)) == ["cwd", "store"]
    assert os.listdir(tmp_path / "cwd") == []
    for entry in root.iterdir():
        assert entry.name in (layout.MARKER, layout.STORE_LOCK) or layout.is_id_name(entry.name)


def test_bad_ids_never_become_paths(running: QlibRecorder, tmp_path: Path) -> None:
    root = tmp_path / "store"
    r = running
    for bad in ["..", "../..", "/etc", "a/b", "", ".lock", "x\x00y", "..\\.."]:
        refuses(
            root,
            lambda bad=bad: r.get_recorder(recorder_id=bad, experiment_name="exp"),
            NotFoundError,
        )
        refuses(root, lambda bad=bad: r.get_exp(experiment_id=bad, create=False), NotFoundError)


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("../outside", "climbs out"),
        ("a/../../outside", "climbs out"),
        ("/etc/x", "absolute"),
        ("C:/x", "absolute"),
        ("a\x00b", "control character"),
        ("..\\..\\x", "climbs out"),
    ],
)
def test_artifact_paths_cannot_escape(
    running: QlibRecorder, tmp_path: Path, path: str, problem: str
) -> None:
    root = tmp_path / "store"
    r = running
    rec = r.get_recorder()
    src = tmp_path / "file.txt"
    src.write_text("data")
    before_outside = sorted(os.listdir(tmp_path))
    refuses(
        root,
        lambda: r.save_objects(artifact_path=path, **{"o.pkl": 1}),
        ValueError,
        "artifact_path",
        problem,
    )
    refuses(
        root,
        lambda: r.save_objects(local_path=src, artifact_path=path),
        ValueError,
        "artifact_path",
        problem,
    )
    refuses(
        root, lambda: r.log_artifact(src, artifact_path=path), ValueError, "artifact_path", problem
    )
    refuses(root, lambda: rec.list_artifacts(path), ValueError, "artifact_path", problem)
    refuses(root, lambda: rec.download_artifact(path, str(tmp_path)), ValueError, "path", problem)
    refuses(root, lambda: rec.load_object(path), LoadObjectError, "name", problem)
    assert sorted(os.listdir(tmp_path)) == before_outside


def test_object_names_cannot_hold_paths(running: QlibRecorder, tmp_path: Path) -> None:
    root = tmp_path / "store"
    refuses(
        root,
        lambda: running.save_objects(**{"../x.pkl": 1}),
        ValueError,
        "../x.pkl",
        "path separator",
    )


def test_symlink_inside_artifacts_cannot_lead_out(running: QlibRecorder, tmp_path: Path) -> None:
    root = tmp_path / "store"
    rec = running.get_recorder()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.pkl").write_bytes(b"not yours")
    (rec.ref.artifacts_dir / "link").symlink_to(outside)
    refuses(
        root,
        lambda: running.save_objects(artifact_path="link", **{"o.pkl": 1}),
        ValueError,
        "artifact_path",
        "symbolic link",
    )
    refuses(root, lambda: rec.load_object("link/secret.pkl"), LoadObjectError, "symbolic link")
    refuses(root, lambda: rec.download_artifact("link", str(tmp_path)), ValueError, "symbolic link")
    refuses(root, lambda: rec.list_artifacts("link"), ValueError, "symbolic link")
    assert os.listdir(outside) == ["secret.pkl"]


def test_save_folder_with_links_pointing_outside(running: QlibRecorder, tmp_path: Path) -> None:
    root = tmp_path / "store"
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (tmp_path / "secret_dir").mkdir()
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "b.txt").write_text("b")
    (tree / "inside_link.txt").symlink_to(tree / "a.txt")  # inside the tree: copied as content
    (tree / "sub" / "zz_escape.txt").symlink_to(secret)
    refuses(
        root,
        lambda: running.save_objects(local_path=tree),
        ValueError,
        "local_path",
        "symbolic link",
        "outside",
    )
    (tree / "sub" / "zz_escape.txt").unlink()
    (tree / "zz_dir").symlink_to(tmp_path / "secret_dir")
    refuses(
        root,
        lambda: running.save_objects(local_path=tree, artifact_path="t"),
        ValueError,
        "outside",
    )
    (tree / "zz_dir").unlink()
    running.save_objects(local_path=tree, artifact_path="t")
    rec = running.get_recorder()
    assert sorted(rec.list_artifacts("t")) == ["t/a.txt", "t/inside_link.txt", "t/sub"]
    copied = rec.ref.artifacts_dir / "t" / "inside_link.txt"
    assert not copied.is_symlink() and copied.read_text() == "a"


class Unpicklable:
    def __reduce__(self) -> Any:
        raise RuntimeError("refuses to be pickled")


@pytest.mark.parametrize(
    "bad", [threading.Lock(), Unpicklable(), (x for x in range(3))], ids=["lock", "reduce", "gen"]
)
def test_unpicklable_objects_leave_no_partial_artifact(
    running: QlibRecorder, tmp_path: Path, bad: Any
) -> None:
    root = tmp_path / "store"
    err = refuses(
        root,
        lambda: running.save_objects(**{"good.pkl": [1, 2], "bad.pkl": bad}),
        TypeError,
        "'bad.pkl'",
        type(bad).__name__,
    )
    assert "good.pkl" not in str(err)
    assert "good.pkl" not in running.get_recorder().list_artifacts()


@pytest.mark.parametrize("value", ["1.0", None, [1.0], {"a": 1}, object(), b"1", 1 + 2j], ids=repr)
def test_non_numeric_metrics(running: QlibRecorder, tmp_path: Path, value: Any) -> None:
    root = tmp_path / "store"
    refuses(
        root,
        lambda: running.log_metrics(step=3, fine=1.0, bad=value),
        TypeError,
        "'bad'",
        type(value).__name__,
    )
    running.flush()
    history = running.get_recorder().get_metric_history()
    assert list(history["key"]) == ["loss"]  # nothing of the refused call was kept


@pytest.mark.parametrize("step", ["3", 1.5, [1], object()], ids=repr)
def test_bad_steps(running: QlibRecorder, tmp_path: Path, step: Any) -> None:
    refuses(tmp_path / "store", lambda: running.log_metrics(step=step, loss=1.0), TypeError, "step")


def test_bad_status_and_uri(running: QlibRecorder, tmp_path: Path) -> None:
    root = tmp_path / "store"
    refuses(root, lambda: running.end_exp(recorder_status="DONE"), ValueError, "status", "DONE")
    assert running.get_recorder().status == "RUNNING"
    refuses(root, lambda: running.set_uri("http://server:5000"), ValueError, "scheme")
    refuses(root, lambda: running.set_uri(""), ValueError, "non-empty")


def test_missing_local_path(running: QlibRecorder, tmp_path: Path) -> None:
    refuses(
        tmp_path / "store",
        lambda: running.log_artifact(tmp_path / "nope"),
        FileNotFoundError,
        "local_path",
        "nope",
    )


def test_search_arguments(running: QlibRecorder, tmp_path: Path) -> None:
    root = tmp_path / "store"
    refuses(root, lambda: running.search_records(max_results=-1), ValueError, "max_results")
    refuses(root, lambda: running.search_records(filter_string="metrics.loss >>> 1"), ValueError)
    refuses(root, lambda: running.search_records(run_view_type=7), ValueError, "run_view_type")


def test_usage_errors_name_the_problem(r: QlibRecorder, tmp_path: Path) -> None:
    root = tmp_path / "store"
    with r.start(experiment_name="exp"):
        refuses(root, lambda: r.start_exp(experiment_name="other"), UsageError, "already active")
        refuses(root, lambda: r.save_objects(local_path=tmp_path, o=1), UsageError, "only one")


# ---------------------------------------------------------------------------- read-only store

READ_AND_WRITE = """
import json, os, sys, pathlib, errno
import pandas, pyarrow.parquet, pyarrow.pandas_compat, cloudpickle, portalocker  # before a setuid
import tracklite
from tracklite import QlibRecorder, ExpManager
import tracklite.search.filter, tracklite.search.order, tracklite.metrics.history
import tracklite.maintenance.check, tracklite.liveness
root, dst, drop = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
if drop:
    os.setgid(65534)
    os.setuid(65534)
r = QlibRecorder(ExpManager(uri=root))
out = {}
exps = r.list_experiments()
out["experiments"] = sorted(exps)
exp = r.get_exp(experiment_name="exp", create=False)
recs = exp.list_recorders()
rec = next(iter(recs.values()))
out["status"] = rec.status
out["params"] = rec.list_params()["lr"]
out["metrics"] = rec.list_metrics()
out["history"] = len(rec.get_metric_history())
out["object"] = rec.load_object("obj.pkl")
out["artifacts"] = rec.list_artifacts()
out["download"] = open(rec.download_artifact("obj.pkl", dst), "rb").read() == open(
    os.path.join(rec.get_local_dir(), "artifacts", "obj.pkl"), "rb").read()
out["search"] = len(r.search_records([exp.id]))
out["frame"] = len(pandas.read_parquet(os.path.join(rec.get_local_dir(), "metrics")))
out["check"] = tracklite.check(root).clean
errors = {}
def attempt(name, call):
    try:
        call()
        errors[name] = None
    except BaseException as exc:
        chain, cause = [], exc
        while cause is not None:
            chain.append(type(cause).__name__)
            cause = cause.__cause__
        errors[name] = [chain, getattr(exc, "errno", None), str(exc)]
attempt("start", lambda: r.start_exp(experiment_name="new"))
attempt("start_existing", lambda: r.start_exp(experiment_name="exp"))
attempt("set_tags", lambda: (rec.set_tags(t="x"), rec.flush()))
attempt("log_metrics", lambda: (rec.log_metrics(step=9, loss=9.0), rec.flush()))
attempt("save_objects", lambda: rec.save_objects(**{"n.pkl": 1}))
attempt("delete", lambda: exp.delete_recorder(recorder_id=rec.id))
out["errors"] = errors
print("RESULT " + json.dumps(out))
"""


def _finished_store(root: Path) -> None:
    r = QlibRecorder(ExpManager(uri=str(root)))
    with r.start(experiment_name="exp"):
        r.log_params(lr=0.1)
        for step in range(10):
            r.log_metrics(step=step, loss=float(step))
        r.save_objects(**{"obj.pkl": {"a": 1}})


def _run_read_only(root: Path, dst: Path, drop: bool) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", READ_AND_WRITE, str(root), str(dst), "1" if drop else "0"],
        cwd=dst,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line[len("RESULT ") :])
    return result


def _check_reads(result: dict[str, Any]) -> None:
    assert result["experiments"] == ["exp"]
    assert result["status"] == "FINISHED" and result["params"] == "0.1"
    assert result["metrics"] == {"loss": 9.0} and result["history"] == 10
    assert result["object"] == {"a": 1} and "obj.pkl" in result["artifacts"]
    assert result["download"] and result["search"] == 1 and result["frame"] == 10
    assert result["check"] is True


def test_read_only_mount(tmp_path: Path) -> None:
    """A read-only bind mount: the kernel refuses every write, even root's (EROFS)."""
    source = tmp_path / "store"
    _finished_store(source)
    before = snapshot(source)
    dst = tmp_path / "downloads"
    dst.mkdir()
    with read_only_view(source, tmp_path / "ro") as view:
        result = _run_read_only(view, dst, drop=False)
    _check_reads(result)
    for name, error in result["errors"].items():
        assert error is not None, f"{name} wrote into a read-only store"
        _chain, code, message = error
        assert code == errno.EROFS or "Read-only file system" in message, (name, error)
        assert str(view) in message, f"{name}: the error does not name the store path: {message}"
    assert snapshot(source) == before


def test_read_only_permissions(tmp_path: Path) -> None:
    """A store whose files belong to someone else and are read-only to us: reads work, every
    write raises PermissionError. Tests run as root, so the child drops to uid 65534."""
    if os.geteuid() != 0:
        pytest.skip("needs root to drop privileges to another uid")
    base = Path(tempfile.mkdtemp(prefix="tracklite-ro-"))
    try:
        base.chmod(0o755)
        source = base / "store"
        _finished_store(source)
        before = snapshot(source)
        for folder, _dirs, files in os.walk(source):
            os.chmod(folder, 0o555)
            for name in files:
                os.chmod(os.path.join(folder, name), 0o444)
        dst = base / "downloads"
        dst.mkdir()
        dst.chmod(0o777)
        result = _run_read_only(source, dst, drop=True)
        _check_reads(result)
        for name, error in result["errors"].items():
            assert error is not None, f"{name} wrote into a read-only store"
            chain, _code, message = error
            # Every write raises a PermissionError: the plain one, or from the metric writer
            # its MetricPermissionError subclass, which names the recorder and keeps the points.
            assert chain[0] in ("PermissionError", "MetricPermissionError"), (name, error)
            assert "PermissionError" in chain, (name, error)
            assert "Permission denied" in message and str(source) in message, (name, error)
        assert snapshot(source) == before
    finally:
        for folder, _dirs, _files in os.walk(base):
            os.chmod(folder, 0o755)
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------------------- full disk

FULL_DISK = """
import json, os, sys, pathlib
sys.path.insert(0, sys.argv[3])
from _reliability import disk_filler
from tracklite import QlibRecorder, ExpManager, MetricWriteError
root, fill_dir = sys.argv[1], pathlib.Path(sys.argv[2])
r = QlibRecorder(ExpManager(uri=root))
r.start_exp(experiment_name="exp")
for step in range(100):
    r.log_metrics(step=step, loss=float(step))
r.log_params(before="yes")
r.save_objects(**{"early.pkl": list(range(100))})
r.flush()
rec = r.get_recorder()
print("ACKED", flush=True)
disk_filler(fill_dir)
errors = {}
def attempt(name, call):
    try:
        call()
        errors[name] = None
    except BaseException as exc:
        errors[name] = [type(exc).__name__, str(exc)]
attempt("save_objects", lambda: r.save_objects(**{"big.pkl": os.urandom(1 << 20)}))
accepted = [99]
def log_and_flush():
    for step in range(100, 50100):
        # A kept writer error is raised by the next call, which then accepts nothing.
        r.log_metrics(step=step, loss=float(step), other=float(step))
        accepted[0] = step
    r.flush()
attempt("log_and_flush", log_and_flush)
attempt("start_other", lambda: QlibRecorder(ExpManager(uri=root)).start_exp(
    experiment_name="other-" + "x" * 200))
os.unlink(fill_dir / "filler.bin")
# The writer raises an error its thread kept once (even if space is back); the flush after it
# writes the kept points.
attempt("flush_after", r.flush)
if errors["flush_after"] is not None:
    attempt("flush_after", r.flush)
attempt("end_exp", lambda: r.end_exp())
print("RESULT " + json.dumps({"errors": errors, "rec": [rec.experiment_id, rec.id],
                              "accepted": accepted[0]}), flush=True)
"""


def test_full_disk(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", size="4m") as disk:
        root = disk / "store"
        done = subprocess.run(
            [sys.executable, "-c", FULL_DISK, str(root), str(disk), str(REPO / "tests")],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
        result = json.loads(line[len("RESULT ") :])
        errors = result["errors"]
        # Each write on the full disk failed with an error saying so (ENOSPC) ...
        for name in ("save_objects", "log_and_flush"):
            assert errors[name] is not None, f"{name} claimed success on a full disk"
            assert "No space left on device" in errors[name][1], errors[name]
        # ... and everything acknowledged before the disk filled is intact.
        exp_id, rec_id = result["rec"]
        rec = (
            ExpManager(uri=str(root))
            .get_exp(experiment_id=exp_id, create=False)
            .get_recorder(recorder_id=rec_id, create=False)
        )
        history = rec.get_metric_history()
        # The writer kept the points it could not write in memory; once space came back, the
        # next flush wrote them: every accepted point is there once, none that was refused.
        assert errors["flush_after"] is None, errors["flush_after"]
        assert errors["end_exp"] is None, errors["end_exp"]
        assert result["accepted"] > 100  # points were accepted while the disk was full
        steps = sorted(history.loc[history["key"] == "loss", "step"])
        assert steps == list(range(result["accepted"] + 1))
        assert rec.status == "FINISHED"
        assert rec.list_params()["before"] == "yes"
        assert rec.load_object("early.pkl") == list(range(100))
        assert "big.pkl" not in rec.list_artifacts()
        report = tracklite.check(root, temp_age=-1)
        assert not report.of_kind("corrupt_segment") and not report.of_kind("corrupt_metadata")
        assert not report.of_kind("stale_temp"), str(report)  # failed writes cleaned up


def test_disk_filler_really_fills(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", size="1m") as disk:
        disk_filler(disk)
        with pytest.raises(OSError) as info, open(disk / "more", "wb", buffering=0) as handle:
            handle.write(b"x" * 4096)
        assert info.value.errno == errno.ENOSPC
