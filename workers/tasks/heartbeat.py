"""A running task's heartbeat: a thread that tells the store, every ``interval`` seconds and
fenced by the attempt, that the task is alive, so a long decode is not taken for a dead worker;
``lost`` once the store says another attempt owns the task."""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

from qthumb.app.tasks.store import TaskStore

log = logging.getLogger("qthumb.worker")


class Heartbeat:
    """Beats for a running task from a thread, so a long decode still looks alive."""

    def __init__(self, store: TaskStore, token: str, attempt: int, interval: float) -> None:
        self.store, self.token, self.attempt, self.interval = store, token, attempt, interval
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"beat-{token[:8]}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.store.heartbeat(self.token, self.attempt, time.time()):
                    self.lost = True
                    return
            except Exception:  # a locked database now must not stop the beats for good
                log.exception("task %s heartbeat failed", self.token)
