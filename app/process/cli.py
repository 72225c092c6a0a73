"""``qthumb serve | api | worker``.

``serve`` runs the API in this process and the worker pool as a child process
(``python -m qthumb.workers``), so the import arrow never runs from ``app`` to ``workers``;
``api`` the API alone, ``worker`` the pool alone. In each, one ``Supervisor``
(``app.children.supervisor``) owns every child the process starts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from qthumb import app as qthumb_app
from qthumb.app.children.orphans import qthumb_module

if TYPE_CHECKING:  # the server's modules are imported when a server starts (see main)
    import uvicorn

    from qthumb.app.children.supervisor import Supervisor
    from qthumb.app.settings import Settings
    from qthumb.app.tasks.backends import Backends

log = logging.getLogger("qthumb")

# What `qthumb --help` says (the module docstring above is for readers of the code).
DESCRIPTION = """\
qthumb: a self-hosted thumbnail service that speaks the Qencode API.
Point Qencode SDKs or curl at it; it makes thumbnails, sprite sheets with WebVTT, and mp4/webm.
Every setting is also an environment variable (QTHUMB_*), listed in docs/settings.md."""
EPILOG = """\
examples:
  qthumb serve                      API and workers on http://127.0.0.1:8000
  qthumb serve --port 0 --workers 2 any free port, two worker processes
  qthumb api --host 0.0.0.0         the API alone (workers run elsewhere)
  qthumb worker --workers 4         a worker pool alone, on the same database and queue"""


def _settings(args: argparse.Namespace) -> Settings:
    from qthumb.app.settings import settings_or_exit

    overrides: dict[str, object] = {}
    for name in ("host", "port", "workers"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return settings_or_exit(**overrides)


def _listen(settings: Settings) -> tuple[socket.socket, Settings]:
    """Bind the API's socket before anything else starts, so ``--port 0`` (any free port) is
    known to the workers (their URLs) and to whoever started us (``--port-file``)."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
    # and without it Nagle's algorithm meets delayed ACKs: 40 ms a response (720 req/s, not
    # 2,600, measured in bench/backends.py).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host.strip("[]"), settings.port))
    except OSError as exc:
        sock.close()
        raise SystemExit(
            f"qthumb: cannot listen on {settings.host}:{settings.port}: {exc}"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(False)
    port = sock.getsockname()[1]
    return sock, settings.model_copy(update={"port": port})


def _serve_api(
    settings: Settings,
    sock: socket.socket,
    port_file: Path | None,
    backends: Backends,
    supervisor: Supervisor,
    signals: ServeSignals | None = None,
) -> None:
    """Serve the API until SIGINT or SIGTERM (``signals``: what ``serve`` does with them
    besides; ``api`` leaves them to uvicorn)."""
    import uvicorn

    from qthumb.app.process.asgi import create_app
    from qthumb.app.process.starting import banner, check_profiles, load_init_dir

    check_profiles(settings)
    loaded = load_init_dir(settings, backends)  # before /readyz can answer
    workers = settings.workers if signals is not None else None
    print(banner(settings, backends, workers), flush=True)
    for line in loaded:
        print(f"  loaded:  {line}", flush=True)
    if port_file is not None:
        port_file.write_text(f"{settings.port}\n")
    # log_config=None: uvicorn's lines go through our handler, secrets masked (app.redact).
    # A request still running QTHUMB_SHUTDOWN_TIMEOUT after the stop is cut off.
    app = create_app(settings, backends, supervisor)
    config = uvicorn.Config(
        app,
        log_level="info",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout)),
        # X-Forwarded-For only from the proxies the operator names (uvicorn's default believes
        # any loopback peer: a local client could name any address and lift the key limit)
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=list(settings.forwarded_allow_ips) or None,
    )

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if signals is not None:
                signals.stop_workers(sig)
            app.state.on_demand.stop_taking()  # no frame server is started again from now
            super().handle_exit(sig, frame)

    server = Server(config)
    if signals is not None:
        signals.serving(server)
    logging.getLogger("uvicorn.error").addFilter(_ForcedExitNote(server))
    server.run(sockets=[sock])


