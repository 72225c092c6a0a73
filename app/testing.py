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
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from qthumb.app.process.orphans import qthumb_module


class QthumbNotReady(RuntimeError):
    pass


@dataclass
class QthumbServer:
    url: str  # http://127.0.0.1:<port>: what SDKs take as their API URL
    api_key: str
    media_dir: Path  # local sources may come from here (an absolute path in the query)
    data_dir: Path | None  # None for an external server
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def storage_path(self) -> Path | None:
        """Where results without a destination are kept (``<task>/<format>/<file>``)."""
        return None if self.data_dir is None else self.data_dir / "storage"

    def status(self, task_token: str) -> dict[str, Any]:
        answer = httpx.post(f"{self.url}/v1/status", data={"task_tokens": task_token},
                            timeout=30).json()  # fmt: skip
        found: dict[str, Any] | None = (answer.get("statuses") or {}).get(task_token)
        if found is None:
            raise KeyError(f"qthumb knows no task {task_token}: {answer}")
        return found

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
            method, f"{self.url}/_qthumb/{path}", timeout=120,
            headers={"Authorization": f"Bearer {self.api_key}"}, **kwargs,
        )  # fmt: skip
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
        """Rules in force inside the block (README, "Testing your error handling"), e.g.
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

    def logs(self) -> str:
        if self.data_dir is None:
            return ""
        return (self.data_dir / "serve.log").read_text(errors="replace")

    def stop(self) -> None:
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
    names without the prefix (``storage_ttl="60"``)."""
    data = Path(tempfile.mkdtemp(prefix="qthumb-test-"))
    media = Path(media_dir) if media_dir is not None else data / "media"
    media.mkdir(parents=True, exist_ok=True)
    key = "test-" + secrets.token_hex(12)
    env = {
        **os.environ,
        "QTHUMB_DATA_DIR": str(data / "data"),
        "QTHUMB_API_KEYS": key,
        "QTHUMB_LOCAL_SOURCE_DIRS": str(media.resolve()),
        "QTHUMB_HOST": "127.0.0.1",
        # a test suite tries wrong keys on purpose, as often as it likes
        "QTHUMB_KEY_ATTEMPTS_PER_MINUTE": "0",
        "QTHUMB_CONTROL": "1",  # /_qthumb/ reset and faults, for the suite's error paths
        **{f"QTHUMB_{name.upper()}": str(value) for name, value in settings.items()},
    }
    (data / "data").mkdir()
    port_file = data / "port"
    with (data / "data" / "serve.log").open("ab") as log:
        process = subprocess.Popen(
            qthumb_module("app.process.cli", "serve", "--port", "0", "--port-file", str(port_file),
                          "--workers", str(workers)),
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
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
