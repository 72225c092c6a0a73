"""Direct uploads (tus 1.0) at ``{upload_url}/<task_token>`` (docs/compatibility.md), served by
tuspyserver.

Every request names its task in the path; only a task that exists and has not started may
receive uploads, and an upload can only be resumed (HEAD/PATCH) through the task that created
it. The ``Location`` of a new upload is ``{PUBLIC_BASE_URL}/v1/upload_file/<task>/<uuid>``:
the SDKs take its last segment and send ``source: "tus:<uuid>"`` for that task.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse
from starlette.datastructures import FormData
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tuspyserver import create_tus_router

from qthumb.app.api.control_routes import method_fault
from qthumb.app.api.service import UPLOAD_PATH
from qthumb.app.settings import Settings
from qthumb.app.storage.files import Files
from qthumb.app.tasks.model import TaskStatus
from qthumb.app.tasks.store import TaskStore
from qthumb.app.tokens import TOKEN_PATTERN, is_token

PREFIX = UPLOAD_PATH
_PATH = re.compile(rf"{PREFIX}/({TOKEN_PATTERN})/?")
# Every path tuspyserver may see: a task token, then an upload's uuid (the same shape). Anything
# else is answered 404 before tuspyserver, whose storages raise on an unsafe id.
_ANY = re.compile(rf"{PREFIX}/{TOKEN_PATTERN}(/{TOKEN_PATTERN})?/?")


def upload_router(settings: Settings, store: TaskStore, files: Files) -> APIRouter:

    async def task_may_upload(request: Request) -> None:
        token = request.path_params.get("task_token", "")
        await method_fault(request, "upload", FormData([("task_token", token)]))  # tests' faults
        task = store.get(token) if is_token(token) else None
        if task is None:
            raise HTTPException(status_code=404, detail="Token not found")
        if task.status is not TaskStatus.CREATED:
            raise HTTPException(status_code=409, detail="task already started")
        upload = request.path_params.get("uuid")
        if upload is not None and store.upload_owner(upload) != token:
            raise HTTPException(status_code=404, detail="no such upload for this task")

    async def choose_file(request: Request) -> Callable[[dict[str, Any]], dict[str, str]]:
        token = request.path_params["task_token"]

        def choose(metadata: dict[str, Any]) -> dict[str, str]:
            if request.method != "POST":
                return {}
            task = store.get(token)  # task_may_upload found it
            assert task is not None
            return {"uid": store.create_upload(token, task.api_key, time.time())}

        return choose

    # tuspyserver types its hooks as plain callables; they are FastAPI dependencies, which may
    # take the Request (to read the task token from the path) and may be async.
    router: APIRouter = create_tus_router(
        prefix=f"{PREFIX}/{{task_token}}",
        storage=files.tus_storage(),  # the data dir or the bucket (app.storage.files)
        max_size=settings.max_source_bytes,
        auth=task_may_upload,  # type: ignore[arg-type]
        file_dep=choose_file,  # type: ignore[arg-type]
        days_to_keep=max(1, round(settings.storage_ttl / 86400)),
    )
    return router


def with_default_metadata(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Qencode's SDKs create uploads without ``Upload-Metadata``; tuspyserver then refuses to
    resume them (HEAD needs ``filename`` and ``filetype``). Fill in what is missing."""
    current = b""
    kept = []
    for name, value in headers:
        if name.lower() == b"upload-metadata":
            current = value
        else:
            kept.append((name, value))
    pairs = [p.strip() for p in current.decode("latin-1").split(",") if p.strip()]
    keys = {p.split(" ", 1)[0] for p in pairs}
    defaults = {"filename": b"upload", "filetype": b"application/octet-stream"}
    for key, value in defaults.items():
        if key not in keys:
            pairs.append(f"{key} {base64.b64encode(value).decode()}")
    return [*kept, (b"upload-metadata", ",".join(pairs).encode("latin-1"))]


class UploadLocation:
    """tuspyserver builds ``Location`` from its route template; answer with the public one,
    ``{base}/v1/upload_file/<task_token>/<uuid>``, which ends with the uuid as the SDKs need.
    Creation requests also get default metadata (``with_default_metadata``)."""

    def __init__(self, app: ASGIApp, base_url: Callable[[], str], max_bytes: int) -> None:
        self.app = app
        self.base_url = base_url
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith(PREFIX + "/") and not _ANY.fullmatch(path):
            await PlainTextResponse("no such upload", status_code=404)(scope, receive, send)
            return
        match = _PATH.fullmatch(path) if scope["type"] == "http" else None
        if match is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        token = match.group(1)
        refused = self.length_problem(scope)
        if refused is not None:
            await PlainTextResponse(refused[1], status_code=refused[0])(scope, receive, send)
            return
        scope = {**scope, "headers": with_default_metadata(list(scope.get("headers", [])))}

        async def rewrite(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = []
                for name, value in message.get("headers", []):
                    if name.lower() == b"location":
                        uid = value.decode("latin-1").rstrip("/").rsplit("/", 1)[-1]
                        value = f"{self.base_url()}{PREFIX}/{token}/{uid}".encode("latin-1")
                    headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, rewrite)

    def length_problem(self, scope: Scope) -> tuple[int, str] | None:
        """A creation's ``Upload-Length`` that no upload may have: not a whole number of bytes
        (400), or more than ``QTHUMB_MAX_SOURCE_BYTES`` (413, as tus 1.0 says), refused before
        an upload is recorded."""
        values = [v for k, v in scope.get("headers", []) if k.lower() == b"upload-length"]
        if not values:
            return None  # Upload-Defer-Length, or tuspyserver's own refusal
        raw = values[0].decode("latin-1").strip()
        if not raw.isdigit() or len(raw) > 20:
            return 400, f"Upload-Length must be a whole number of bytes, not {raw[:40]!r}"
        if int(raw) > self.max_bytes:
            return 413, (
                f"Upload-Length {raw} is over the limit of {self.max_bytes} bytes "
                "(QTHUMB_MAX_SOURCE_BYTES)"
            )
        return None
