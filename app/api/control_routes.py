"""The mock's controls under ``/_qthumb/`` (never ``/v1/``, so no SDK reaches them by mistake),
answered only with ``QTHUMB_CONTROL=1`` (404 otherwise) and an API key (``Authorization:
Bearer <key>`` or ``api_key=``): ``reset``, ``faults`` to add (POST), list (GET) and clear
(DELETE), ``requests`` (the journal) and ``state`` to export (GET) or load (POST) one key's
tasks, results and rules as one archive (``app.control.state``). A key reaches its own state
only; what reaches every key's (``reset?all=1``) takes the operator's ``QTHUMB_ADMIN_KEY``.
Wrong keys count toward the wrong-key limit (``app.api.key_guard``). ``method_fault`` is what
each Qencode method asks before it answers.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send

from qthumb.app.api.key_guard import client_address
from qthumb.app.api.request_values import BadBody, ascii_int, json_body
from qthumb.app.api.service import QencodeService
from qthumb.app.api.storage_routes import RETRY_AFTER
from qthumb.app.control.reset import reset_keys
from qthumb.app.control.state import BadArchive, export_state, import_state
from qthumb.app.errors import ApiKeyNotFound, QencodeError
from qthumb.app.storage.objects import FileError
from qthumb.app.tasks.faults import (
    MAX_RULES_PER_KEY,
    BadRule,
    FaultStore,
    MethodFault,
    parse_rule,
)
from qthumb.app.tokens import is_token

log = logging.getLogger("qthumb.faults")
MAX_RULES_BODY = 64 * 1024  # bytes of one POST /faults body
router = APIRouter(prefix="/_qthumb", include_in_schema=False)


class InjectedError(QencodeError):
    """A Qencode error a fault asked for, with the fault's own code."""

    def __init__(self, code: int, message: str | None, http_status: int = 200) -> None:
        super().__init__(message or f"error {code} (a fault asked for)", http_status=http_status)
        self.code = code


class FaultAnswer(Exception):
    """A fault's own answer in place of the method's (raised, answered by ``answer``)."""

    def __init__(self, response: Response) -> None:
        super().__init__("a fault answered")
        self.response = response


async def answer(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FaultAnswer)
    return exc.response


class DroppedOnPurpose(Exception):
    """Raised once the answer has begun: the server closes the connection mid-answer."""


class _Drop(Response):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"1000")],
            }
        )
        raise DroppedOnPurpose()


class DropNote(logging.Filter):
    """uvicorn logs a dropped connection as an application error with a traceback: it is one
    line, on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], DroppedOnPurpose):
            record.msg, record.args, record.exc_info = "fault: connection dropped", (), None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _faults(request: Request) -> FaultStore:
    faults: FaultStore | None = request.app.state.faults
    if faults is None:  # QTHUMB_CONTROL is off: these paths do not exist
        raise HTTPException(status_code=404)
    return faults


def _key(request: Request, form: FormData | None = None, admin: bool = False) -> str | None:
    """The API key the request acts for, or ``None`` for the operator's admin key (taken only
    where ``admin``). A wrong key counts toward the wrong-key limit, as on ``access_token``."""
    header = request.headers.get("authorization", "")
    key = header[7:].strip() if header.lower().startswith("bearer ") else ""
    key = key or request.query_params.get("api_key", "")
    if not key and form is not None:
        value = form.get("api_key")
        key = value if isinstance(value, str) else ""
    service: QencodeService = request.app.state.service
    if key in service.api_keys:
        return str(key)
    admin_key = request.app.state.settings.admin_key
    if admin_key and hmac.compare_digest(key.encode(), admin_key.encode()):
        if admin:
            return None
        raise ControlRefused(
            "the admin key acts on every key's state (reset?all=1); faults "
            "belong to one API key: send that key"
        )
    service.wrong_key(
        client_address(request),
        ApiKeyNotFound(
            "api_key not found: send one as Authorization: Bearer <key>", http_status=401
        ),
    )


class ControlRefused(QencodeError):
    """A control request the key it carries may not make (403)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, http_status=403)


