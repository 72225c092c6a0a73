"""The worker pool as a child of a supervisor, and the watch kept over it from outside.

``qthumb serve`` and ``qthumb worker`` run the pool (``python -I -m qthumb.workers``: huey's
consumer and the worker processes it forks) as a child of their ``Supervisor``, which starts it
again when it dies. The supervising process, not the pool, also runs ``PoolWatch``: the
deadline of every attempt the pool's workers run (``app.process.attempt_watch``) and, for a pool
alone (``qthumb worker``, no API beside it), the recovery sweep and ``/metrics`` on
``QTHUMB_METRICS_PORT``. So the consumer process has no thread of ours, and every worker huey
forks, at the start or to replace one that died, is forked from a process with one thread.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

from prometheus_client import CONTENT_TYPE_LATEST

from qthumb.app import metrics
from qthumb.app.children.orphans import processes, qthumb_module
from qthumb.app.children.supervisor import Child, ChildSpec, Supervisor
from qthumb.app.process.attempt_watch import end_dead_workers, stop_overdue
from qthumb.app.settings import Settings
from qthumb.app.tasks.backends import Backends
from qthumb.app.tasks.recovery import sweep_safely

log = logging.getLogger("qthumb.pool")


def pool_spec(settings: Settings) -> ChildSpec:
    env = {**os.environ, "QTHUMB_DATA_DIR": str(settings.data_dir.resolve())}

    def argv() -> list[str]:
        # The pool is interrupted (tasks handed back) when this process dies, even by SIGKILL.
        workers = str(settings.workers)
        return qthumb_module("workers", "--workers", workers, "--parent-pid", str(os.getpid()))

    # A pool stopping gracefully gives running tasks shutdown_timeout s, then hands them back.
    return ChildSpec("worker pool", argv, env=env, stop_timeout=settings.shutdown_timeout + 5)


def child_pids(parent: int | None) -> set[int]:
    """The process ids whose parent is ``parent`` (the pool's workers and scheduler)."""
    if parent is None:
        return set()
    return {pid for pid, fields in processes() if len(fields) > 1 and fields[1] == str(parent)}


class PoolWatch:
    """Every ``sweep_interval``: attempts past their deadline stopped, and (``sweep``) the
    recovery sweep, for a pool with no API beside it to run one."""

    def __init__(self, settings: Settings, backends: Backends, pool: Child, sweep: bool) -> None:
        self.settings, self.backends, self.pool, self.sweep = settings, backends, pool, sweep
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pool-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        b = self.backends
        while not self._stop.wait(self.settings.sweep_interval):
            now = time.time()
            if self.sweep:
                sweep_safely(self.settings, b.store, b.queue, b.outbox, b.files, now)
            try:
                stop_overdue(self.settings, b.store, b.outbox, self._workers, now)
                end_dead_workers(self.settings, b.store, b.queue, b.outbox, now)
            except Exception:  # a store that is down now: the next round tries again
                log.exception("deadline watch failed; trying again")

    def _workers(self) -> set[int]:
        return child_pids(self.pool.pid)

    def stop(self) -> None:
        self._stop.set()


def serve_metrics(settings: Settings, pool: Child) -> None:
    """``/metrics`` of this machine's worker processes on a port of their own (a worker pool
    alone has no API to ask): 503 while the pool is not running, so a health check sees it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            if pool.pid is None:
                self.send_error(503, "the worker pool is not running")
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


def run_alone(settings: Settings, backends: Backends) -> None:
    """``qthumb worker``: the pool under a supervisor until SIGTERM or SIGINT, which is passed
    on to the pool (SIGTERM: running tasks get ``shutdown_timeout`` s; SIGINT: they are handed
    back at once)."""
    supervisor = Supervisor("pool-supervisor")
    stop = threading.Event()
    pool = supervisor.add(pool_spec(settings))

    def handle(signum: int, frame: FrameType | None) -> None:
        supervisor.begin_stop(pool, signum)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handle)
    watch = PoolWatch(settings, backends, pool, sweep=True)
    if settings.metrics_port:
        serve_metrics(settings, pool)
    log.info("worker pool: %d processes; %s", settings.workers, "; ".join(backends.describe()))
    try:
        while not stop.wait(1.0):
            pass
    finally:
        watch.stop()
        supervisor.stop()
