"""Stores the page's tests look at, written through tracklite's own API, and a server over
one."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from tracklite import ExpManager, QlibRecorder
from tracklite.ui.server import UiServer, serve

XSS_NAME = "<b>b</b><img src=x onerror=\"window.__pwned='name'\">"
XSS_PARAM = "<script>window.__pwned='param'</script>"
XSS_TAG = "\" onerror=\"window.__pwned='tag'"
XSS_ARTIFACT = "<svg onload=window.__pwned=1>.txt"


def build_store(root: Path) -> dict[str, str]:
    """Two experiments: ``lgb`` with four runs (lr, loss over 50 steps, acc) and ``mlp`` with
    one whose name, a param, a tag and an artifact's name and content carry script payloads.
    Returns the recorder ids by name (``xss`` for the last)."""
    R = QlibRecorder(ExpManager(uri=str(root)))
    ids: dict[str, str] = {}
    for i, lr in enumerate(["0.1", "0.05", "0.01", "0.001"]):
        with R.start(experiment_name="lgb", recorder_name=f"run-{i}"):
            R.log_params(lr=lr, model="lgb", seed=str(i % 2))
            for step in range(50):
                R.log_metrics(step=step, loss=(i + 1) / (step + 1), acc=0.5 + i * 0.1)
            ids[f"run-{i}"] = R.get_recorder().id
    files = root.parent / "files"
    files.mkdir(exist_ok=True)
    (files / XSS_ARTIFACT).write_text("<script>window.__pwned='artifact'</script>")
    (files / "notes.json").write_text('{"a": [1, 2, 3]}')
    (files / "table.csv").write_text("x,y\n1,2\n3,4\n")
    with R.start(experiment_name="mlp", recorder_name=XSS_NAME):
        R.log_params(lr="0.1", model=XSS_PARAM)
        R.set_tags(note=XSS_TAG)
        R.log_metrics(step=0, loss=3.0)
        R.log_metrics(step=1, loss=2.0)
        R.log_artifact(str(files))
        R.save_objects(**{"model.pkl": {"weights": [1, 2]}})
        ids["xss"] = R.get_recorder().id
    return ids


@contextlib.contextmanager
def serving(uri: str | Path) -> Iterator[UiServer]:
    """A ``tracklite ui`` server over ``uri`` on a free local port, in a thread of its own,
    shut down after the block."""
    srv = serve(str(uri), "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
