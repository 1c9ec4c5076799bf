"""``tracklite ui``: a local, read-only web server over a store.

The standard library's threading HTTP server. Every request must carry the random token the
server printed (``?token=`` in the URL, or the ``X-Tracklite-Token`` header the page sends):
401 without one, 403 with a wrong one. It answers GET only, never writes to the store, never
unpickles, and refuses artifact paths that leave a recorder's artifacts folder (``..``,
absolute paths, links pointing out).
"""

from __future__ import annotations

import hmac
import json
import mimetypes
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .._version import __version__
from ..errors import NotFoundError
from . import page
from .data import POINT_STATS, StoreData

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
PAGE_ROWS = 500  # rows per runs request at most
#: Past this many metric keys in a runs table or a set of selected runs, their rows carry only
#: the keys the page asks for (``metrics=``): a run may have 100,000 keys, and a page of rows
#: would be hundreds of MB.
ALL_KEYS_UP_TO = 200
SEARCH_KEEP = 2.0  # seconds a search result answers page requests before it is redone
#: A table sorted by a metric's min, max or best step reads that key's points of every run:
#: past this many runs the server refuses (a filter narrows the table).
STAT_SORT_RUNS = 5000


class UiServer(ThreadingHTTPServer):
    """The server: its store, its token and a short-lived cache of the last searches."""

    daemon_threads = True

    def __init__(self, uri: str, host: str, port: int, token: str | None = None) -> None:
        self.data = StoreData(uri)
        self.token = token or secrets.token_urlsafe(24)
        self.searches: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self.lock = threading.Lock()
        self.html: str | None = None
        self.policy = ""
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = (str(part) for part in self.server_address[:2])
        if host in ("0.0.0.0", "::"):  # every address: name this machine
            host = socket.gethostname()
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/?token={self.token}"

    def search(
        self,
        exps: tuple[str, ...],
        filt: str,
        order: tuple[str, ...],
        fresh: bool,
        stat: tuple[str, bool, str] | None = None,
    ) -> Any:
        """The search frame, reused for the page requests of one scroll (redone when older than
        :data:`SEARCH_KEEP` or when the page asks for fresh rows); ordered by a statistic of a
        metric's points when ``stat`` (statistic, descending, key) is given."""
        key = (exps, filt, order, stat)
        with self.lock:
            hit = self.searches.get(key)
        if hit is not None and not fresh and time.monotonic() - hit[0] < SEARCH_KEEP:
            return hit[1]
        frame = self.data.search(list(exps), filt, order)
        if stat is not None:
            frame = self._by_stat(frame, *stat)
        with self.lock:
            if len(self.searches) > 8:
                self.searches.clear()
            self.searches[key] = (time.monotonic(), frame)
        return frame

    def _by_stat(self, frame: Any, stat: str, descending: bool, key: str) -> Any:
        """``frame`` ordered by ``stat`` of metric ``key``, or a ValueError (a 400) past
        :data:`STAT_SORT_RUNS` runs: that order reads every run's points of the key."""
        if len(frame) > STAT_SORT_RUNS:
            raise ValueError(
                f"sorting by {key} ({stat.replace('_', ' ')}) reads every run's points: "
                f"{len(frame):,} runs is more than {STAT_SORT_RUNS:,}; narrow the table "
                "with a filter"
            )
        return self.data.sorted_by_stat(frame, stat, key, descending)