@router.post("/reset")
async def reset(request: Request) -> dict[str, Any]:
    """The caller's own key's tasks, sessions, uploads, results and rules; every key's with
    ``all=1``, which only ``QTHUMB_ADMIN_KEY`` may ask (never an API key)."""
    _faults(request)
    form = await request.form()
    key = _key(request, form, admin=True)
    every = request.query_params.get("all") or form.get("all")
    if key is None:
        if every not in ("1", "true"):
            raise ControlRefused("the admin key resets every key: send all=1")
        keys = sorted(request.app.state.service.api_keys)
    elif every in ("1", "true"):
        raise ControlRefused(
            "reset?all=1 reaches every key's state: it needs QTHUMB_ADMIN_KEY "
            "(an API key resets its own state only)"
        )
    else:
        keys = [key]
    settings = request.app.state.settings
    wait = settings.heartbeat_timeout + 2 * settings.heartbeat_interval
    backends = request.app.state.backends
    report = await run_in_threadpool(reset_keys, backends.db, backends.files, keys, wait)
    for cleared in keys:
        request.app.state.journal.clear(cleared)
    return {"error": 0, "keys": len(keys), **report.to_json()}


@router.get("/requests")
async def list_requests(request: Request) -> dict[str, Any]:
    """The key's Qencode method calls this API process answered, oldest first
    (``app.api.journal``): ``method``, ``task_token`` and ``since`` (seconds since the epoch)
    narrow the list."""
    _faults(request)  # control on
    key = _key(request)
    assert key is not None
    asked = request.query_params
    try:
        since = float(asked.get("since") or 0)
    except ValueError:
        raise QencodeError("since must be seconds since the epoch", http_status=400) from None
    entries = request.app.state.journal.entries(
        key, asked.get("method") or "", asked.get("task_token") or "", since
    )
    return {"error": 0, "requests": [entry.to_json() for entry in entries]}


@router.get("/state")
async def export(request: Request) -> Response:
    """The caller's ended tasks, their stored results and its rules, as one .tar.gz."""
    faults = _faults(request)
    key = _key(request)
    assert key is not None
    files = request.app.state.files
    db = request.app.state.backends.db
    handle, name = tempfile.mkstemp(prefix="qthumb-state-", suffix=".tar.gz")
    try:
        with os.fdopen(handle, "wb") as out:
            await run_in_threadpool(export_state, db, files, faults, key, out)
    except FileError as exc:  # qthumb's own store did not answer: try again
        os.unlink(name)
        return _store_down(exc)
    except BaseException:
        os.unlink(name)
        raise
    return FileResponse(
        name,
        media_type="application/gzip",
        filename="qthumb-state.tar.gz",
        background=BackgroundTask(os.unlink, name),
    )


def _store_down(exc: FileError) -> JSONResponse:
    message = f"qthumb's storage did not answer: {exc}"
    return JSONResponse(
        {"error": 1, "message": message}, 503, headers={"Retry-After": str(RETRY_AFTER)}
    )


@router.post("/state")
async def load(request: Request) -> JSONResponse:
    """An archive of ``GET /state`` (the body, up to ``QTHUMB_MAX_SOURCE_BYTES``), loaded for
    the caller's key: its tasks (tokens kept; a key's own replaced), results and rules."""
    faults = _faults(request)
    key = _key(request)
    assert key is not None
    limit = request.app.state.settings.max_source_bytes
    with tempfile.TemporaryFile() as body:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                message = f"a state archive is {limit} bytes at most (QTHUMB_MAX_SOURCE_BYTES)"
                return JSONResponse({"error": 1, "message": message}, 413)
            body.write(chunk)
        body.seek(0)
        db, files = request.app.state.backends.db, request.app.state.files
        try:
            unpacked = 4 * limit  # results are images and text: they unpack to about their size
            report = await run_in_threadpool(
                import_state, db, files, faults, body, key, True, None, unpacked
            )
        except BadArchive as exc:
            return JSONResponse({"error": 1, "message": str(exc)}, 400)
        except FileError as exc:
            return _store_down(exc)
    log.warning("state loaded for one key: %s", report.to_json())
    return JSONResponse({"error": 0, **report.to_json()})


