"""Parquet copies of pandas artifacts, stored beside their pickles so that readers (``tracklite
ui``/``report``) never need to unpickle.

tracklite's record templates copy every Series and DataFrame they save. A recorder of
:mod:`tracklite.qlib` (the adapter, or qlib's ``R`` after ``from tracklite import R``) copies the
objects at qlib's standard analysis paths that the page's qlib panels read, whoever saves them:
qlib's own ``SigAnaRecord``, ``HFSignalRecord`` and ``PortAnaRecord`` included.

Importing this module imports neither pandas nor pyarrow.
"""

from __future__ import annotations

import logging
import posixpath
from typing import Any, Protocol

__all__ = [
    "PORTFOLIO_FOLDER",
    "REPORT_PREFIX",
    "RISK_PREFIX",
    "SIGNAL_FOLDERS",
    "copy_name",
    "is_qlib_analysis",
    "save",
]

logger = logging.getLogger("tracklite.parquet_copies")

#: Folders of qlib's signal analyses, holding ``ic.pkl`` and ``ric.pkl``.
SIGNAL_FOLDERS = ("sig_analysis", "hg_sig_analysis")
#: Folder of qlib's portfolio analysis: ``report_normal_<freq>.pkl``, ``port_analysis_<freq>.pkl``.
PORTFOLIO_FOLDER = "portfolio_analysis"
REPORT_PREFIX = "report_normal_"
RISK_PREFIX = "port_analysis_"
_SIGNAL_STEMS = ("ic", "ric")


class _Saver(Protocol):
    def save_objects(
        self, local_path: Any = None, artifact_path: str | None = None, **kwargs: Any
    ) -> None: ...


def copy_name(name: str) -> str:
    """The Parquet copy's name for artifact ``name``: ``ic.pkl`` -> ``ic.parquet``."""
    return f"{name.rsplit('.', 1)[0]}.parquet"


def is_qlib_analysis(path: str) -> bool:
    """Whether artifact ``path`` is one of qlib's analysis pickles the page's qlib panels show:
    ``{sig_analysis,hg_sig_analysis}/{ic,ric}.pkl``,
    ``portfolio_analysis/{report_normal,port_analysis}_<freq>.pkl``."""
    folder, _, name = path.strip("/").rpartition("/")
    stem, suffix = posixpath.splitext(name)
    if suffix != ".pkl":
        return False
    if folder in SIGNAL_FOLDERS:
        return stem in _SIGNAL_STEMS
    if folder == PORTFOLIO_FOLDER:
        return any(stem.startswith(p) and len(stem) > len(p) for p in (REPORT_PREFIX, RISK_PREFIX))
    return False


def save(recorder: _Saver, objects: dict[str, Any], artifact_path: str | None) -> None:
    """Save each pandas Series or DataFrame of ``objects`` (``{file name: object}``) as
    :func:`copy_name` under ``artifact_path`` of ``recorder``. A frame Parquet cannot hold is
    skipped with a log message: the pickle stays the artifact."""
    import sys

    pandas = sys.modules.get("pandas")
    if pandas is None:
        return  # pandas was never imported, so none of the objects is a pandas object
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="tracklite-parquet-") as folder:
        written = 0
        for name, obj in objects.items():
            if isinstance(obj, pandas.Series):
                frame = obj.to_frame(str(obj.name or "value"))
            elif isinstance(obj, pandas.DataFrame):
                frame = obj.copy()
            else:
                continue
            frame.columns = [
                ".".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in frame.columns
            ]
            try:
                frame.to_parquet(Path(folder) / copy_name(name))
                written += 1
            except Exception as exc:  # any conversion failure: the pickle stays the artifact
                logger.info("no Parquet copy of %s: %s", name, exc)
        if written:
            recorder.save_objects(local_path=folder, artifact_path=artifact_path or None)
