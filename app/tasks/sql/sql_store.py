"""``SqlTaskStore``: the task store (``app.tasks.store.TaskStore``) over
``app.tasks.sql.db.Database``, SQLite or PostgreSQL. Every state change is one conditional UPDATE
that checks the legal source states and, for a running task, the attempt that claimed it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from qthumb.app.qencode.query import Query
from qthumb.app.tasks.model import TaskRecord, TaskStatus, sources_of
from qthumb.app.tasks.results import Notice, Results
from qthumb.app.tasks.sql.db import Database
from qthumb.app.tasks.sql.task_rows import STATUS_ANY_SQL, StatusReads, status_sql, task_record
from qthumb.app.tasks.store import CLOCK_SKEW
from qthumb.app.tokens import TokenKind, new_token, seeded_token

# The few statements whose JSON functions differ between the engines.
_MERGE_WARNINGS = {
    # outputs := ? with its warnings appended to those already recorded (callback warnings)
    "sqlite": "json_set(?, '$.warnings', (SELECT json_group_array(json(value)) FROM ("
    "SELECT value FROM json_each(coalesce(json_extract(outputs, '$.warnings'), '[]')) "
    "UNION ALL SELECT value FROM json_each(?))))",
    "postgresql": "jsonb_set(?::jsonb, '{warnings}', "
    "coalesce(outputs->'warnings', '[]'::jsonb) || ?::jsonb)",
}
# outputs' entries := ? (the outputs being made), its warnings kept
_SET_MADE = {
    "sqlite": "json_set(outputs, '$.version', 2, '$.made', json(?))",
    "postgresql": "jsonb_set(jsonb_set(outputs, '{version}', '2'::jsonb), '{made}', ?::jsonb)",
}
_APPEND_WARNING = {
    "sqlite": "json_set(outputs, '$.warnings', json_insert("
    "coalesce(json_extract(outputs, '$.warnings'), json('[]')), '$[#]', json(?)))",
    "postgresql": "jsonb_set(outputs, '{warnings}', "
    "coalesce(outputs->'warnings', '[]'::jsonb) || jsonb_build_array(?::jsonb))",
}


class SqlTaskStore:
    def __init__(self, db: Database, seed: str = "") -> None:
        self._status_reads: StatusReads | None = None  # PostgreSQL's polls, read together
        self.db = db  # its schema is applied when it is opened (app.tasks.backends)
        self.seed = seed  # QTHUMB_SEED: tokens drawn from it (app.tokens), else random

    def _new_token(self, api_key: str, kind: TokenKind) -> str:
        if not self.seed:
            return new_token()
        row = self.db.execute(
            "INSERT INTO token_counts (api_key, kind, n) VALUES (?, ?, 1) ON CONFLICT "
            "(api_key, kind) DO UPDATE SET n = token_counts.n + 1 RETURNING n",
            (api_key, kind.value),
        ).first()
        assert row is not None
        return seeded_token(self.seed, api_key, kind, int(row["n"]))

    def _update(self, sql: str, params: Sequence[Any]) -> bool:
        return self.db.execute(sql, params).rowcount == 1

    def _rows(self, sql: str, params: Sequence[Any]) -> Sequence[Mapping[str, Any]]:
        return self.db.execute(sql, params).rows

    # sessions -------------------------------------------------------------------------------
    def create_session(self, api_key: str, expires_at: float) -> str:
        token = self._new_token(api_key, TokenKind.SESSION)
        self.db.execute("INSERT INTO sessions VALUES (?, ?, ?)", (token, api_key, expires_at))
        self.db.execute("DELETE FROM sessions WHERE expires_at < ?", (expires_at - 7 * 86400,))
        return token

    def session_owner(self, token: str, now: float) -> str | None:
        row = self.db.execute(
            "SELECT api_key FROM sessions WHERE token = ? AND expires_at > ?", (token, now)
        ).first()
        return None if row is None else str(row["api_key"])

    def end_session(self, token: str) -> None:
        self.db.execute("DELETE FROM sessions WHERE token = ?", (token,))

    # tasks ----------------------------------------------------------------------------------
    def create_task(self, api_key: str, now: float) -> str:
        token = self._new_token(api_key, TokenKind.TASK)
        self.db.execute(
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
        rows = self._rows(f"SELECT * FROM tasks WHERE token IN ({marks})", list(tokens))
        return {row["token"]: task_record(row) for row in rows}

    def statuses(self, tokens: Sequence[str]) -> dict[str, TaskRecord]:
        if not tokens:
            return {}
        rows = self._rows(status_sql(len(tokens)), list(tokens))
        return {row["token"]: task_record(row) for row in rows}

    async def statuses_async(self, tokens: Sequence[str]) -> dict[str, TaskRecord]:
        read = getattr(self.db, "read", None)
        if read is None or not tokens:  # SQLite: a read in WAL mode never waits
            return self.statuses(tokens)
        if self._status_reads is None:
            self._status_reads = StatusReads(lambda wanted: read(STATUS_ANY_SQL, [wanted]))
        return await self._status_reads.statuses(tokens)

    def recent(
        self, api_key: str, status: TaskStatus | None, limit: int, offset: int
    ) -> tuple[list[TaskRecord], int]:
        """A key's tasks, newest first (a page of them), and how many there are in all."""
        where, args = "api_key = ?", [api_key]
        if status is not None:
            where, args = where + " AND status = ?", [*args, status.value]
        rows = self._rows(
            f"SELECT * FROM tasks WHERE {where} ORDER BY created_at DESC, token LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )
        total = self.db.execute(f"SELECT count(*) AS n FROM tasks WHERE {where}", args).first()
        return [task_record(row) for row in rows], int(total["n"]) if total else 0

    def start(
        self,
        token: str,
        query: str,
        payload: str | None,
        now: float,
        plan: Query | None = None,
        faults: str | None = None,
        retry_of: str | None = None,
    ) -> bool:
        return self._update(
            "UPDATE tasks SET status = ?, query = ?, payload = ?, queued_at = ?, plan = ?, "
            "faults = ?, retry_of = ? WHERE token = ? AND status = ?",
            (
                TaskStatus.QUEUED.value,
                query,
                payload,
                now,
                None if plan is None else json.dumps(plan.to_json()),
                faults,
                retry_of,
                token,
                TaskStatus.CREATED.value,
            ),
        )

    def claim(self, token: str, worker_id: str, now: float) -> TaskRecord | None:
        row = self.db.execute(
            "UPDATE tasks SET status = ?, attempts = attempts + 1, worker_id = ?, "
            "heartbeat_at = ?, claimed_at = ?, percent = 0 WHERE token = ? AND status = ? "
            "RETURNING *",
            (TaskStatus.DOWNLOADING.value, worker_id, now, now, token, TaskStatus.QUEUED.value),
        ).first()
        return None if row is None else task_record(row)

    def _fair(self, now: float, per_key: int, limit: int, before: float | None = None) -> list[str]:
        running = [s.value for s in TaskStatus if s.running]
        due = "t.queued_at <= ?" if before is None else "t.queued_at < ?"
        rows = self._rows(
            "WITH busy AS (SELECT api_key, count(*) AS n FROM tasks "
            "WHERE status IN (?, ?, ?) GROUP BY api_key) "
            "SELECT t.token FROM tasks t LEFT JOIN busy b ON b.api_key = t.api_key "
            f"WHERE t.status = ? AND {due} AND coalesce(b.n, 0) < ? "
            "ORDER BY coalesce(b.n, 0), t.queued_at LIMIT ?",
            (
                *running,
                TaskStatus.QUEUED.value,
                now + CLOCK_SKEW if before is None else before,
                per_key,
                limit,
            ),
        )
        return [str(row["token"]) for row in rows]

    def claim_fair(self, worker_id: str, now: float, per_key: int) -> TaskRecord | None:
        for _ in range(8):  # another worker may claim the same one first: pick again
            found = self._fair(now, per_key, 1)
            if not found:
                return None
            task = self.claim(found[0], worker_id, now)
            if task is not None:
                return task
        return None

    def next_fair(self, now: float, per_key: int) -> str | None:
        found = self._fair(now, per_key, 1)
        return found[0] if found else None

    def waiting_for_a_worker(self, queued_before: float, per_key: int) -> list[str]:
        return self._fair(queued_before, per_key, 10_000, before=queued_before)

    def advance(
        self,
        token: str,
        attempt: int,
        status: TaskStatus,
        percent: float,
        running: Results | None = None,
    ) -> bool:
        sources = [s.value for s in sources_of(status)]
        marks = ",".join("?" * len(sources))
        made, made_args = "", tuple[str, ...]()
        if running is not None:
            made = f", outputs = {_SET_MADE[self.db.dialect]}"
            made_args = (json.dumps(running.to_json()["made"]),)
        return self._update(
            f"UPDATE tasks SET status = ?, percent = ?{made} "
            f"WHERE token = ? AND attempts = ? AND status IN ({marks})",
            (status.value, percent, *made_args, token, attempt, *sources),
        )

    def set_source_info(self, token: str, attempt: int, duration: float, size: float) -> bool:
        return self._update(
            "UPDATE tasks SET duration = ?, source_size = ? WHERE token = ? AND attempts = ?",
            (duration, size, token, attempt),
        )

    def release(self, token: str, worker_id: str) -> None:
        self.db.execute(
            "UPDATE tasks SET worker_id = NULL WHERE token = ? AND worker_id = ?",
            (token, worker_id),
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
        results: Results,
        error_description: str | None,
        now: float,
    ) -> TaskRecord | None:
        """End a task. ``attempt=None`` is recovery's verdict on a task nobody holds."""
        sources = [s.value for s in sources_of(status)]
        marks = ",".join("?" * len(sources))
        fence, fence_args = ("", ()) if attempt is None else (" AND attempts = ?", (attempt,))
        rows = self._rows(
            f"UPDATE tasks SET status = ?, error_description = ?, finished_at = ?, "
            f"outputs = {_MERGE_WARNINGS[self.db.dialect]}, "
            f"worker_id = NULL WHERE token = ? AND status IN ({marks}){fence} RETURNING *",
            (
                status.value,
                error_description,
                now,
                json.dumps(results.to_json()),
                json.dumps(results.to_json()["warnings"]),
                token,
                *sources,
                *fence_args,
            ),
        )
        return task_record(rows[0]) if rows else None

    def requeue(self, token: str, attempt: int, now: float) -> bool:
        running = [s.value for s in TaskStatus if s.running]
        return self._update(
            "UPDATE tasks SET status = ?, worker_id = NULL, queued_at = ?, percent = 0 "
            "WHERE token = ? AND attempts = ? AND status IN (?, ?, ?)",
            (TaskStatus.QUEUED.value, now, token, attempt, *running),
        )

    def stale_running(self, beat_before: float) -> list[TaskRecord]:
        running = [s.value for s in TaskStatus if s.running]
        rows = self._rows(
            "SELECT * FROM tasks WHERE status IN (?, ?, ?) AND heartbeat_at < ?",
            (*running, beat_before),
        )
        return [task_record(row) for row in rows]

    def claimed_before(self, when: float) -> list[TaskRecord]:
        running = [s.value for s in TaskStatus if s.running]
        rows = self._rows(
            "SELECT * FROM tasks WHERE status IN (?, ?, ?) AND claimed_at < ?", (*running, when)
        )
        return [task_record(row) for row in rows]

    def queued_before(self, when: float) -> list[str]:
        rows = self._rows(
            "SELECT token FROM tasks WHERE status = ? AND queued_at < ?",
            (TaskStatus.QUEUED.value, when),
        )
        return [str(row["token"]) for row in rows]

    def expired_results(self, finished_before: float) -> list[str]:
        rows = self._rows(
            "SELECT token FROM tasks WHERE finished_at < ? AND storage_purged = 0",
            (finished_before,),
        )
        return [str(row["token"]) for row in rows]

    def mark_purged(self, token: str) -> None:
        self._update("UPDATE tasks SET storage_purged = 1 WHERE token = ?", (token,))

    def create_upload(self, token: str, api_key: str, now: float) -> str:
        """A new upload's id, for the task ``token`` of ``api_key``."""
        uuid = self._new_token(api_key, TokenKind.UPLOAD)
        self.db.execute("INSERT INTO uploads VALUES (?, ?, ?)", (uuid, token, now))
        return uuid

    def running_on(self, host: str) -> int:
        running = [s.value for s in TaskStatus if s.running]
        row = self.db.execute(
            "SELECT count(*) AS n FROM tasks WHERE status IN (?, ?, ?) "
            "AND worker_id >= ? AND worker_id < ?",  # 'host:' up to 'host;': its pids
            (*running, f"{host}:", f"{host};"),
        ).first()
        return int(row["n"]) if row else 0

    def active_tasks(self, api_key: str) -> int:
        active = [TaskStatus.QUEUED.value, *(s.value for s in TaskStatus if s.running)]
        row = self.db.execute(
            "SELECT count(*) AS n FROM tasks WHERE api_key = ? AND status IN (?, ?, ?, ?)",
            (api_key, *active),
        ).first()
        return int(row["n"]) if row else 0

    def count_queued(self) -> int:
        row = self.db.execute(
            "SELECT count(*) AS n FROM tasks WHERE status = ?", (TaskStatus.QUEUED.value,)
        ).first()  # the status index: as cheap as the queue's own count
        return 0 if row is None else int(row["n"])

    def count_by_status(self) -> dict[str, int]:
        rows = self._rows("SELECT status, count(*) AS n FROM tasks GROUP BY status", ())
        counts = {status.value: 0 for status in TaskStatus}
        counts.update({str(r["status"]): int(r["n"]) for r in rows})
        return counts

    def upload_owner(self, uuid: str) -> str | None:
        row = self.db.execute("SELECT task_token FROM uploads WHERE uuid = ?", (uuid,)).first()
        return None if row is None else str(row["task_token"])

    def add_warning(self, token: str, warning: Notice) -> None:
        self._update(
            f"UPDATE tasks SET outputs = {_APPEND_WARNING[self.db.dialect]} WHERE token = ?",
            (json.dumps(warning.to_json()), token),
        )
