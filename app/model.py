"""The task model: its states, the legal changes between them, and its Qencode status object."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Session, task and upload tokens: 32 lowercase hex digits (uuid4().hex). The one definition.
TOKEN_PATTERN = "[0-9a-f]{32}"
_TOKEN = re.compile(TOKEN_PATTERN)


def is_token(value: str) -> bool:
    """Exactly a token: no trailing newline, no other digits than ASCII."""
    return _TOKEN.fullmatch(value) is not None


class TaskStatus(StrEnum):
    CREATED = "created"  # create_task done, start_encode2 not yet (qthumb's name, §5.2 has none)
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
class Outputs:
    """What a task produced, already in Qencode's wire shape (§5.3, §11.6)."""

    images: list[dict[str, Any]] = field(default_factory=list)
    videos: list[dict[str, Any]] = field(default_factory=list)
    audios: list[dict[str, Any]] = field(default_factory=list)
    texts: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "images": self.images,
            "videos": self.videos,
            "audios": self.audios,
            "texts": self.texts,
            "warnings": self.warnings,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outputs:
        return cls(**{k: list(data.get(k) or []) for k in cls().to_dict()})


@dataclass
class TaskRecord:
    token: str
    api_key: str
    status: TaskStatus
    created_at: float
    percent: float = 0.0
    error_description: str | None = None
    query: str | None = None
    payload: str | None = None
    attempts: int = 0
    worker_id: str | None = None
    heartbeat_at: float | None = None
    queued_at: float | None = None
    finished_at: float | None = None
    duration: float | None = None
    source_size: float | None = None
    outputs: Outputs = field(default_factory=Outputs)


def status_object(task: TaskRecord, status_url: str) -> dict[str, Any]:
    """The ``statuses[token]`` entry (§5.1). ``error`` is always an int, arrays never null."""
    failed = task.status is TaskStatus.ERROR
    return {
        "status": task.status.value,
        "percent": 100.0 if task.status is TaskStatus.COMPLETED else float(task.percent),
        "error": 1 if failed else 0,
        "error_description": task.error_description if failed else None,
        "status_url": status_url,
        "duration": None if task.duration is None else f"{task.duration:.3f}",
        "source_size": task.source_size,
        "payload": task.payload,
        **task.outputs.to_dict(),
        # images[] entries under both names the SDKs read: `storage` (.NET, PHP) and
        # `storage_info` (Java)
        "images": [{**i, "storage_info": i.get("storage")} for i in task.outputs.images],
    }
