"""Why a task or one of its formats failed, in words a person can act on (§11.1).

TaskFailure          ends the whole task with status "error"
├── SourceError      the source could not be fetched or is not allowed
└── MediaError       the source is not media qthumb can decode
FormatFailure        ends one format; the task's other formats still complete
"""

from __future__ import annotations


class TaskFailure(Exception):
    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class SourceError(TaskFailure):
    pass


class MediaError(TaskFailure):
    pass


class FormatFailure(Exception):
    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class NothingMade(TaskFailure):
    """Every format failed: the task fails, and still reports each format's own reason."""

    def __init__(self, description: str, results: object) -> None:
        super().__init__(description)
        self.results = results
