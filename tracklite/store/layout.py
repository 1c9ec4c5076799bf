"""Where everything lives inside a store folder, and how a tracking URI names that folder.

::

    <root>/tracklite.json                 store marker (format_version, created)
    <root>/.lock                          lock for store-wide changes
    <root>/<experiment_id>/experiment.json
    <root>/<experiment_id>/<recorder_id>/recorder.json
    <root>/<experiment_id>/<recorder_id>/latest.parquet   latest metrics past a thousand keys
    <root>/<experiment_id>/<recorder_id>/heartbeat
    <root>/<experiment_id>/<recorder_id>/metrics/<segment>.parquet
    <root>/<experiment_id>/<recorder_id>/artifacts/...

``docs/format.md`` is the contract; this module is its only implementation.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

FORMAT_VERSION = 1
MARKER = "tracklite.json"
STORE_LOCK = ".lock"
EXPERIMENT_FILE = "experiment.json"
RECORDER_FILE = "recorder.json"
RECORDER_LOCK = ".lock"
HEARTBEAT_FILE = "heartbeat"
#: The latest-metrics summary of a recorder with many keys (``tracklite.metrics.latest``).
LATEST_FILE = "latest.parquet"
METRICS_DIR = "metrics"
ARTIFACTS_DIR = "artifacts"
SEGMENT_SUFFIX = ".parquet"
QUARANTINE_DIR = ".quarantine"
#: Inside an experiment folder: the search summary with its change journals
#: (``tracklite.store.changes``), and the summary file of earlier releases (deleted when seen).
CHANGES_DIR = ".changes"
LEGACY_SUMMARY_FILE = ".summary.arrow"

#: Every name tracklite keeps at the store root, in an experiment folder and in a recorder
#: folder, besides the experiment and recorder folders themselves (``tracklite check`` reports
#: anything else as unknown).
ROOT_ENTRIES = frozenset({MARKER, STORE_LOCK, QUARANTINE_DIR})
EXPERIMENT_ENTRIES = frozenset({EXPERIMENT_FILE, CHANGES_DIR, LEGACY_SUMMARY_FILE})
RECORDER_ENTRIES = frozenset({RECORDER_FILE, RECORDER_LOCK, HEARTBEAT_FILE, LATEST_FILE})

#: The store used when no URI is configured: a folder in the current directory. The name cannot
#: be mistaken for MLflow's ``mlruns`` or TensorBoard's ``runs``.
DEFAULT_STORE_NAME = "tracklite-store"
URI_ENV = "TRACKLITE_URI"


def default_uri() -> str:
    """``$TRACKLITE_URI`` if set, else ``./tracklite-store`` (absolute, from the current folder)."""
    env = os.environ.get(URI_ENV)
    if env:
        return env
    return str(Path.cwd() / DEFAULT_STORE_NAME)


def uri_to_path(uri: str | os.PathLike[str]) -> Path:
    """Turn a tracking URI into an absolute store path.

    Accepts plain paths (relative or absolute, ``~`` expanded) and ``file:`` URIs in all their
    spellings: ``file:/abs``, ``file:///abs``, ``file://localhost/abs`` and ``file:relative``.
    """
    text = os.fspath(uri)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"tracking URI must be a non-empty path or file: URI, got {uri!r}")
    if text.startswith("file:"):
        parsed = urlparse(text)
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(
                f"tracking URI {text!r} names host {parsed.netloc!r}; tracklite stores are local "
                "folders (use file:/absolute/path or a plain path)"
            )
        text = unquote(parsed.path)
        if not text:
            raise ValueError(f"tracking URI {uri!r} has no path")
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise ValueError(
            f"tracking URI {text!r} uses scheme {scheme!r}; tracklite stores are local folders "
            "(use file:/absolute/path or a plain path)"
        )
    return Path(os.path.abspath(os.path.expanduser(text)))


def experiment_dir(root: Path, experiment_id: str) -> Path:
    """``<root>/<experiment_id>``: every path to an experiment is built here."""
    return root / experiment_id


def experiment_file(root: Path, experiment_id: str) -> Path:
    """``<root>/<experiment_id>/experiment.json``."""
    return experiment_dir(root, experiment_id) / EXPERIMENT_FILE


def recorder_dir(root: Path, experiment_id: str, recorder_id: str) -> Path:
    """``<root>/<experiment_id>/<recorder_id>``: every path to a recorder is built here."""
    return experiment_dir(root, experiment_id) / recorder_id


def is_id_name(name: str) -> bool:
    """Whether a folder entry could be an experiment or recorder folder (not hidden, not a file
    tracklite owns)."""
    return not name.startswith(".") and name not in (MARKER, STORE_LOCK) and "." not in name
