"""Finding experiments and recorders from what a user types: a name, an id or an id prefix."""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Iterable

from ..api.catalog import Catalog, Meta
from .errors import CliError
from .text import common_prefix_length

#: Shortest id prefix shown in tables (ids start with a timestamp, so short prefixes collide).
MIN_PREFIX = 8
#: Candidates listed in an "ambiguous" error before cutting the list short.
SHOWN_CANDIDATES = 8


_LIFECYCLES = {False: ("active",), True: ("deleted",), None: ("active", "deleted")}


def experiment(
    catalog: Catalog, text: str, *, deleted: bool | None = False, any_id: bool = False
) -> Meta:
    """The experiment ``text`` names: an exact name, else an id, else a unique id prefix.

    ``deleted`` False looks at active experiments, True at deleted ones, None at both;
    ``any_id`` lets an id (or id prefix) name a deleted experiment too, so its recorders can
    be looked at before it is restored or collected.
    """
    if not text:
        raise CliError("empty experiment name or id")
    every = catalog.experiments(include_deleted=True)
    metas = [m for m in every if m.get("lifecycle") in _LIFECYCLES[deleted]]
    found = _experiment_by_name(metas, text) or _experiment_by_id(every if any_id else metas, text)
    if found is not None:
        return found
    raise _no_experiment(catalog, text, deleted, metas)


def _experiment_by_name(metas: list[Meta], text: str) -> Meta | None:
    named = [m for m in metas if m.get("name") == text]
    if len(named) > 1:
        # Only deleted experiments can share a name (an active name is unique).
        raise CliError(
            f"{len(named)} experiments are named {text!r}: "
            + _listing(f"{m['id']} ({m.get('lifecycle')})" for m in named)
            + "; give an id instead"
        )
    return named[0] if named else None


def _experiment_by_id(metas: list[Meta], text: str) -> Meta | None:
    matches = [m for m in metas if str(m.get("id", "")).startswith(text)]
    exact = [m for m in matches if m.get("id") == text]
    if exact or len(matches) == 1:
        return (exact or matches)[0]
    if len(matches) > 1:
        raise CliError(
            f"experiment id prefix {text!r} is ambiguous; it matches "
            + _listing(f"{m['id']} ({m.get('name')})" for m in matches)
        )
    return None


def _no_experiment(
    catalog: Catalog, text: str, deleted: bool | None, metas: list[Meta]
) -> CliError:
    """The error for a name that matched nothing: a deleted match, a likely typo, or the list."""
    other = catalog.experiment(text) if deleted is False else None
    if other is not None and other.get("lifecycle") == "deleted":
        return CliError(
            f"experiment {text!r} ({other.get('name')}) is deleted; restore it with "
            f"`tracklite restore --experiment {text}`"
        )
    kind = "deleted " if deleted is True else ""
    names = sorted({str(m.get("name")) for m in metas})
    if not names:
        hint = f"; there are no {kind}experiments"
    else:
        hint = did_you_mean(text, names) or f"; {kind}experiments: " + _listing(names)
    return CliError(f"no {kind}experiment named {text!r} or with that id in {catalog.root}{hint}")


