"""The worker process lifecycle: huey's consumer with N worker processes running ``run_task``.

``python -m workers`` (or ``qthumb worker``) starts it. SIGTERM stops it gracefully: running
tasks get ``shutdown_timeout`` seconds to finish, then are handed back to the queue. SIGINT
hands running tasks back at once. Worker processes die with their consumer (PDEATHSIG), so a
SIGKILLed consumer leaves no orphan decoding on its own.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import signal
import sys

from app.outbox import CallbackOutbox
from app.queue import HueyQueue
from app.settings import Settings
from app.store import SqliteTaskStore
from workers.pipeline import run_task, worker_id

log = logging.getLogger("qthumb.worker")
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def run_consumer(settings: Settings, workers: int) -> None:
    store = SqliteTaskStore(settings.db_path)
    queue = HueyQueue(settings)
    outbox = CallbackOutbox(settings.db_path)
    queue.bind(lambda token: run_task(settings, store, queue, outbox, token, worker_id()))
    queue.huey.on_startup()(_die_with_parent)
    consumer = queue.huey.create_consumer(
        workers=workers,
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
    log.info("worker pool: %d processes on %s", workers, settings.queue_path)
    consumer.run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="qthumb worker", description="Run qthumb's workers.")
    parser.add_argument("--workers", type=int, default=None, help="worker processes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings()
    run_consumer(settings, args.workers or settings.workers)
