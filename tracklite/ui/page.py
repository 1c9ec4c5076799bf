"""The page: tracklite's own HTML, CSS and JavaScript (package data in ``static/``) with
plotly.js from the ``plotly`` package, assembled into one document.

The report embeds its data in the document; the server's page fetches it. Both documents carry a
Content-Security-Policy that allows only the page's own scripts (by nonce) and no network at all
for the report, so even a string from the store that reached markup could not run or fetch.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gzip
import json
import os
import re
import secrets
from importlib import resources
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import UsageError
from .data import GROUP_SAMPLE

EXTRA_HINT = 'pip install "tracklite[ui]"'


def require_plotly() -> str:
    """plotly.js, from the ``plotly`` package (the ``tracklite[ui]`` extra)."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError as exc:
        raise UsageError(
            f"tracklite's page draws its charts with plotly, which is not installed: {EXTRA_HINT}"
        ) from exc
    script: str = get_plotlyjs()
    return script


@functools.lru_cache(maxsize=1)
def plotly_packed() -> str:
    """plotly.js gzipped and base64-encoded: about 2 MB instead of 4.8; the page inflates it
    with the browser's own DecompressionStream. Kept in the user's cache folder per plotly
    version (compressing it costs about a second)."""
    import plotly

    script = require_plotly()
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    cached = Path(home) / "tracklite" / f"plotly-{plotly.__version__}-{len(script)}.js.gz.b64"
    with contextlib.suppress(OSError):
        return cached.read_text(encoding="ascii")
    packed = base64.b64encode(gzip.compress(script.encode(), 6, mtime=0)).decode()
    with contextlib.suppress(OSError):  # no cache where the home is read-only: fine
        cached.parent.mkdir(parents=True, exist_ok=True)
        temp = cached.with_name(f".{cached.name}.{os.getpid()}")
        temp.write_text(packed, encoding="ascii")
        os.replace(temp, cached)
    return packed


def asset(name: str) -> str:
    folder = resources.files("tracklite.ui") / "static"
    return (folder / name).read_text(encoding="utf-8")


def embed_json(value: Any) -> str:
    """JSON safe inside a ``<script type="application/json">``: no ``<`` can close it."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render(mode: str, data: dict[str, Any] | None = None) -> tuple[str, str]:
    """The page's HTML and its Content-Security-Policy. ``mode`` is ``report`` (``data``
    embedded, no network) or ``live`` (data from the server it came from)."""
    config = {"mode": mode, "version": __version__, "group_sample": GROUP_SAMPLE}
    nonce = secrets.token_urlsafe(16)
    live = mode == "live"
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src 'nonce-{nonce}' 'unsafe-eval'",
            "style-src 'unsafe-inline'",
            "img-src data: blob:",
            "font-src data:",
            f"connect-src {'self' if live else 'none'}".replace("self", "'self'"),
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
    html = asset("index.html")
    parts = {
        "<!--TRACKLITE-CSP-->": policy,
        "/*TRACKLITE-STYLE*/": asset("app.css"),
        "<!--TRACKLITE-CONFIG-->": embed_json(config),
        "<!--TRACKLITE-DATA-->": embed_json(data) if data is not None else "null",
        "<!--TRACKLITE-PLOTLY-->": plotly_packed(),
        "/*TRACKLITE-APP*/": asset("app.js"),
        "TRACKLITE-NONCE": nonce,
    }
    # One pass over the template: text put in (store data) is never searched for markers.
    pattern = "|".join(re.escape(marker) for marker in parts)
    return re.sub(pattern, lambda match: parts[match.group(0)], html), policy
