"""Task callbacks (docs/compatibility.md): form POSTs to the query's ``callback_url``.

Events go into the outbox (``app.tasks.outbox``) when they happen: ``queued`` when start_encode2
accepts a task, ``error`` (failed tasks) and ``saved`` when it ends. The API delivers them
(``deliver_due``, from its background loop), in order per task, each retried with backoff on
its own schedule, so no worker waits on a slow or dead receiver. A delivery that still fails
adds a ``Callback delivery error`` warning and never fails the task. No signature scheme
exists upstream, so none is added.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx

from qthumb.app.egress import BlockedAddress, EgressPolicy, guarded_request
from qthumb.app.metrics import instruments
from qthumb.app.redact import redact
from qthumb.app.settings import Settings
from qthumb.app.tasks.model import TaskRecord, TaskStatus
from qthumb.app.tasks.outbox import CallbackOutbox, PendingCallback
from qthumb.app.tasks.results import Notice, Results
from qthumb.app.tasks.store import TaskStore
from qthumb.app.tasks.wire import status_object, task_tag

log = logging.getLogger("qthumb.callbacks")


def callback_url(task: TaskRecord) -> str | None:
    url = task.query_object().get("callback_url")
    return url if isinstance(url, str) and url else None


_SNAPSHOT = 2  # what the outbox keeps; rows of older versions hold the rendered JSON


def status_snapshot(task: TaskRecord) -> str:
    """The task as of an event, kept with the event in the outbox: typed values, no URLs, so
    whichever API sends it renders it with its own public URL (``sent_status``)."""
    return json.dumps(
        {
            "snapshot": _SNAPSHOT,
            "status": task.status.value,
            "percent": task.percent,
            "error_description": task.error_description,
            "duration": task.duration,
            "source_size": task.source_size,
            "results": task.results.to_json(),
        }
    )


def sent_status(task: TaskRecord, snapshot: str | None, base_url: str) -> str:
    """The ``status`` field POSTed: the task as of the event (``snapshot``; rows without one:
    as it is now), rendered as the API at ``base_url`` answers it."""
    data = json.loads(snapshot) if snapshot else {}
    if snapshot and data.get("snapshot") != _SNAPSHOT:
        return snapshot  # rendered by the qthumb that queued it
    if data:
        task = replace(
            task,
            status=TaskStatus(data["status"]),
            percent=data["percent"],
            error_description=data["error_description"],
            duration=data["duration"],
            source_size=data["source_size"],
            results=Results.from_json(data["results"]),
        )
    return json.dumps(status_object(task, base_url))


def callback_form(
    task: TaskRecord, event: str, base_url: str, snapshot: str | None = None
) -> dict[str, str]:
    """The form POSTed for ``event``, ``snapshot`` the task as of the event."""
    form = {
        "task_token": task.token,
        "event": event,
        "payload": task.payload or "",
        "status": sent_status(task, snapshot, base_url),
        "callback_type": "task",
    }
    if event == "error":
        form["error_code"] = "1"
        form["error_message"] = task.error_description or ""
    return form


def post_once(url: str, form: dict[str, str], policy: EgressPolicy, timeout: float) -> str | None:
    """One POST; ``None`` on a 2xx, else what went wrong."""
    try:
        with httpx.Client(timeout=timeout) as client:
            response = guarded_request(client, "POST", url, policy, data=form)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if 200 <= response.status_code < 300:
        return None
    return f"{response.status_code}: {response.text[:200]}"


def events_for_end(task: TaskRecord, also: Sequence[str] = ()) -> list[str]:
    """``also``: events between ``error`` and ``saved`` (``restarted``, ``restart_failed``)."""
    return ["error", *also, "saved"] if task.status is TaskStatus.ERROR else ["saved"]


def task_ended(
    outbox: CallbackOutbox, task: TaskRecord, now: float, also: Sequence[str] = ()
) -> None:
    """Queue ``error`` (failed tasks), ``also`` and ``saved`` once a task has ended, with its
    final status (``task``: as the store's ``finish`` returned it)."""
    if callback_url(task) is not None:
        outbox.add(task.token, events_for_end(task, also), now, status_snapshot(task))


def deliver_one(
    settings: Settings, store: TaskStore, outbox: CallbackOutbox, item: PendingCallback
) -> None:
    now = time.time()
    if not outbox.claim(item, now, lease=settings.callback_timeout * 3):
        return  # another API process has it
    task = store.get(item.token)
    url = None if task is None else callback_url(task)
    if task is None or url is None:
        outbox.settle(item, "no_url")
        return
    form = callback_form(task, item.event, settings.base_url, item.status)
    try:
        problem = post_once(url, form, settings.egress, settings.callback_timeout)
    except BlockedAddress as exc:
        problem, attempts_left = f"refused: {exc}", 0
    else:
        attempts_left = settings.callback_attempts - item.attempts - 1
    counter = instruments().callbacks
    if problem is None:
        outbox.settle(item)
        counter.labels(item.event, "delivered").inc()
        log.info("task %s callback %s delivered", item.token, item.event)
    elif attempts_left > 0:
        counter.labels(item.event, "retried").inc()
        delay = settings.scaled(settings.callback_backoff * 2**item.attempts)
        outbox.retry_at(item, time.time() + delay)
        log.info(
            "task %s callback %s failed (%s); again in %.1f s",
            item.token,
            item.event,
            problem,
            delay,
        )
    else:
        outbox.settle(item, "given_up")
        counter.labels(item.event, "given_up").inc()
        details = redact(f"Error sending callback to {url} {problem} (event {item.event})")
        store.add_warning(item.token, Notice("Callback delivery error", details, task_tag(task)))
        log.warning("task %s callback %s not delivered: %s", item.token, item.event, problem)


def deliver_due(settings: Settings, store: TaskStore, outbox: CallbackOutbox) -> int:
    """Send every callback that is due now, several receivers at once. Returns how many."""
    items = outbox.due(time.time(), limit=64)
    if items:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda item: deliver_one(settings, store, outbox, item), items))
    return len(items)