def did_you_mean(text: str, known: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for a likely typo of one of ``known`` (up to three), else ``""``."""
    close = difflib.get_close_matches(text, list(known), n=3, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"


def recorder(catalog: Catalog, text: str) -> Meta:
    """The recorder ``text`` names, in any experiment (deleted ones too): its id, its name,
    ``EXPERIMENT/NAME`` when the name alone is not unique, or an unambiguous id prefix."""
    if not text:
        raise CliError("empty recorder name or id")
    # Ids are looked up in the folders themselves, so a recorder whose recorder.json is broken
    # is still found (and reading it says what is wrong).
    located = catalog.recorder_locations()
    exact = [(r, e) for r, e in located if r == text]
    if exact:
        return _read_recorder(catalog, *exact[0])
    every = _recorder_infos(catalog)
    found = _named(every, text)
    if not found and text.isalnum():
        prefixed = [(r, e) for r, e in located if r.startswith(text)]
        if len(prefixed) == 1:
            return _read_recorder(catalog, *prefixed[0])
        known = {r["id"]: r for r in every}
        found = [known.get(r) or {"id": r, "experiment_id": e} for r, e in prefixed]
    if not found:
        found = _in_experiment(catalog, every, text)
    if not found:
        hint = did_you_mean(text, {str(r["name"]) for r in every if r.get("name")})
        raise CliError(
            f"no recorder named {text!r} or with that id in {catalog.root}"
            + (hint or " (list recorders with `tracklite runs EXPERIMENT`)")
        )
    if len(found) > 1:
        # Runs of one name in one experiment (qlib names every run "mlflow_recorder" unless
        # told otherwise): EXPERIMENT/NAME cannot tell them apart, only an id can.
        alike = len({(r["experiment_id"], r.get("name")) for r in found}) == 1
        raise CliError(
            f"{text!r} names {len(found)} recorders: "
            + _listing(_candidate(catalog, r) for r in found)
            + (
                "; give an id or an unambiguous id prefix"
                if alike
                else "; give EXPERIMENT/NAME or an id"
            )
        )
    return _read_recorder(catalog, found[0]["id"], found[0]["experiment_id"])


def _read_recorder(catalog: Catalog, recorder_id: str, experiment_id: str) -> Meta:
    meta = catalog.recorder(experiment_id, recorder_id)
    if meta is None:
        raise CliError(
            f"recorder {recorder_id} has no readable recorder.json (see `tracklite check`)"
        )
    return meta


def _recorder_infos(catalog: Catalog) -> list[Meta]:
    """Id, name, experiment and lifecycle of every recorder, deleted ones too (from the search
    summary: no recorder.json is read)."""
    from ..search.listing import ALL

    return catalog.recorders(catalog.experiment_ids(), run_view_type=ALL)


def _named(every: list[Meta], name: str) -> list[Meta]:
    """Recorders called ``name``; an active one wins over deleted ones of that name."""
    named = [r for r in every if r.get("name") == name]
    active = [r for r in named if r.get("lifecycle") == "active"]
    return active if len(active) == 1 else named


def _in_experiment(catalog: Catalog, every: list[Meta], text: str) -> list[Meta]:
    """``EXPERIMENT/NAME`` (names may hold ``/`` themselves: every split is tried)."""
    for at in [i for i, char in enumerate(text) if char == "/"]:
        exp_text, name = text[:at], text[at + 1 :]
        try:
            exp = experiment(catalog, exp_text, deleted=None, any_id=True)
        except CliError:
            continue
        found = _named([r for r in every if r["experiment_id"] == exp["id"]], name)
        if found:
            return found
    return []


def _candidate(catalog: Catalog, info: Meta) -> str:
    exp = catalog.experiment(info["experiment_id"]) or {}
    deleted = ", deleted" if info.get("lifecycle") == "deleted" else ""
    name = info.get("name", "(unreadable recorder.json)")
    return f"{exp.get('name')}/{name} ({info['id']}{deleted})"


def prefix_length(all_ids: Iterable[str], shown: Iterable[str], minimum: int = MIN_PREFIX) -> int:
    """The shortest prefix length, at least ``minimum``, that keeps every shown id unambiguous
    among ``all_ids`` (one length for the whole column, so it stays aligned)."""
    ordered = sorted(set(all_ids))
    length = minimum
    for ident in shown:
        at = bisect.bisect_left(ordered, ident)
        for neighbour in (ordered[at - 1] if at > 0 else "", _after(ordered, at, ident)):
            length = max(length, common_prefix_length(ident, neighbour) + 1)
    return length


def _after(ordered: list[str], at: int, ident: str) -> str:
    if at < len(ordered) and ordered[at] == ident:
        at += 1
    return ordered[at] if at < len(ordered) else ""


def _listing(items: Iterable[str]) -> str:
    shown = list(items)
    text = ", ".join(shown[:SHOWN_CANDIDATES])
    if len(shown) > SHOWN_CANDIDATES:
        text += f", and {len(shown) - SHOWN_CANDIDATES} more"
    return text
