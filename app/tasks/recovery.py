"""No task is ever stuck: the sweep the API runs every ``sweep_interval`` seconds.

1. A running task whose worker stopped beating for ``heartbeat_timeout`` is queued again, or,
   after ``max_attempts`` starts, ended with an error that says so.
2. A queued task that a worker could take but no message will wake one for (it went down
   with a worker between dequeue and claim) is enqueued again; claims make duplicates
   harmless.
3. Temporary-storage results older than ``storage_ttl`` are removed.

Every API process and every worker pool runs it (no single process is needed): each change is
a fenced UPDATE, so when several notice the same task exactly one requeue or verdict wins, and
only the winner enqueues. A dead worker's work folder is its own machine's business: a worker
clears stale folders when it starts and when it claims a task again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from qthumb.app.settings import Settings
from qthumb.app.storage.files import Files
from qthumb.app.tasks.callbacks import task_ended
from qthumb.app.tasks.model import TaskRecord, TaskStatus
from qthumb.app.tasks.outbox import CallbackOutbox
from qthumb.app.tasks.queue import TaskQueue
from qthumb.app.tasks.results import Results
from qthumb.app.tasks.store import TaskStore

log = logging.getLogger("qthumb.recovery")


@dataclass
class SweepReport:
    requeued: int = 0
    failed: int = 0
    reenqueued: int = 0
    purged: int = 0


def fail_attempt(
    store: TaskStore, outbox: CallbackOutbox, task: TaskRecord, reason: str, now: float
) -> bool:
    """End ``task``'s running attempt in ``error`` for ``reason``, on behalf of a worker that
    cannot (dead, or stopped): callbacks queued, one log line. False when the attempt had
    already ended or been taken over."""
    ended = store.finish(task.token, task.attempts, TaskStatus.ERROR, Results(), reason, now)
    if ended is None:
        return False
    task_ended(outbox, ended, now)
    log.warning("task %s error: %s", task.token, reason)
    return True


def sweep(
    settings: Settings,
    store: TaskStore,
    queue: TaskQueue,
    outbox: CallbackOutbox,
    files: Files,
    now: float,
) -> SweepReport:
    report = SweepReport()
    for task in store.stale_running(now - settings.heartbeat_timeout):
        if task.attempts >= settings.max_attempts:
            reason = (
                f"worker stopped while the task was {task.status.value} "
                f"({task.attempts} attempts, the limit is {settings.max_attempts}); "
                "the source may crash the decoder or exhaust memory"
            )
            if fail_attempt(store, outbox, task, reason, now):
                report.failed += 1
        elif store.requeue(task.token, task.attempts, now):
            queue.enqueue(task.token)
            report.requeued += 1
            log.warning(
                "task %s queued again: its worker stopped beating while %s (attempt %d)",
                task.token,
                task.status.value,
                task.attempts,
            )
    # A message lost (a worker killed between taking it and claiming the task) leaves more
    # queued tasks than messages; only then is the queue read, a task at a time otherwise
    # costing nothing however long the backlog.
    if store.count_queued() > queue.depth():
        # a task waiting on its own key's share (app.tasks.store.claim_fair) waits for a
        # worker of its key, not for a message: one of those wakes a worker when it ends
        waiting = store.waiting_for_a_worker(now - settings.heartbeat_timeout, settings.per_key)
        for token in queue.missing(waiting) if waiting else []:
            queue.enqueue(token)
            report.reenqueued += 1
            log.warning("task %s enqueued again: its queue message was lost", token)
    for token in store.expired_results(now - settings.storage_ttl):
        files.delete_results(token)
        store.mark_purged(token)
        report.purged += 1
    return report


def sweep_safely(
    settings: Settings,
    store: TaskStore,
    queue: TaskQueue,
    outbox: CallbackOutbox,
    files: Files,
    now: float,
) -> None:
    """One sweep that outlives a bad moment (a locked database, a store that is down)."""
    try:
        sweep(settings, store, queue, outbox, files, now)
    except Exception:
        log.exception("recovery sweep failed; trying again")
