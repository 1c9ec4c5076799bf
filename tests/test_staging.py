"""New experiment and recorder folders appear whole: built under a hidden name, then renamed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracklite.store import atomic


def _visible(folder: Path) -> list[str]:
    # What globbing `*`, pandas and the json-only reader of docs/format.md see.
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_a_folder_being_built_is_hidden_until_published(tmp_path: Path) -> None:
    tmp_path = tmp_path / "experiment"
    tmp_path.mkdir()
    target = tmp_path / "0123abcd"
    seen: list[list[str]] = []

    def fill(staging: Path) -> None:
        seen.append(_visible(tmp_path))
        assert staging.parent == tmp_path and staging.name.startswith(".")
        atomic.write_json(staging / "recorder.json", {"id": target.name})
        seen.append(_visible(tmp_path))

    atomic.publish_folder(target, fill)
    assert seen == [[], []]
    assert _visible(tmp_path) == [target.name]
    assert json.loads((target / "recorder.json").read_text()) == {"id": target.name}
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no staging left


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    tmp_path = tmp_path / "experiment"
    tmp_path.mkdir()

    def fill(staging: Path) -> None:
        (staging / "half").write_text("x")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic.publish_folder(tmp_path / "0123abcd", fill)
    assert list(tmp_path.iterdir()) == []


def test_a_store_marker_planted_as_a_link_is_not_read(tmp_path: Path) -> None:
    from tracklite import StoreError
    from tracklite.store.root import Store

    root = tmp_path / "store"
    Store(root).ensure()
    marker = root / "tracklite.json"
    outside = tmp_path / "elsewhere.json"
    outside.write_bytes(marker.read_bytes())  # a valid marker: only the link makes it wrong
    marker.unlink()
    marker.symlink_to(outside)
    with pytest.raises(StoreError, match=r"tracklite\.json"):
        Store(root).exists()
    with pytest.raises(OSError):
        atomic.read_json(marker)
