"""The per-experiment search summary (``.summary.arrow``) is a cache that is never stale.

Folders are aged with ``os.utime`` where a test needs rows older than the racy window (a real
store reaches that state by itself a few seconds after its last write).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _reliability import read_only_view
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracklite import liveness
from tracklite.search import cache
from tracklite.search.listing import matching_recorder_metas, search_records
from tracklite.store import atomic, layout
from tracklite.store.root import Store

HOUR_NS = 3600 * 10**9


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "store")
    store.ensure()
    return store


def add(store: Store, exp_id: str, i: int, **extra: Any) -> str:
    meta = store.create_recorder(
        exp_id,
        f"r{i}",
        status=extra.pop("status", "FINISHED"),
        start_time=f"2024-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}+00:00",
        extra={
            "params": {"i": str(i)},
            "tags": {"kind": "even" if i % 2 == 0 else "odd"},
            "metrics": {"m": {"value": float(i), "step": 0, "timestamp": 0}},
            **extra,
        },
    )
    return str(meta["id"])


def age(store: Store, exp_id: str, *rec_ids: str) -> None:
    """Move the folders' mtime an hour back, out of the racy window (all folders if none)."""
    past = time.time_ns() - HOUR_NS
    for rec_id in rec_ids or store.recorder_ids(exp_id):
        os.utime(store.root / exp_id / rec_id, ns=(past, past))


def rows(store: Store, exp_id: str) -> cache.BuildReport:
    report = cache.BuildReport()
    cache.experiment_rows(store.root, exp_id, report=report)
    return report


def frame(store: Store, **kwargs: Any) -> pd.DataFrame:
    return search_records(store, **kwargs, run_view_type=3)


def uncached(store: Store, **kwargs: Any) -> pd.DataFrame:
    return search_records(store, **kwargs, run_view_type=3, use_cache=False)


def set_tag(store: Store, exp_id: str, rec_id: str, key: str, value: str) -> None:
    store.update_recorder(exp_id, rec_id, lambda meta: meta["tags"].__setitem__(key, value))


@pytest.fixture
def aged(store: Store) -> Iterator[tuple[Store, str, list[str]]]:
    exp_id = store.create_experiment("e")["id"]
    ids = [add(store, exp_id, i) for i in range(6)]
    age(store, exp_id)
    first = rows(store, exp_id)
    assert (first.read, first.reused, first.wrote) == (6, 0, True)
    assert (store.root / exp_id / cache.SUMMARY_FILE).is_file()
    yield store, exp_id, ids


def test_a_current_summary_is_used_whole(aged: tuple[Store, str, list[str]]) -> None:
    store, exp_id, _ids = aged
    again = rows(store, exp_id)
    assert (again.read, again.reused, again.removed, again.wrote) == (0, 6, 0, False)
    pd.testing.assert_frame_equal(frame(store), uncached(store))


def test_stale_after_a_tag_change(aged: tuple[Store, str, list[str]]) -> None:
    store, exp_id, ids = aged
    set_tag(store, exp_id, ids[2], "kind", "changed")
    report = rows(store, exp_id)
    assert (report.read, report.reused) == (1, 5)
    found = frame(store, filter_string="tags.kind = 'changed'")
    assert list(found["run_id"]) == [ids[2]]
    pd.testing.assert_frame_equal(frame(store), uncached(store))


def test_stale_after_a_new_recorder(aged: tuple[Store, str, list[str]]) -> None:
    store, exp_id, _ids = aged
    new = add(store, exp_id, 40)
    assert next(iter(frame(store)["run_id"])) == new
    assert rows(store, exp_id).reused == 6
    pd.testing.assert_frame_equal(frame(store), uncached(store))


