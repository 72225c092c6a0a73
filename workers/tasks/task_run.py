"""One task as the worker runs it: claim → heartbeat → ``workers.tasks.pipeline.run_query`` →
fenced finish (completed or error) → the ``saved``/``error`` callback.

Every change goes through the store with the attempt number this worker claimed, so a worker
that was presumed dead cannot overwrite its successor. The task's files live in one temporary
folder removed whatever happens.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import socket
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from qthumb.app.errors import QencodeError
from qthumb.app.memory import give_back_memory
from qthumb.app.metrics import instruments
from qthumb.app.qencode.formats import FormatSpec
from qthumb.app.qencode.query import Destination, Query, read_query
from qthumb.app.redact import redact
from qthumb.app.settings import Settings
from qthumb.app.storage.files import Files
from qthumb.app.tasks.callbacks import task_ended
from qthumb.app.tasks.faults import TaskFault, task_faults_from_json
from qthumb.app.tasks.model import TaskRecord, TaskStatus
from qthumb.app.tasks.outbox import CallbackOutbox
from qthumb.app.tasks.queue import TaskQueue
from qthumb.app.tasks.results import Notice, Results
from qthumb.app.tasks.retry import start_retry
from qthumb.app.tasks.store import TaskStore
from qthumb.app.tasks.wire import format_tag
from qthumb.workers.failures import NothingMade, TaskFailure
from qthumb.workers.media.probe import MediaInfo
from qthumb.workers.tasks.heartbeat import Heartbeat
from qthumb.workers.tasks.pipeline import Hooks, run_query, secrets_of
from qthumb.workers.tasks.s3 import destination_storage
from qthumb.workers.tasks.storage import Storage, temporary_storage
from qthumb.workers.tasks.work_folders import work_folder

log = logging.getLogger("qthumb.worker")


class LostClaim(Exception):
    """Recovery gave this task to another worker: stop without writing anything."""


class TaskRun:
    """The state of one attempt at one task; ``run_task`` drives it. Its progress goes to the
    store fenced by the attempt, so losing the claim stops the run at the next report."""

    def __init__(
        self, settings: Settings, store: TaskStore, files: Files, task: TaskRecord
    ) -> None:
        self.settings, self.store, self.files, self.task = settings, store, files, task
        self.token, self.attempt = task.token, task.attempts
        self.results = Results()
        self.beat: Heartbeat | None = None
        # Masked in every description this attempt records (app.redact); the query's own
        # secrets join once it is parsed.
        self.secrets = secrets_of(None, settings)
        self._last_write: tuple[TaskStatus | None, float] = (None, 0.0)
        # Faults a test asked for (QTHUMB_CONTROL), met as the task enters each stage.
        self.faults = [f for f in task_faults_from_json(task.faults) if isinstance(f, TaskFault)]
        self._entered: set[TaskStatus] = set()
        self.query: Query | None = None  # once parsed
        self.live: Results | None = None  # the run's results as they grow

    def _enter(self, status: TaskStatus) -> None:
        if status in self._entered:
            return
        self._entered.add(status)
        for fault in self.faults:
            seconds = self.settings.scaled(fault.hold.get(status.value, 0.0))
            if seconds:
                log.warning(
                    "task %s: fault holds it %g s while %s", self.token, seconds, status.value
                )
                until = time.monotonic() + seconds
                while time.monotonic() < until:  # the heartbeat goes on meanwhile
                    if self.beat is not None and self.beat.lost:
                        raise LostClaim()
                    time.sleep(min(0.1, max(0.0, until - time.monotonic())))
            if fault.fail_at == status.value:
                log.warning("task %s: fault fails it while %s", self.token, status.value)
                raise TaskFailure(
                    fault.error_description or f"failed while {status.value} (a fault asked for)",
                    transient=status is TaskStatus.ENCODING,  # as an encoder's failure would be
                )

    def format_fault(self, spec: FormatSpec) -> str | None:
        """Why this format must fail, when a fault says so."""
        for fault in self.faults:
            if fault.fail_format == spec.index:
                log.warning("task %s: fault fails format %d", self.token, spec.index)
                return fault.error_description or "failed (a fault asked for)"
        return None

    def advance(self, status: TaskStatus, percent: float) -> None:
        if self.beat is not None and self.beat.lost:
            raise LostClaim()
        now = time.monotonic()
        # A new state is written at once; progress within a state at most twice a second.
        last_status, last_at = self._last_write
        if status is last_status and now - last_at < 0.5:
            return
        self._last_write = (status, now)
        if not self.store.advance(self.token, self.attempt, status, round(percent, 4), self.live):
            raise LostClaim()
        self._enter(status)  # in the stage now (its status written): faults meet it there

    def run(self, work: Path) -> None:
        self._enter(TaskStatus.DOWNLOADING)  # the claim began it
        query = self.query = task_query(self.task)
        self.secrets = secrets_of(query, self.settings)
        hooks = Hooks(
            progress=self.advance,
            probed=self._probed,
            upload_owner=self.store.upload_owner,
            task_token=self.token,
            api_key=self.task.api_key,
            label=f"task {self.token}",
            stage=lambda name: instruments().stage_seconds.labels(name).time(),
            stored=lambda kind, size: instruments().stored_bytes.labels(kind).inc(size),
            format_fault=self.format_fault,
            live=self._live,
            decode_threads=self._decode_threads,
        )
        ignored = ignored_notices(query)
        try:
            self.results = run_query(query, self.settings, self.files, work, self._storage, hooks)
        except NothingMade as exc:
            assert isinstance(exc.results, Results)
            self.results = exc.results
            self.results.warnings[:0] = ignored
            raise
        self.results.warnings[:0] = ignored
        log.info("task %s saved", self.token)

    def _decode_threads(self) -> int:
        """The cores shared among the tasks running on this machine now, this one included:
        a task alone decodes with every core, and several share them (each reads the count
        when its decoding starts, so a task started alone keeps its threads when others join:
        at most about twice the cores run at once, and only while the first ones finish)."""
        return self.settings.decode_share(self.store.running_on(socket.gethostname()))

    def _live(self, results: Results) -> None:
        self.live = results

    def _probed(self, info: MediaInfo, size: int) -> None:
        self.store.set_source_info(self.token, self.attempt, info.duration, size)
        log.info(
            "task %s source %.3fs %dx%d %s",
            self.token,
            info.duration,
            info.coded_width,
            info.coded_height,
            info.codec,
        )

    def _storage(self, spec: FormatSpec, destination: Destination | None) -> Storage:
        if destination is None:
            return temporary_storage(self.files, self.token, spec.index)
        return destination_storage(spec, destination, self.settings, self.task.api_key)


def run_task(
    settings: Settings,
    store: TaskStore,
    queue: TaskQueue,
    outbox: CallbackOutbox,
    files: Files,
    token: str,
    worker_id: str,
) -> None:
    """Run the queued task due now whose API key runs the fewest tasks (``token``, the task
    whose message woke this worker, or another: a message only says that a task may be
    waiting). Never raises for a task's own failure."""
    task = store.claim_fair(worker_id, time.time(), settings.per_key)
    if task is None:
        log.debug("woken for task %s: nothing a worker may take now", token)
        return
    _run_claimed(settings, store, queue, outbox, files, task, worker_id)
    # A message dropped while every queued task's key ran its share leaves those tasks
    # without one: the end of a task frees a place, so it wakes a worker for them.
    waiting = store.next_fair(time.time(), settings.per_key) if queue.depth() == 0 else None
    if waiting is not None:
        queue.enqueue(waiting)


