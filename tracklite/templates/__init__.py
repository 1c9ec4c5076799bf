"""qlib's record templates and signal analysis, without qlib.

>>> from tracklite.templates import SignalRecord, SigAnaRecord   # doctest: +SKIP
>>> SignalRecord(model, dataset, recorder).generate()             # doctest: +SKIP
>>> SigAnaRecord(recorder, ana_long_short=True).generate()         # doctest: +SKIP

Importing this package imports neither qlib nor pandas; see :mod:`.record_temp` for the files
and metrics each template writes and :mod:`.signal_analysis` for the numbers.
"""

from __future__ import annotations

from ._qlib import QlibRequiredError
from .contrib import MultiSegRecord, SignalMseRecord
from .record_temp import (
    ACRecordTemp,
    HFSignalRecord,
    LabelSource,
    MultiPassPortAnaRecord,
    PortAnaRecord,
    Predictor,
    RecorderLike,
    RecordTemp,
    SigAnaRecord,
    SignalRecord,
)
from .signal_analysis import calc_ic, calc_long_short_prec, calc_long_short_return

__all__ = [
    "ACRecordTemp",
    "HFSignalRecord",
    "LabelSource",
    "MultiPassPortAnaRecord",
    "MultiSegRecord",
    "PortAnaRecord",
    "Predictor",
    "QlibRequiredError",
    "RecordTemp",
    "RecorderLike",
    "SigAnaRecord",
    "SignalMseRecord",
    "SignalRecord",
    "calc_ic",
    "calc_long_short_prec",
    "calc_long_short_return",
]