def test_soft_and_hard_deleted_recorders(aged: tuple[Store, str, list[str]]) -> None:
    store, exp_id, ids = aged
    store.update_recorder(exp_id, ids[0], lambda meta: meta.__setitem__("lifecycle", "deleted"))
    shutil.rmtree(store.root / exp_id / ids[1])
    report = rows(store, exp_id)
    assert (report.read, report.reused, report.removed) == (1, 4, 1)
    active = search_records(store)
    assert ids[0] not in set(active["run_id"]) and ids[1] not in set(active["run_id"])
    assert list(search_records(store, run_view_type=2)["run_id"]) == [ids[0]]
    pd.testing.assert_frame_equal(frame(store), uncached(store))


def test_every_recorder_folder_removed(aged: tuple[Store, str, list[str]]) -> None:
    store, exp_id, ids = aged
    for rec_id in ids:
        shutil.rmtree(store.root / exp_id / rec_id)
    report = rows(store, exp_id)
    assert (report.folders, report.reused, report.removed, report.wrote) == (0, 0, 6, True)
    assert frame(store).empty
    assert rows(store, exp_id).reused == 0


def test_a_folder_replaced_under_the_same_id(aged: tuple[Store, str, list[str]]) -> None:
    store, exp_id, ids = aged
    folder = store.root / exp_id / ids[3]
    copy = store.root / exp_id / ".copy"
    shutil.copytree(folder, copy)
    meta = atomic.read_json(copy / layout.RECORDER_FILE)
    meta["params"]["i"] = "replaced"
    atomic.write_json(copy / layout.RECORDER_FILE, meta)
    shutil.rmtree(folder)
    os.rename(copy, folder)
    # Same name, same (old) mtime: only the inode and ctime tell the folders apart.
    stat = folder.stat()
    os.utime(folder, ns=(stat.st_atime_ns, time.time_ns() - HOUR_NS))
    assert list(frame(store, filter_string="params.i = 'replaced'")["run_id"]) == [ids[3]]


def test_the_summary_is_really_used(aged: tuple[Store, str, list[str]]) -> None:
    """An in-place edit that bypasses the atomic rename (a contract violation) leaves an old
    folder untouched, so the cached row is served until the folder changes or the summary is
    deleted: proof that a current summary is read instead of the files."""
    store, exp_id, ids = aged
    path = store.root / exp_id / ids[5] / layout.RECORDER_FILE
    folder_stat = path.parent.stat()
    text = path.read_text().replace('"odd"', '"ODD"')
    with open(path, "r+") as handle:  # in place: the folder's entries do not change
        handle.write(text)
    assert path.parent.stat().st_mtime_ns == folder_stat.st_mtime_ns
    assert list(frame(store, filter_string="tags.kind = 'ODD'")["run_id"]) == []
    assert list(uncached(store, filter_string="tags.kind = 'ODD'")["run_id"]) == [ids[5]]
    assert cache.drop_summaries(store.root) == 1
    assert list(frame(store, filter_string="tags.kind = 'ODD'")["run_id"]) == [ids[5]]


def test_a_recorder_changed_within_the_racy_window(store: Store) -> None:
    """A recent folder is re-read on every search even if its stat did not move (what a
    filesystem with one-second timestamps does to a second write within the same second)."""
    exp_id = store.create_experiment("e")["id"]
    old, recent = add(store, exp_id, 1), add(store, exp_id, 2)
    age(store, exp_id, old)
    built = rows(store, exp_id)
    assert built.wrote and built.read == 2
    assert rows(store, exp_id).read == 1  # the recent one, again
    path = store.root / exp_id / recent / layout.RECORDER_FILE
    stat = path.parent.stat()
    text = path.read_text().replace('"even"', '"EVEN"')
    with open(path, "r+") as handle:  # no rename: the folder's stat stays the same
        handle.write(text)
    assert path.parent.stat().st_mtime_ns == stat.st_mtime_ns
    assert list(frame(store, filter_string="tags.kind = 'EVEN'")["run_id"]) == [recent]


