"""The per-experiment search summary is a cache that is never stale.

Folders are aged with ``os.utime`` where a test needs the experiment folder older than the racy
window (a real store reaches that state by itself a few seconds after its last change).
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
from tracklite.metrics import latest
from tracklite.search import cache
from tracklite.search.listing import matching_recorder_metas, search_records
from tracklite.store import atomic, changes, layout
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
    """Move the folders' mtime an hour back, out of the racy window (the experiment folder and
    the recorders given, or all)."""
    past = time.time_ns() - HOUR_NS
    for rec_id in rec_ids or store.recorder_ids(exp_id):
        os.utime(store.root / exp_id / rec_id, ns=(past, past))
    os.utime(store.root / exp_id, ns=(past, past))


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


def summaries(store: Store, exp_id: str) -> list[str]:
    folder = changes.journal_dir(store.root / exp_id)
    return sorted(n for n in os.listdir(folder) if n.startswith(changes.SUMMARY_PREFIX))


def journals(store: Store, exp_id: str) -> list[str]:
    folder = changes.journal_dir(store.root / exp_id)
    return sorted(n for n in os.listdir(folder) if n.endswith(changes.JOURNAL_SUFFIX))


@pytest.fixture
def aged(store: Store) -> Iterator[tuple[Store, str, list[str]]]:
    exp_id = store.create_experiment("e")["id"]
    ids = [add(store, exp_id, i) for i in range(6)]
    age(store, exp_id)
    first = rows(store, exp_id)
    assert (first.read, first.reused, first.wrote, first.full) == (6, 0, True, True)
    assert len(summaries(store, exp_id)) == 1
    yield store, exp_id, ids


def test_a_current_summary_is_used_whole(aged: tuple[Store, str, list[str]]) -> None:
    store, exp_id, _ids = aged
    again = rows(store, exp_id)
    assert (again.folders, again.read, again.reused, again.removed) == (0, 0, 6, 0)
    assert not again.wrote and not again.full
    pd.testing.assert_frame_equal(frame(store), uncached(store))


def test_a_change_re_reads_that_recorder_only(aged: tuple[Store, str, list[str]]) -> None:
    store, exp_id, ids = aged
    set_tag(store, exp_id, ids[2], "kind", "changed")
    report = rows(store, exp_id)
    assert (report.folders, report.read, report.reused) == (0, 1, 5)
    found = frame(store, filter_string="tags.kind = 'changed'")
    assert list(found["run_id"]) == [ids[2]]
    pd.testing.assert_frame_equal(frame(store), uncached(store))


def test_a_new_recorder(aged: tuple[Store, str, list[str]]) -> None:
    store, exp_id, _ids = aged
    new = add(store, exp_id, 40)
    report = rows(store, exp_id)
    assert (report.reused, report.read) == (6, 1)
    assert next(iter(frame(store)["run_id"])) == new
    pd.testing.assert_frame_equal(frame(store), uncached(store))


def test_soft_and_hard_deleted_recorders(aged: tuple[Store, str, list[str]]) -> None:
    store, exp_id, ids = aged
    store.update_recorder(exp_id, ids[0], lambda meta: meta.__setitem__("lifecycle", "deleted"))
    shutil.rmtree(store.root / exp_id / ids[1])  # by hand: no journal says so
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
    assert (report.folders, report.reused, report.removed) == (0, 0, 6)
    assert frame(store).empty
    assert rows(store, exp_id).reused == 0


def test_the_summary_is_really_used(aged: tuple[Store, str, list[str]]) -> None:
    """An in-place edit that bypasses tracklite (a contract violation) is not journaled, so the
    cached row is served until the summary is deleted: proof that a current summary is read
    instead of the files."""
    store, exp_id, ids = aged
    path = store.root / exp_id / ids[5] / layout.RECORDER_FILE
    text = path.read_text().replace('"odd"', '"ODD"')
    with open(path, "r+") as handle:
        handle.write(text)
    assert list(frame(store, filter_string="tags.kind = 'ODD'")["run_id"]) == []
    assert list(uncached(store, filter_string="tags.kind = 'ODD'")["run_id"]) == [ids[5]]
    assert cache.drop_summaries(store.root) == 1
    assert list(frame(store, filter_string="tags.kind = 'ODD'")["run_id"]) == [ids[5]]


def test_the_folder_is_listed_again_while_racy(store: Store) -> None:
    """A recorder folder added in the same clock tick as a listing leaves the experiment
    folder's mtime unchanged: the folder is listed again until its mtime is older than the
    racy window, then a summary records it and searches stop listing."""
    exp_id = store.create_experiment("e")["id"]
    add(store, exp_id, 1)
    assert rows(store, exp_id).full
    add(store, exp_id, 2)
    assert rows(store, exp_id).folders == 2
    assert rows(store, exp_id).folders == 2  # still recent: listed again
    past = time.time_ns() - HOUR_NS
    os.utime(store.root / exp_id, ns=(past, past))
    settled = rows(store, exp_id)
    assert settled.folders == 2 and settled.wrote
    assert rows(store, exp_id).folders == 0


def test_a_folder_added_by_hand_in_the_listing_tick(store: Store) -> None:
    """With an exact clock (no racy window) a summary still lists a folder whose mtime is
    not strictly older than its build."""
    exp_id = store.create_experiment("e")["id"]
    add(store, exp_id, 1)
    cache.experiment_rows(store.root, exp_id, racy_ns=0)
    src = store.root / exp_id / store.recorder_ids(exp_id)[0]
    twin = "f" * 32
    shutil.copytree(src, store.root / exp_id / twin)
    meta = atomic.read_json(src / layout.RECORDER_FILE)
    atomic.write_json(store.root / exp_id / twin / layout.RECORDER_FILE, {**meta, "id": twin})
    found = cache.experiment_rows(store.root, exp_id, racy_ns=0)
    assert sorted(found.column(cache.RUN_ID).to_pylist()) == sorted(store.recorder_ids(exp_id))


def test_liveness_is_judged_at_read_time(store: Store, tmp_path: Path) -> None:
    exp_id = store.create_experiment("e")["id"]
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
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


def test_damaged_summaries_are_rebuilt(aged: tuple[Store, str, list[str]]) -> None:
    store, exp_id, _ids = aged
    folder = changes.journal_dir(store.root / exp_id)
    (folder / summaries(store, exp_id)[0]).write_bytes(b"not an arrow file")
    report = rows(store, exp_id)
    assert (report.read, report.wrote, report.full) == (6, True, True)
    pd.testing.assert_frame_equal(frame(store, experiment_ids=[exp_id]), uncached(store))


def test_a_read_only_store_still_searches(
    aged: tuple[Store, str, list[str]], tmp_path: Path
) -> None:
    store, exp_id, ids = aged
    set_tag(store, exp_id, ids[0], "kind", "after the summary")
    add(store, exp_id, 50)
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


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="permissions do not stop root (the read-only mount test covers root)",
)
def test_a_store_without_write_permission_still_searches(
    aged: tuple[Store, str, list[str]],
) -> None:
    store, exp_id, ids = aged
    set_tag(store, exp_id, ids[0], "kind", "after the summary")
    folder = changes.journal_dir(store.root / exp_id)
    folder.chmod(0o555)
    try:
        for _ in range(300):  # past FOLD_BYTES: the search tries to publish, and cannot
            set_tag(store, exp_id, ids[1], "n", "x" * 200)
        report = cache.BuildReport()
        cache.experiment_rows(store.root, exp_id, report=report)
        assert report.read == 2 and not report.wrote
        found = frame(store, filter_string="tags.kind = 'after the summary'")
        assert list(found["run_id"]) == [ids[0]]
    finally:
        folder.chmod(0o755)


# ---------------------------------------------------------------------- journals


_KILLED_MID_WRITE = """
import os, signal, sys
from tracklite.store import atomic, changes, layout
from tracklite.store.root import Store
store, exp_id, rec_id, step = Store(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
folder = store.root / exp_id / rec_id
meta = store.read_recorder(exp_id, rec_id)
meta["tags"]["kind"] = "killed"
with changes.noting(folder.parent, rec_id):
    if step == "before-rename":
        os.kill(os.getpid(), signal.SIGKILL)
    atomic.write_json(folder / layout.RECORDER_FILE, meta)
    os.kill(os.getpid(), signal.SIGKILL)  # after the rename, before the "-" line
"""


@pytest.mark.parametrize("step", ["before-rename", "after-rename"])
def test_a_writer_killed_between_its_two_journal_lines(
    aged: tuple[Store, str, list[str]], step: str
) -> None:
    store, exp_id, ids = aged
    before = set(journals(store, exp_id))
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_WRITE, str(store.root), exp_id, ids[3], step],
        check=False,
    )
    assert child.returncode == -9
    (killed,) = set(journals(store, exp_id)) - before
    want = [ids[3]] if step == "after-rename" else []
    for _ in range(2):  # the first fold re-reads it and drops the dead writer's journal
        assert list(frame(store, filter_string="tags.kind = 'killed'")["run_id"]) == want
        pd.testing.assert_frame_equal(frame(store), uncached(store))
    assert killed not in journals(store, exp_id)  # folded, its writer gone: deleted


def test_a_torn_last_line_waits_for_its_newline(aged: tuple[Store, str, list[str]]) -> None:
    store, exp_id, ids = aged
    path = changes.journal_dir(store.root / exp_id) / "0000torn.log"
    path.write_bytes(f"- {ids[0][:10]}".encode())  # a writer stopped mid-append
    report = rows(store, exp_id)
    assert report.read == 0
    with open(path, "ab") as handle:
        handle.write(f"{ids[0][10:]}\n".encode())
    assert rows(store, exp_id).read == 1


def test_a_closed_journal_is_folded_and_deleted(aged: tuple[Store, str, list[str]]) -> None:
    store, exp_id, ids = aged
    script = (
        "import sys; from tracklite.store.root import Store; "
        "Store(sys.argv[1]).update_recorder(sys.argv[2], sys.argv[3], "
        "lambda m: m['tags'].__setitem__('kind', 'closed'))"
    )
    subprocess.run([sys.executable, "-c", script, str(store.root), exp_id, ids[4]], check=True)
    (name,) = [
        j
        for j in journals(store, exp_id)
        if changes.read_tail(changes.journal_dir(store.root / exp_id) / j, 0).closed
    ]
    report = rows(store, exp_id)
    assert report.read == 1 and report.wrote
    assert name not in journals(store, exp_id)
    assert list(frame(store, filter_string="tags.kind = 'closed'")["run_id"]) == [ids[4]]
    assert rows(store, exp_id).read == 0


def test_one_generation_is_published_once(aged: tuple[Store, str, list[str]]) -> None:
    """Two readers folding at once: the second to publish a generation is refused."""
    store, exp_id, _ids = aged
    folder = changes.journal_dir(store.root / exp_id)
    (current,) = summaries(store, exp_id)
    summary = cache.read_summary(folder / current)
    assert summary is not None
    summary.generation += 1
    results = []
    for _ in range(2):
        temp, _built = cache._open_temp(folder)
        assert temp is not None
        results.append(
            cache._publish(temp, cache.summary_path(folder, summary.generation), summary)
        )
    assert results == [True, False]
    assert not [n for n in os.listdir(folder) if n.startswith(".tmp-")]


def test_a_forked_child_writes_a_journal_of_its_own(aged: tuple[Store, str, list[str]]) -> None:
    store, exp_id, ids = aged
    set_tag(store, exp_id, ids[0], "kind", "parent")
    before = set(journals(store, exp_id))
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            set_tag(store, exp_id, ids[1], "kind", "child")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert len(set(journals(store, exp_id)) - before) == 1
    pd.testing.assert_frame_equal(frame(store), uncached(store))


_SEARCHER = """
import sys
from tracklite.search import cache
from pathlib import Path
for _ in range(int(sys.argv[3])):
    cache.experiment_rows(Path(sys.argv[1]), sys.argv[2])
"""


def test_readers_folding_concurrently_with_a_writer(aged: tuple[Store, str, list[str]]) -> None:
    store, exp_id, ids = aged
    readers = [
        subprocess.Popen([sys.executable, "-c", _SEARCHER, str(store.root), exp_id, "30"])
        for _ in range(2)
    ]
    for i in range(150):
        set_tag(store, exp_id, ids[i % 6], "n", str(i) + "x" * 500)
        if i % 50 == 0:
            add(store, exp_id, 100 + i)
    for reader in readers:
        assert reader.wait() == 0
    pd.testing.assert_frame_equal(frame(store), uncached(store))


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
        st.tuples(st.just("spill"), st.integers(0, 20), st.floats(-1, 1)),
        st.tuples(st.just("delete"), st.integers(0, 20)),
        st.tuples(st.just("remove"), st.integers(0, 20)),
        st.tuples(st.just("age"), st.integers(0, 20)),
        st.tuples(
            st.just("search"),
            st.sampled_from(["", "tags.kind = 'x'", "metrics.m > 0", "metrics.k < 0"]),
        ),
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
            elif kind == "spill" and pick:
                # As a writer past INLINE_KEYS keys: the summary moves to latest.parquet.

                def spill(
                    meta: dict[str, Any], value: float = op[2], folder: Path = store.root / exp_id
                ) -> None:
                    meta["metrics"]["k"] = {"value": value, "step": 2, "timestamp": 2}
                    latest.spill(folder / meta["id"], meta, force=True)

                store.update_recorder(exp_id, pick, spill)
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
    table = cache.metas_table(exp_id, names, metas)  # type: ignore[arg-type]
    return _comparable(table)


def _comparable(table: Any) -> pd.DataFrame:
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
    rows = cache.rows_table(exp_id, store.recorder_ids(exp_id), store.root / exp_id)
    arrow = _comparable(rows)
    assert len(arrow) == 6
    assert sorted(arrow["params.start"].dropna()) == ["2020-01-01"]
    pd.testing.assert_frame_equal(arrow, _json_path(store, exp_id))
    # The fast path was taken (the json path would give the same rows, so check directly).
    names = store.recorder_ids(exp_id)
    blobs = [(store.root / exp_id / n / layout.RECORDER_FILE).read_bytes() for n in names]
    assert cache._arrow_rows(exp_id, names, blobs) is not None


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
    assert cache._arrow_rows(exp_id, names, blobs) is None
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
    fast = cache._arrow_rows(exp_id, names, blobs)
    assert fast is not None
    pd.testing.assert_frame_equal(_comparable(fast), _json_path(store, exp_id))


def test_a_recorder_rebuilt_by_check_fix_is_searched_rebuilt(
    aged: tuple[Store, str, list[str]],
) -> None:
    """A recorder.json damaged by hand is not journaled; `check --fix` rebuilding it is."""
    from tracklite.maintenance.check import check

    store, exp_id, ids = aged
    path = store.root / exp_id / ids[2] / layout.RECORDER_FILE
    atomic.write_bytes(path, b"{not json")
    report = check(store.root, fix=True)
    assert "corrupt_metadata" in {f.kind for f in report.findings}, report
    rebuilt = frame(store).set_index("run_id")
    assert rebuilt.at[ids[2], "status"] == "FAILED"
    pd.testing.assert_frame_equal(frame(store), uncached(store))


def test_a_link_planted_at_the_summary_temporary_is_never_followed(
    aged: tuple[Store, str, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Temporary names are random; fix the random part so that a link can wait at the name the
    # next summary's temporary will take (as a colleague sharing the store could try by luck).
    store, exp_id, ids = aged
    monkeypatch.setattr(cache.atomic.safefs.secrets, "token_hex", lambda _n=None: "0badc0de")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    folder = changes.journal_dir(store.root / exp_id)
    (folder / f".tmp-summary.{os.getpid()}.0badc0de").symlink_to(victim)
    set_tag(store, exp_id, ids[2], "kind", "changed")
    report = rows(store, exp_id)
    assert (report.read, report.reused, report.wrote) == (1, 5, False)
    assert victim.read_text() == "keep"
    assert list(frame(store, filter_string="tags.kind = 'changed'")["run_id"]) == [ids[2]]
