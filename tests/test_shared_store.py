"""A store shared by a Unix group, with two real users (created by the test; root only).

Set up as docs/shared-stores.md says (``tracklite init --group``, jobs with ``umask 002``), user
B resumes and extends user A's finished run, A tags it afterwards, and every file is left
writable by the group. A file B cannot write makes B's resume fail with an error naming it,
before anything changed: A's run stays FINISHED.

The users' processes run this Python when they may (or the same version found on PATH, with
this environment's packages); where they may not (a root-only checkout or venv), or with
``TRACKLITE_TEST_DROP=1``, each starts as root, imports what it needs, and becomes the user.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import site
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from _reliability import REPO

from tracklite import ExpManager, QlibRecorder
from tracklite.maintenance import check as chk
from tracklite.store import layout, sharing

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or os.geteuid() != 0
    or shutil.which("useradd") is None
    or shutil.which("groupadd") is None,
    reason="needs root and useradd/groupadd to create two real users",
)

CHILD = r"""
import json, os, sys
from tracklite import ExpManager, QlibRecorder
action, root, rec_id = sys.argv[1], sys.argv[2], sys.argv[3]
if len(sys.argv) > 4:
    # Started as root where the test users cannot run this interpreter (a root-only
    # checkout or venv): exercise every code path once so that everything is imported, then
    # become the user for real (all threads), and only then touch the shared store.
    import grp, pwd, shutil, tempfile
    scratch = tempfile.mkdtemp()
    w = QlibRecorder(ExpManager(uri=scratch + "/s"))
    with w.start(experiment_name="warm"):
        w.log_params(a=1)
        w.log_metrics(step=0, x=1.0)
        w.flush()
        w.save_objects(o=1)
        warm = w.get_recorder()
    with w.start(experiment_name="warm", recorder_id=warm.id, resume=True):
        w.log_metrics(step=1, x=2.0)
    warm.set_tags(t="1")
    warm.load_object("o")
    shutil.rmtree(scratch)
    uid, gid, mask = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6], 8)
    os.setgroups([gid])
    os.setgid(gid)
    os.setuid(uid)
    os.umask(mask)
r = QlibRecorder(ExpManager(uri=root))
try:
    if action == "create":
        with r.start(experiment_name="shared", recorder_name="a-run"):
            r.log_params(lr=0.1)
            r.log_metrics(step=0, loss=1.0)
            r.flush()
            r.log_metrics(step=1, loss=0.5)
            r.save_objects(model={"w": [1, 2]})
            rec_id = r.get_recorder().id
    elif action == "resume":
        with r.start(experiment_name="shared", recorder_id=rec_id, resume=True):
            r.log_metrics(step=2, loss=0.25)
            r.save_objects(model_b={"w": [3]})
    elif action == "tag":
        exp = r.get_exp(experiment_name="shared", create=False)
        exp.get_recorder(recorder_id=rec_id).set_tags(reviewed="yes")
    print(json.dumps({"ok": rec_id}))
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc),
                      "path": getattr(exc, "path", None) or getattr(exc, "filename", None)}))
"""


@dataclass
class Team:
    group: str
    gid: int
    users: dict[str, int]  # name -> uid
    python: list[str] | None  # None: the child drops to the user itself
    env: dict[str, str]
    base: Path

    def run(self, who: str, umask: int, *args: str) -> dict[str, str]:
        uid = self.users[who]
        if self.python is None:
            argv = [sys.executable, "-c", CHILD, *args, str(uid), str(self.gid), f"{umask:o}"]
            as_user: dict[str, object] = {}
        else:
            argv = [*self.python, "-c", CHILD, *args]
            as_user = {"user": uid, "group": self.gid, "extra_groups": [self.gid], "umask": umask}
        done = subprocess.run(
            argv,
            env=self.env,
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=120,
            **as_user,  # type: ignore[call-overload]
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _python_for(uid: int, gid: int, env: dict[str, str]) -> list[str] | None:
    """An interpreter the user can run with tracklite and its dependencies importable: this
    one, else the same Python version on PATH with this environment's site-packages."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    folders = [*os.environ.get("PATH", "").split(os.pathsep), "/usr/local/bin", "/usr/bin"]
    candidates = [sys.executable, *(os.path.join(f, version) for f in folders if f)]
    for candidate in dict.fromkeys(candidates):
        if not os.path.isfile(candidate):
            continue
        try:
            probe = subprocess.run(
                [candidate, "-c", "import tracklite, pyarrow, cloudpickle, portalocker"],
                env=env,
                user=uid,
                group=gid,
                capture_output=True,
                timeout=60,
            )
        except PermissionError:
            continue  # the interpreter lies where the user may not go (a root-only pyenv)
        if probe.returncode == 0:
            return [candidate]
    return None


