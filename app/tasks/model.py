"""The task model: its states, the legal changes between them, and its stored record."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from qthumb.app.qencode.query import Query
from qthumb.app.tasks.results import Results


class TaskStatus(StrEnum):
    # create_task done, start_encode2 not yet: qthumb's name (Qencode's status list has none)
    CREATED = "created"
    QUEUED = "queued"
    DOWNLOADING = "downloading"
    ENCODING = "encoding"
    SAVING = "saving"
    COMPLETED = "completed"
    ERROR = "error"

    @property
    def terminal(self) -> bool:
        return self in (TaskStatus.COMPLETED, TaskStatus.ERROR)

    @property
    def running(self) -> bool:
        return self in (TaskStatus.DOWNLOADING, TaskStatus.ENCODING, TaskStatus.SAVING)


# Where each state may go. Running states may fall back to QUEUED only through recovery, when
# the worker that held the task stopped beating.
LEGAL_CHANGES: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.CREATED: frozenset({TaskStatus.QUEUED}),
    TaskStatus.QUEUED: frozenset({TaskStatus.DOWNLOADING, TaskStatus.ERROR}),
    TaskStatus.DOWNLOADING: frozenset({TaskStatus.ENCODING, TaskStatus.ERROR, TaskStatus.QUEUED}),
    TaskStatus.ENCODING: frozenset({TaskStatus.SAVING, TaskStatus.ERROR, TaskStatus.QUEUED}),
    TaskStatus.SAVING: frozenset({TaskStatus.COMPLETED, TaskStatus.ERROR, TaskStatus.QUEUED}),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.ERROR: frozenset(),
}


def sources_of(target: TaskStatus) -> tuple[TaskStatus, ...]:
    """The states from which ``target`` may be reached (including itself for progress)."""
    found = [s for s, targets in LEGAL_CHANGES.items() if target in targets]
    if target.running:
        found.append(target)
    return tuple(found)


@dataclass
class TaskRecord:
    token: str
    api_key: str
    status: TaskStatus
    created_at: float
    percent: float = 0.0
    error_description: str | None = None
    query: str | None = None  # the user's query, as sent (the console shows it back)
    payload: str | None = None
    attempts: int = 0
    worker_id: str | None = None
    heartbeat_at: float | None = None
    claimed_at: float | None = None  # when the running attempt began
    queued_at: float | None = None
    finished_at: float | None = None
    duration: float | None = None
    source_size: float | None = None
    results: Results = field(default_factory=Results)
    # The query as parsed when it started, typed (stored as ``Query.to_json``); ``None`` for a
    # task started before plans were stored, whose worker parses its query as it was then
    plan: Query | None = None
    faults: str | None = None  # the faults a test asked for that it matched (app.tasks.faults)
    retry_of: str | None = None  # the failed task this one retries (retry_on_error)

    def query_object(self) -> dict[str, Any]:
        """The stored query (already checked by start_encode2), or ``{}`` before it starts."""
        value = json.loads(self.query) if self.query else {}
        return value if isinstance(value, dict) else {}

    @property
    def source(self) -> str:
        value = self.query_object().get("source")  # a stitched query has pieces instead
        return value if isinstance(value, str) else ""