class ServeSignals:
    """SIGINT and SIGTERM for ``serve``, from its first moment to its last.

    uvicorn takes the signals over only once it runs, and raises the ones it caught again when
    it gives them back. Before and after, they land here: the worker pool is told to stop
    (gracefully, tasks handed back), and a server not yet running exits as soon as it has
    started. A handler that ignored them lost a ``docker stop`` sent just after the start, and
    ``serve`` ran on until SIGKILL. While uvicorn runs, it tells the pool the same at once, so
    the pool stops while requests in flight finish and is not restarted as if it had crashed.
    """

    def __init__(self) -> None:
        self.received: int | None = None  # the signal, once one came
        self._server: uvicorn.Server | None = None
        self._stop_workers: Callable[[int], None] = lambda signum: None
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.stop_workers(signum)
        if self._server is not None:
            self._server.should_exit = True

    def stop_workers(self, signum: int) -> None:
        """The pool gets the signal ``serve`` got: SIGTERM lets running tasks finish (within
        the shutdown timeout), SIGINT hands them back at once."""
        if self.received is None:
            self.received = signum
            self._stop_workers(signum)

    def workers(self, stop: Callable[[int], None]) -> None:
        self._stop_workers = stop
        if self.received is not None:
            stop(self.received)

    def serving(self, server: uvicorn.Server) -> None:
        self._server = server
        if self.received:
            server.should_exit = True


class _ForcedExitNote(logging.Filter):
    """A second Ctrl-C makes uvicorn exit at once: requests in flight are cancelled and the
    application gets no shutdown event (its lifespan's cleanup still runs, on cancellation).
    uvicorn logs each cancellation as a traceback of ``CancelledError``; once the exit is
    forced, each becomes one plain line."""

    def __init__(self, server: uvicorn.Server) -> None:
        super().__init__()
        self.server = server

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.server.force_exit:
            return True
        if record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError):
            what = "a request in flight was cut off"
        elif "CancelledError" in record.getMessage():  # the lifespan's, as text
            what = "stopped at once"
        else:
            return True
        record.msg, record.args, record.exc_info = f"second Ctrl-C: {what}", (), None
        record.levelno, record.levelname = logging.INFO, "INFO"
        return True


class _Version(argparse.Action):
    """``--version``, read from the installed metadata only when asked for (``app.__init__``):
    argparse's own action wants the string when the parser is built, at every command's start."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show qthumb's version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"qthumb {qthumb_app.__version__}")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qthumb",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in (
        ("serve", "the API and a worker pool, in one command (what `make run` starts)"),
        ("api", "the HTTP API alone; workers run elsewhere with `qthumb worker`"),
    ):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument(
            "--host", default=None, help="address to listen on (default: QTHUMB_HOST, 127.0.0.1)"
        )
        cmd.add_argument(
            "--port",
            type=int,
            default=None,
            help="port to listen on; 0 takes any free port (default: QTHUMB_PORT, 8000)",
        )
        cmd.add_argument(
            "--port-file",
            type=Path,
            default=None,
            metavar="PATH",
            help="write the port to PATH once listening, for scripts (default: none)",
        )
        if name == "serve":
            cmd.add_argument(
                "--workers",
                type=int,
                default=None,
                help="worker processes (default: QTHUMB_WORKERS, one per CPU core)",
            )
    for name, text in (
        ("thumbnail", "offline: one image from each file, folder, glob or URL (no server)"),
        ("thumbnails", "offline: frames or sprite sheets and WebVTT for each source"),
        ("run", "offline: a whole start_encode2 query from a JSON file; prints its status"),
    ):
        sub.add_parser(name, help=text, add_help=False)  # parsed by workers.commands.offline
    text = "a worker pool alone, on the database and queue of the settings"
    worker = sub.add_parser("worker", help=text, description=text)
    worker.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: QTHUMB_WORKERS, one per CPU core)",
    )
    return parser


OFFLINE = ("thumbnail", "thumbnails", "run")  # run by workers.commands.offline: no server


def main(argv: list[str] | None = None) -> None:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] and args_in[0] in OFFLINE:
        os.execv(sys.executable, qthumb_module("workers.commands.offline", *args_in))
    parser = _parser()
    args = parser.parse_args(args_in)

    from qthumb.app import metrics
    from qthumb.app.children.supervisor import Supervisor
    from qthumb.app.process import pool
    from qthumb.app.redact import setup_logging
    from qthumb.app.tasks.backends import build

    settings = _settings(args)
    setup_logging(settings.log_format)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    metrics.start(settings)
    if args.command == "worker":
        pool.run_alone(settings, build(settings))
        return
    sock, settings = _listen(settings)
    signals = ServeSignals() if args.command == "serve" else None
    backends = build(settings)
    supervisor = Supervisor()  # every child of this process: the pool, the frame server
    watch = None
    if signals is not None:
        workers = supervisor.add(pool.pool_spec(settings))
        signals.workers(lambda signum: supervisor.begin_stop(workers, signum))
        watch = pool.PoolWatch(settings, backends, workers, sweep=False)  # the API sweeps
    try:
        _serve_api(settings, sock, args.port_file, backends, supervisor, signals)
    finally:
        if watch is not None:
            watch.stop()
        supervisor.stop()


if __name__ == "__main__":
    main()
