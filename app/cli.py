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
    workers = _start_workers(settings)
    try:
        _serve_api(settings)
    finally:
        _stop(workers, settings.shutdown_timeout)


if __name__ == "__main__":
    main()
