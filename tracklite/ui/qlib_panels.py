"""qlib's analysis panels from a recorder's artifacts: IC and Rank IC per date, cumulative
excess return with and without cost, and the drawdown table.

The series are read from the Parquet copies (``sig_analysis/ic.parquet``,
``portfolio_analysis/report_normal_1day.parquet``) that tracklite's record templates and the
recorders of :mod:`tracklite.qlib` store beside qlib's pickles (:mod:`tracklite.parquet_copies`).
Pickles are code: they are read only with ``trust_pickles=True``.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from ..parquet_copies import PORTFOLIO_FOLDER, REPORT_PREFIX, RISK_PREFIX, SIGNAL_FOLDERS
from .data import number

if TYPE_CHECKING:
    import pandas as pd


Reader = Callable[[str], "IO[bytes] | None"]


def panels(names: list[str], read: Reader, trust_pickles: bool = False) -> dict[str, Any] | None:
    """The panels a recorder's artifacts (``names``, opened with ``read``) allow, or None when
    it holds no qlib analysis."""
    present = set(names)
    out: dict[str, Any] = {}
    for folder in SIGNAL_FOLDERS:
        ic = _read(present, read, f"{folder}/ic", trust_pickles)
        ric = _read(present, read, f"{folder}/ric", trust_pickles)
        if ic is not None or ric is not None:
            out["ic"] = _ic_panel(ic, ric)
            break
    returns, drawdowns, risks = [], [], []
    for freq in _frequencies(present):
        report = _read(present, read, f"{PORTFOLIO_FOLDER}/{REPORT_PREFIX}{freq}", trust_pickles)
        if report is not None and {"return", "bench"} <= set(map(str, report.columns)):
            panel = _returns_panel(report)
            panel["freq"] = freq
            returns.append(panel)
            drawdowns.append({"freq": freq, "rows": _drawdowns(report)})
        risk = _read(present, read, f"{PORTFOLIO_FOLDER}/{RISK_PREFIX}{freq}", trust_pickles)
        if risk is not None:
            risks.append({"freq": freq, **_table(risk)})
    if returns:
        out["returns"] = returns
        out["drawdowns"] = drawdowns
    if risks:
        out["risk"] = risks
    return out or None


def _frequencies(present: set[str]) -> list[str]:
    found = set()
    for path in present:
        folder, _, name = path.rpartition("/")
        stem, suffix = os.path.splitext(name)
        if folder == PORTFOLIO_FOLDER and suffix in (".parquet", ".pkl"):
            for prefix in (REPORT_PREFIX, RISK_PREFIX):
                if stem.startswith(prefix):
                    found.add(stem[len(prefix) :])
    return sorted(found)


def _read(present: set[str], read: Reader, stem: str, trust_pickles: bool) -> pd.DataFrame | None:
    """The Parquet copy as a frame; else, when trusted, the pickle (a Series becomes a frame)."""
    import pandas as pd

    if f"{stem}.parquet" in present:
        handle = read(f"{stem}.parquet")
        if handle is not None:
            with handle:
                return pd.read_parquet(handle)
    if trust_pickles and f"{stem}.pkl" in present:
        handle = read(f"{stem}.pkl")
        if handle is not None:
            with handle:
                obj = pickle.load(handle)  # the user vouched for this store: --trust-pickles
            if isinstance(obj, pd.Series):
                return obj.to_frame()
            if isinstance(obj, pd.DataFrame):
                return obj
    return None


def _labels(index: Any) -> list[str]:
    import pandas as pd

    if isinstance(index, pd.DatetimeIndex):
        return [str(t.date()) if t == t.normalize() else t.isoformat() for t in index]
    return [str(v) for v in index]


def _ic_panel(ic: pd.DataFrame | None, ric: pd.DataFrame | None) -> dict[str, Any]:
    base = ic if ic is not None else ric
    assert base is not None
    return {
        "x": _labels(base.index),
        "ic": None if ic is None else [number(v) for v in ic.iloc[:, 0].tolist()],
        "ric": None if ric is None else [number(v) for v in ric.iloc[:, 0].tolist()],
    }


def _excess(report: pd.DataFrame) -> tuple[Any, Any]:
    """Cumulative excess return without and with cost (summed, as qlib's report graphs)."""
    excess = report["return"] - report["bench"]
    cost = report["cost"] if "cost" in report.columns else 0.0
    return excess.cumsum(), (excess - cost).cumsum()


def _returns_panel(report: pd.DataFrame) -> dict[str, Any]:
    without, with_cost = _excess(report)
    return {
        "x": _labels(report.index),
        "without_cost": [number(v) for v in without.tolist()],
        "with_cost": [number(v) for v in with_cost.tolist()],
    }


def _drawdowns(report: pd.DataFrame) -> list[dict[str, Any]]:
    """Per curve: the largest drawdown of cumulative excess return, its peak, trough and
    recovery dates (None when it has not recovered)."""
    rows = []
    labels = _labels(report.index)
    for name, curve in zip(("without cost", "with cost"), _excess(report), strict=True):
        values = curve.to_numpy(dtype=float)
        if len(values) == 0:
            continue
        peaks = _running_max(values)
        depth = values - peaks
        trough = int(depth.argmin())
        peak = int(values[: trough + 1].argmax())
        later = [i for i in range(trough, len(values)) if values[i] >= values[peak]]
        rows.append(
            {
                "curve": name,
                "max_drawdown": number(depth[trough]),
                "peak": labels[peak],
                "trough": labels[trough],
                "recovery": labels[later[0]] if later and depth[trough] < 0 else None,
            }
        )
    return rows


def _running_max(values: Any) -> Any:
    import numpy as np

    return np.maximum.accumulate(values)


def _table(frame: pd.DataFrame) -> dict[str, Any]:
    """A small frame as text: index labels first, then its columns."""
    rows = []
    for label, values in zip(frame.index.tolist(), frame.itertuples(index=False), strict=True):
        parts = label if isinstance(label, tuple) else (label,)
        rows.append([*(str(p) for p in parts), *(_format(v) for v in values)])
    depth = frame.index.nlevels
    return {"columns": [""] * depth + [str(c) for c in frame.columns], "rows": rows}


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
