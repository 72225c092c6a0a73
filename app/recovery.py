"""No task is ever stuck: the sweep the API runs every ``sweep_interval`` seconds.

1. A running task whose worker stopped beating for ``heartbeat_timeout`` is queued again, or,
   after ``max_attempts`` starts, ended with an error that says so.
2. A queued task that is in neither the queue nor a worker (its message went down with a
   worker between dequeue and claim) is enqueued again; claims make duplicates harmless.
3. Temporary-storage results older than ``storage_ttl`` are removed.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass

from app.callbacks import task_ended
from app.model import Outputs, TaskStatus
from app.outbox import CallbackOutbox
from app.queue import TaskQueue
from app.settings import Settings
from app.store import TaskStore

log = logging.getLogger("qthumb.recovery")


@dataclass
class SweepReport:
    requeued: int = 0
    failed: int = 0
    reenqueued: int = 0
    purged: int = 0


def sweep(
    settings: Settings, store: TaskStore, queue: TaskQueue, outbox: CallbackOutbox, now: float
) -> SweepReport:
    report = SweepReport()
    for task in store.stale_running(now - settings.heartbeat_timeout):
        if task.attempts >= settings.max_attempts:
            reason = (
                f"worker stopped while the task was {task.status.value} "
                f"({task.attempts} attempts, the limit is {settings.max_attempts}); "
                "the source may crash the decoder or exhaust memory"
            )
            if store.finish(task.token, task.attempts, TaskStatus.ERROR, Outputs(), reason, now):
                for stale in settings.work_dir.glob(f"{task.token}-*"):
                    shutil.rmtree(stale, ignore_errors=True)
                task_ended(store, outbox, task.token, now)
                report.failed += 1
                log.warning("task %s error: %s", task.token, reason)
        elif store.requeue(task.token, task.attempts, now):
            queue.enqueue(task.token)
            report.requeued += 1
            log.warning(
                "task %s queued again: its worker stopped beating while %s (attempt %d)",
                task.token,
                task.status.value,
                task.attempts,
            )
    waiting = store.queued_before(now - settings.heartbeat_timeout)
    if waiting:
        pending = queue.pending_tokens()
        for token in waiting:
            if token not in pending:
                queue.enqueue(token)
                report.reenqueued += 1
                log.warning("task %s enqueued again: its queue message was lost", token)
    for token in store.expired_results(now - settings.storage_ttl):
        shutil.rmtree(settings.storage_dir / token, ignore_errors=True)
        store.mark_purged(token)
        report.purged += 1
    return report
