"""``QTHUMB_TASK_DEADLINE``: an attempt that runs longer is stopped from outside the worker
process running it (which may be stuck in a decoder, a read or a child and never look up), by
the process that supervises the worker pool (``app.process.pool.PoolWatch``). Every
``sweep_interval`` it looks for running attempts of this machine claimed before the deadline,
kills the worker process running each (SIGKILL: its children follow it, PDEATHSIG), and fails
the task with an error naming the setting; huey starts a new worker in its place.

Not retried: an attempt that overran its deadline would overrun it again (the same source and
query), and the deadline is the user's bound on how long a task may take.

The same watch ends the attempts of workers that died (``end_dead_workers``) at once, rather
than when their heartbeat is missed: a crash in a media library is told as memory, and a
worker killed without a word hands its task back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
from collections.abc import Callable
from pathlib import Path

from qthumb.app.children.orphans import pid_alive
from qthumb.app.memory import crash_failure
from qthumb.app.settings import Settings
from qthumb.app.tasks.outbox import CallbackOutbox
from qthumb.app.tasks.queue import TaskQueue
from qthumb.app.tasks.recovery import fail_attempt
from qthumb.app.tasks.store import TaskStore

log = logging.getLogger("qthumb.recovery")


def crash_note(settings: Settings, pid: int) -> Path:
    """Where the worker process ``pid`` of this machine writes a fatal signal's note."""
    return settings.data_dir / "crashes" / f"worker-{socket.gethostname()}-{pid}"


def _crash(note: Path) -> str | None:
    """The fatal signal a dead worker's note names ("Segmentation fault"), if any."""
    try:
        text = note.read_text(errors="replace")
    except OSError:
        return None
    found = re.search(r"Fatal Python error: ([^\n]+)", text)
    return found.group(1).strip() if found else None


def end_dead_workers(
    settings: Settings,
    store: TaskStore,
    queue: TaskQueue,
    outbox: CallbackOutbox,
    now: float,
) -> int:
    """Attempts whose worker process on this machine is gone, ended now rather than after
    ``heartbeat_timeout``: failed, naming the memory limit, when the worker died of a fatal
    signal in a library (the same source would crash it again); queued again (or failed past
    ``max_attempts``, as recovery does) when it was killed without a word (SIGKILL: the OOM
    killer, a person). A worker that dies between claiming and beating is found the same way.
    How many were ended."""
    host, ended = socket.gethostname(), 0
    for task in store.claimed_before(now):
        owner_host, _, owner_pid = (task.worker_id or "").rpartition(":")
        if owner_host != host or not owner_pid.isdigit() or _running(int(owner_pid)):
            continue
        again = store.get(task.token)
        if again is None or again.attempts != task.attempts or not again.status.running:
            continue
        note = crash_note(settings, int(owner_pid))
        crash = _crash(note)
        if crash is not None:
            ended += fail_attempt(store, outbox, task, crash_failure(settings, crash), now)
        elif task.attempts >= settings.max_attempts:
            reason = (
                f"its worker died while the task was {task.status.value} "
                f"({task.attempts} attempts, the limit is {settings.max_attempts})"
            )
            ended += fail_attempt(store, outbox, task, reason, now)
        elif store.requeue(task.token, task.attempts, now):
            queue.enqueue(task.token)
            ended += 1
            log.warning(
                "task %s queued again: its worker %s died (attempt %d)",
                task.token,
                owner_pid,
                task.attempts,
            )
        note.unlink(missing_ok=True)
    for note in (settings.data_dir / "crashes").glob(f"worker-{host}-*"):
        pid = note.name.rsplit("-", 1)[1]
        if pid.isdigit() and not _running(int(pid)) and not _crash(note):
            note.unlink(missing_ok=True)  # a worker that ended as it should: nothing to say
    return ended


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie its parent has not reaped yet has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return pid_alive(pid)  # no /proc: whether it exists at all
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


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
