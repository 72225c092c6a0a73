"""Task callbacks (§6): form POSTs to the query's ``callback_url``.

Events arrive in order: ``queued`` (sent by the API once start_encode2 accepted the task), then
``error`` (failed tasks only), then ``saved`` (sent by the worker, which first waits for the
``queued`` delivery to end). Each is retried with backoff; a delivery that still fails adds a
``Callback delivery error`` warning to the task and never fails it. No signature scheme exists
upstream, so none is added.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from app.egress import BlockedAddress, EgressPolicy, guarded_request
from app.model import TaskRecord, TaskStatus, status_object
from app.settings import Settings
from app.store import TaskStore

log = logging.getLogger("qthumb.callbacks")


def callback_url(task: TaskRecord) -> str | None:
    if not task.query:
        return None
    query = json.loads(task.query)
    url = query.get("callback_url") if isinstance(query, dict) else None
    return url if isinstance(url, str) and url else None


def callback_form(task: TaskRecord, event: str, status_url: str) -> dict[str, str]:
    status = status_object(task, status_url)
    form = {
        "task_token": task.token,
        "event": event,
        "payload": task.payload or "",
        "status": json.dumps(status),
        "callback_type": "task",
    }
    if event == "error":
        form["error_code"] = "1"
        form["error_message"] = task.error_description or ""
    return form


def post_with_retries(
    url: str,
    form: dict[str, str],
    policy: EgressPolicy,
    attempts: int,
    first_delay: float,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """POST until a 2xx; ``None`` on success, else what went wrong the last time. A refused
    address is not retried."""
    problem = "not sent"
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            with httpx.Client(timeout=timeout) as client:
                response = guarded_request(client, "POST", url, policy, data=form)
            if 200 <= response.status_code < 300:
                return None
            problem = f"{response.status_code}: {response.text[:200]}"
        except BlockedAddress as exc:
            return f"refused: {exc}"
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if attempt < attempts:
            sleep(delay)
            delay *= 2
    return problem


def deliver(settings: Settings, store: TaskStore, token: str, event: str) -> bool:
    """Send one event for a task, record it as delivered (or as a warning). True if sent."""
    task = store.get(token)
    url = None if task is None else callback_url(task)
    if task is None or url is None:
        return False
    form = callback_form(task, event, f"{settings.base_url}/v1/status")
    problem = post_with_retries(
        url,
        form,
        EgressPolicy.from_cidrs(settings.allowed_networks),
        settings.callback_attempts,
        settings.callback_backoff,
        settings.callback_timeout,
    )
    store.mark_callback(token, event)
    if problem is None:
        log.info("task %s callback %s delivered", token, event)
        return True
    warning: dict[str, Any] = {
        "message": "Callback delivery error",
        "details": f"Error sending callback to {url} {problem}",
        "tag": event,
    }
    store.add_warning(token, warning)
    log.warning("task %s callback %s not delivered: %s", token, event, problem)
    return False


def deliver_final(settings: Settings, store: TaskStore, token: str) -> None:
    """Worker side, after a task ended: wait for ``queued`` to be settled, then send
    ``error`` (if it failed) and ``saved``."""
    task = store.get(token)
    if task is None or callback_url(task) is None:
        return
    deadline = time.monotonic() + 60  # the API may have died before settling it
    while "queued" not in store.callbacks_sent(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    if task.status is TaskStatus.ERROR:
        deliver(settings, store, token, "error")
    deliver(settings, store, token, "saved")
