"""``tracklite delete`` / ``restore`` / ``gc`` on real stores, and the gc library beneath."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from test_cli_helpers import Sample, make_sample, one_error_line, run_cli

from tracklite import QlibRecorder
from tracklite.maintenance import gc
from tracklite.store import atomic
from tracklite.store.root import Store


@pytest.fixture
def sample(R: QlibRecorder) -> Sample:
    return make_sample(R)


def _names(capsys: pytest.CaptureFixture[str], sample: Sample, *extra: str) -> list[str]:
    rows = run_cli(capsys, "--uri", sample.uri, "runs", "lgb", "--format", "csv", *extra).csv()
    return [r["name"] for r in rows]


# ------------------------------------------------------------------ delete / restore


def test_delete_and_restore_recorders(
    capsys: pytest.CaptureFixture[str], sample: Sample, R: QlibRecorder
) -> None:
    outcome = run_cli(capsys, "--uri", sample.uri, "delete", sample.slow[:16], sample.failed)
    assert outcome.code == 0
    assert f"deleted recorder {sample.slow} (slow, experiment lgb)" in outcome.out
    assert "undo with `tracklite restore ID`" in outcome.err
    assert _names(capsys, sample) == ["fast"]
    assert list(R.list_recorders(experiment_name="lgb")) == [sample.fast]
    meta = json.loads(
        (Path(sample.uri) / sample.exp_id / sample.slow / "recorder.json").read_text()
    )
    assert meta["lifecycle"] == "deleted" and meta["deleted_time"]
    again = run_cli(capsys, "--uri", sample.uri, "delete", sample.slow)
    assert "was already deleted" in again.out

    outcome = run_cli(capsys, "--uri", sample.uri, "restore", sample.slow)
    assert outcome.code == 0 and f"restored recorder {sample.slow}" in outcome.out
    assert _names(capsys, sample) == ["slow", "fast"]
    assert "is not deleted" in run_cli(capsys, "--uri", sample.uri, "restore", sample.fast).out


def test_delete_resolves_every_target_first(
    capsys: pytest.CaptureFixture[str], sample: Sample
) -> None:
    line = one_error_line(run_cli(capsys, "--uri", sample.uri, "delete", sample.slow, "ffff"))
    assert "ffff" in line
    assert _names(capsys, sample) == ["broken", "slow", "fast"]  # nothing half done


def test_delete_and_restore_experiments(
    capsys: pytest.CaptureFixture[str], sample: Sample, R: QlibRecorder
) -> None:
    outcome = run_cli(capsys, "--uri", sample.uri, "delete", "-e", "other")
    assert outcome.code == 0 and f"deleted experiment other ({sample.other_id})" in outcome.out
    assert "other" not in R.list_experiments()
    listed = run_cli(capsys, "--uri", sample.uri, "experiments", "--format", "csv").csv()
    assert [r["name"] for r in listed] == ["lgb"]
    line = one_error_line(run_cli(capsys, "--uri", sample.uri, "delete", "-e", "other"))
    assert "no experiment named 'other'" in line

    outcome = run_cli(capsys, "--uri", sample.uri, "restore", "--experiment", "other")
    assert outcome.code == 0 and "restored experiment other" in outcome.out
    assert "other" in R.list_experiments()
    line = one_error_line(run_cli(capsys, "--uri", sample.uri, "restore", "-e", "other"))
    assert "no deleted experiment named 'other'" in line


def test_restore_experiment_whose_name_was_taken(
    capsys: pytest.CaptureFixture[str], sample: Sample, R: QlibRecorder
) -> None:
    R.delete_exp(experiment_name="other")
    R.get_exp(experiment_name="other")  # a new experiment takes the name
    line = one_error_line(run_cli(capsys, "--uri", sample.uri, "restore", "-e", sample.other_id))
    assert "is used by active experiment" in line
    # Two deleted experiments with one name: the name is ambiguous, the ids are not.
    R.delete_exp(experiment_name="other")
    line = one_error_line(run_cli(capsys, "--uri", sample.uri, "restore", "-e", "other"))
    assert "2 experiments are named 'other'" in line
    assert run_cli(capsys, "--uri", sample.uri, "restore", "-e", sample.other_id).code == 0


def test_restore_recorder_of_deleted_experiment_says_so(
    capsys: pytest.CaptureFixture[str], sample: Sample, R: QlibRecorder
) -> None:
    run_cli(capsys, "--uri", sample.uri, "delete", sample.lone)
    R.delete_exp(experiment_name="other")
    outcome = run_cli(capsys, "--uri", sample.uri, "restore", sample.lone)
    assert outcome.code == 0
    assert f"tracklite restore -e {sample.other_id}" in outcome.err


# ------------------------------------------------------------------ gc


def test_gc_dry_run_then_for_real(
    capsys: pytest.CaptureFixture[str], sample: Sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = Path(sample.uri)
    # An 80-column terminal: ids made in the same millisecond share a longer prefix, and the
    # name columns then give way rather than the row running over.
    monkeypatch.setenv("COLUMNS", "80")
    run_cli(capsys, "--uri", sample.uri, "delete", sample.slow)
    run_cli(capsys, "--uri", sample.uri, "delete", "-e", "other")
    dry = run_cli(capsys, "--uri", sample.uri, "gc", "--dry-run")
    assert dry.code == 0
    assert "dry run: would remove 2 items" in dry.out
    # The table shows unambiguous id prefixes (so that a row fits 80 columns); JSON has them whole.
    assert sample.slow[:8] in dry.out and sample.other_id[:8] in dry.out
    assert all(len(line) <= 80 for line in dry.out.splitlines())
    assert (root / sample.exp_id / sample.slow).is_dir() and (root / sample.other_id).is_dir()

    items = run_cli(capsys, "--uri", sample.uri, "gc", "--dry-run", "--format", "json").json()
    assert {(i["kind"], i["id"]) for i in items} == {
        ("recorder", sample.slow),
        ("experiment", sample.other_id),
    }
    size = sum(
        f.stat().st_size for f in (root / sample.exp_id / sample.slow).rglob("*") if f.is_file()
    )
    assert next(i for i in items if i["id"] == sample.slow)["size"] == size

    done = run_cli(capsys, "--uri", sample.uri, "gc", "--yes")
    assert done.code == 0 and "removed 2 items" in done.out
    assert not (root / sample.exp_id / sample.slow).exists()
    assert not (root / sample.other_id).exists()
    assert not [p for p in root.rglob("*") if ".gc-" in p.name]  # no hidden leftovers
    assert _names(capsys, sample, "--deleted") == ["broken", "fast"]
    assert run_cli(capsys, "--uri", sample.uri, "gc", "--yes").out == "nothing to remove\n"


def test_gc_refuses_without_confirmation(
    capsys: pytest.CaptureFixture[str],
    sample: Sample,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    run_cli(capsys, "--uri", sample.uri, "delete", sample.slow)
    with open(tmp_path / "answers.txt", "w+") as stdin:  # a file: not a terminal
        stdin.write("y\n")
        stdin.seek(0)
        monkeypatch.setattr("sys.stdin", stdin)
        outcome = run_cli(capsys, "--uri", sample.uri, "gc")
    line = one_error_line(outcome)
    assert "--yes" in line
    assert (Path(sample.uri) / sample.exp_id / sample.slow).is_dir()


def test_gc_keeps_recent_and_running(
    capsys: pytest.CaptureFixture[str], sample: Sample, R: QlibRecorder
) -> None:
    run_cli(capsys, "--uri", sample.uri, "delete", sample.slow)
    outcome = run_cli(capsys, "--uri", sample.uri, "gc", "--yes", "--older-than", "1h")
    assert outcome.out == "nothing to remove\n"
    assert "deleted too recently" in outcome.err
    line = one_error_line(run_cli(capsys, "--uri", sample.uri, "gc", "--older-than", "soon"))
    assert "expected an age such as" in line
    # A recorder deleted while its process still runs is kept: that process would write on.
    exp = R.start_exp(experiment_name="lgb", recorder_name="live")
    live = R.get_recorder().id
    assert live is not None
    try:
        exp.delete_recorder(recorder_id=live)
        outcome = run_cli(capsys, "--uri", sample.uri, "gc", "--yes")
        assert f"keeping recorder {live}: it is still running" in outcome.err
        assert (Path(sample.uri) / sample.exp_id / live).is_dir()
        assert not (Path(sample.uri) / sample.exp_id / sample.slow).exists()
    finally:
        R.end_exp()


def test_gc_skips_what_was_restored_after_the_plan(sample: Sample, R: QlibRecorder) -> None:
    R.get_exp(experiment_name="lgb", create=False).delete_recorder(recorder_id=sample.fast)
    R.delete_exp(experiment_name="other")
    found = gc.plan(sample.uri)
    assert len(found.items) == 2
    # Restored between the plan and the removal (another user, another terminal).
    rec_json = Path(sample.uri) / sample.exp_id / sample.fast / "recorder.json"
    meta = json.loads(rec_json.read_text())
    meta["lifecycle"] = "active"
    atomic.write_json(rec_json, meta)
    Store(Path(sample.uri)).set_experiment_lifecycle(sample.other_id, "active")
    result = gc.collect(sample.uri, found.items)
    assert result.removed == []
    assert sorted(reason for _, reason in result.skipped) == ["it was restored", "it was restored"]
    assert rec_json.is_file() and (Path(sample.uri) / sample.other_id).is_dir()


def test_gc_removes_leftovers_of_an_interrupted_run(sample: Sample) -> None:
    root = Path(sample.uri)
    tomb = root / sample.exp_id / f".{sample.slow}.gc-0badc0de"
    tomb.mkdir()
    (tomb / "recorder.json").write_text("{}")
    top = root / f".{sample.other_id}.gc-12345678"
    top.mkdir()
    found = gc.plan(root)
    assert {(i.kind, i.path) for i in found.items} == {("leftover", tomb), ("leftover", top)}
    calls: list[tuple[int, int]] = []
    result = gc.collect(root, progress=lambda done, total: calls.append((done, total)))
    assert len(result.removed) == 2 and not tomb.exists() and not top.exists()
    assert calls == [(1, 2), (2, 2)]


def test_gc_older_than_uses_deleted_time(sample: Sample, R: QlibRecorder) -> None:
    R.get_exp(experiment_name="lgb", create=False).delete_recorder(recorder_id=sample.fast)
    assert gc.plan(sample.uri, older_than=3600).items == []
    # An old deletion (the store was copied from elsewhere, deleted_time set long ago).
    rec_json = Path(sample.uri) / sample.exp_id / sample.fast / "recorder.json"
    meta = json.loads(rec_json.read_text())
    meta["deleted_time"] = "2020-01-01T00:00:00+00:00"
    atomic.write_json(rec_json, meta)
    assert [i.recorder_id for i in gc.plan(sample.uri, older_than=3600).items] == [sample.fast]
    # Without deleted_time, the metadata file's age stands in.
    meta["deleted_time"] = None
    atomic.write_json(rec_json, meta)
    assert gc.plan(sample.uri, older_than=3600).items == []
    old = time.time() - 7200
    os.utime(rec_json, (old, old))
    assert len(gc.plan(sample.uri, older_than=3600).items) == 1


def test_gc_on_missing_store(tmp_path: Path) -> None:
    assert gc.plan(tmp_path / "none").items == []
    assert gc.collect(tmp_path / "none").removed == []
