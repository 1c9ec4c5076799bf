"""The status a reader shows for a recorder.

Every command takes a recorder's status from :func:`effective_status`, never from
``meta["status"]`` directly, so dead-run detection (:mod:`tracklite.liveness`: a RUNNING recorder
whose process is gone shows as DEAD) reaches every table, ``show`` and ``compare`` at once.
"""

from __future__ import annotations

from .. import liveness
from ..store.root import Meta, Store

#: Order of status columns in ``tracklite experiments``; unknown statuses come after these.
KNOWN = (liveness.RUNNING, liveness.DEAD, "FINISHED", "FAILED", "KILLED", "SCHEDULED")


def effective_status(store: Store, meta: Meta) -> str:
    """The recorder's status as a reader should see it (DEAD for a run whose process is gone)."""
    # Costs nothing for ended recorders: only a RUNNING one has its owner process looked up.
    return liveness.effective_status(meta, store.recorder_dir(meta["experiment_id"], meta["id"]))


def label(store: Store, meta: Meta) -> str:
    """The status with the soft-delete mark, for tables that also list deleted recorders."""
    status = effective_status(store, meta)
    return f"{status} (deleted)" if meta.get("lifecycle") == "deleted" else status


def ordered(statuses: set[str]) -> list[str]:
    """Statuses in :data:`KNOWN` order, then any others alphabetically."""
    return [s for s in KNOWN if s in statuses] + sorted(statuses.difference(KNOWN))
