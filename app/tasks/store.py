"""The task store: sessions, tasks and uploads' ownership, behind a small interface
(``TaskStore``).

``app.tasks.sql.sql_store.SqlTaskStore`` is its implementation over ``app.tasks.sql.db.Database``:
SQLite (embedded default, one file in the data dir, WAL so the API and every worker process can
use it at once) or PostgreSQL (several machines). Every state change is one conditional UPDATE
that checks the legal source states and, for a running task, the attempt number that claimed
it: a worker that was presumed dead and replaced cannot overwrite its successor's result, on
either engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from qthumb.app.qencode.query import Query
from qthumb.app.tasks.model import TaskRecord, TaskStatus
from qthumb.app.tasks.results import Notice, Results

# Seconds a task may be claimed before it is due: machines' clocks differ a little, and a task
# queued by an API on one machine is due at once on a worker's whose clock is behind.
CLOCK_SKEW = 1.0


class TaskStore(Protocol):
    def create_session(self, api_key: str, expires_at: float) -> str: ...
    def session_owner(self, token: str, now: float) -> str | None: ...
    def end_session(self, token: str) -> None: ...
    def create_task(self, api_key: str, now: float) -> str: ...
    def get(self, token: str) -> TaskRecord | None: ...
    def get_many(self, tokens: Sequence[str]) -> dict[str, TaskRecord]: ...
    def statuses(self, tokens: Sequence[str]) -> dict[str, TaskRecord]:
        """What a status answer needs of each task (no query, plan or faults)."""
        ...

    async def statuses_async(self, tokens: Sequence[str]) -> dict[str, TaskRecord]:
        """``statuses`` on the event loop (PostgreSQL: one round trip, no thread)."""
        ...

    def recent(
        self, api_key: str, status: TaskStatus | None, limit: int, offset: int
    ) -> tuple[list[TaskRecord], int]: ...
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
        """``query``: the user's own (shown back, as sent); ``plan``: the query as the API
        parsed it, which the worker runs (stored as ``Query.to_json``); ``faults``: those a
        test asked for that this task matched (``app.tasks.faults``); ``retry_of``: the failed
        task this one retries (``retry_on_error``)."""

    def claim(self, token: str, worker_id: str, now: float) -> TaskRecord | None:
        """The task, claimed for a new attempt (its ``attempts`` is that attempt's number);
        ``None`` when it is not queued (done, running elsewhere or unknown)."""

    def claim_fair(self, worker_id: str, now: float, per_key: int) -> TaskRecord | None:
        """The queued task due now whose API key runs the fewest tasks (the oldest among
        equals), claimed; never one of a key already running ``per_key``. ``None``: none."""

    def next_fair(self, now: float, per_key: int) -> str | None:
        """The task ``claim_fair`` would claim now, unclaimed."""

    def waiting_for_a_worker(self, queued_before: float, per_key: int) -> list[str]:
        """Tasks queued before ``queued_before`` that a worker could take now (their keys run
        fewer than ``per_key``): those waiting on their own key's share are not waiting for a
        lost message."""

    def advance(
        self,
        token: str,
        attempt: int,
        status: TaskStatus,
        percent: float,
        running: Results | None = None,
    ) -> bool:
        """Progress of the attempt ``attempt``; ``running``: the outputs' entries so far."""
        ...

    def set_source_info(self, token: str, attempt: int, duration: float, size: float) -> bool: ...
    def heartbeat(self, token: str, attempt: int, now: float) -> bool: ...
    def release(self, token: str, worker_id: str) -> None:
        """The worker stopped its attempt (it lost the claim): it holds the task no more."""

    def finish(
        self,
        token: str,
        attempt: int | None,
        status: TaskStatus,
        results: Results,
        error_description: str | None,
        now: float,
    ) -> TaskRecord | None:
        """The task as it ended (its callbacks are queued from it: no second read); None
        when the attempt had already ended or been taken over (nothing written)."""
        ...

    def requeue(self, token: str, attempt: int, now: float) -> bool: ...
    def stale_running(self, beat_before: float) -> list[TaskRecord]: ...
    def claimed_before(self, when: float) -> list[TaskRecord]:
        """Running attempts claimed before ``when`` (``QTHUMB_TASK_DEADLINE``)."""

    def queued_before(self, when: float) -> list[str]: ...
    def expired_results(self, finished_before: float) -> list[str]: ...
    def mark_purged(self, token: str) -> None: ...
    def add_warning(self, token: str, warning: Notice) -> None: ...
    def create_upload(self, token: str, api_key: str, now: float) -> str: ...
    def upload_owner(self, uuid: str) -> str | None: ...
    def active_tasks(self, api_key: str) -> int: ...
    def running_on(self, host: str) -> int:
        """Attempts running on the machine ``host`` (worker ids ``host:pid``)."""
        ...

    def count_by_status(self) -> dict[str, int]: ...
    def count_queued(self) -> int: ...
