"""qthumb inside other people's test suites: ``with qthumb_server() as q: …`` starts
``qthumb serve`` on a free loopback port, embedded (SQLite, local files) in a temporary data
dir, with an API key of its own, and waits until the API answers and a worker is ready. On the
way out (or when the interpreter exits) it stops everything and removes the data dir. The
pytest plugin (``app.pytest_plugin``) is this, as a session fixture.

    from qthumb.app.testing import qthumb_server

    with qthumb_server() as q:
        client = qencode3.client(q.api_key, api_url=q.url)
        … (q.media_dir / "clip.mp4") is a local source the server may read …
        status = q.wait(task.task_token)
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx

from qthumb.app.children.orphans import qthumb_module
from qthumb.app.tokens import made_api_key


class QthumbNotReady(RuntimeError):
    pass


class CallbackReceiver:
    """A loopback HTTP server that records every callback qthumb sends it (the form Qencode
    posts: ``task_token``, ``event``, ``status`` as JSON, ``payload``), for a test of the
    user's own webhook handling that needs no server of theirs. Put ``url`` in a query's
    ``callback_url``; ``wait_for(event, task_token)`` gives the call once it came."""

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(size).decode("utf-8", "replace")))
                with receiver._changed:
                    receiver.calls.append(form)
                    receiver._changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/callback"

    def events(self, task_token: str) -> list[str]:
        return [c.get("event", "") for c in self.calls if c.get("task_token") == task_token]

    def wait_for(self, event: str, task_token: str, timeout: float = 60.0) -> dict[str, Any]:
        """The first ``event`` callback of the task, its ``status`` parsed; waits for it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for call in self.calls:
                    if call.get("task_token") == task_token and call.get("event") == event:
                        found: dict[str, Any] = dict(call)
                        if "status" in found:
                            found["status"] = json.loads(found["status"])
                        return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"no {event!r} callback for {task_token} in {timeout} s "
                        f"(got {self.events(task_token)})"
                    )
                self._changed.wait(left)

    def clear(self) -> None:
        with self._changed:
            self.calls.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class QthumbServer:
    url: str  # http://127.0.0.1:<port>: what SDKs take as their API URL
    api_key: str
    media_dir: Path  # local sources may come from here (an absolute path in the query)
    data_dir: Path | None  # None for an external server
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _callbacks: CallbackReceiver | None = field(default=None, repr=False)

    @property
    def callbacks(self) -> CallbackReceiver:
        """A loopback receiver of callbacks, started on first use (its ``url`` goes into a
        query's ``callback_url``)."""
        if self._callbacks is None:
            self._callbacks = CallbackReceiver()
        return self._callbacks

    @property
    def storage_path(self) -> Path | None:
        """Where results without a destination are kept (``<task>/<format>/<file>``)."""
        return None if self.data_dir is None else self.data_dir / "storage"

    def status(self, task_token: str) -> dict[str, Any]:
        answer = httpx.post(
            f"{self.url}/v1/status", data={"task_tokens": task_token}, timeout=30
        ).json()
        found: dict[str, Any] | None = (answer.get("statuses") or {}).get(task_token)
        if found is None:
            raise KeyError(f"qthumb knows no task {task_token}: {answer}")
        return found

    def status_or_none(self, task_token: str) -> dict[str, Any] | None:
        """The task's status object, or ``None`` when qthumb knows no such task (a reset)."""
        try:
            return self.status(task_token)
        except KeyError:
            return None

    def wait(self, task_token: str, timeout: float = 120.0) -> dict[str, Any]:
        """The task's status object once it is completed or failed."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(task_token)
            if status["status"] in ("completed", "error"):
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_token} still {status['status']} after {timeout} s")
            time.sleep(0.1)

    def _control(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        answer = httpx.request(
            method,
            f"{self.url}/_qthumb/{path}",
            timeout=120,
            headers={"Authorization": f"Bearer {self.api_key}"},
            **kwargs,
        )
        if answer.status_code == 404:
            raise RuntimeError("this qthumb answers no /_qthumb/ controls: set QTHUMB_CONTROL=1")
        answer.raise_for_status()
        reply: dict[str, Any] = answer.json()
        return reply

    def reset(self) -> dict[str, Any]:
        """Remove every task, session token, upload and result of this key (running tasks are
        stopped first); the counts removed. Fault rules stay (``faults_clear``)."""
        return self._control("POST", "reset")

    @contextmanager
    def fault(self, *rules: dict[str, Any]) -> Iterator[list[int]]:
        """Rules in force inside the block (docs/testing.md, "Testing your error handling"), e.g.
        ``with qthumb.fault({"method": "start_encode2", "error": 8}): …``; removed on exit."""
        ids: list[int] = self._control("POST", "faults", json=list(rules))["ids"]
        try:
            yield ids
        finally:
            for rule_id in ids:
                self._control("DELETE", "faults", params={"id": rule_id})

    def faults(self) -> list[dict[str, Any]]:
        """The rules in force, with how often each ``fired``."""
        found: list[dict[str, Any]] = self._control("GET", "faults")["faults"]
        return found

    def faults_clear(self) -> None:
        self._control("DELETE", "faults")

    def requests(self, method: str = "", task_token: str = "") -> list[dict[str, Any]]:
        """This key's Qencode calls the server answered, oldest first (``app.api.journal``):
        each its ``method``, ``fields`` (secrets masked), ``task_token``, ``error`` and
        ``http_status``; ``method``/``task_token`` narrow the list."""
        params = {k: v for k, v in (("method", method), ("task_token", task_token)) if v}
        found: list[dict[str, Any]] = self._control("GET", "requests", params=params)["requests"]
        return found

    def assert_called(self, method: str, times: int, task_token: str = "") -> None:
        """Fail unless ``method`` was called exactly ``times`` times (for ``task_token``)."""
        calls = self.requests(method, task_token)
        assert len(calls) == times, (
            f"{method} was called {len(calls)} times, not {times}: "
            f"{[(c['error'], c['http_status']) for c in calls]}"
        )

    def logs(self) -> str:
        if self.data_dir is None:
            return ""
        return (self.data_dir / "serve.log").read_text(errors="replace")

    def stop(self) -> None:
        if self._callbacks is not None:
            self._callbacks.close()
            self._callbacks = None
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # serve hands running tasks back, then exits
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait(server: QthumbServer, port_file: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    assert server.process is not None and server.data_dir is not None
    ready = server.data_dir / "ready"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise QthumbNotReady(f"qthumb serve exited: {server.logs()[-3000:]}")
        text = port_file.read_text().strip() if port_file.exists() else ""
        if text.isdigit() and not server.url:
            server.url = f"http://127.0.0.1:{text}"
        if server.url and ready.is_dir() and any(ready.iterdir()):
            try:
                if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    raise QthumbNotReady(f"qthumb was not ready within {timeout} s: {server.logs()[-3000:]}")


@contextmanager
def qthumb_server(
    workers: int = 2,
    media_dir: Path | str | None = None,
    timeout: float = 60.0,
    **settings: str,
) -> Iterator[QthumbServer]:
    """A qthumb of the test's own; ``settings`` are more ``QTHUMB_`` variables by their
    names without the prefix (``storage_ttl="60"``). With ``seed`` (``QTHUMB_SEED``) its API
    key is drawn from the seed too, so a run's key and tokens are those of every run."""
    data = Path(tempfile.mkdtemp(prefix="qthumb-test-"))
    media = Path(media_dir) if media_dir is not None else data / "media"
    media.mkdir(parents=True, exist_ok=True)
    key = made_api_key("test-", settings.get("seed"))
    env = {
        **os.environ,
        "QTHUMB_DATA_DIR": str(data / "data"),
        "QTHUMB_API_KEYS": key,
        "QTHUMB_LOCAL_SOURCE_DIRS": str(media.resolve()),
        "QTHUMB_HOST": "127.0.0.1",
        # a test suite tries wrong keys on purpose, as often as it likes
        "QTHUMB_KEY_ATTEMPTS_PER_MINUTE": "0",
        "QTHUMB_CONTROL": "1",  # /_qthumb/ reset and faults, for the suite's error paths
        # callbacks to the fixture's own receiver (``callbacks``), on loopback
        "QTHUMB_ALLOWED_NETWORKS": ",".join(
            n for n in (os.environ.get("QTHUMB_ALLOWED_NETWORKS", ""), "127.0.0.1/32") if n
        ),
        **{f"QTHUMB_{name.upper()}": str(value) for name, value in settings.items()},
    }
    (data / "data").mkdir()
    port_file = data / "port"
    with (data / "data" / "serve.log").open("ab") as log:
        process = subprocess.Popen(
            qthumb_module(
                "app.process.cli",
                "serve",
                "--port",
                "0",
                "--port-file",
                str(port_file),
                "--workers",
                str(workers),
            ),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = QthumbServer("", key, media, data / "data", process)

    def cleanup() -> None:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)

    atexit.register(cleanup)  # an interrupted session still stops it
    try:
        _wait(server, port_file, timeout)
        yield server
    finally:
        cleanup()
        atexit.unregister(cleanup)


def external_server(url: str, api_key: str, media_dir: str | None = None) -> QthumbServer:
    """A qthumb someone else runs (a CI service container): nothing started or stopped."""
    server = QthumbServer(url.rstrip("/"), api_key, Path(media_dir or "/media"), None)
    answer = httpx.post(f"{server.url}/v1/access_token", data={"api_key": api_key}, timeout=30)
    if answer.json().get("error"):
        raise QthumbNotReady(f"{server.url} refused the API key: {json.dumps(answer.json())}")
    return server
