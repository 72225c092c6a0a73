"""The task queue, behind a small interface, on huey.

The API only enqueues task tokens; the worker side binds the function that runs one task
(``bind``) and runs huey's consumer. The huey task is registered here under one fixed name on
both sides, so ``app`` never imports ``workers``: the worker hands its handler in.

The queue only delivers; the task store is the truth. A message lost with a dying worker is
recovered by ``app.tasks.recovery`` from the store, and a duplicate is harmless because a worker
must
claim a queued task in the store before it runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from huey import Huey

TASK_NAME = "process_task"


class TaskQueue(Protocol):
    def enqueue(self, token: str, delay: float = 0.0) -> None: ...
    def missing(self, tokens: list[str]) -> list[str]: ...
    def depth(self) -> int: ...


class HueyQueue:
    """On any huey storage: ``SqliteHuey`` or ``RedisHuey`` (built by ``app.tasks.backends``)."""

    def __init__(self, huey: Huey, description: str) -> None:
        self.huey = huey
        self.description = description
        self._handler: Callable[[str], None] | None = None
        self._task = self.huey.task(name=TASK_NAME)(self._dispatch)

    def bind(self, handler: Callable[[str], None]) -> None:
        """Worker side: the function that runs one task, given its token."""
        self._handler = handler

    def _dispatch(self, token: str) -> None:
        if self._handler is None:
            raise RuntimeError("no task handler bound: this process only enqueues")
        self._handler(token)

    def enqueue(self, token: str, delay: float = 0.0) -> None:
        """``delay``: seconds before a worker may take it (huey's schedule holds it)."""
        if delay > 0:
            self._task.schedule(args=(token,), delay=delay)
        else:
            self._task(token)

    def depth(self) -> int:
        """Messages waiting (a round trip to the queue's storage: also its health check)."""
        return int(self.huey.pending_count())

    def missing(self, tokens: list[str]) -> list[str]:
        """Those of ``tokens`` no message in the queue carries. The messages are read as they
        are stored (a token is plain text in huey's pickle), never unpickled."""
        stored = b"\n".join(self.huey.storage.enqueued_items())
        return [token for token in tokens if token.encode() not in stored]