def test_racy_rule_with_exact_timestamps(store: Store) -> None:
    """With no window (a filesystem with exact times), a row is reused once its folder is
    strictly older than the build; one stamped in the build's own clock tick never is."""
    exp_id = store.create_experiment("e")["id"]
    ids = [add(store, exp_id, i) for i in range(3)]
    time.sleep(0.05)  # let the filesystem clock move past the folders' last change
    report = cache.BuildReport()
    cache.experiment_rows(store.root, exp_id, racy_ns=0, report=report)
    assert report.wrote
    summary = cache.read_summary(store.root / exp_id / cache.SUMMARY_FILE, exp_id)
    assert summary is not None
    built = summary[1]
    older = sum((store.root / exp_id / i).stat().st_mtime_ns < built for i in ids)
    again = cache.BuildReport()
    cache.experiment_rows(store.root, exp_id, racy_ns=0, report=again)
    assert (again.read, again.reused) == (3 - older, older)
    assert older == 3
    # The default window re-reads rows that recent.
    assert rows(store, exp_id).reused == 0
    assert sorted(search_records(store)["run_id"]) == sorted(ids)


def test_liveness_is_judged_at_read_time(store: Store, tmp_path: Path) -> None:
    exp_id = store.create_experiment("e")["id"]
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owner = liveness.owner_record()
        owner["pid"] = child.pid
        owner.pop("pid_start", None)  # started after the "run": compare by existence only
        owner["started"] = "2100-01-01T00:00:00+00:00"
        rec_id = add(store, exp_id, 1, status="RUNNING", owner=owner)
        age(store, exp_id)
        assert rows(store, exp_id).wrote
        assert list(search_records(store)["status"]) == ["RUNNING"]
    finally:
        child.kill()
        child.wait()
    report = rows(store, exp_id)
    assert report.reused == 1 and report.read == 0  # the cached row, stored status RUNNING
    assert list(search_records(store)["status"]) == [liveness.DEAD]
    metas = matching_recorder_metas(store, [exp_id], status=liveness.DEAD)
    assert [m["id"] for m in metas] == [rec_id]


def test_damaged_or_foreign_summaries_are_rebuilt(aged: tuple[Store, str, list[str]]) -> None:
    store, exp_id, _ids = aged
    summary = store.root / exp_id / cache.SUMMARY_FILE
    summary.write_bytes(b"not an arrow file")
    report = rows(store, exp_id)
    assert (report.read, report.wrote) == (6, True)
    # A summary copied from another experiment is not trusted either.
    other = store.create_experiment("other")["id"]
    shutil.copy(summary, store.root / other / cache.SUMMARY_FILE)
    assert rows(store, other).reused == 0
    assert search_records(store, [other]).empty
    pd.testing.assert_frame_equal(frame(store, experiment_ids=[exp_id]), uncached(store))


def test_a_read_only_store_still_searches(
    aged: tuple[Store, str, list[str]], tmp_path: Path
) -> None:
    store, exp_id, ids = aged
    set_tag(store, exp_id, ids[0], "kind", "after the summary")
    age(store, exp_id, ids[0], add(store, exp_id, 50))
    with read_only_view(store.root, tmp_path / "ro") as view:
        ro = Store(view)
        report = cache.BuildReport()
        cache.experiment_rows(view, exp_id, report=report)
        assert report.read == 2 and not report.wrote  # could not write: no error either
        got = frame(ro).drop(columns="artifact_uri")
        want = uncached(store).drop(columns="artifact_uri")
        pd.testing.assert_frame_equal(got, want)
        assert list(frame(ro, filter_string="tags.kind = 'after the summary'")["run_id"]) == [
            ids[0]
        ]
        # Nothing was left behind by the failed attempt.
        assert not [p for p in Path(view, exp_id).iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="permissions do not stop root (the read-only mount test covers root)",
)
def test_a_store_without_write_permission_still_searches(
    aged: tuple[Store, str, list[str]],
) -> None:
    store, exp_id, ids = aged
    set_tag(store, exp_id, ids[0], "kind", "after the summary")
    age(store, exp_id, ids[0])  # settled: the search tries to rewrite the summary, and cannot
    folder = store.root / exp_id
    folder.chmod(0o555)
    try:
        report = cache.BuildReport()
        cache.experiment_rows(store.root, exp_id, report=report)
        assert report.read >= 1 and not report.wrote
        found = frame(store, filter_string="tags.kind = 'after the summary'")
        assert list(found["run_id"]) == [ids[0]]
    finally:
        folder.chmod(0o755)