class Handler(BaseHTTPRequestHandler):
    server: UiServer
    server_version = f"tracklite/{__version__}"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the terminal shows the URL and errors, not every request

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        given = query.pop("token", None) or self.headers.get("X-Tracklite-Token")
        if not given:
            self._send_json({"error": "this server needs the token from its URL"}, 401)
            return
        if not hmac.compare_digest(given.encode(), self.server.token.encode()):
            self._send_json({"error": "wrong token"}, 403)
            return
        route = ROUTES.get(url.path)
        if route is None:
            self._send_json({"error": f"no such page: {url.path}"}, 404)
            return
        try:
            route(self, query)
        except (NotFoundError, FileNotFoundError) as exc:
            self._send_json({"error": str(exc)}, 404)
        except PermissionError as exc:  # an artifact path leaving the store
            self._send_json({"error": str(exc)}, 403)
        except ValueError as exc:  # a malformed filter or argument: its first line says what
            self._send_json({"error": str(exc).splitlines()[0]}, 400)

    def do_POST(self) -> None:
        self._send_json({"error": "read-only server"}, 405)

    do_PUT = do_DELETE = do_PATCH = do_POST

    # ------------------------------------------------------------------ answers

    def _send(
        self, body: bytes, kind: str, code: int = 200, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        try:
            self.end_headers()  # the headers go out here, the body next
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The page dropped the request (a newer one replaced it): nobody is left to answer.
            self.close_connection = True

    def _send_json(self, value: Any, code: int = 200) -> None:
        body = json.dumps(value, ensure_ascii=False, allow_nan=False).encode()
        self._send(body, "application/json; charset=utf-8", code)

    # ------------------------------------------------------------------ routes

    def index(self, query: dict[str, str]) -> None:
        if self.server.html is None:
            self.server.html, self.server.policy = page.render("live")
        self._send(
            self.server.html.encode(),
            "text/html; charset=utf-8",
            extra={"Content-Security-Policy": self.server.policy, "X-Frame-Options": "DENY"},
        )

    def experiments(self, query: dict[str, str]) -> None:
        self._send_json({"experiments": self.server.data.experiments()})

    def _frame(self, query: dict[str, str]) -> Any:
        """The search frame of the table the query names (exps, filter, order, stat, fresh)."""
        data = self.server.data
        exps = tuple(data.experiment_ids(_list(query.get("exps"))))
        order = tuple(_list(query.get("order"), "\n"))
        stat = _stat(query.get("stat", ""))
        fresh = query.get("fresh") == "1"
        return self.server.search(exps, query.get("filter", ""), order, fresh, stat)

    def runs(self, query: dict[str, str]) -> None:
        data = self.server.data
        frame = self._frame(query)
        offset = max(0, int(query.get("offset", "0")))
        limit = max(0, min(PAGE_ROWS, int(query.get("limit", "100"))))
        keys = data.keys(frame)
        wanted = _carried(query, keys)
        answer: dict[str, Any] = {"total": len(frame), "offset": offset, "metrics": wanted}
        if query.get("keys") != "0":  # the page asks for the key lists once per search
            answer["keys"] = keys
        answer["rows"] = data.rows(frame, offset, limit, wanted)
        self._send_json(answer)

    def groups(self, query: dict[str, str]) -> None:
        """The table's runs grouped by param ``by``, computed here from the search frame: the
        page needs the groups, not every row (100,000 runs would be 200 requests)."""
        by = query.get("by", "")
        if not by:
            raise ValueError("groups needs by=<param key>")
        metrics = _list(query.get("metrics"), "\n")
        curves = _list(query.get("curves"), "\n")
        self._send_json(self.server.data.groups(self._frame(query), by, metrics, curves))

    def rows(self, query: dict[str, str]) -> None:
        data = self.server.data
        frame = data.search(data.experiment_ids(None), "", None, run_ids=_list(query.get("ids")))
        keys = data.keys(frame)
        wanted = _carried(query, keys)  # as for a page of /api/runs
        answer: dict[str, Any] = {"metrics": wanted, "rows": data.rows(frame, 0, None, wanted)}
        if query.get("keys") != "0":  # not when the page fetches the values of a key found
            answer["keys"] = keys
        self._send_json(answer)

    def summary(self, query: dict[str, str]) -> None:
        data = self.server.data
        refs = [data.ref(*_run(item)) for item in _list(query.get("runs"))]
        keys = _list(query.get("keys"), "\n") or None
        self._send_json({"summaries": data.summaries(refs, keys)})

    def series(self, query: dict[str, str]) -> None:
        data = self.server.data
        refs = [data.ref(*_run(item)) for item in _list(query.get("runs"))]
        buckets = max(1, min(5000, int(query.get("buckets", "500"))))
        self._send_json({"series": data.series(refs, query.get("key", ""), buckets)})

    def csv(self, query: dict[str, str]) -> None:
        data = self.server.data
        refs = [data.ref(*_run(item)) for item in _list(query.get("runs"))]
        key = query.get("key", "")
        body = data.csv(refs, key).encode()
        name = "".join(c if c.isalnum() else "_" for c in key) or "metric"
        self._send(
            body,
            "text/csv; charset=utf-8",
            extra={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )

    def run(self, query: dict[str, str]) -> None:
        data = self.server.data
        ref = data.ref(*_run(query.get("id", "")))
        result = data.run(ref)
        result["qlib"] = data.qlib_panels(ref)  # Parquet copies only: never a pickle
        self._send_json(result)

    def preview(self, query: dict[str, str]) -> None:
        data = self.server.data
        ref = data.ref(*_run(query.get("id", "")))
        self._send_json(data.preview(ref, query.get("path", "")))

    def artifact(self, query: dict[str, str]) -> None:
        data = self.server.data
        ref = data.ref(*_run(query.get("id", "")))
        path = query.get("path", "")
        with data.open_artifact(ref, path) as handle:
            body = handle.read()
        name = path.rsplit("/", 1)[-1]
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        safe_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
        # Served as a download in a sandbox: an HTML or SVG artifact must not run as this page.
        headers = {
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Content-Disposition": f'attachment; filename="{safe_name}"',
        }
        served = kind if kind.startswith("image/") else "application/octet-stream"
        self._send(body, served, extra=headers)


ROUTES: dict[str, Callable[[Handler, dict[str, str]], None]] = {
    "/": Handler.index,
    "/api/experiments": Handler.experiments,
    "/api/runs": Handler.runs,
    "/api/groups": Handler.groups,
    "/api/rows": Handler.rows,
    "/api/summary": Handler.summary,
    "/api/series": Handler.series,
    "/api/csv": Handler.csv,
    "/api/run": Handler.run,
    "/api/preview": Handler.preview,
    "/api/artifact": Handler.artifact,
}


def _list(value: str | None, sep: str = ",") -> list[str]:
    return [part for part in (value or "").split(sep) if part]


def _carried(query: dict[str, str], keys: dict[str, list[str]]) -> list[str] | None:
    """The metric keys each row of an answer carries: those of ``metrics=`` when its runs have
    more than :data:`ALL_KEYS_UP_TO` keys, else (or without ``metrics=``) every key (None), as
    the page's views expect of a narrow table."""
    if "metrics" not in query or len(keys["metrics"]) <= ALL_KEYS_UP_TO:
        return None
    return _list(query["metrics"], "\n")


def _stat(value: str) -> tuple[str, bool, str] | None:
    """``stat=<min|max|best_step>:<asc|desc>:<metric key>`` (the key last: it may hold any
    character) as (statistic, descending, key): the table ordered by that statistic of each
    run's points of the key, after the search's own order (``order=``) for ties; None without."""
    if not value:
        return None
    stat, direction, key = [*value.split(":", 2), "", ""][:3]
    if stat not in POINT_STATS or direction not in ("asc", "desc") or not key:
        raise ValueError(f"stat must be <{'|'.join(POINT_STATS)}>:<asc|desc>:<key>, not {value!r}")
    return stat, direction == "desc", key


def _run(item: str) -> tuple[str, str | None]:
    """``run_id`` or ``run_id:experiment_id`` (the experiment saves a lookup)."""
    run_id, _, exp_id = item.partition(":")
    return run_id, exp_id or None


def serve(uri: str, host: str = "127.0.0.1", port: int = 0, token: str | None = None) -> UiServer:
    """A server bound to ``host:port`` (0: any free port), not yet serving; call
    ``serve_forever()`` (or run it in a thread). Needs the ``tracklite[ui]`` extra."""
    page.require_plotly()
    if host not in LOCAL_HOSTS:
        sys.stderr.write(
            f"tracklite: warning: serving on {host}, not only this machine: anyone who can "
            "reach it and learns the token can read the whole store\n"
        )
    return UiServer(uri, host, port, token)
