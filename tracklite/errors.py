"""Exceptions raised by tracklite.

Every error tracklite raises on purpose derives from :class:`TrackliteError`. Where qlib raises a
plain ``ValueError`` or ``AssertionError`` the tracklite class also derives from that builtin, so
code written against qlib's ``R`` that catches those keeps working.

Errors carry what they are about as attributes (``path``, ``recorder_id``; None when not
known), and pickle with them: an error raised in a ``multiprocessing`` worker reaches the parent
whole. Warnings tracklite gives derive from :class:`TrackliteWarning`.
"""

from __future__ import annotations

import os


class TrackliteError(Exception):
    """Base class of every error tracklite raises on purpose.

    :ivar path: the file or folder the error is about, as a string (or None).
    :ivar recorder_id: the recorder it is about (or None).
    """

    def __init__(
        self,
        *args: object,
        path: str | os.PathLike[str] | None = None,
        recorder_id: str | None = None,
    ) -> None:
        super().__init__(*args)
        # Plain attributes: the default pickling of exceptions (class, args, __dict__) keeps them.
        self.path = None if path is None else os.fspath(path)
        self.recorder_id = recorder_id


class TrackliteWarning(UserWarning):
    """Base class of every warning tracklite gives."""


class CorruptMetadataWarning(TrackliteWarning, RuntimeWarning):
    """An ``experiment.json`` or ``recorder.json`` could not be read, so a listing or search
    skipped its experiment or recorder (the message names the file; ``tracklite check``
    reports it and ``tracklite check --fix`` repairs it)."""


class LoadObjectError(TrackliteError):
    """An artifact could not be loaded as an object (missing, unreadable or not a pickle)."""


class ExpAlreadyExistError(TrackliteError):
    """An active experiment with that name already exists."""


class RecorderInitializationError(TrackliteError):
    """tracklite was re-initialised while an experiment is active."""


class NotFoundError(TrackliteError, ValueError):
    """No experiment or recorder matches the id or name given (qlib raises ``ValueError``)."""


class UsageError(TrackliteError, ValueError, AssertionError):
    """A call's arguments are missing or contradict each other.

    qlib signals these with ``assert``; this class is both an ``AssertionError`` (for code written
    against qlib) and a ``ValueError`` (what the problem really is).
    """


class StoreError(TrackliteError):
    """The store folder cannot be used: it holds something else, or a format this version
    does not know."""


class ExtraRequiredError(TrackliteError, ImportError):
    """A feature needs an optional dependency that is not installed; the message names the
    ``pip install "tracklite[...]"`` that brings it."""


class CorruptMetadataError(StoreError):
    """An ``experiment.json`` or ``recorder.json`` asked for directly cannot be read
    (truncated, not a JSON object, a folder in its place, a newer format); ``path`` names it."""


class LockTimeoutError(TrackliteError, TimeoutError):
    """A lock inside the store was not obtained in time (``TRACKLITE_LOCK_TIMEOUT``); also a
    ``TimeoutError``. ``path`` is the lock file."""


class MetricWriteError(TrackliteError):
    """Writing metric points or recorder metadata failed in the background writer.

    The points are kept in memory and written by the next flush that succeeds.
    """


class MetricPermissionError(MetricWriteError, PermissionError):
    """A :class:`MetricWriteError` caused by a store that cannot be written (permissions, a
    read-only mount): also a ``PermissionError``, so code can catch it as one."""


def write_error(recorder_id: str, where: object, cause: BaseException) -> MetricWriteError:
    """The error to raise for a failed write of a recorder's points or metadata."""
    import errno

    denied = isinstance(cause, PermissionError) or (
        isinstance(cause, OSError) and cause.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
    )
    kind = MetricPermissionError if denied else MetricWriteError
    return kind(
        f"writing metrics of recorder {recorder_id} to {where} failed: {cause}; the points "
        "are kept in memory and will be written by the next flush",
        path=getattr(cause, "filename", None) or str(where),
        recorder_id=recorder_id,
    )


class UnsafeLinkError(StoreError, ValueError):
    """A path inside a store is a symbolic link: tracklite never follows one (it could lead out
    of the store). ``path`` is the link; ``tracklite check --fix`` moves it to the quarantine."""

    def __init__(self, path: object, context: str = "") -> None:
        super().__init__(
            f"{context}{': ' if context else ''}{path} is a symbolic link; tracklite never "
            "follows a link inside a store (it could lead outside the store); "
            "`tracklite check --fix` moves it to the quarantine",
            path=str(path),
        )
        self.context = context

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (str(self.path), self.context))


class StorePermissionError(StoreError, PermissionError):
    """This process may not write a file or folder of the store (another user's run in a store
    not set up for its group). Raised before anything is changed; ``path`` names the file."""
