"""``qthumb serve | api | worker``.

``serve`` runs the API in this process and the worker pool as a child process
(``python -m workers``), so the import arrow never runs from ``app`` to ``workers``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading

import uvicorn

from app.keys import resolve_api_keys
from app.main import create_app
from app.settings import Settings

log = logging.getLogger("qthumb")


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    for name in ("host", "port", "workers"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)  # type: ignore[arg-type]


def _serve_api(settings: Settings) -> None:
    _, dev_key = resolve_api_keys(settings)
    if dev_key:
        print(f"qthumb: no QTHUMB_API_KEYS set; dev API key: {dev_key}", flush=True)
    print(f"qthumb: API on http://{settings.host}:{settings.port}", flush=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


def _start_workers(settings: Settings) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "QTHUMB_DATA_DIR": str(settings.data_dir.resolve()),
        "QTHUMB_PUBLIC_BASE_URL": settings.base_url,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "workers", "--workers", str(settings.workers)], env=env
    )


class WorkerSupervisor:
    """Keeps the worker pool running beside the API: a pool that exits on its own (a crash, an
    import error, the OOM killer) is started again, with backoff, so queued tasks never wait on
    a pool that is gone."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.proc = _start_workers(settings)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        delay = 1.0
        while not self._stopping.wait(1.0):
            code = self.proc.poll()
            if code is None:
                delay = 1.0
                continue
            log.error("worker pool exited with code %s; starting it again in %.0f s", code, delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, 30.0)
            self.proc = _start_workers(self.settings)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        _stop(self.proc, self.settings.shutdown_timeout)


def _stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="qthumb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("serve", "API and worker pool in one command"),
        ("api", "the HTTP API alone"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--host", default=None)
        cmd.add_argument("--port", type=int, default=None)
        if name == "serve":
            cmd.add_argument("--workers", type=int, default=None)
    worker = sub.add_parser("worker", help="the worker pool alone")
    worker.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    if args.command == "worker":
        argv_ = [sys.executable, "-m", "workers"]
        if args.workers:
            argv_ += ["--workers", str(args.workers)]
        os.execv(sys.executable, argv_)
    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if args.command == "api":
        _serve_api(settings)
        return
    # uvicorn handles SIGINT/SIGTERM, then raises the signal again once it has shut down;
    # without a handler of ours that would end this process before the workers are stopped.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    supervisor = WorkerSupervisor(settings)
    try:
        _serve_api(settings)
    finally:
        supervisor.stop()


if __name__ == "__main__":
    main()
