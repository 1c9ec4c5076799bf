"""What a run records about where it came from, and how a script's run ends, checked in real
subprocesses (a real temporary git repository for the ``code_*.txt`` artifacts)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tracklite import ExpManager, QlibRecorder, Recorder

Runner = Callable[..., "subprocess.CompletedProcess[str]"]

pytestmark = [
    pytest.mark.usefixtures("clean_env"),
    pytest.mark.skipif(shutil.which("git") is None, reason="needs the git binary"),
]

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "LC_ALL": "C",
}

LOG_ONE_RUN = """
import sys
from tracklite import R
with R.start(experiment_name="prov") as exp:
    R.log_metrics(step=1, m=1.0)
    print(R.get_recorder().id)
"""


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV, "HOME": str(repo.parent)}
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def stored(store: Path, rec_id: str, experiment_name: str = "prov") -> Recorder:
    return QlibRecorder(ExpManager(uri=str(store))).get_recorder(
        recorder_id=rec_id, experiment_name=experiment_name
    )


def artifact_text(rec: Recorder, name: str) -> str:
    return (Path(rec.get_local_dir()) / "artifacts" / name).read_text("utf-8")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git work tree with one commit, a modified tracked file and a staged new file."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "tracked.txt").write_text("line one\n", encoding="utf-8")
    git(root, "add", "tracked.txt")
    git(root, "commit", "-q", "-m", "first")
    (root / "tracked.txt").write_text("line one\nchanged line\n", encoding="utf-8")
    (root / "staged.txt").write_text("staged content\n", encoding="utf-8")
    git(root, "add", "staged.txt")
    return root


def test_params_and_git_artifacts_in_a_git_repo(
    repo: Path, tmp_path: Path, run_script: Runner
) -> None:
    store = tmp_path / "store"
    env = {
        **GIT_ENV,
        "HOME": str(tmp_path),
        "TRACKLITE_URI": str(store),
        "_QLIB_FOO": "bar",
        "_QLIB_EMPTY": "",
        "QLIB_NOT_THIS": "x",
        "_qlib_lower": "x",
    }
    done = run_script(LOG_ONE_RUN, repo, env=env, args=["--flag", "value with space"])
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    rec = stored(store, done.stdout.strip())
    params = rec.list_params()
    script = Path(tmp_path / "scripts").glob("*.py")
    script_path = str(next(script))
    assert params["cmd-sys.argv"] == f"{script_path} --flag value with space"
    assert params["_QLIB_FOO"] == "bar"
    assert params["_QLIB_EMPTY"] == ""
    assert "QLIB_NOT_THIS" not in params and "_qlib_lower" not in params
    assert rec.list_tags()["mlflow.source.name"] == script_path
    assert rec.status == "FINISHED"

    names = rec.list_artifacts()
    assert {"code_diff.txt", "code_status.txt", "code_cached.txt"} <= set(names)
    diff = artifact_text(rec, "code_diff.txt")
    status = artifact_text(rec, "code_status.txt")
    cached = artifact_text(rec, "code_cached.txt")
    # The working-tree change, not the staged one, and the reverse for --cached.
    assert "+changed line" in diff and "tracked.txt" in diff and "staged" not in diff
    assert "+staged content" in cached and "staged.txt" in cached and "changed" not in cached
    assert "tracked.txt" in status and "staged.txt" in status
    # Exactly what git prints for the repository (which the run did not change).
    assert diff == git(repo, "diff")
    assert status == git(repo, "status")
    assert cached == git(repo, "diff", "--cached")
    # The store lives outside the repository: the run left nothing in it.
    assert sorted(p.name for p in repo.iterdir()) == [".git", "staged.txt", "tracked.txt"]


def test_resume_from_another_command_line(repo: Path, tmp_path: Path, run_script: Runner) -> None:
    """qlib's resume bug: the new cmd-sys.argv killed the logging thread and every later log
    was lost. Here the new value replaces the old one, the code files are written again, and
    later logs are kept."""
    store = tmp_path / "store"
    env = {**GIT_ENV, "TRACKLITE_URI": str(store)}
    first = run_script(LOG_ONE_RUN, repo, env=env, args=["first"])
    assert first.returncode == 0, first.stderr
    rec_id = first.stdout.strip()
    (repo / "tracked.txt").write_text("line one\nsecond change\n", encoding="utf-8")
    resume = f"""
