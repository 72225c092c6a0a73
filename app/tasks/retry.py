"""``retry_on_error: 1`` as Qencode documents it: a task that fails for a passing reason is
started again once, as a new task with the same query and payload (a new task token, as
Qencode gives a new job); the failed task stays ``error`` and gains two warnings, the second
naming the new token, and a ``restarted`` callback. When the retry cannot start (the key's
task limit), the failed task gains ``Retry on error failed.`` and a ``restart_failed``
callback, as Qencode documents it; a retry that starts and fails ends with its own ``error``
(and its own callbacks), the first task untouched.

Passing reasons (``transient``, ``workers.failures``): a deadline or the memory limit,
an internal error, a fault a test asked for while encoding. A source, a destination or the
query fails the same way every time and is not retried, as upstream.
"""

from __future__ import annotations

import logging

from qthumb.app.qencode.query import Query
from qthumb.app.settings import Settings
from qthumb.app.tasks.callbacks import callback_url, status_snapshot
from qthumb.app.tasks.faults import BadRule, Fault, faults_for_task, parse_rule
from qthumb.app.tasks.model import TaskRecord
from qthumb.app.tasks.outbox import CallbackOutbox
from qthumb.app.tasks.queue import TaskQueue
from qthumb.app.tasks.results import Notice
from qthumb.app.tasks.store import TaskStore
from qthumb.app.tasks.wire import task_tag

log = logging.getLogger("qthumb.retry")

RETRYING = (
    "An error occurred while processing your job. It will be automatically retried "
    "with the same parameters in a new job."
)
TRIGGERED = "Retry on error triggered."
FAILED = "Retry on error failed."


def start_retry(
    settings: Settings,
    store: TaskStore,
    queue: TaskQueue,
    outbox: CallbackOutbox,
    task: TaskRecord,
    query: Query,
    now: float,
) -> tuple[list[Notice], str]:
    """Start the retry of ``task`` (failing now, not yet finished; ``query``: its parsed
    query): the warnings the failed task gains, and its event, ``restarted`` or
    ``restart_failed``."""
    tag = task_tag(task)
    notices = [Notice(RETRYING, f"the error: {task.error_description or 'see above'}", tag)]
    active = store.active_tasks(task.api_key) - 1  # the failing task still counts as active
    if active >= settings.max_active_tasks_per_key:
        why = (
            f"the API key has {active} tasks queued or running; the limit is "
            f"{settings.max_active_tasks_per_key}"
        )
        return [*notices, Notice(FAILED, why, tag)], "restart_failed"
    token = store.create_task(task.api_key, now)
    faults = None
    if outbox.faults is not None:  # QTHUMB_CONTROL: the retry meets the rules in force now
        tags = [spec.user_tag or "" for spec in query.formats]  # as start_encode2 matches
        faults = faults_for_task(
            outbox.faults, task.api_key, token, _carried(task), task.payload, tags
        )
    if task.query is None or not store.start(
        token, task.query, task.payload, now, task.plan, faults, retry_of=task.token
    ):
        failed = Notice(FAILED, "the new task could not be started", tag)
        return [*notices, failed], "restart_failed"
    queue.enqueue(token)
    if callback_url(task) is not None and (retry := store.get(token)) is not None:
        outbox.add(token, ["queued"], now, status_snapshot(retry))
    log.info("task %s retried as task %s (retry_on_error)", task.token, token)
    return [*notices, Notice(TRIGGERED, f"the new task: {token}", tag)], "restarted"


def _carried(task: TaskRecord) -> list[Fault]:
    """The fault rules the task's own query carried (``qthumb_faults``), checked when it
    started."""
    found = []
    for rule in task.query_object().get("qthumb_faults") or []:
        try:
            found.append(parse_rule(rule)[0])
        except BadRule:
            continue
    return found