@pytest.fixture
def team() -> Iterator[Team]:
    tag = secrets.token_hex(3)
    group = f"tlg{tag}"
    names = {"a": f"tla{tag}", "b": f"tlb{tag}"}
    base = Path(tempfile.mkdtemp(prefix="tracklite-team-", dir="/tmp"))
    os.chmod(base, 0o755)
    made_users: list[str] = []
    subprocess.run(["groupadd", group], check=True)
    try:
        for name in names.values():
            subprocess.run(
                [
                    "useradd",
                    "-M",
                    "-N",
                    "-g",
                    group,
                    "-d",
                    "/nonexistent",
                    "-s",
                    "/bin/false",
                    name,
                ],
                check=True,
            )
            made_users.append(name)
        import grp
        import pwd

        gid = grp.getgrnam(group).gr_gid
        users = {who: pwd.getpwnam(name).pw_uid for who, name in names.items()}
        paths = [str(REPO), *site.getsitepackages()]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), HOME=str(base))
        env.pop("TRACKLITE_URI", None)
        python = (
            None if os.environ.get("TRACKLITE_TEST_DROP") else _python_for(users["a"], gid, env)
        )
        yield Team(group, gid, users, python, env, base)
    finally:
        for name in made_users:
            subprocess.run(["userdel", name], check=False)
        subprocess.run(["groupdel", group], check=False)
        shutil.rmtree(base, ignore_errors=True)


def _status(root: Path, rec_id: str) -> tuple[str, dict[str, float]]:
    r = QlibRecorder(ExpManager(uri=str(root)))
    rec = r.get_exp(experiment_name="shared", create=False).get_recorder(recorder_id=rec_id)
    return rec.status, rec.list_metrics()


def test_two_users_share_a_group_store(team: Team) -> None:
    root = team.base / "store"
    sharing.init_group_store(root, team.group)
    created = team.run("a", 0o002, "create", str(root), "-")
    assert "ok" in created, created
    rec_id = created["ok"]
    resumed = team.run("b", 0o002, "resume", str(root), rec_id)
    assert "ok" in resumed, resumed
    tagged = team.run("a", 0o002, "tag", str(root), rec_id)
    assert "ok" in tagged, tagged
    assert _status(root, rec_id) == ("FINISHED", {"loss": 0.25})
    # Everything either user made is the group's and writable by it.
    report = sharing.audit(root, umask=0o002)
    assert report.shared and report.ok, report
    owners = {p.stat().st_uid for p in root.rglob("*")}
    assert owners == {0, team.users["a"], team.users["b"]}
    heartbeat = next(root.rglob(layout.HEARTBEAT_FILE))
    assert stat.S_IMODE(heartbeat.stat().st_mode) == 0o664
    assert chk.check(root).clean


def test_a_resume_that_would_fail_names_the_file_and_changes_nothing(team: Team) -> None:
    root = team.base / "store"
    sharing.init_group_store(root, team.group)
    rec_id = team.run("a", 0o002, "create", str(root), "-")["ok"]
    heartbeat = next(root.rglob(layout.HEARTBEAT_FILE))
    os.chmod(heartbeat, 0o644)  # a file only its owner may write (made with umask 022)
    meta = heartbeat.with_name(layout.RECORDER_FILE)
    before = meta.read_bytes()
    failed = team.run("b", 0o002, "resume", str(root), rec_id)
    assert failed.get("error") == "StorePermissionError", failed
    assert failed["path"] == str(heartbeat) and "umask 002" in failed["message"]
    assert meta.read_bytes() == before
    assert _status(root, rec_id) == ("FINISHED", {"loss": 0.5})
    assert chk.check(root).clean
    problems = sharing.audit(root, umask=0o002).problems
    assert any(str(heartbeat) in p for p in problems), problems


def test_doctor_names_what_will_fail_the_group(team: Team) -> None:
    root = team.base / "store"
    sharing.init_group_store(root, team.group)
    rec_id = team.run("a", 0o022, "create", str(root), "-")["ok"]  # not as documented
    report = sharing.audit(root, umask=0o022)
    assert not report.ok
    text = str(report)
    assert "umask 022" in text and "chmod g+rw" in text and "chmod g+rwx" in text
    failed = team.run("b", 0o002, "resume", str(root), rec_id)
    assert failed.get("error") in ("StorePermissionError", "PermissionError"), failed
    assert failed["path"] and str(root) in failed["path"]
    assert _status(root, rec_id)[0] == "FINISHED"
    os.chmod(root, 0o755)  # a single-user store: nothing to audit
    assert sharing.audit(root).ok and not sharing.audit(root).shared


def test_init_and_doctor_on_the_command_line(
    team: Team, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_cli_helpers import run_cli

    root = team.base / "cli-store"
    old = os.umask(0o002)
    try:
        made = run_cli(capsys, "--uri", str(root), "init", "--group", team.group)
        assert made.code == 0 and f"group {team.group} can work in this store" in made.out
        info = root.stat()
        assert info.st_gid == team.gid and stat.S_IMODE(info.st_mode) == 0o2770
        assert run_cli(capsys, "--uri", str(root), "doctor", "--modes").code == 0
        os.umask(0o022)
        told = run_cli(capsys, "--uri", str(root), "doctor", "--modes")
        assert told.code == 1 and "umask 022" in told.out
        bad = run_cli(capsys, "--uri", str(team.base / "x"), "init", "--group", "no-such-grp")
        assert bad.code != 0 and "no-such-grp" in bad.err
    finally:
        os.umask(old)
