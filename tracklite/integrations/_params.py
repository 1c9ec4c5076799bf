"""Turning a framework's nested configuration into flat tracklite params."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def flatten(params: Mapping[str, Any], separator: str = "/") -> dict[str, Any]:
    """``{"optim": {"lr": 0.1}}`` becomes ``{"optim/lr": 0.1}``; other values are kept as they
    are (tracklite stores them as strings)."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping) and value:
            for inner, leaf in flatten(value, separator).items():
                flat[f"{key}{separator}{inner}"] = leaf
        else:
            flat[str(key)] = value
    return flat
