"""qlib's experiment-tracking API on top of the tracklite store: ``R``, ``ExpManager``,
``Experiment`` and ``Recorder``. No file I/O of its own: everything goes through
:mod:`tracklite.store` and :mod:`tracklite.metrics`."""