@router.post("/faults")
async def add_faults(request: Request) -> JSONResponse:
    faults = _faults(request)
    key = _key(request)
    assert key is not None
    try:
        body = await json_body(request, MAX_RULES_BODY)
    except BadBody as exc:
        return JSONResponse({"error": 1, "message": str(exc)}, 400)
    rules = body if isinstance(body, list) else [body]
    if len(rules) > MAX_RULES_PER_KEY:
        return JSONResponse({"error": 1, "message": f"at most {MAX_RULES_PER_KEY} rules"}, 400)
    parsed = []
    for n, rule in enumerate(rules):
        try:
            parsed.append(parse_rule(rule))
        except BadRule as exc:
            return JSONResponse({"error": 1, "message": f"rule {n}: {exc}"}, 400)
    try:
        ids = await run_in_threadpool(faults.add, key, parsed, time.time(), MAX_RULES_PER_KEY)
    except BadRule as exc:
        return JSONResponse({"error": 1, "message": str(exc)}, 400)
    return JSONResponse({"error": 0, "ids": ids})


@router.get("/faults")
async def list_faults(request: Request) -> dict[str, Any]:
    faults = _faults(request)
    key = _key(request)
    assert key is not None
    rules = await run_in_threadpool(faults.rules, key)
    return {"error": 0, "faults": [rule.to_json() for rule in rules]}


@router.delete("/faults")
async def clear_faults(request: Request) -> dict[str, Any]:
    faults = _faults(request)
    key = _key(request)
    assert key is not None
    wanted = request.query_params.get("id")
    try:
        one = None if wanted is None else ascii_int("id", wanted, 1, 2**62)
    except ValueError as exc:
        raise QencodeError(str(exc), http_status=400) from None
    return {"error": 0, "removed": await run_in_threadpool(faults.clear, key, one)}


def _owner(request: Request, method: str, form: FormData) -> str | None:
    """The API key a request acts for, as far as the request says."""
    return owner_of(request.app.state.service, method, form)


def owner_of(service: QencodeService, method: str, form: Mapping[str, Any]) -> str | None:
    """The configured API key a Qencode method call acts for, as far as its form says."""

    def field(name: str) -> str:
        value = form.get(name)
        return value if isinstance(value, str) else ""

    if method in ("access_token", "request_templates"):
        key = field("api_key")
        return key if key in service.api_keys else None
    if method == "create_task":
        token = field("token")
        return service.store.session_owner(token, time.time()) if is_token(token) else None
    token = field("task_token") or field("task_tokens").split(",")[0].strip(' ["')
    task = service.store.get(token) if is_token(token) else None
    return None if task is None else str(task.api_key)


async def method_fault(request: Request, method: str, form: FormData) -> None:
    """Raise what a fault makes this method answer instead (a Qencode error, or
    ``FaultAnswer``), after any delay it asks for; return to answer as usual."""
    faults: FaultStore | None = request.app.state.faults
    if faults is None or not await run_in_threadpool(faults.any):
        return
    owner = await run_in_threadpool(_owner, request, method, form)
    if owner is None:
        return
    for rule in await run_in_threadpool(faults.in_force, owner, MethodFault):
        fault = rule.fault
        assert isinstance(fault, MethodFault)
        if fault.method != method or not await run_in_threadpool(faults.fire, rule):
            continue
        if fault.delay is not None:
            await asyncio.sleep(fault.delay)
            return
        if fault.drop:
            raise FaultAnswer(_Drop())
        if fault.error is not None:
            raise InjectedError(fault.error, fault.message)
        assert fault.http_status is not None
        if fault.http_status in (204, 205, 304):  # statuses that carry no body
            raise FaultAnswer(Response(status_code=fault.http_status))
        message = fault.message or f"HTTP {fault.http_status} (a fault asked for)"
        raise FaultAnswer(JSONResponse({"error": 1, "message": message}, fault.http_status))
