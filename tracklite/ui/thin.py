"""Curves for drawing: split a recorder's points into one curve per key, sorted by step, and
thin a curve by pixel buckets, keeping each bucket's min, max, first and last point.

This is the M4 idea: a line drawn through the kept points covers exactly the pixels the full
curve covers, so spikes and dips survive, and the first and the last point of the curve are
always kept. Everything is a few numpy passes per curve.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa


@dataclass(frozen=True)
class Curve:
    """One metric key of one recorder: steps (int64, non-decreasing; equal steps stay in
    logging order), values (float64), timestamps (int64 Unix ms)."""

    key: str
    step: Any
    value: Any
    time: Any

    def __len__(self) -> int:
        return len(self.step)


def curves(table: pa.Table) -> Iterator[Curve]:
    """The curves of a recorder's points (columns key, step, value, timestamp), by key."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = table.num_rows
    if n == 0:
        return
    keys: Any = table["key"]
    # No copies beyond Arrow's own (a cast to float would cost more than the thinning).
    step = table["step"].to_numpy()
    value = table["value"].to_numpy()
    time = table["timestamp"].cast(pa.int64()).to_numpy()
    # Segments hold each key's points in long runs: find the runs by comparing neighbours (ten
    # times cheaper than hashing every string); hash only when keys are interleaved.
    changed = pc.not_equal(keys.slice(1), keys.slice(0, n - 1))
    starts = np.r_[0, np.flatnonzero(changed.to_numpy(zero_copy_only=False)) + 1]
    names = [str(keys[int(i)]) for i in starts]
    if len(set(names)) < len(names):
        encoded: Any = pc.dictionary_encode(keys).combine_chunks()
        groups = encoded.indices.to_numpy().astype(np.int64)
        order = np.argsort(groups, kind="stable")
        step, value, time, groups = step[order], value[order], time[order], groups[order]
        starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
        names = [str(encoded.dictionary[int(groups[i])]) for i in starts]
    ends = np.r_[starts[1:], n]
    for name, start, end in zip(names, starts.tolist(), ends.tolist(), strict=True):
        s, v, t = step[start:end], value[start:end], time[start:end]
        if len(s) > 1 and (np.diff(s) < 0).any():  # logged out of step order: sort, stably
            order = np.argsort(s, kind="stable")
            s, v, t = s[order], v[order], t[order]
        yield Curve(name, s, v, t)


def m4(x: npt.NDArray[np.int64], y: npt.NDArray[np.float64], buckets: int) -> Any:
    """Positions to keep of a curve sorted by ``x``: per bucket of equal width along x, the
    first and last points and the points holding the smallest and largest finite y. A curve
    of at most ``4 * buckets`` points is kept whole."""
    import numpy as np

    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    n = len(x)
    if n <= 4 * buckets:
        return np.arange(n)
    lo, hi = int(x[0]), int(x[-1])
    # Integer edges: the first step >= ceil(edge) is the first step >= edge, and searching an
    # int64 array for int64 values converts nothing.
    edges = np.ceil(lo + (max(hi - lo, 1)) * np.arange(1, buckets) / buckets).astype(x.dtype)
    starts = np.r_[0, np.searchsorted(x, edges, side="left")]
    starts = starts[np.r_[True, np.diff(starts) > 0] & (starts < n)]  # empty buckets out
    ends = np.r_[starts[1:], n]
    finite = np.where(np.isfinite(y), y, np.nan)
    picked = [starts, ends - 1]
    sizes = ends - starts
    for reduce in (np.fmin, np.fmax):
        extreme = reduce.reduceat(finite, starts)
        hits = np.flatnonzero(finite == np.repeat(extreme, sizes))
        if len(hits):
            first = hits[np.minimum(np.searchsorted(hits, starts), len(hits) - 1)]
            picked.append(first[(first >= starts) & (first < ends)])
    keep = np.zeros(n, dtype=bool)
    for positions in picked:
        keep[positions] = True
    return np.flatnonzero(keep)
