"""Finding experiments and recorders from what a user types: a name, an id or an id prefix."""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable

from ..store import layout
from ..store.root import Meta, Store
from .errors import CliError

#: Shortest id prefix shown in tables (ids start with a timestamp, so short prefixes collide).
MIN_PREFIX = 8
#: Candidates listed in an "ambiguous" error before cutting the list short.
SHOWN_CANDIDATES = 8


def experiment_ids(store: Store) -> list[str]:
    """Every experiment folder name (active and deleted), sorted."""
    try:
        names = os.listdir(store.root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if layout.is_id_name(n) and (store.root / n).is_dir())


def recorder_locations(store: Store) -> list[tuple[str, str]]:
    """``(recorder_id, experiment_id)`` for every recorder folder in the store, sorted by id."""
    found: list[tuple[str, str]] = []
    for exp_id in experiment_ids(store):
        found.extend((rec_id, exp_id) for rec_id in store.recorder_ids(exp_id))
    return sorted(found)


def experiment(
    store: Store, text: str, *, deleted: bool | None = False, any_id: bool = False
) -> Meta:
    """The experiment ``text`` names: an exact name, else an id, else a unique id prefix.

    ``deleted`` False looks at active experiments, True at deleted ones, None at both;
    ``any_id`` lets an id (or id prefix) name a deleted experiment too, so its recorders can
    be looked at before it is restored or collected.
    """
    if not text:
        raise CliError("empty experiment name or id")
    wanted = {False: ("active",), True: ("deleted",), None: ("active", "deleted")}[deleted]
    every = list(store.iter_experiments(include_deleted=True))
    metas = [m for m in every if m.get("lifecycle") in wanted]
    by_name = [m for m in metas if m.get("name") == text]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        # Only deleted experiments can share a name (an active name is unique).
        raise CliError(
            f"{len(by_name)} experiments are named {text!r}: "
            + _listing(f"{m['id']} ({m.get('lifecycle')})" for m in by_name)
            + "; give an id instead"
        )
    by_id = [m for m in (every if any_id else metas) if str(m.get("id", "")).startswith(text)]
    exact = [m for m in by_id if m.get("id") == text]
    if exact or len(by_id) == 1:
        return (exact or by_id)[0]
    if len(by_id) > 1:
        raise CliError(
            f"experiment id prefix {text!r} is ambiguous; it matches "
            + _listing(f"{m['id']} ({m.get('name')})" for m in by_id)
        )
    other = store.read_experiment(text) if deleted is False else None
    if other is not None and other.get("lifecycle") == "deleted":
        raise CliError(
            f"experiment {text!r} ({other.get('name')}) is deleted; restore it with "
            f"`tracklite restore --experiment {text}`"
        )
    kind = {False: "", True: "deleted ", None: ""}[deleted]
    names = sorted({str(m.get("name")) for m in metas})
    hint = (
        f"; {kind}experiments: " + _listing(names) if names else f"; there are no {kind}experiments"
    )
    raise CliError(f"no {kind}experiment named {text!r} or with that id in {store.root}{hint}")


def recorder(store: Store, prefix: str) -> Meta:
    """The recorder whose id is ``prefix`` or starts with it, in any experiment (deleted too)."""
    if not prefix or not prefix.isalnum():
        raise CliError(f"{prefix!r} is not a recorder id or id prefix (ids are hexadecimal)")
    matches = [(r, e) for r, e in recorder_locations(store) if r.startswith(prefix)]
    exact = [(r, e) for r, e in matches if r == prefix]
    if exact:
        matches = exact
    if not matches:
        raise CliError(
            f"no recorder id starts with {prefix!r} in {store.root} (list recorders with "
            "`tracklite runs EXPERIMENT`)"
        )
    if len(matches) > 1:
        described = []
        for rec_id, exp_id in matches:
            meta = store.read_recorder(exp_id, rec_id) or {}
            exp = store.read_experiment(exp_id) or {}
            described.append(f"{rec_id} ({meta.get('name')}, experiment {exp.get('name')})")
        raise CliError(
            f"recorder id prefix {prefix!r} is ambiguous; it matches {len(matches)} recorders: "
            + _listing(described)
            + "; type more characters"
        )
    rec_id, exp_id = matches[0]
    found = store.read_recorder(exp_id, rec_id)
    if found is None:
        raise CliError(f"recorder {rec_id} has no readable recorder.json (see `tracklite check`)")
    return found


def prefix_length(all_ids: Iterable[str], shown: Iterable[str], minimum: int = MIN_PREFIX) -> int:
    """The shortest prefix length, at least ``minimum``, that keeps every shown id unambiguous
    among ``all_ids`` (one length for the whole column, so it stays aligned)."""
    ordered = sorted(set(all_ids))
    length = minimum
    for ident in shown:
        at = bisect.bisect_left(ordered, ident)
        for neighbour in (ordered[at - 1] if at > 0 else "", _after(ordered, at, ident)):
            length = max(length, _common(ident, neighbour) + 1)
    return length


def _after(ordered: list[str], at: int, ident: str) -> str:
    if at < len(ordered) and ordered[at] == ident:
        at += 1
    return ordered[at] if at < len(ordered) else ""


def _common(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _listing(items: Iterable[str]) -> str:
    shown = list(items)
    text = ", ".join(shown[:SHOWN_CANDIDATES])
    if len(shown) > SHOWN_CANDIDATES:
        text += f", and {len(shown) - SHOWN_CANDIDATES} more"
    return text