from tracklite import R
with R.start(experiment_name="prov", recorder_id={rec_id!r}, resume=True):
    R.log_metrics(step=2, m=2.0)
    R.log_params(after_resume="yes")
    R.set_tags(stage="resumed")
"""
    second = run_script(resume, repo, env={**env, "_QLIB_FOO": "again"}, args=["second"])
    assert second.returncode == 0, second.stderr
    rec = stored(store, rec_id)
    assert rec.status == "FINISHED"
    params = rec.list_params()
    assert params["cmd-sys.argv"].endswith(".py second")
    assert params["_QLIB_FOO"] == "again"
    assert params["after_resume"] == "yes"
    assert rec.list_tags()["stage"] == "resumed"
    assert rec.list_metrics() == {"m": 2.0}
    assert sorted(rec.get_metric_history("m")["step"].tolist()) == [1, 2]
    diff = artifact_text(rec, "code_diff.txt")
    assert "+second change" in diff and "changed line" not in diff
    assert len(stored(store, rec_id).list_artifacts()) == 3


def test_a_clean_repo_still_gets_the_three_files(
    repo: Path, tmp_path: Path, run_script: Runner
) -> None:
    git(repo, "commit", "-q", "-am", "everything")
    store = tmp_path / "store"
    done = run_script(LOG_ONE_RUN, repo, env={**GIT_ENV, "TRACKLITE_URI": str(store)})
    assert done.returncode == 0, done.stderr
    rec = stored(store, done.stdout.strip())
    assert artifact_text(rec, "code_diff.txt") == ""
    assert artifact_text(rec, "code_cached.txt") == ""
    assert "nothing to commit" in artifact_text(rec, "code_status.txt")


def test_a_subfolder_of_a_repo_counts_as_inside(
    repo: Path, tmp_path: Path, run_script: Runner
) -> None:
    sub = repo / "pkg"
    sub.mkdir()
    store = tmp_path / "store"
    done = run_script(LOG_ONE_RUN, sub, env={**GIT_ENV, "TRACKLITE_URI": str(store)})
    assert done.returncode == 0, done.stderr
    rec = stored(store, done.stdout.strip())
    assert "+changed line" in artifact_text(rec, "code_diff.txt")


def test_outside_git_no_code_files_and_nothing_on_stderr(
    tmp_path: Path, run_script: Runner
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    store = tmp_path / "store"
    env = {
        "TRACKLITE_URI": str(store),
        "_QLIB_FOO": "bar",
        "GIT_CEILING_DIRECTORIES": str(tmp_path),
    }
    done = run_script(LOG_ONE_RUN, plain, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert len(done.stdout.split()) == 1
    rec = stored(store, done.stdout.strip())
    assert rec.list_artifacts() == []
    assert rec.list_params()["_QLIB_FOO"] == "bar"
    assert list(plain.iterdir()) == []


def test_without_a_git_binary_runs_still_start(tmp_path: Path, run_script: Runner) -> None:
    store = tmp_path / "store"
    # PATH without git (the interpreter is started by its full path).
    done = run_script(
        LOG_ONE_RUN,
        Path.cwd(),
        env={"TRACKLITE_URI": str(store), "PATH": str(tmp_path / "empty-bin")},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert stored(store, done.stdout.strip()).list_artifacts() == []


# ---------------------------------------------------------------------- how a script's run ends


def test_a_script_that_never_ends_its_run_finishes_at_exit(
    tmp_path: Path, run_script: Runner
) -> None:
    store = tmp_path / "store"
    code = """