def test_the_summary_is_a_hidden_file_check_accepts(aged: tuple[Store, str, list[str]]) -> None:
    from tracklite.maintenance.check import UNKNOWN_FILE, check

    store, exp_id, ids = aged
    assert store.recorder_ids(exp_id) == sorted(ids, reverse=True)
    report = check(str(store.root))
    assert not [f for f in report.findings if f.kind == UNKNOWN_FILE]


# ---------------------------------------------------------------------- property


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 59)),
        st.tuples(st.just("tag"), st.integers(0, 20), st.sampled_from(["x", "y", "z"])),
        st.tuples(st.just("metric"), st.integers(0, 20), st.floats(-1, 1)),
        st.tuples(st.just("delete"), st.integers(0, 20)),
        st.tuples(st.just("remove"), st.integers(0, 20)),
        st.tuples(st.just("age"), st.integers(0, 20)),
        st.tuples(st.just("search"), st.sampled_from(["", "tags.kind = 'x'", "metrics.m > 0"])),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, racy=st.sampled_from([0, cache.RACY_NS]))
def test_cached_results_always_equal_uncached_results(
    ops: list[tuple[Any, ...]], racy: int
) -> None:
    """After any sequence of changes, searching through the summary gives exactly what reading
    every recorder.json gives (racy window 0 too, as on a filesystem with exact times)."""
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "store")
        store.ensure()
        exp_id = store.create_experiment("p")["id"]
        live: list[str] = []
        for op in ops:
            kind = op[0]
            pick = live[op[1] % len(live)] if live and kind not in ("add", "search") else None
            if kind == "add":
                live.append(add(store, exp_id, op[1]))
            elif kind == "tag" and pick:
                set_tag(store, exp_id, pick, "kind", op[2])
            elif kind == "metric" and pick:

                def log(meta: dict[str, Any], value: float = op[2]) -> None:
                    meta["metrics"]["m"] = {"value": value, "step": 1, "timestamp": 1}

                store.update_recorder(exp_id, pick, log)
            elif kind == "delete" and pick:
                store.update_recorder(
                    exp_id, pick, lambda meta: meta.__setitem__("lifecycle", "deleted")
                )
            elif kind == "remove" and pick:
                shutil.rmtree(store.root / exp_id / pick)
                live.remove(pick)
            elif kind == "age" and pick:
                age(store, exp_id, pick)
            elif kind == "search":
                got = search_records(store, filter_string=op[1], run_view_type=3)
                want = search_records(store, filter_string=op[1], run_view_type=3, use_cache=False)
                pd.testing.assert_frame_equal(got, want)
            # Someone searches after every change, so the summary keeps being rebuilt.
            cache.experiment_rows(store.root, exp_id, racy_ns=racy)
        pd.testing.assert_frame_equal(frame(store), uncached(store))


# ---------------------------------------------------------------------- the two parsers


def _json_path(store: Store, exp_id: str) -> pd.DataFrame:
    """Rows through the json module only (the fallback path), as a comparable frame."""
    names = store.recorder_ids(exp_id)
    metas = [store.read_recorder(exp_id, n) for n in names]
    table = cache.metas_table(exp_id, names, metas, [None] * len(names))  # type: ignore[arg-type]
    return _comparable(table)


def _comparable(table: Any) -> pd.DataFrame:
    table = table.drop_columns(
        [c for c in ("_ino", "_mtime_ns", "_ctime_ns") if c in table.column_names]
    )
    frame = table.to_pandas().astype(object)
    frame = frame.where(frame.notna(), None)
    frame["_owner"] = frame["_owner"].map(lambda o: None if o is None else json.loads(o))
    return frame[sorted(frame.columns)].sort_values("run_id").reset_index(drop=True)


