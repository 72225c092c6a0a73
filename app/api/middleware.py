"""The API's ASGI middlewares: double slashes collapsed, request bodies bounded before they
are parsed, requests counted by endpoint. ``app.process.asgi`` puts them around the routes."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qthumb.app.api.routes import render
from qthumb.app.api.service import METHODS, UPLOAD_PATH
from qthumb.app.api.uploads import PREFIX as UPLOAD_PREFIX
from qthumb.app.errors import QencodeError
from qthumb.app.metrics import instruments


class CollapseSlashes:
    """``//v1/status`` is ``/v1/status``: several SDKs build double slashes
    (docs/compatibility.md)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "//" in scope["path"]:
            path = "/" + "/".join(part for part in scope["path"].split("/") if part)
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)


# Bodies that have limits of their own: tus uploads, and state archives (app.control.state).
UNLIMITED = (UPLOAD_PREFIX, "/_qthumb/state")


class BodyLimit:
    """API requests carry forms of a few KB: a body over ``limit`` bytes gets HTTP 413 (with
    Qencode's JSON) before any of it is parsed. Uploads (tus) are limited by their own size."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNLIMITED):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.limit:
                too_large = f"request body is over {self.limit} bytes"
                response = render(QencodeError(too_large, http_status=413))
                await response(scope, receive, send)
                return
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class RequestMetrics:
    """Counts API requests by endpoint and HTTP code (``app.metrics``). Endpoints are a
    fixed
    set of names, never raw paths, so a scanner cannot grow the label set."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        code = 500

        async def record(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            endpoint = endpoint_name(scope.get("path", ""))
            instruments().requests.labels(endpoint, str(code)).inc()


def endpoint_name(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "v1":
        if parts[1] in METHODS:
            return parts[1]
        upload = UPLOAD_PATH.rsplit("/", 1)[-1]
        return upload if parts[1] == upload else "v1_other"
    if parts and parts[0] in ("storage", "healthz", "readyz", "metrics", "ui"):
        return parts[0]
    return "other"
