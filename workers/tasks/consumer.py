"""The worker process lifecycle: huey's consumer with N worker processes running ``run_task``.

``python -m workers`` (or ``qthumb worker``) starts it. SIGTERM stops it gracefully: running
tasks get ``shutdown_timeout`` seconds to finish, then are handed back to the queue. SIGINT
hands running tasks back at once. Every process the consumer forks (workers, huey's scheduler)
dies with it (PDEATHSIG, ``app.process.orphans``), so a SIGKILLed consumer leaves no orphan;
started by
``qthumb serve`` (``--parent-pid``), the consumer itself is interrupted when ``serve`` dies.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

from qthumb.app.process import metrics
from qthumb.app.process.orphans import children_die_with_this_process, die_with_parent
from qthumb.app.redact import setup_logging
from qthumb.app.settings import Settings, settings_or_exit
from qthumb.app.tasks.backends import Backends, build
from qthumb.app.tasks.recovery import sweep_safely
from qthumb.workers.tasks.deadlines import stop_overdue
from qthumb.workers.tasks.task_run import clear_stale_work, run_task, worker_id

log = logging.getLogger("qthumb.worker")


def serve_metrics(settings: Settings) -> None:
    """``/metrics`` of this machine's worker processes on a port of their own (a worker pool
    alone has no API to ask)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = metrics.exposition()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    try:
        server = ThreadingHTTPServer((settings.metrics_host, settings.metrics_port), Handler)
    except OSError as exc:
        log.warning("worker metrics not served on port %d: %s", settings.metrics_port, exc)
        return
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("worker metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)


class SweepThread:
    """The recovery sweep from the worker side too: tasks are recovered even when no API
    process is running (``app.tasks.recovery``; concurrent sweeps are safe). And the pool's
    watch over its workers' deadlines (``workers.tasks.deadlines``)."""

    def __init__(
        self, settings: Settings, backends: Backends, children: Callable[[], set[int]]
    ) -> None:
        self.settings, self.backends, self.children = settings, backends, children
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        b = self.backends
        while not self._stop.wait(self.settings.sweep_interval):
            sweep_safely(self.settings, b.store, b.queue, b.outbox, b.files, time.time())
            try:
                stop_overdue(self.settings, b.store, b.outbox, self.children, time.time())
            except Exception:  # a store that is down now: the next round tries again
                log.exception("deadline watch failed; trying again")

    def stop(self) -> None:
        self._stop.set()


def worker_started(settings: Settings) -> None:
    """In each worker process once it can take tasks: counted in /metrics, and marked in
    ``<data dir>/ready/`` (one file a process on this machine), which ``qthumb_server()`` and
    the pytest plugin wait on before a test may start tasks."""
    # Born with SIGINT blocked (``_born_deaf``): huey's handler is in place now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    metrics.instruments().workers.set(1)
    ready = settings.data_dir / "ready"
    ready.mkdir(parents=True, exist_ok=True)
    (ready / f"worker-{os.getpid()}").touch()


def _born_deaf(start: Callable[[], None]) -> Callable[[], None]:
    """``start`` forking a child with SIGINT blocked: a Ctrl-C (sent to the whole group) that
    lands while the child is still in multiprocessing's start-up, before huey's handler, would
    print a traceback from there. A worker unblocks it once started (``worker_started``); the
    scheduler, which huey has ignore it anyway, keeps it blocked."""

    def started() -> None:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    return started


def run_consumer(settings: Settings, workers: int) -> None:
    metrics.start(settings)
    backends = build(settings)
    store, queue, outbox, files = backends.store, backends.queue, backends.outbox, backends.files
    clear_stale_work(settings, store)
    shutil.rmtree(settings.data_dir / "ready", ignore_errors=True)  # markers of a past pool
    queue.bind(lambda token: run_task(settings, store, queue, outbox, files, token, worker_id()))
    children_die_with_this_process()
    queue.huey.on_startup()(lambda: worker_started(settings))
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
    for process in [consumer.scheduler, *(p for _, p in consumer.worker_threads)]:
        process.start = _born_deaf(process.start)
    log.info("worker pool: %d processes; %s", workers, "; ".join(backends.describe()))

    def children() -> set[int]:
        return {p.pid for _, p in consumer.worker_threads if p.pid is not None}

    sweeper = SweepThread(settings, backends, children)
    fork_workers = consumer.start

    def start() -> None:
        # The pool's own threads only once its workers are forked: a child inherits no lock
        # held by a thread it does not have.
        fork_workers()
        if settings.metrics_port:
            serve_metrics(settings)
        sweeper.start()

    consumer.start = start
    try:
        consumer.run()
    finally:
        sweeper.stop()


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
