"""A resolved pointer to one recorder's folder."""

from __future__ import annotations

from pathlib import Path

from . import layout


class RecorderRef:
    """Where a recorder lives: store root, experiment id, recorder id. Hashable, cheap.

    The folder path is built on first use and kept: listing 10,000 recorders makes a reference
    for each and needs no path at all, while a running recorder uses it at every flush.
    """

    __slots__ = ("_dir", "experiment_id", "recorder_id", "root")

    def __init__(self, root: Path, experiment_id: str, recorder_id: str) -> None:
        self.root = root
        self.experiment_id = experiment_id
        self.recorder_id = recorder_id
        self._dir: Path | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RecorderRef) and (
            self.recorder_id == other.recorder_id
            and self.experiment_id == other.experiment_id
            and self.root == other.root
        )

    def __hash__(self) -> int:
        return hash((self.root, self.experiment_id, self.recorder_id))

    def __repr__(self) -> str:
        return f"RecorderRef({str(self.root)!r}, {self.experiment_id!r}, {self.recorder_id!r})"

    @property
    def dir(self) -> Path:
        folder = self._dir
        if folder is None:
            folder = self._dir = layout.recorder_dir(
                self.root, self.experiment_id, self.recorder_id
            )
        return folder

    @property
    def metrics_dir(self) -> Path:
        return self.dir / layout.METRICS_DIR

    @property
    def artifacts_dir(self) -> Path:
        return self.dir / layout.ARTIFACTS_DIR

    @property
    def meta_path(self) -> Path:
        return self.dir / layout.RECORDER_FILE
