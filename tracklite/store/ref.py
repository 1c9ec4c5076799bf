"""A resolved pointer to one recorder's folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import layout


@dataclass(frozen=True, slots=True)
class RecorderRef:
    """Where a recorder lives: store root, experiment id, recorder id. Hashable, cheap."""

    root: Path
    experiment_id: str
    recorder_id: str

    @property
    def dir(self) -> Path:
        return self.root / self.experiment_id / self.recorder_id

    @property
    def metrics_dir(self) -> Path:
        return self.dir / layout.METRICS_DIR

    @property
    def artifacts_dir(self) -> Path:
        return self.dir / layout.ARTIFACTS_DIR

    @property
    def meta_path(self) -> Path:
        return self.dir / layout.RECORDER_FILE