def test_arrow_and_json_parsers_agree(store: Store) -> None:
    exp_id = store.create_experiment("e")["id"]
    owner = liveness.owner_record()
    add(store, exp_id, 1, status="RUNNING", owner=owner)
    add(
        store,
        exp_id,
        2,
        metrics={
            "nan": {"value": float("nan"), "step": 0, "timestamp": 0},
            "inf": {"value": float("inf"), "step": 3, "timestamp": 1},
            "int": {"value": 3, "step": 0, "timestamp": 0},
        },
    )
    add(store, exp_id, 3, params={}, tags={"ünïcode key": "välue", "a.b c": "x"})
    add(store, exp_id, 4, params={"only": "here"}, metrics={})
    # Strings that look like times stay the strings they are (qlib configs hold dates).
    add(store, exp_id, 5, params={"start": "2020-01-01", "i": "5"}, tags={"at": "12:30:00"})
    store.create_recorder(exp_id, "bare", status="FINISHED")  # no start time, empty data
    rows = cache.rows_table(
        exp_id, [(n, None) for n in store.recorder_ids(exp_id)], store.root / exp_id
    )
    arrow = _comparable(rows)
    assert len(arrow) == 6
    assert sorted(arrow["params.start"].dropna()) == ["2020-01-01"]
    pd.testing.assert_frame_equal(arrow, _json_path(store, exp_id))
    # The fast path was taken (the json path would give the same rows, so check directly).
    names = store.recorder_ids(exp_id)
    blobs = [(store.root / exp_id / n / layout.RECORDER_FILE).read_bytes() for n in names]
    assert cache._arrow_rows(exp_id, names, blobs, [None] * len(names)) is not None


def test_hand_edited_files_fall_back_to_the_json_module(store: Store) -> None:
    exp_id = store.create_experiment("e")["id"]
    ids = [add(store, exp_id, i) for i in range(3)]
    path = store.root / exp_id / ids[1] / layout.RECORDER_FILE
    meta = json.loads(path.read_text())
    meta["params"]["i"] = 7  # a number where tracklite writes strings
    meta["metrics"]["m"] = 5  # a bare number where tracklite writes an entry
    atomic.write_json(path, meta)
    names = store.recorder_ids(exp_id)
    blobs = [(store.root / exp_id / n / layout.RECORDER_FILE).read_bytes() for n in names]
    assert cache._arrow_rows(exp_id, names, blobs, [None] * 3) is None
    frame = search_records(store, order_by=["params.i"])
    assert list(frame["params.i"]) == ["0", "2", "7"]
    assert (
        frame.set_index("run_id").at[ids[1], "metrics.m"]
        != frame.set_index("run_id").at[ids[1], "metrics.m"]
    )  # NaN: the entry is malformed


def test_indented_recorder_files_of_older_stores(store: Store) -> None:
    """Stores written before recorder.json became one line hold indented files: the fast
    parser takes them too, with the same rows."""
    exp_id = store.create_experiment("e")["id"]
    add(store, exp_id, 1, status="RUNNING", owner=liveness.owner_record())
    add(store, exp_id, 2, params={"start": "2020-01-01"})
    for name in store.recorder_ids(exp_id):
        path = store.root / exp_id / name / layout.RECORDER_FILE
        meta = json.loads(path.read_text())
        atomic.write_bytes(path, (json.dumps(meta, indent=1) + "\n").encode())
        assert path.read_text().count("\n") > 10
    names = store.recorder_ids(exp_id)
    blobs = [(store.root / exp_id / n / layout.RECORDER_FILE).read_bytes() for n in names]
    fast = cache._arrow_rows(exp_id, names, blobs, [None] * len(names))
    assert fast is not None
    pd.testing.assert_frame_equal(_comparable(fast), _json_path(store, exp_id))
