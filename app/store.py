"""The task store: sessions and tasks, behind a small interface.

``SqliteTaskStore`` is the embedded default (one file in the data dir, WAL mode so the API and
every worker process can use it at once). Every state change is one conditional UPDATE that
checks the legal source states and, for a running task, the attempt number that claimed it:
a worker that was presumed dead and replaced cannot overwrite its successor's result.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from app.model import Outputs, TaskRecord, TaskStatus, sources_of
from app.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    token TEXT PRIMARY KEY,
    api_key TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    token TEXT PRIMARY KEY,
    api_key TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    percent REAL NOT NULL DEFAULT 0,
    error_description TEXT,
    query TEXT,
    payload TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker_id TEXT,
    heartbeat_at REAL,
    queued_at REAL,
    finished_at REAL,
    duration REAL,
    source_size REAL,
    outputs TEXT NOT NULL DEFAULT '{}',
    storage_purged INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks(status);
CREATE INDEX IF NOT EXISTS tasks_key_status ON tasks(api_key, status);
CREATE TABLE IF NOT EXISTS uploads (
    uuid TEXT PRIMARY KEY,
    task_token TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


def new_token() -> str:
    """128 random bits as 32 hex characters: the shape of every Qencode token."""
    return secrets.token_hex(16)


class TaskStore(Protocol):
    def create_session(self, api_key: str, expires_at: float) -> str: ...
    def session_owner(self, token: str, now: float) -> str | None: ...
    def create_task(self, api_key: str, now: float) -> str: ...
    def get(self, token: str) -> TaskRecord | None: ...
    def get_many(self, tokens: Sequence[str]) -> dict[str, TaskRecord]: ...
    def start(self, token: str, query: str, payload: str | None, now: float) -> bool: ...
    def claim(self, token: str, worker_id: str, now: float) -> int | None: ...
    def advance(self, token: str, attempt: int, status: TaskStatus, percent: float) -> bool: ...
    def set_source_info(self, token: str, attempt: int, duration: float, size: float) -> bool: ...
    def heartbeat(self, token: str, attempt: int, now: float) -> bool: ...
    def finish(
        self,
        token: str,
        attempt: int | None,
        status: TaskStatus,
        outputs: Outputs,
        error_description: str | None,
        now: float,
    ) -> bool: ...
    def requeue(self, token: str, attempt: int, now: float) -> bool: ...
    def stale_running(self, beat_before: float) -> list[TaskRecord]: ...
    def queued_before(self, when: float) -> list[str]: ...
    def expired_results(self, finished_before: float) -> list[str]: ...
    def mark_purged(self, token: str) -> None: ...
    def add_warning(self, token: str, warning: dict[str, Any]) -> None: ...
    def add_upload(self, uuid: str, token: str, now: float) -> None: ...
    def upload_owner(self, uuid: str) -> str | None: ...
    def active_tasks(self, api_key: str) -> int: ...


class SqliteTaskStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    def _db(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self.path)

    def _update(self, sql: str, params: Sequence[Any]) -> bool:
        with self._db() as db:
            return db.execute(sql, params).rowcount == 1

    # sessions -------------------------------------------------------------------------------
    def create_session(self, api_key: str, expires_at: float) -> str:
        token = new_token()
        with self._db() as db:
            db.execute("INSERT INTO sessions VALUES (?, ?, ?)", (token, api_key, expires_at))
            db.execute("DELETE FROM sessions WHERE expires_at < ?", (expires_at - 7 * 86400,))
        return token

    def session_owner(self, token: str, now: float) -> str | None:
        with self._db() as db:
            row = db.execute(
                "SELECT api_key FROM sessions WHERE token = ? AND expires_at > ?", (token, now)
            ).fetchone()
        return None if row is None else str(row["api_key"])

    # tasks ----------------------------------------------------------------------------------
    def create_task(self, api_key: str, now: float) -> str:
        token = new_token()
        with self._db() as db:
            db.execute(
                "INSERT INTO tasks (token, api_key, status, created_at) VALUES (?, ?, ?, ?)",
                (token, api_key, TaskStatus.CREATED.value, now),
            )
        return token

    def get(self, token: str) -> TaskRecord | None:
        return self.get_many([token]).get(token)

    def get_many(self, tokens: Sequence[str]) -> dict[str, TaskRecord]:
        if not tokens:
            return {}
        marks = ",".join("?" * len(tokens))
        with self._db() as db:
            rows = db.execute(f"SELECT * FROM tasks WHERE token IN ({marks})", list(tokens))
            return {row["token"]: _record(row) for row in rows}

    def start(self, token: str, query: str, payload: str | None, now: float) -> bool:
        return self._update(
            "UPDATE tasks SET status = ?, query = ?, payload = ?, queued_at = ? "
            "WHERE token = ? AND status = ?",
            (TaskStatus.QUEUED.value, query, payload, now, token, TaskStatus.CREATED.value),
        )

    def claim(self, token: str, worker_id: str, now: float) -> int | None:
        with self._db() as db:
            row = db.execute(
                "UPDATE tasks SET status = ?, attempts = attempts + 1, worker_id = ?, "
                "heartbeat_at = ?, percent = 0 WHERE token = ? AND status = ? RETURNING attempts",
                (TaskStatus.DOWNLOADING.value, worker_id, now, token, TaskStatus.QUEUED.value),
            ).fetchone()
        return None if row is None else int(row["attempts"])

    def advance(self, token: str, attempt: int, status: TaskStatus, percent: float) -> bool:
        sources = [s.value for s in sources_of(status)]
        marks = ",".join("?" * len(sources))
        return self._update(
            f"UPDATE tasks SET status = ?, percent = ? "
            f"WHERE token = ? AND attempts = ? AND status IN ({marks})",
            (status.value, percent, token, attempt, *sources),
        )

    def set_source_info(self, token: str, attempt: int, duration: float, size: float) -> bool:
        return self._update(
            "UPDATE tasks SET duration = ?, source_size = ? WHERE token = ? AND attempts = ?",
            (duration, size, token, attempt),
        )

    def heartbeat(self, token: str, attempt: int, now: float) -> bool:
        running = [s.value for s in TaskStatus if s.running]
        return self._update(
            "UPDATE tasks SET heartbeat_at = ? WHERE token = ? AND attempts = ? "
            "AND status IN (?, ?, ?)",
            (now, token, attempt, *running),
        )

    def finish(
        self,
        token: str,
        attempt: int | None,
        status: TaskStatus,
        outputs: Outputs,
        error_description: str | None,
        now: float,
    ) -> bool:
        """End a task. ``attempt=None`` is recovery's verdict on a task nobody holds."""
        sources = [s.value for s in sources_of(status)]
        marks = ",".join("?" * len(sources))
        fence, fence_args = ("", ()) if attempt is None else (" AND attempts = ?", (attempt,))
        return self._update(
            f"UPDATE tasks SET status = ?, error_description = ?, finished_at = ?, "
            f"outputs = json_set(?, '$.warnings', (SELECT json_group_array(json(value)) FROM ("
            f"SELECT value FROM json_each(coalesce(json_extract(outputs, '$.warnings'), '[]')) "
            f"UNION ALL SELECT value FROM json_each(?)))), "
            f"worker_id = NULL WHERE token = ? AND status IN ({marks}){fence}",
            (
                status.value,
                error_description,
                now,
                json.dumps(outputs.to_dict()),
                json.dumps(outputs.warnings),
                token,
                *sources,
                *fence_args,
            ),
        )

    def requeue(self, token: str, attempt: int, now: float) -> bool:
        running = [s.value for s in TaskStatus if s.running]
        return self._update(
            "UPDATE tasks SET status = ?, worker_id = NULL, queued_at = ?, percent = 0 "
            "WHERE token = ? AND attempts = ? AND status IN (?, ?, ?)",
            (TaskStatus.QUEUED.value, now, token, attempt, *running),
        )

    def stale_running(self, beat_before: float) -> list[TaskRecord]:
        running = [s.value for s in TaskStatus if s.running]
        with self._db() as db:
            rows = db.execute(
                "SELECT * FROM tasks WHERE status IN (?, ?, ?) AND heartbeat_at < ?",
                (*running, beat_before),
            )
            return [_record(row) for row in rows]

    def queued_before(self, when: float) -> list[str]:
        with self._db() as db:
            rows = db.execute(
                "SELECT token FROM tasks WHERE status = ? AND queued_at < ?",
                (TaskStatus.QUEUED.value, when),
            )
            return [str(row["token"]) for row in rows]

    def expired_results(self, finished_before: float) -> list[str]:
        with self._db() as db:
            rows = db.execute(
                "SELECT token FROM tasks WHERE finished_at < ? AND storage_purged = 0",
                (finished_before,),
            )
            return [str(row["token"]) for row in rows]

    def mark_purged(self, token: str) -> None:
        self._update("UPDATE tasks SET storage_purged = 1 WHERE token = ?", (token,))

    def add_upload(self, uuid: str, token: str, now: float) -> None:
        with self._db() as db:
            db.execute("INSERT INTO uploads VALUES (?, ?, ?)", (uuid, token, now))

    def active_tasks(self, api_key: str) -> int:
        active = [TaskStatus.QUEUED.value, *(s.value for s in TaskStatus if s.running)]
        with self._db() as db:
            row = db.execute(
                "SELECT count(*) AS n FROM tasks WHERE api_key = ? AND status IN (?, ?, ?, ?)",
                (api_key, *active),
            ).fetchone()
        return int(row["n"])

    def upload_owner(self, uuid: str) -> str | None:
        with self._db() as db:
            row = db.execute("SELECT task_token FROM uploads WHERE uuid = ?", (uuid,)).fetchone()
        return None if row is None else str(row["task_token"])

    def add_warning(self, token: str, warning: dict[str, Any]) -> None:
        self._update(
            "UPDATE tasks SET outputs = json_set(outputs, '$.warnings', json_insert("
            "coalesce(json_extract(outputs, '$.warnings'), json('[]')), '$[#]', json(?))) "
            "WHERE token = ?",
            (json.dumps(warning), token),
        )


def _record(row: sqlite3.Row) -> TaskRecord:
    return TaskRecord(
        token=row["token"],
        api_key=row["api_key"],
        status=TaskStatus(row["status"]),
        created_at=row["created_at"],
        percent=row["percent"],
        error_description=row["error_description"],
        query=row["query"],
        payload=row["payload"],
        attempts=row["attempts"],
        worker_id=row["worker_id"],
        heartbeat_at=row["heartbeat_at"],
        queued_at=row["queued_at"],
        finished_at=row["finished_at"],
        duration=row["duration"],
        source_size=row["source_size"],
        outputs=Outputs.from_dict(json.loads(row["outputs"] or "{}")),
    )
