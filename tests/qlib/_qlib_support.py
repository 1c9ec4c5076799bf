"""Synthetic inputs for the tests against real qlib: predictions and labels on a
``(datetime, instrument)`` index, a tiny market in qlib's binary data format (so qlib's backtest,
datasets and updaters run without downloading anything), and qlib task configs over it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BENCHMARK = "SH000300"
MARKET_DAYS = 60
MARKET_START = "2020-01-01"


def panel(
    seed: int = 0,
    dates: int = 15,
    instruments: int = 25,
    missing: float = 0.05,
    ties: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``pred`` (column ``score``) and ``label`` (column ``LABEL0``) frames, with gaps, ties,
    a few rows present on one side only, and the instruments shuffled within each date."""
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product(
        [
            pd.bdate_range("2021-06-01", periods=dates),
            [f"SH{600000 + i}" for i in range(instruments)],
        ],
        names=["datetime", "instrument"],
    )
    score = rng.normal(size=len(index))
    label = 0.02 * rng.normal(size=len(index)) + 0.005 * score
    if ties:
        score = np.round(score, 1)
    score[rng.random(len(index)) < missing] = np.nan
    label[rng.random(len(index)) < missing] = np.nan
    pred = pd.DataFrame({"score": score}, index=index)
    lab = pd.DataFrame({"LABEL0": label}, index=index)
    pred = pred.drop(pred.index[rng.random(len(index)) < missing / 2])
    lab = lab.drop(lab.index[rng.random(len(index)) < missing / 2])
    return pred, lab


def write_market(root: Path, days: int = MARKET_DAYS, instruments: int = 12, seed: int = 0) -> Path:
    """A qlib data folder: business-day calendar, ``instruments/all.txt``, and for each
    instrument (plus the benchmark) float32 ``features/<code>/<field>.day.bin`` files whose first
    value is the calendar index of the first row, as qlib's ``dump_bin`` writes them; plus
    ``day_future.txt``, the calendar with the trading days to come."""
    rng = np.random.default_rng(seed)
    calendar = pd.bdate_range(MARKET_START, periods=days)
    (root / "calendars").mkdir(parents=True)
    (root / "calendars" / "day.txt").write_text(
        "".join(f"{day:%Y-%m-%d}\n" for day in calendar), encoding="utf-8"
    )
    # The trading days ahead too, as qlib's collectors write them (rolling task generation
    # shifts test windows past the last day of data).
    future = pd.bdate_range(MARKET_START, periods=days + 40)
    (root / "calendars" / "day_future.txt").write_text(
        "".join(f"{day:%Y-%m-%d}\n" for day in future), encoding="utf-8"
    )
    codes = [f"SH{600000 + i}" for i in range(instruments)] + [BENCHMARK]
    (root / "instruments").mkdir()
    (root / "instruments" / "all.txt").write_text(
        "".join(f"{code}\t{calendar[0]:%Y-%m-%d}\t{calendar[-1]:%Y-%m-%d}\n" for code in codes),
        encoding="utf-8",
    )
    for code in codes:
        close = 10 * np.cumprod(1 + rng.normal(0.0005, 0.02, size=days))
        fields = {
            "close": close,
            "open": close * 0.998,
            "high": close * 1.01,
            "low": close * 0.99,
            "volume": rng.uniform(5e5, 2e6, size=days),
            "factor": np.ones(days),
            "change": np.concatenate([[np.nan], close[1:] / close[:-1] - 1]),
        }
        folder = root / "features" / code.lower()
        folder.mkdir(parents=True)
        for field, values in fields.items():
            np.hstack([[0.0], values]).astype("<f4").tofile(folder / f"{field}.day.bin")
    return root


def market_calendar(days: int = MARKET_DAYS) -> pd.DatetimeIndex:
    return pd.bdate_range(MARKET_START, periods=days)


def market_task(test_end: int = 45) -> dict[str, Any]:
    """A qlib task (model, dataset, records) over :func:`write_market`'s data: a linear model
    on two features, trained on days 5-24, validated on 25-29, tested on 30-``test_end``."""
    cal = market_calendar()

    def day(i: int) -> str:
        return f"{cal[i]:%Y-%m-%d}"

    handler = {
        "class": "DataHandlerLP",
        "module_path": "qlib.data.dataset.handler",
        "kwargs": {
            "start_time": day(0),
            "end_time": day(test_end),
            "instruments": "all",
            "data_loader": {
                "class": "QlibDataLoader",
                "kwargs": {
                    "config": {
                        "feature": (["$close/Ref($close, 1) - 1", "$volume / 1e6"], ["RET", "VOL"]),
                        "label": (["Ref($close, -1)/$close - 1"], ["LABEL0"]),
                    },
                },
            },
            "infer_processors": [{"class": "Fillna", "kwargs": {"fields_group": "feature"}}],
            "learn_processors": [
                {"class": "DropnaLabel"},
                {"class": "Fillna", "kwargs": {"fields_group": "feature"}},
            ],
        },
    }
    return {
        "model": {
            "class": "LinearModel",
            "module_path": "qlib.contrib.model.linear",
            "kwargs": {"estimator": "ols"},
        },
        "dataset": {
            "class": "DatasetH",
            "module_path": "qlib.data.dataset",
            "kwargs": {
                "handler": handler,
                "segments": {
                    "train": (day(5), day(24)),
                    "valid": (day(25), day(29)),
                    "test": (day(30), day(test_end)),
                },
            },
        },
        "record": [
            {"class": "SignalRecord", "module_path": "qlib.workflow.record_temp"},
            {
                "class": "SigAnaRecord",
                "module_path": "qlib.workflow.record_temp",
                "kwargs": {"ana_long_short": True},
            },
        ],
    }


def port_config(topk: int = 4) -> dict[str, Any]:
    """PortAnaRecord's config for the synthetic market (qlib's default, scaled down)."""
    return {
        "strategy": {
            "class": "TopkDropoutStrategy",
            "module_path": "qlib.contrib.strategy",
            "kwargs": {"signal": "<PRED>", "topk": topk, "n_drop": 1},
        },
        "backtest": {
            "start_time": None,
            "end_time": None,
            "account": 1_000_000,
            "benchmark": BENCHMARK,
            "exchange_kwargs": {
                "limit_threshold": 0.095,
                "deal_price": "close",
                "open_cost": 0.0005,
                "close_cost": 0.0015,
                "min_cost": 5,
            },
        },
    }


class FixedModel:
    """A model that is not a qlib Model: predict(dataset) returns a fixed Series."""

    def __init__(self, pred: pd.Series) -> None:
        self.pred = pred

    def predict(self, dataset: Any) -> pd.Series:
        return self.pred


def same_object(left: Any, right: Any) -> None:
    """Assert two loaded artifacts are equal: pandas objects to 1e-12 (the ``freq`` of a
    DatetimeIndex is pandas bookkeeping, not data), anything else exactly."""
    if isinstance(left, pd.Series):
        pd.testing.assert_series_equal(
            left, right, check_exact=False, rtol=0, atol=1e-12, check_freq=False
        )
    elif isinstance(left, pd.DataFrame):
        pd.testing.assert_frame_equal(
            left, right, check_exact=False, rtol=0, atol=1e-12, check_freq=False
        )
    else:
        assert left == right
