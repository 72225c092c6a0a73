"""The task queue, behind a small interface, on huey.

The API only enqueues task tokens; the worker side binds the function that runs one task
(``bind``) and runs huey's consumer. The huey task is registered here under one fixed name on
both sides, so ``app`` never imports ``workers``: the worker hands its handler in.

The queue only delivers; the task store is the truth. A message lost with a dying worker is
recovered by ``app.recovery`` from the store, and a duplicate is harmless because a worker must
claim a queued task in the store before it runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from huey import SqliteHuey

from app.settings import Settings

TASK_NAME = "process_task"


class TaskQueue(Protocol):
    def enqueue(self, token: str) -> None: ...
    def pending_tokens(self) -> set[str]: ...


class HueyQueue:
    def __init__(self, settings: Settings) -> None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # results=False: outcomes live in the task store, not in huey's result store.
        self.huey = SqliteHuey(
            name="qthumb", filename=str(settings.queue_path), results=False, timeout=30
        )
        self._handler: Callable[[str], None] | None = None
        self._task = self.huey.task(name=TASK_NAME)(self._dispatch)

    def bind(self, handler: Callable[[str], None]) -> None:
        """Worker side: the function that runs one task, given its token."""
        self._handler = handler

    def _dispatch(self, token: str) -> None:
        if self._handler is None:
            raise RuntimeError("no task handler bound: this process only enqueues")
        self._handler(token)

    def enqueue(self, token: str) -> None:
        self._task(token)

    def pending_tokens(self) -> set[str]:
        tokens: set[str] = set()
        for task in self.huey.pending():
            args: Any = getattr(task, "args", ())
            if args:
                tokens.add(str(args[0]))
        return tokens
