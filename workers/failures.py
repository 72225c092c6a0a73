"""Why a task or one of its formats failed, in words a person can act on (docs/compatibility.md).

TaskFailure          ends the whole task with status "error"
├── SourceError      the source could not be fetched or is not allowed
├── MediaError       the source is not media qthumb can decode
└── NothingMade      ended with the formats' own entries: every format failed
    └── OutputFailed a format without allow_soft_fail failed, so the task does
FormatFailure        ends one format (the task too, unless it has allow_soft_fail)

``transient``: a failure that another attempt may not meet (a deadline or the memory limit
under load, an internal error, a fault a test asked for), which ``retry_on_error`` retries;
a source, a destination or a query fails the same way every time. ``store_down``: a store
(a source's, a destination's or qthumb's own) did not answer as a store (5xx, throttling, no
connection): the attempt is tried again later, up to ``QTHUMB_MAX_ATTEMPTS``, before the task
fails naming the store.
"""

from __future__ import annotations

from typing import TypeVar

from qthumb.app.storage.objects import FileError, StoreUnavailable


class TaskFailure(Exception):
    def __init__(self, description: str, transient: bool = False, store_down: bool = False):
        super().__init__(description)
        self.description = description
        self.transient = transient or store_down
        self.store_down = store_down


class SourceError(TaskFailure):
    pass


class MediaError(TaskFailure):
    pass


class FormatFailure(Exception):
    def __init__(self, description: str, transient: bool = False, store_down: bool = False):
        super().__init__(description)
        self.description = description
        self.transient = transient or store_down
        self.store_down = store_down


class NothingMade(TaskFailure):
    """Every format failed: the task fails, and still reports each format's own reason."""

    def __init__(
        self, description: str, results: object, transient: bool = False, store_down: bool = False
    ) -> None:
        super().__init__(description, transient, store_down)
        self.results = results


class OutputFailed(NothingMade):
    """A format without ``allow_soft_fail`` failed: the task ends with what it made so far."""


Failure = TypeVar("Failure", TaskFailure, FormatFailure)


def store_failure(kind: type[Failure], where: str, exc: FileError, hint: str = "") -> Failure:
    """A store's ``FileError`` as ``kind``: a store that was down says so and is
    ``store_down`` (tried again later); any other refusal fails as it is, ``hint`` after it."""
    if isinstance(exc, StoreUnavailable):
        return kind(f"{where}{exc}: the store is unavailable", store_down=True)
    return kind(f"{where}{exc}{hint}")
