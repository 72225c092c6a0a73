"""``POST /_qthumb/reset``: everything of some API keys removed, as if they had never been used.

1. Every unfinished task of the keys is ended and fenced in one UPDATE (status ``error``, the
   attempt number bumped): no worker can claim a queued one, and a running one loses its claim
   at its next heartbeat or report, stops, and says so (``release``: its ``worker_id`` set to
   NULL).
2. The reset waits for those acknowledgements (at most ``wait`` seconds), so no worker of a
   removed task is still writing files when they are removed.
3. The tasks' stored results, their uploads, queued callbacks, the tasks themselves and the keys'
   session tokens are deleted; under ``QTHUMB_SEED`` the keys' tokens start again from the
   first. Queue messages of removed tasks stay where the queue keeps them and are skipped when
   taken (nothing can claim them, nor a task made again with the same token, which has its
   own); they are counted as voided.

Nothing of another key is touched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from qthumb.app.storage.files import Files
from qthumb.app.tasks.model import TaskStatus
from qthumb.app.tasks.sql.db import Database

log = logging.getLogger("qthumb.reset")


@dataclass
class ResetReport:
    tasks: int = 0
    running_stopped: int = 0
    still_running: int = 0  # no acknowledgement within the wait (a worker that died, say)
    messages_voided: int = 0
    session_tokens: int = 0
    uploads: int = 0
    results: int = 0
    callbacks: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _marks(keys: Sequence[str]) -> str:
    return ", ".join("?" for _ in keys)


def reset_keys(db: Database, files: Files, keys: Sequence[str], wait: float) -> ResetReport:
    report = ResetReport()
    if not keys:
        return report
    within = f"api_key IN ({_marks(keys)})"
    rows = db.execute(f"SELECT token, status, worker_id FROM tasks WHERE {within}", keys).rows
    tokens = [str(r["token"]) for r in rows]
    report.tasks = len(tokens)
    running = [str(r["token"]) for r in rows if TaskStatus(r["status"]).running]
    report.messages_voided = sum(1 for r in rows if r["status"] == TaskStatus.QUEUED.value)
    unfinished = [s.value for s in TaskStatus if s.running or s is TaskStatus.QUEUED]
    db.execute(
        f"UPDATE tasks SET status = ?, error_description = ?, attempts = attempts + 1 "
        f"WHERE {within} AND status IN ({_marks(unfinished)})",
        [TaskStatus.ERROR.value, "removed by /_qthumb/reset", *keys, *unfinished],
    )
    deadline = time.monotonic() + wait
    waiting = running
    while waiting and time.monotonic() < deadline:
        time.sleep(0.05)
        held = db.execute(
            f"SELECT token FROM tasks WHERE token IN ({_marks(waiting)}) AND worker_id IS NOT NULL",
            waiting,
        ).rows
        waiting = [str(r["token"]) for r in held]
    report.still_running = len(waiting)
    report.running_stopped = len(running) - len(waiting)
    for token in tokens:
        files.delete_results(token)
    report.results = sum(1 for r in rows if r["status"] == TaskStatus.COMPLETED.value)
    if tokens:
        marks = _marks(tokens)
        uploads = db.execute(f"SELECT uuid FROM uploads WHERE task_token IN ({marks})", tokens)
        for row in uploads.rows:
            files.delete_upload(str(row["uuid"]))
        report.uploads = db.execute(
            f"DELETE FROM uploads WHERE task_token IN ({marks})", tokens
        ).rowcount
        report.callbacks = db.execute(
            f"DELETE FROM callbacks WHERE token IN ({marks}) AND done = 0", tokens
        ).rowcount
        db.execute(f"DELETE FROM callbacks WHERE token IN ({marks})", tokens)
        db.execute(f"DELETE FROM tasks WHERE token IN ({marks})", tokens)
    report.session_tokens = db.execute(f"DELETE FROM sessions WHERE {within}", keys).rowcount
    db.execute(f"DELETE FROM token_counts WHERE {within}", keys)  # QTHUMB_SEED's start again
    log.warning("reset of %d key(s): %s", len(keys), report.to_json())
    return report
