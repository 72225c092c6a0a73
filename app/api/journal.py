"""The request journal (``QTHUMB_CONTROL`` only): every Qencode method call this API process
answered, kept per API key in a ring of the last ``QTHUMB_JOURNAL_SIZE``, for a test to assert
on (``GET /_qthumb/requests?method=&task_token=&since=``, cleared by reset): its time, method,
form fields (keys, tokens and credentials masked), task token, the answer's Qencode error code
and HTTP status. Answers a fault made are recorded as what they were; a connection a fault
dropped has no HTTP status.

``Journaled`` is an ASGI middleware: it reads a copy of the request body and of the answer as
they pass, so every route, fault and error handler is recorded the same way. Only calls that
act for a configured key are kept, so the journal is bounded by keys x size. Each API process
keeps its own: with several replicas, ask each.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qthumb.app.api.control_routes import DroppedOnPurpose
from qthumb.app.api.service import METHODS

SECRET_FIELDS = frozenset({"api_key", "token", "key", "secret", "password"})
MASK = "***"
MOST_BYTES = 256 * 1024  # of a request or an answer looked at: forms and answers are small


@dataclass(frozen=True)
class Entry:
    at: float  # seconds since the epoch, when the answer was sent
    method: str
    task_token: str | None
    fields: dict[str, Any]  # as sent, secrets masked; ``query`` parsed when it is JSON
    error: int | None  # the answer's Qencode ``error`` (None: no JSON answer)
    http_status: int | None  # None: the connection was dropped (a fault)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Journal:
    def __init__(self, size: int) -> None:
        self.size = size
        self._by_key: dict[str, deque[Entry]] = {}
        self._lock = threading.Lock()

    def add(self, key: str, entry: Entry) -> None:
        with self._lock:
            self._by_key.setdefault(key, deque(maxlen=self.size)).append(entry)

    def entries(
        self, key: str, method: str = "", task_token: str = "", since: float = 0.0
    ) -> list[Entry]:
        with self._lock:
            kept = list(self._by_key.get(key, ()))
        return [
            e
            for e in kept
            if (not method or e.method == method)
            and (not task_token or e.task_token == task_token)
            and e.at >= since
        ]

    def clear(self, key: str) -> None:
        with self._lock:
            self._by_key.pop(key, None)


def masked(value: Any) -> Any:
    """``value`` with every credential masked (a field named like one, at any depth)."""
    if isinstance(value, dict):
        return {k: MASK if k in SECRET_FIELDS and v else masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def form_fields(body: bytes, query_string: bytes) -> dict[str, Any]:
    """A form's fields (the query string's too), secrets masked; ``query`` parsed."""
    fields: dict[str, Any] = {}
    for raw in (query_string, body):
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            continue
        for name, value in pairs:
            fields[name] = value
    if isinstance(fields.get("query"), str):
        with contextlib.suppress(ValueError):
            fields["query"] = json.loads(fields["query"])
    result: dict[str, Any] = masked(fields)
    return result


class Journaled:
    """Records each Qencode method call (``Journal``) for the key it acts for."""

    def __init__(
        self,
        app: ASGIApp,
        journal: Journal,
        owner: Callable[[str, dict[str, str]], str | None],
    ) -> None:
        self.app, self.journal, self.owner = app, journal, owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        method = path.removeprefix("/v1/")
        if not path.startswith("/v1/") or method not in METHODS:
            await self.app(scope, receive, send)
            return
        body, answer = bytearray(), bytearray()
        status: list[int | None] = [None]

        async def tee_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) < MOST_BYTES:
                body.extend(message.get("body", b""))
            return message

        async def tee_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body" and len(answer) < MOST_BYTES:
                answer.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, tee_receive, tee_send)
        except DroppedOnPurpose:
            status[0] = None  # a fault closed the connection: no answer arrived
            raise
        except Exception:
            status[0] = 500  # what the server's error middleware answers for it
            raise
        finally:
            await self._record(
                method, bytes(body), scope.get("query_string", b""), bytes(answer), status[0]
            )

    async def _record(
        self, method: str, body: bytes, query: bytes, answer: bytes, status: int | None
    ) -> None:
        raw = {k: v for k, v in parse_qsl(_text(query) + "&" + _text(body)) if v}
        key = await run_in_threadpool(self.owner, method, raw)
        if key is None:
            return
        try:
            reply = json.loads(answer) if answer else {}
        except ValueError:
            reply = {}
        reply = reply if isinstance(reply, dict) else {}
        error = reply.get("error") if isinstance(reply.get("error"), int) else None
        token = raw.get("task_token") or reply.get("task_token")
        if not token and raw.get("task_tokens"):
            token = raw["task_tokens"].split(",")[0].strip(' ["')
        entry = Entry(
            time.time(),
            method,
            token if isinstance(token, str) else None,
            form_fields(body, query),
            error,
            status,
        )
        self.journal.add(key, entry)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")
