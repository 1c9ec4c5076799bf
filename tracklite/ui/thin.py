"""Curves for drawing: split a recorder's points into one curve per key, sorted by step, and
thin a curve by pixel buckets, keeping each bucket's min, max, first and last point.

This is the M4 idea: a line drawn through the kept points covers exactly the pixels the full
curve covers, so spikes and dips survive, and the first and the last point of the curve are
always kept. Everything is a few numpy passes per curve.
"""

from __future__ import annotations

import re
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


@dataclass(frozen=True)
class Points:
    """A recorder's points grouped by key, each key's run sorted by step (equal steps in
    logging order): key ``names[i]`` holds positions ``starts[i]:ends[i]`` of the arrays."""

    names: list[str]
    starts: Any
    ends: Any
    step: Any
    value: Any
    time: Any


def grouped(table: pa.Table) -> Points:
    """The points of a recorder (columns key, step, value, timestamp) grouped by key, in whole
    array passes: a recorder may have 100,000 keys of one point each."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = table.num_rows
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Points([], empty, empty, empty, np.zeros(0), empty)
    keys: Any = table["key"]
    # No copies beyond Arrow's own (a cast to float would cost more than the thinning).
    step = table["step"].to_numpy()
    value = table["value"].to_numpy()
    time = table["timestamp"].cast(pa.int64()).to_numpy()
    # Segments hold each key's points in long runs: find the runs by comparing neighbours (ten
    # times cheaper than hashing every string); hash only when keys are interleaved.
    changed = pc.not_equal(keys.slice(1), keys.slice(0, n - 1))
    starts = np.r_[0, np.flatnonzero(changed.to_numpy(zero_copy_only=False)) + 1]
    names = [str(k) for k in keys.take(pa.array(starts)).to_pylist()]
    if len(set(names)) < len(names):
        encoded: Any = pc.dictionary_encode(keys).combine_chunks()
        groups = encoded.indices.to_numpy().astype(np.int64)
        order = np.argsort(groups, kind="stable")
        step, value, time, groups = step[order], value[order], time[order], groups[order]
        starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
        names = [str(k) for k in encoded.dictionary.take(pa.array(groups[starts])).to_pylist()]
    ends = np.r_[starts[1:], n]
    # A step lower than the one before it, inside a key's run: logged out of step order. Then
    # every key is sorted by step at once, stably (lexsort keeps equal steps in logging order).
    falls = np.flatnonzero(np.diff(step) < 0) + 1
    if len(falls) and not np.isin(falls, starts).all():
        owner = np.repeat(np.arange(len(starts)), ends - starts)
        order = np.lexsort((step, owner))
        step, value, time = step[order], value[order], time[order]
    return Points(names, starts, ends, step, value, time)


def curves(table: pa.Table) -> Iterator[Curve]:
    """The curves of a recorder's points (columns key, step, value, timestamp), by key."""
    points = grouped(table)
    for name, start, end in zip(
        points.names, points.starts.tolist(), points.ends.tolist(), strict=True
    ):
        yield Curve(name, points.step[start:end], points.value[start:end], points.time[start:end])


@dataclass(frozen=True)
class Digest:
    """Every curve of a recorder thinned for drawing, with its summary, key after key: key
    ``names[i]`` keeps points ``starts[i]:starts[i + 1]`` of ``step``, ``value``, ``time``
    and logged ``totals[i]``. Its summary: ``last`` (the value at the highest step, the last
    logged winning), ``low`` and ``high`` (of the finite values; where ``finite``) and
    ``best_step`` (the first step reaching the best of them)."""

    names: list[str]
    starts: list[int]
    totals: list[int]
    step: Any
    value: Any
    time: Any
    last: Any
    low: Any
    high: Any
    best_step: Any
    finite: Any


def digest(table: pa.Table, buckets: int, lower_is_better: re.Pattern[str]) -> Digest:
    """The :class:`Digest` of a recorder's points, in whole-array passes over all its keys
    (only curves longer than ``4 * buckets`` points are thinned, one by one, with :func:`m4`).
    A key that ``lower_is_better`` finds in has its smallest value as its best."""
    import numpy as np

    points = grouped(table)
    starts, ends, step, value = points.starts, points.ends, points.step, points.value
    sizes = ends - starts
    keep = np.ones(len(step), dtype=bool)
    for i in np.flatnonzero(sizes > 4 * buckets).tolist():
        start, end = int(starts[i]), int(ends[i])
        part = np.zeros(end - start, dtype=bool)
        part[m4(step[start:end], value[start:end], buckets)] = True
        keep[start:end] = part
    kept = np.flatnonzero(keep)
    at = [*np.searchsorted(kept, starts).tolist(), len(kept)]
    count = len(points.names)
    if count == 0:
        none = np.zeros(0)
        return Digest([], at, [], step, value, points.time, none, none, none, none, none > 0)
    low, high, best = extremes(points, lower_is_better)
    return Digest(
        points.names,
        at,
        sizes.tolist(),
        step[kept],
        value[kept],
        points.time[kept],
        value[ends - 1],
        low,
        high,
        step[best],
        ~np.isnan(low),
    )


def extremes(points: Points, lower_is_better: re.Pattern[str]) -> tuple[Any, Any, Any]:
    """Per key of ``points`` (at least one): the smallest and largest finite value (NaN where
    none is finite) and the position of the first point reaching the best of them (the
    smallest for keys ``lower_is_better`` finds in, else the largest)."""
    import numpy as np

    starts, value = points.starts, points.value
    sizes = points.ends - starts
    finite = np.where(np.isfinite(value), value, np.nan)
    low, high = np.fmin.reduceat(finite, starts), np.fmax.reduceat(finite, starts)

    def first(extreme: Any) -> Any:
        # Per key, the first position holding its extreme (meaningless where it is NaN).
        hits = np.flatnonzero(finite == np.repeat(extreme, sizes))
        if not len(hits):
            return starts
        return hits[np.minimum(np.searchsorted(hits, starts), len(hits) - 1)]

    lower = np.array([hit is not None for hit in map(lower_is_better.search, points.names)])
    return low, high, np.where(lower, first(low), first(high))


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