from tracklite import R
R.log_params(a=1)
R.log_metrics(step=3, m=2.0)
R.save_objects(obj=[1, 2])
print(R.get_recorder().id)
"""
    done = run_script(code, Path.cwd(), env={"TRACKLITE_URI": str(store)})
    assert done.returncode == 0, done.stderr
    rec = stored(store, done.stdout.strip(), "Experiment")
    assert rec.status == "FINISHED"
    assert rec.end_time is not None
    assert rec.list_params()["a"] == "1"
    assert rec.list_metrics() == {"m": 2.0}
    assert rec.load_object("obj") == [1, 2]


def test_a_short_script_exits_quietly(tmp_path: Path, run_script: Runner) -> None:
    """A script that logs a point and ends at once: the interpreter shuts down while the
    metric writer may still be starting; nothing may be printed."""
    code = """
from tracklite import R
R.log_metrics(m=1.0)
"""
    for _ in range(3):
        done = run_script(code, Path.cwd(), env={"TRACKLITE_URI": str(tmp_path / "store")})
        assert done.returncode == 0
        assert done.stderr == ""
    runs = QlibRecorder(ExpManager(uri=str(tmp_path / "store"))).list_recorders()
    assert [r.status for r in runs.values()] == ["FINISHED"] * 3
    assert all(r.list_metrics() == {"m": 1.0} for r in runs.values())


def test_start_exp_without_end_exp_and_sys_exit_finish_at_exit(
    tmp_path: Path, run_script: Runner
) -> None:
    store = tmp_path / "store"
    code = """
import sys
from tracklite import R
R.start_exp(experiment_name="e")
R.log_metrics(m=1.0)
print(R.get_recorder().id, flush=True)
sys.exit(3)
"""
    done = run_script(code, Path.cwd(), env={"TRACKLITE_URI": str(store)})
    assert done.returncode == 3, done.stderr
    rec = stored(store, done.stdout.strip(), "e")
    assert rec.status == "FINISHED"
    assert rec.list_metrics() == {"m": 1.0}


def test_a_script_that_raises_fails_its_run(tmp_path: Path, run_script: Runner) -> None:
    store = tmp_path / "store"
    code = """
from tracklite import R
R.log_metrics(step=0, m=1.0)
print(R.get_recorder().id, flush=True)
raise RuntimeError("the script broke")
"""
    done = run_script(code, Path.cwd(), env={"TRACKLITE_URI": str(store)})
    assert done.returncode == 1
    # The traceback is still printed by the previous excepthook.
    assert "RuntimeError: the script broke" in done.stderr
    rec = stored(store, done.stdout.strip(), "Experiment")
    assert rec.status == "FAILED"
    assert rec.list_metrics() == {"m": 1.0}


def test_a_script_interrupted_inside_start_fails_its_run(
    tmp_path: Path, run_script: Runner
) -> None:
    store = tmp_path / "store"
    code = """
from tracklite import R
with R.start(experiment_name="e"):
    print(R.get_recorder().id, flush=True)
    raise KeyboardInterrupt
"""
    done = run_script(code, Path.cwd(), env={"TRACKLITE_URI": str(store)})
    assert done.returncode != 0
    assert "KeyboardInterrupt" in done.stderr
    assert stored(store, done.stdout.strip(), "e").status == "FAILED"


def test_exit_hooks_follow_the_global_R_even_after_another_recorder(
    tmp_path: Path, run_script: Runner
) -> None:
    """A script that first uses its own QlibRecorder and then the global R: the global run
    still ends at exit."""
    store = tmp_path / "store"
    code = f"""
from tracklite import R, QlibRecorder, ExpManager
mine = QlibRecorder(ExpManager(uri={str(tmp_path / "other")!r}))
with mine.start(experiment_name="side"):
    pass
R.log_metrics(m=1.0)
print(R.get_recorder().id)
"""
    done = run_script(code, Path.cwd(), env={"TRACKLITE_URI": str(store)})
    assert done.returncode == 0, done.stderr
    assert stored(store, done.stdout.strip(), "Experiment").status == "FINISHED"


def test_run_script_uses_this_interpreter() -> None:
    assert Path(sys.executable).exists()
