"""Signal analysis on a ``(datetime, instrument)`` index: IC, rank IC, long-short returns and
long/short precision, with the numbers qlib's ``qlib.contrib.eva.alpha`` produces.

Conventions shared with qlib, so that results agree:

- ``pred`` and ``label`` are Series on a MultiIndex with a ``datetime`` level; they are aligned on
  their index first (rows present in only one get NaN on the other side).
- Each statistic is computed per datetime over that cross-section. Correlations use the rows
  where both values are present; Spearman's is Pearson's on average ranks (ties share a rank).
- The long (short) leg of a date holds ``int(rows * quantile)`` rows with the largest (smallest)
  prediction, counting rows with a missing prediction; among equal predictions the earlier row
  wins; rows with a missing prediction fill the leg last, only when there are too few others.

Two deliberate differences from qlib: a cross-section whose prediction or label is constant has
no correlation, and is NaN here (pandas may return a rounding artefact instead); and the work is
done with numpy over each date's rows, not with one pandas ``apply`` per date, so it is much
faster on long histories. scipy is not needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    FloatArray = npt.NDArray[np.float64]
    IndexArray = npt.NDArray[np.intp]

__all__ = ["calc_ic", "calc_long_short_prec", "calc_long_short_return", "pearson", "spearman"]


# ---------------------------------------------------------------------------- correlations


def _corr(x: FloatArray, y: FloatArray) -> float:
    """Pearson correlation of two NaN-free arrays of equal length >= 2; NaN if undefined."""
    # Exact equality, not a variance threshold: a constant cross-section has no correlation,
    # whatever rounding the centring below would leave behind.
    if x.min() == x.max() or y.min() == y.max():
        return math.nan
    dx = x - x.mean()
    dy = y - y.mean()
    scale = math.sqrt(float(dx @ dx)) * math.sqrt(float(dy @ dy))
    if not scale or not math.isfinite(scale):
        return math.nan
    return min(1.0, max(-1.0, float(dx @ dy) / scale))


def _pairs(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    import numpy as np

    keep = ~(np.isnan(x) | np.isnan(y))
    if keep.all():
        return x, y
    return x[keep], y[keep]


def average_ranks(values: FloatArray) -> FloatArray:
    """1-based ranks of NaN-free ``values``; a run of ties gets the mean of its ranks."""
    import numpy as np

    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts_run = np.empty(ordered.size, dtype=bool)
    starts_run[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts_run[1:])
    run_of = np.cumsum(starts_run) - 1
    first = np.flatnonzero(starts_run)
    last = np.append(first[1:], ordered.size)  # one past the end of each run
    mean_rank = (first + 1 + last) / 2.0
    ranks = np.empty(ordered.size, dtype=np.float64)
    ranks[order] = mean_rank[run_of]
    return ranks


def pearson(x: FloatArray, y: FloatArray) -> float:
    """Pearson correlation over the pairs where both values are present."""
    x, y = _pairs(x, y)
    if x.size < 2:
        return math.nan
    return _corr(x, y)


def spearman(x: FloatArray, y: FloatArray) -> float:
    """Spearman rank correlation over the pairs where both values are present."""
    x, y = _pairs(x, y)
    if x.size < 2 or x.min() == x.max() or y.min() == y.max():
        return math.nan
    return _corr(average_ranks(x), average_ranks(y))


# ---------------------------------------------------------------------------- grouping


class _DateGroups:
    """Row positions of each datetime of a frame, dates ascending, rows in frame order."""

    def __init__(self, frame: pd.DataFrame, date_col: str) -> None:
        import numpy as np

        grouped = frame.groupby(level=date_col, sort=True)
        self.keys: pd.Index = grouped.size().index
        # Rows whose date is missing get NaN here; they sort last and belong to no group.
        codes = np.asarray(grouped.ngroup(), dtype=np.float64)
        self._order: IndexArray = np.argsort(codes, kind="stable")
        self._bounds: IndexArray = np.searchsorted(
            codes[self._order], np.arange(len(self.keys) + 1), side="left"
        )

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[IndexArray]:
        for g in range(len(self.keys)):
            yield self._order[self._bounds[g] : self._bounds[g + 1]]


def _frame(pred: pd.Series, label: pd.Series, dropna: bool) -> pd.DataFrame:
    import pandas as pd

    frame: pd.DataFrame = pd.DataFrame({"pred": pred, "label": label})
    if dropna:
        frame = frame.dropna()
    return frame


def _column(frame: pd.DataFrame, name: str) -> FloatArray:
    import numpy as np

    return frame[name].to_numpy(dtype=np.float64, na_value=np.nan)


def _per_date(
    pred: FloatArray,
    label: FloatArray,
    groups: _DateGroups,
    stat: Callable[[FloatArray, FloatArray], float],
) -> pd.Series:
    import numpy as np
    import pandas as pd

    values = np.fromiter(
        (stat(pred[rows], label[rows]) for rows in groups), np.float64, len(groups)
    )
    return pd.Series(values, index=groups.keys)


# ---------------------------------------------------------------------------- public functions


def calc_ic(
    pred: pd.Series, label: pd.Series, date_col: str = "datetime", dropna: bool = False
) -> tuple[pd.Series, pd.Series]:
    """Per-date Pearson IC and Spearman rank IC of ``pred`` against ``label``."""
    frame = _frame(pred, label, dropna=False)
    groups = _DateGroups(frame, date_col)
    p, y = _column(frame, "pred"), _column(frame, "label")
    ic = _per_date(p, y, groups, pearson)
    ric = _per_date(p, y, groups, spearman)
    if dropna:
        return ic.dropna(), ric.dropna()
    return ic, ric


def _leg(pred: FloatArray, n: int, largest: bool) -> IndexArray:
    """Positions of the ``n`` rows pandas' ``nlargest``/``nsmallest`` (keep="first") picks, in
    the order it returns them: by prediction (equal ones in row order), then missing ones."""
    import numpy as np

    if n <= 0:
        return np.empty(0, dtype=np.intp)
    missing = np.isnan(pred)
    present = np.flatnonzero(~missing)
    # Stable sort: equal predictions keep their row order, as keep="first" does.
    order = np.argsort(-pred[present] if largest else pred[present], kind="stable")
    chosen = present[order[:n]]
    if chosen.size < n:
        chosen = np.concatenate([chosen, np.flatnonzero(missing)[: n - chosen.size]])
    return chosen


def _label_values(frame: pd.DataFrame) -> npt.NDArray[np.floating[Any]]:
    """The label column as float32 or float64 as stored (other types as float64)."""
    import numpy as np

    column = frame["label"]
    if column.dtype in (np.float32, np.float64):
        return column.to_numpy()
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def _leg_mean(values: npt.NDArray[np.floating[Any]]) -> np.floating[Any] | None:
    """Mean of the present values, rounded as pandas' ``Series.mean`` rounds it: missing
    values count as 0 in a sum taken in the column's own type, in row order. None when no value
    is present (pandas then returns a plain float NaN, which makes the whole Series float64)."""
    import numpy as np

    missing = np.isnan(values)
    count = values.size - int(np.count_nonzero(missing))
    if count == 0:
        return None
    total = np.where(missing, 0, values).sum(dtype=values.dtype)
    mean: np.floating[Any] = total / values.dtype.type(count)
    return mean


def _leg_series(means: list[np.floating[Any] | None], dtype: Any) -> FloatArray:
    import numpy as np

    if any(m is None for m in means):
        # qlib's per-date results then mix float NaN with float32 values: pandas makes that
        # float64 (the float32 values are kept exactly).
        return np.array([np.nan if m is None else m for m in means], dtype=np.float64)
    return np.array(means, dtype=dtype)


def calc_long_short_return(
    pred: pd.Series,
    label: pd.Series,
    date_col: str = "datetime",
    quantile: float = 0.2,
    dropna: bool = False,
) -> tuple[pd.Series, pd.Series]:
    """Per-date long-short return ((top leg - bottom leg) / 2) and the mean return of all rows.

    ``label`` must be raw returns. The second Series is named ``"label"``, as qlib's is. Both
    keep a float32 label's precision, as qlib's do (qlib's datasets hold float32).
    """
    import pandas as pd

    frame = _frame(pred, label, dropna)
    groups = _DateGroups(frame, date_col)
    p, y = _column(frame, "pred"), _label_values(frame)
    long_means: list[Any] = []
    short_means: list[Any] = []
    for rows in groups:
        n = int(rows.size * quantile)
        gp, gy = p[rows], y[rows]
        long_means.append(_leg_mean(gy[_leg(gp, n, largest=True)]))
        short_means.append(_leg_mean(gy[_leg(gp, n, largest=False)]))
    long_short = (_leg_series(long_means, y.dtype) - _leg_series(short_means, y.dtype)) / 2
    # pandas' own grouped mean: the rounding and type qlib's numbers have.
    average = frame.groupby(level=date_col, sort=True)["label"].mean()
    return pd.Series(long_short, index=groups.keys), average


def calc_long_short_prec(
    pred: pd.Series,
    label: pd.Series,
    date_col: str = "datetime",
    quantile: float = 0.2,
    dropna: bool = False,
    is_alpha: bool = False,
) -> tuple[pd.Series, pd.Series]:
    """Per-date precision of the long leg (share of its labels > 0) and of the short leg
    (share < 0). With ``is_alpha`` the label is first demeaned per date.

    A date whose legs are empty is left out. ``ValueError`` if there are too few instruments
    (``int(1 / quantile)`` or fewer) to form legs.
    """
    import numpy as np
    import pandas as pd

    if is_alpha:
        label = label - label.groupby(level=date_col).transform("mean")
    if int(1 / quantile) >= len(label.index.get_level_values(1).unique()):
        raise ValueError(
            f"Need more instruments to calculate precision: quantile {quantile} needs more than "
            f"{int(1 / quantile)} instruments"
        )
    frame = _frame(pred, label, dropna)
    groups = _DateGroups(frame, date_col)
    p, y = _column(frame, "pred"), _column(frame, "label")
    kept = np.zeros(len(groups), dtype=bool)
    long_p = np.empty(len(groups))
    short_p = np.empty(len(groups))
    for g, rows in enumerate(groups):
        n = int(rows.size * quantile)
        if n <= 0:
            continue  # qlib's legs are empty on this date: the date is absent from its result
        gp, gy = p[rows], y[rows]
        kept[g] = True
        long_p[g] = _share(gy[_leg(gp, n, largest=True)], positive=True)
        short_p[g] = _share(gy[_leg(gp, n, largest=False)], positive=False)
    # Indexing drops a DatetimeIndex's freq; keep the index whole when no date is left out.
    index = groups.keys if kept.all() else groups.keys[kept]
    return (
        pd.Series(long_p[kept], index=index, name="label"),
        pd.Series(short_p[kept], index=index, name="label"),
    )


def _share(labels: FloatArray, positive: bool) -> float:
    """Labels above (below) zero over labels present; NaN when none is present."""
    import numpy as np

    present = int(np.count_nonzero(~np.isnan(labels)))
    if present == 0:
        return math.nan
    hits = int(np.count_nonzero(labels > 0 if positive else labels < 0))
    return hits / present
