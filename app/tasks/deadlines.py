"""``QTHUMB_TASK_DEADLINE``: an attempt that runs longer is stopped from outside the worker
process running it (which may be stuck in a decoder, a read or a child and never look up), by
the process that supervises the worker pool (``app.process.pool.PoolWatch``). Every
``sweep_interval`` it looks for running attempts of this machine claimed before the deadline,
kills the worker process running each (SIGKILL: its children follow it, PDEATHSIG), and fails
the task with an error naming the setting; huey starts a new worker in its place.

Not retried: an attempt that overran its deadline would overrun it again (the same source and
query), and the deadline is the user's bound on how long a task may take.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Callable

from qthumb.app.settings import Settings
from qthumb.app.tasks.outbox import CallbackOutbox
from qthumb.app.tasks.recovery import fail_attempt
from qthumb.app.tasks.store import TaskStore


def stop_overdue(
    settings: Settings,
    store: TaskStore,
    outbox: CallbackOutbox,
    children: Callable[[], set[int]],
    now: float,
) -> int:
    """Stop this pool's attempts past the deadline; how many were stopped. ``children``: the
    process ids of this pool's workers (only those are killed)."""
    host, stopped = socket.gethostname(), 0
    for task in store.claimed_before(now - settings.task_deadline):
        owner_host, _, owner_pid = (task.worker_id or "").rpartition(":")
        if owner_host != host or not owner_pid.isdigit() or int(owner_pid) not in children():
            continue  # another pool's, on this machine or another: its own watch stops it
        again = store.get(task.token)  # still that attempt, still running: then kill
        if again is None or again.attempts != task.attempts or not again.status.running:
            continue
        with contextlib.suppress(ProcessLookupError):  # died by itself: ends here all the same
            os.kill(int(owner_pid), signal.SIGKILL)
        claimed = task.claimed_at or now
        reason = (
            f"the task ran {now - claimed:.0f} s (attempt {task.attempts}, "
            f"{task.status.value}), past QTHUMB_TASK_DEADLINE ({settings.task_deadline:g} s); "
            "its worker was stopped"
        )
        stopped += fail_attempt(store, outbox, task, reason, now)
    return stopped
