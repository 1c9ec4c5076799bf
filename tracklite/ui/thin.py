"""Thinning curves for drawing: per pixel bucket, keep the min, the max, the first and the last.

This is the M4 idea: a line drawn through the kept points covers exactly the pixels the full
curve covers, so spikes and dips survive, and the first and the last point of the curve are
always kept. Many curves are thinned at once (one group id per curve), in a few numpy passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


def m4_mask(
    groups: npt.NDArray[np.int64],
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    buckets: int,
) -> npt.NDArray[np.bool_]:
    """Rows to keep so that each curve (rows sharing a group id) has at most ``4 * buckets``
    points: per bucket of equal width along x, the first and last rows and the rows holding
    the smallest and largest finite y. A curve of at most ``4 * buckets`` rows is kept whole."""
    import numpy as np

    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    n = len(groups)
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    order = np.argsort(groups, kind="stable")  # rows of a curve stay in logging order
    g = groups[order]
    xs = np.asarray(x, dtype=np.float64)[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sizes = np.diff(np.r_[starts, n])
    curve = np.repeat(np.arange(len(starts)), sizes)
    lo = np.fmin.reduceat(xs, starts)
    span = np.fmax.reduceat(xs, starts) - lo
    span[~(span > 0)] = 1.0
    slot = np.floor((xs - lo[curve]) / span[curve] * buckets)
    slot = np.clip(np.nan_to_num(slot), 0, buckets - 1).astype(np.int64)
    bucket = curve.astype(np.int64) * buckets + slot
    inner = np.argsort(bucket, kind="stable")  # already sorted when x grows: a linear pass
    b = bucket[inner]
    ys = np.asarray(y, dtype=np.float64)[order][inner]
    finite = np.where(np.isfinite(ys), ys, np.nan)
    first = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
    last = np.r_[first[1:], n] - 1
    which = np.repeat(np.arange(len(first)), np.diff(np.r_[first, n]))
    picked = [first, last]
    with np.errstate(invalid="ignore"):
        for extreme in (np.fmin.reduceat(finite, first), np.fmax.reduceat(finite, first)):
            hits = np.flatnonzero(finite == extreme[which])
            if len(hits):
                new = np.r_[True, which[hits][1:] != which[hits][:-1]]
                picked.append(hits[new])
    keep[order[inner[np.concatenate(picked)]]] = True
    keep[order[(sizes <= 4 * buckets)[curve]]] = True
    return keep
