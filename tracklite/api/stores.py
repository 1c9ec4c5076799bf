"""One :class:`Store` handle per store folder, so the marker is checked once per process."""

from __future__ import annotations

import os

from ..store.layout import uri_to_path
from ..store.root import Store

_stores: dict[str, Store] = {}


def store_for(uri: str | os.PathLike[str]) -> Store:
    """The store a tracking URI names (a plain path or ``file:`` URI)."""
    # Fast path: the URI is exactly a known store's absolute path (listing thousands of
    # recorders calls this once per recorder; keys are normalised absolute paths, so a
    # relative or file: URI never matches one).
    known = _stores.get(uri) if isinstance(uri, str) else None
    if known is not None:
        return known
    root = uri_to_path(uri)
    key = str(root)
    store = _stores.get(key)
    if store is None:
        store = _stores[key] = Store(root)
    return store
