"""The status a reader shows for a recorder.

Every command takes a recorder's status from :func:`effective_status`, never from
``meta["status"]`` directly, so dead-run detection (:mod:`tracklite.liveness`: a RUNNING recorder
whose process is gone shows as DEAD) reaches every table, ``show`` and ``compare`` at once.
"""

from __future__ import annotations

from ..store.root import Meta, Store

#: Order of status columns in ``tracklite experiments``; unknown statuses come after these.
KNOWN = ("RUNNING", "DEAD", "FINISHED", "FAILED", "KILLED", "SCHEDULED")


def effective_status(store: Store, meta: Meta) -> str:
    """The recorder's status as a reader should see it (DEAD for a run whose process is gone)."""
    stored = str(meta.get("status") or "UNKNOWN")
    if stored != "RUNNING":
        return stored  # only a RUNNING recorder can be dead: no file is touched for the rest
    try:
        from ..liveness import effective_status as judge
    except ImportError:  # a build without liveness detection shows the stored status
        return stored
    return judge(meta, store.recorder_dir(meta["experiment_id"], meta["id"]))


def label(store: Store, meta: Meta) -> str:
    """The status with the soft-delete mark, for tables that also list deleted recorders."""
    status = effective_status(store, meta)
    return f"{status} (deleted)" if meta.get("lifecycle") == "deleted" else status


def ordered(statuses: set[str]) -> list[str]:
    """Statuses in :data:`KNOWN` order, then any others alphabetically."""
    return [s for s in KNOWN if s in statuses] + sorted(statuses.difference(KNOWN))
