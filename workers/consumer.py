"""The worker process lifecycle: huey's consumer with N worker processes running ``run_task``.

``python -m workers`` (or ``qthumb worker``) starts it. SIGTERM stops it gracefully: running
tasks get ``shutdown_timeout`` seconds to finish, then are handed back to the queue. SIGINT
hands running tasks back at once. Every process the consumer forks (workers, huey's scheduler)
dies with it (PDEATHSIG, ``app.orphans``), so a SIGKILLed consumer leaves no orphan; started by
``qthumb serve`` (``--parent-pid``), the consumer itself is interrupted when ``serve`` dies.
"""

from __future__ import annotations

import argparse
import logging
import signal

from app.orphans import children_die_with_this_process, die_with_parent
from app.outbox import CallbackOutbox
from app.queue import HueyQueue
from app.redact import setup_logging
from app.settings import Settings
from app.store import SqliteTaskStore
from workers.pipeline import run_task, worker_id

log = logging.getLogger("qthumb.worker")


def run_consumer(settings: Settings, workers: int) -> None:
    store = SqliteTaskStore(settings.db_path)
    queue = HueyQueue(settings)
    outbox = CallbackOutbox(settings.db_path)
    queue.bind(lambda token: run_task(settings, store, queue, outbox, token, worker_id()))
    children_die_with_this_process()
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
    setup_logging()
    settings = Settings()
    run_consumer(settings, args.workers or settings.workers)
