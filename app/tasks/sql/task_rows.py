"""A task's row: the record made from it, what a status answer reads of it, and status reads
made together.

``StatusReads`` is the DataLoader pattern on the event loop: the status polls that arrive while
one read is in flight wait for the next, which fetches every token they ask for in one query
(``token = ANY(…)``, one prepared statement whatever the count). A poll never gets a row read
before it arrived, and under load the database does one round trip for many polls instead of
one each (PostgreSQL: ``SqlTaskStore.statuses_async``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from qthumb.app.errors import QencodeError
from qthumb.app.qencode.query import Query, ignored_fields
from qthumb.app.tasks.model import TaskRecord, TaskStatus
from qthumb.app.tasks.results import Results
from qthumb.app.tasks.sql.db import as_json

# What a status answer reads of a task (``app.tasks.wire.status_object``): not the query,
# plan or faults, the largest columns a task has.
STATUS_COLUMNS = (
    "token, api_key, status, created_at, percent, error_description, payload, attempts, "
    "duration, source_size, outputs"
)


def status_sql(count: int) -> str:
    return f"SELECT {STATUS_COLUMNS} FROM tasks WHERE token IN ({','.join('?' * count)})"


def task_record(row: Mapping[str, Any]) -> TaskRecord:
    """A task from its row, whole or as ``STATUS_COLUMNS`` has it."""
    return TaskRecord(
        token=row["token"],
        api_key=row["api_key"],
        status=TaskStatus(row["status"]),
        created_at=row["created_at"],
        percent=row["percent"],
        error_description=row["error_description"],
        query=row.get("query"),
        plan=stored_plan(row.get("plan"), row.get("query")),
        faults=row.get("faults"),
        retry_of=row.get("retry_of"),
        payload=row["payload"],
        attempts=row["attempts"],
        worker_id=row.get("worker_id"),
        heartbeat_at=row.get("heartbeat_at"),
        claimed_at=row.get("claimed_at"),
        queued_at=row.get("queued_at"),
        finished_at=row.get("finished_at"),
        duration=row["duration"],
        source_size=row["source_size"],
        results=Results.from_json(as_json(row["outputs"]) or {}),
    )


def stored_plan(plan: str | None, query: str | None) -> Query | None:
    """The typed query a row's ``plan`` column holds. A plan stored before plans noted the
    fields qthumb does not act on has them found in the user's ``query``; one that no longer
    reads (``None``) leaves the worker to parse the user's query, as for a task started before
    plans were stored."""
    if not plan:
        return None
    try:
        data = json.loads(plan)
        parsed = Query.from_json(data)
        if "ignored" not in data and query:
            parsed = replace(parsed, ignored=tuple(ignored_fields(json.loads(query))))
    except (ValueError, KeyError, TypeError, QencodeError):
        return None
    return parsed


STATUS_ANY_SQL = f"SELECT {STATUS_COLUMNS} FROM tasks WHERE token = ANY(?)"
MOST_IN_ONE_READ = 1000  # tokens: a batch past this waits for the next read


class StatusReads:
    """Status reads batched while one is in flight (see the module). ``read(tokens)``: the
    rows of those tokens, one query."""

    def __init__(self, read: Callable[[list[str]], Awaitable[Sequence[Mapping[str, Any]]]]):
        self._read = read
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[tuple[Sequence[str], asyncio.Future[dict[str, TaskRecord]]]] = []
        self._busy = False
        self._drainer: asyncio.Task[None] | None = None  # kept: the loop holds tasks weakly

    async def statuses(self, tokens: Sequence[str]) -> dict[str, TaskRecord]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (tests make several): nothing carried over
            self._loop, self._waiting, self._busy = loop, [], False
        answer: asyncio.Future[dict[str, TaskRecord]] = loop.create_future()
        self._waiting.append((tokens, answer))
        if not self._busy:
            self._busy = True
            self._drainer = loop.create_task(self._drain())
        return await answer

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch: list[tuple[Sequence[str], asyncio.Future[dict[str, TaskRecord]]]] = []
                wanted: dict[str, None] = {}
                while self._waiting and (not batch or len(wanted) < MOST_IN_ONE_READ):
                    tokens, answer = self._waiting.pop(0)
                    batch.append((tokens, answer))
                    wanted.update(dict.fromkeys(tokens))
                try:
                    rows = await self._read(list(wanted))
                except Exception as exc:  # each poll fails as its own read would have
                    for _, answer in batch:
                        if not answer.done():
                            answer.set_exception(exc)
                    continue
                found = {row["token"]: task_record(row) for row in rows}
                for tokens, answer in batch:
                    if not answer.done():  # a poll whose client left is cancelled
                        answer.set_result({t: found[t] for t in tokens if t in found})
        finally:
            self._busy = False
