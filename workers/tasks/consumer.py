"""The worker pool: huey's consumer with N worker processes running ``run_task``.

``python -I -m qthumb.workers``, started by the supervisor of ``qthumb serve`` or ``qthumb
worker`` (``app.process.pool``), which also watches the attempts' deadlines, sweeps and serves
``/metrics``: this process runs no thread of its own, so the workers huey forks (again, when
one died) inherit no lock held by a thread they do not have. SIGTERM stops it gracefully:
running tasks get ``shutdown_timeout`` seconds to finish, then are handed back to the queue.
SIGINT hands running tasks back at once. Every process the consumer forks (workers, huey's
scheduler) dies with it (PDEATHSIG, ``app.children.orphans``), so a SIGKILLed consumer leaves
no orphan; and the consumer is interrupted when its supervisor dies (``--parent-pid``).
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import shutil
import signal
from collections.abc import Callable
from multiprocessing.context import ForkProcess
from typing import Any

from huey.consumer import Consumer, ProcessEnvironment

from qthumb.app import metrics
from qthumb.app.children.orphans import children_die_with_this_process, die_with_parent
from qthumb.app.memory import heap_stays_high, limit_memory
from qthumb.app.process.attempt_watch import crash_note
from qthumb.app.redact import setup_logging
from qthumb.app.settings import Settings, settings_or_exit
from qthumb.app.tasks.backends import build
from qthumb.workers.tasks.task_run import run_task
from qthumb.workers.tasks.work_folders import clear_stale_work, worker_id

log = logging.getLogger("qthumb.worker")


def worker_started(settings: Settings) -> None:
    """In each worker process once it can take tasks: counted in /metrics, and marked in
    ``<data dir>/ready/`` (one file a process on this machine), which ``qthumb_server()`` and
    the pytest plugin wait on before a test may start tasks."""
    # Born with SIGINT blocked (``_DeafProcess``): huey's handler is in place now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    limit_memory(settings)  # its share of QTHUMB_MEMORY_BUDGET (app.memory)
    # A fatal signal (a media library that crashed) is written where the pool's watch reads
    # it, so the task running here fails at once, saying so (app.process.attempt_watch)
    crash_note(settings, os.getpid()).parent.mkdir(parents=True, exist_ok=True)
    faulthandler.enable(crash_note(settings, os.getpid()).open("w"), all_threads=False)
    metrics.instruments().workers.set(1)
    ready = settings.data_dir / "ready"
    ready.mkdir(parents=True, exist_ok=True)
    (ready / f"worker-{os.getpid()}").touch()


def retire_if_heap_stays_high(*_: Any) -> None:
    """After each task (huey's post-execute hook, its last step): a worker that still maps more
    than half its memory share ends, and huey's health check starts a fresh one within
    ``health_check_interval`` (as huey's own ``max_tasks`` recycling does). The task is already
    ended in the store; nothing else runs in this process."""
    high = heap_stays_high()
    if high is None:
        return
    mapped, limit = high
    log.warning(
        "worker %d retires: %d MiB of its %d MiB share still mapped after a task; a fresh"
        " process takes its place",
        os.getpid(),
        mapped >> 20,
        limit >> 20,
    )
    logging.shutdown()
    os._exit(0)


class _DeafProcess(ForkProcess):
    """A pool process forked with SIGINT blocked: a Ctrl-C (sent to the whole group) that
    lands while the child is still in multiprocessing's start-up, before huey's handler, would
    print a traceback from there. A worker unblocks it once started (``worker_started``); the
    scheduler, which huey has ignore it anyway, keeps it blocked."""

    def start(self) -> None:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            super().start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _DeafEnvironment(ProcessEnvironment):  # type: ignore[misc]
    """huey's process environment, its processes ``_DeafProcess``es (huey's public hook:
    ``Environment.create_process``, used for the first processes and for those started
    again after one died)."""

    def create_process(self, runnable: Callable[[], None], name: str) -> ForkProcess:
        return _DeafProcess(target=runnable, name=name, daemon=True)


class _Consumer(Consumer):  # type: ignore[misc]
    """huey's consumer with the environment above (``Consumer.get_environment``, public)."""

    def get_environment(self, worker_type: str) -> Any:
        made = super().get_environment(worker_type)
        return _DeafEnvironment(made.graceful, made.interrupt)


def run_consumer(settings: Settings, workers: int) -> None:
    settings = settings.model_copy(update={"workers": workers})  # what budgets divide by
    metrics.start(settings)
    backends = build(settings)
    store, queue, outbox, files = backends.store, backends.queue, backends.outbox, backends.files
    clear_stale_work(settings, store)
    shutil.rmtree(settings.data_dir / "ready", ignore_errors=True)  # markers of a past pool
    queue.bind(lambda token: run_task(settings, store, queue, outbox, files, token, worker_id()))
    children_die_with_this_process()
    queue.huey.on_startup()(lambda: worker_started(settings))
    queue.huey.post_execute()(retire_if_heap_stays_high)
    consumer = _Consumer(
        queue.huey,
        workers=settings.pool_processes,  # one more than `workers`: for keys below their share
        worker_type="process",
        periodic=False,
        initial_delay=0.05,
        backoff=1.5,
        max_delay=0.025,  # an idle worker picks a new task within 25 ms (a cheap SQLite read)
        check_worker_health=True,
        health_check_interval=2,
        graceful_signal="TERM",
        shutdown_timeout=settings.shutdown_timeout,
    )
    log.info(
        "worker pool: %d processes (%d a key at most); %s",
        settings.pool_processes,
        settings.per_key,
        "; ".join(backends.describe()),
    )
    consumer.run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="qthumb worker", description="Run qthumb's workers.")
    parser.add_argument("--workers", type=int, default=None, help="worker processes")
    parser.add_argument(
        "--parent-pid",
        type=int,
        default=None,
        help="stop (handing running tasks back) when this process, our parent, ends",
    )
    args = parser.parse_args(argv)
    if args.parent_pid is not None:
        # SIGINT: huey's interrupt signal here; running tasks go back to the queue at once.
        die_with_parent(signal.SIGINT, expected_parent=args.parent_pid)
    settings = settings_or_exit()
    setup_logging(settings.log_format)
    run_consumer(settings, args.workers or settings.workers)
