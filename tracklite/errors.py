"""Exceptions raised by tracklite.

Every error tracklite raises on purpose derives from :class:`TrackliteError`. Where qlib raises a
plain ``ValueError`` or ``AssertionError`` the tracklite class also derives from that builtin, so
code written against qlib's ``R`` that catches those keeps working.
"""

from __future__ import annotations


class TrackliteError(Exception):
    """Base class of every error tracklite raises on purpose."""


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
        "are kept in memory and will be written by the next flush"
    )


class UnsafeLinkError(StoreError, ValueError):
    """A path inside a store is a symbolic link: tracklite never follows one (it could lead out
    of the store). ``path`` is the link; ``tracklite check --fix`` moves it to the quarantine."""

    def __init__(self, path: object, context: str = "") -> None:
        super().__init__(
            f"{context}{': ' if context else ''}{path} is a symbolic link; tracklite never "
            "follows a link inside a store (it could lead outside the store); "
            "`tracklite check --fix` moves it to the quarantine"
        )
        self.path = str(path)
        self.context = context

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.path, self.context))