def _run_claimed(
    settings: Settings,
    store: TaskStore,
    queue: TaskQueue,
    outbox: CallbackOutbox,
    files: Files,
    task: TaskRecord,
    worker_id: str,
) -> None:
    token = task.token
    attempt = task.attempts
    log.info("task %s downloading (attempt %d, %s)", token, attempt, worker_id)
    run = TaskRun(settings, store, files, task)
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    work = work_folder(settings, token, attempt)
    for stale in settings.work_dir.glob(f"{token}-*"):  # left by a killed earlier attempt
        shutil.rmtree(stale, ignore_errors=True)
    metrics = instruments()
    metrics.workers_busy.inc()
    started, outcome = time.monotonic(), "interrupted"
    try:
        work.mkdir()
        with Heartbeat(store, token, attempt, settings.heartbeat_interval) as beat:
            run.beat = beat
            run.run(work)
        # the attempt's files go before the task is seen ended: a client that sees it ended
        # sees nothing of it left on this machine
        shutil.rmtree(work, ignore_errors=True)
        _end(store, outbox, run, TaskStatus.COMPLETED, None)
        outcome = "completed"
    except LostClaim:
        outcome = "lost"
        store.release(token, worker_id)  # said to whoever took it (recovery, a reset)
        log.warning("task %s: claim lost to recovery; this attempt stops", token)
    except TaskFailure as exc:
        shutil.rmtree(work, ignore_errors=True)
        outcome = "error"
        again = exc.store_down and attempt < settings.max_attempts
        delay = STORE_RETRY_DELAY * 2 ** (attempt - 1)
        if again and store.requeue(token, attempt, time.time() + delay):  # due then
            queue.enqueue(token, delay=delay)
            outcome = "retried"
            log.warning(
                "task %s: %s; tried again in %g s (attempt %d of %d)",
                token,
                redact(exc.description, run.secrets),
                delay,
                attempt + 1,
                settings.max_attempts,
            )
            return
        _failed(settings, store, queue, outbox, run, exc.description, exc.transient)
    except (KeyboardInterrupt, SystemExit):
        # Shut down mid-task: hand the task back rather than leave it to the heartbeat timeout.
        if store.requeue(token, attempt, time.time()):
            queue.enqueue(token)
            log.warning("task %s handed back to the queue at shutdown", token)
        raise
    except Exception as exc:
        shutil.rmtree(work, ignore_errors=True)
        outcome = "error"
        log.exception("task %s failed unexpectedly", token)
        why = f"internal error: {type(exc).__name__}: {exc}"
        _failed(settings, store, queue, outbox, run, why, transient=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        metrics.workers_busy.dec()
        metrics.task_seconds.labels(outcome).observe(time.monotonic() - started)
        if outcome != "completed" or run.results.failures:
            # A failure's traceback cycles can hold its frames (a failed sheet's tiles) until
            # collected; after the metrics, so what watches them sees the task end at once.
            # Not after every task: the collection costs 25-30 ms a task (measured).
            give_back_memory()


STORE_RETRY_DELAY = 2.0  # seconds before a task whose store was down is tried again (doubling)


def ignored_notices(query: Query) -> list[Notice]:
    """A warning for each field of the user's query qthumb did not act on, tagged as the
    format it belongs to (a field of the query's own: as the task, its first format's)."""
    notices = []
    for path in query.ignored:
        found = re.match(r"query\.format\[(\d+)\]", path)
        index = int(found.group(1)) if found else 0  # the query's own: as its first format
        if index >= len(query.formats):
            index = 0
        tag = format_tag(query.formats[index].output, index)
        notices.append(
            Notice(
                f"{path} ignored",
                "qthumb does not act on this field; the output was made without it",
                tag,
            )
        )
    return notices


def task_query(task: TaskRecord) -> Query:
    """The typed query the API parsed when the task started (read with its row); tasks started
    before it was stored (schema version 4) have their query parsed here, as it was then."""
    if task.plan is not None:
        return task.plan
    try:
        if task.query is None:
            raise TaskFailure("task has no query")
        return read_query(json.loads(task.query))
    except QencodeError as exc:
        raise TaskFailure(f"query: {exc.message}") from None


def _failed(
    settings: Settings,
    store: TaskStore,
    queue: TaskQueue,
    outbox: CallbackOutbox,
    run: TaskRun,
    description: str,
    transient: bool,
) -> None:
    """The attempt failed: the task ends in error, retried first when it asked for
    ``retry_on_error`` and the reason may pass (``app.tasks.retry``)."""
    description = redact(description, run.secrets)
    events: list[str] = []
    task = run.task
    if transient and run.query is not None and run.query.retry_on_error and not task.retry_of:
        failing = replace(task, error_description=description)
        notices, event = start_retry(
            settings, store, queue, outbox, failing, run.query, time.time()
        )
        run.results.warnings += notices
        events.append(event)
    _end(store, outbox, run, TaskStatus.ERROR, description, events)


def _end(
    store: TaskStore,
    outbox: CallbackOutbox,
    run: TaskRun,
    status: TaskStatus,
    description: str | None,
    also: Sequence[str] = (),
) -> bool:
    """The attempt's outcome recorded and its callbacks queued; False when the claim was lost
    (nothing written)."""
    if description is not None:
        description = redact(description, run.secrets)
    ended = store.finish(run.token, run.attempt, status, run.results, description, time.time())
    if ended is not None:
        log.info("task %s %s%s", run.token, status.value, f": {description}" if description else "")
        task_ended(outbox, ended, time.time(), also)
        return True
    log.warning("task %s: result of attempt %d not recorded (claim lost)", run.token, run.attempt)
    return False
