"""qlib's own record templates on a tracklite recorder leave Parquet copies of their analysis
objects beside the pickles, and the page's qlib panels are read from those copies alone."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("qlib.workflow")

import pandas as pd
from _qlib_support import market_calendar, port_config, same_object
from conftest import QlibSession
from qlib.workflow import record_temp as qlib_records

from tracklite.ui.data import StoreData

COPIED = [
    "sig_analysis/ic",
    "sig_analysis/ric",
    "portfolio_analysis/report_normal_1day",
    "portfolio_analysis/port_analysis_1day",
]


def market_pred_and_label() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores and labels on the synthetic market's trading days and instruments."""
    rng = np.random.default_rng(7)
    codes = [f"SH{600000 + i}" for i in range(12)]
    index = pd.MultiIndex.from_product(
        [market_calendar()[5:40], codes], names=["datetime", "instrument"]
    )
    score = rng.normal(size=len(index))
    pred = pd.DataFrame({"score": score}, index=index)
    label = pd.DataFrame({"LABEL0": 0.02 * rng.normal(size=len(index)) + 0.01 * score}, index)
    return pred, label


def test_qlibs_analysis_records_leave_parquet_copies_the_page_reads(
    qlib_market: QlibSession,
) -> None:
    R = qlib_market.R
    pred, label = market_pred_and_label()
    with R.start(experiment_name="panels"):
        rec = R.get_recorder()
        rec.save_objects(**{"pred.pkl": pred, "label.pkl": label})
        qlib_records.SigAnaRecord(rec, ana_long_short=True).generate()
        qlib_records.PortAnaRecord(rec, port_config(), risk_analysis_freq="day").generate()
    folder = rec.ref.artifacts_dir
    for stem in COPIED:
        assert (folder / f"{stem}.pkl").is_file()
        assert (folder / f"{stem}.parquet").is_file(), stem
    # Only the analysis objects the panels show are copied: not qlib's other files.
    assert not (folder / "pred.parquet").exists()
    assert not (folder / "portfolio_analysis" / "positions_normal_1day.parquet").exists()
    # The copies hold the pickles' data.
    ic = rec.load_object("sig_analysis/ic.pkl")
    copy = pd.read_parquet(folder / "sig_analysis" / "ic.parquet")
    same_object(copy.iloc[:, 0].rename(ic.name), ic)
    report = rec.load_object("portfolio_analysis/report_normal_1day.pkl")
    pd.testing.assert_frame_equal(
        pd.read_parquet(folder / "portfolio_analysis" / "report_normal_1day.parquet"),
        report,
        check_freq=False,
    )

    data = StoreData(qlib_market.uri)
    panels = data.qlib_panels(data.ref(rec.id))  # no pickle is read
    assert panels is not None
    ric = rec.load_object("sig_analysis/ric.pkl")
    assert panels["ic"]["ic"] == pytest.approx(ic.tolist(), rel=1e-12)
    assert panels["ic"]["ric"] == pytest.approx(ric.tolist(), rel=1e-12)
    (returns,) = panels["returns"]
    excess = report["return"] - report["bench"]
    assert returns["freq"] == "1day" and len(returns["x"]) == len(report)
    assert returns["without_cost"] == pytest.approx(excess.cumsum().tolist(), rel=1e-12)
    assert returns["with_cost"] == pytest.approx(
        (excess - report["cost"]).cumsum().tolist(), rel=1e-12
    )
    (drawdowns,) = panels["drawdowns"]
    assert [row["curve"] for row in drawdowns["rows"]] == ["without cost", "with cost"]
    (risk,) = panels["risk"]
    assert risk["freq"] == "1day" and risk["rows"]
    # The same panels as from qlib's own pickles (what --trust-pickles reads).
    assert data.qlib_panels(data.ref(rec.id), trust_pickles=True) == panels
