"""A resolved pointer to one recorder's folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import layout


@dataclass(frozen=True, slots=True)
class RecorderRef:
    """Where a recorder lives: store root, experiment id, recorder id. Hashable, cheap.

    The folder paths are built once here: they are used on every flush and artifact call.
    """

    root: Path
    experiment_id: str
    recorder_id: str
    dir: Path = field(init=False, compare=False, repr=False)
    metrics_dir: Path = field(init=False, compare=False, repr=False)
    artifacts_dir: Path = field(init=False, compare=False, repr=False)
    meta_path: Path = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        folder = self.root / self.experiment_id / self.recorder_id
        object.__setattr__(self, "dir", folder)
        object.__setattr__(self, "metrics_dir", folder / layout.METRICS_DIR)
        object.__setattr__(self, "artifacts_dir", folder / layout.ARTIFACTS_DIR)
        object.__setattr__(self, "meta_path", folder / layout.RECORDER_FILE)
