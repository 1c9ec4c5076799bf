"""One :class:`Store` handle per store folder, so the marker is checked once per process."""

from __future__ import annotations

import os

from ..store.layout import uri_to_path
from ..store.root import Store

_stores: dict[str, Store] = {}


def store_for(uri: str | os.PathLike[str]) -> Store:
    """The store a tracking URI names (a plain path or ``file:`` URI)."""
    root = uri_to_path(uri)
    key = str(root)
    store = _stores.get(key)
    if store is None:
        store = _stores[key] = Store(root)
    return store
