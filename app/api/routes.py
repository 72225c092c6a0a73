"""The Qencode endpoints: read the form, call one ``QencodeService`` method, return its JSON.

The service talks to the database synchronously, so calls that write run in the thread pool,
never on the event loop: a burst of start_encode2 does not hold up status calls. Status, a
single read, runs on the loop (see ``status``).

Every ``QencodeError`` is rendered by ``qencode_error_handler`` with HTTP 200
(docs/compatibility.md).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from qthumb.app.api.control_routes import method_fault
from qthumb.app.api.key_guard import client_address
from qthumb.app.api.service import METHODS, UPLOAD_PATH, QencodeService, split_task_tokens
from qthumb.app.errors import QencodeError

router = APIRouter(prefix="/v1")


def form(**fields: str) -> dict[str, Any]:
    """OpenAPI for a form body (routes read the raw form to accept repeated fields)."""
    properties = {name: {"type": "string", "description": text} for name, text in fields.items()}
    return {
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": properties}
                }
            }
        }
    }


async def _form(request: Request, method: str | None = None) -> FormData:
    """Form fields, with query-string fields as a fallback (some scripts use ``?api_key=``).
    A body that is no form (a multipart without its boundary, bytes that are no text) is a
    Qencode error like any other bad input, never FastAPI's 400 ``{"detail": …}``. With
    ``method``: a fault a test asked for on that method answers instead (``control_routes``)."""
    try:
        form = await request.form()
    except (HTTPException, ValueError) as exc:  # ValueError: UnicodeDecodeError among them
        detail = exc.detail if isinstance(exc, HTTPException) else type(exc).__name__
        raise QencodeError(f"the request body is not a form: {detail}") from None
    merged = FormData([*request.query_params.multi_items(), *form.multi_items()])
    if method is not None:
        await method_fault(request, method, merged)
    return merged


def _service(request: Request) -> QencodeService:
    service: QencodeService = request.app.state.service
    return service


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


# First of the routes: routes match in order, and SDKs poll status far more often than
# they call anything else (bench/backends.py).
@router.api_route(
    "/status",
    methods=["GET", "POST"],  # GET: people paste status URLs into browsers
    openapi_extra=form(
        task_tokens="one token, a comma list or a JSON list",
        **{"task_tokens[]": "one token (the field may repeat)"},
    ),
    response_model=None,  # the answer is ours already: no second serialization through pydantic
)
async def status(request: Request) -> JSONResponse:
    form = await _form(request, "status")
    single = [v for v in form.getlist("task_tokens") if isinstance(v, str)]
    bracketed = [v for v in form.getlist("task_tokens[]") if isinstance(v, str)]
    tokens = split_task_tokens(single, bracketed)
    # On the event loop: SDKs poll status. On SQLite it is one indexed read that no writer
    # blocks (WAL), and the thread hop cost more than the query (1,238 against 2,695 req/s,
    # bench/backends.py); on PostgreSQL the read is awaited through an async pool, so a wait
    # for a connection freezes no other request.
    return JSONResponse(await _service(request).status_async(tokens))


@router.post("/access_token", openapi_extra=form(api_key="API key, 12+ characters"))
async def access_token(request: Request) -> dict[str, Any]:
    form = await _form(request, "access_token")
    return await run_in_threadpool(
        _service(request).access_token, _text(form, "api_key"), client_address(request)
    )


@router.post("/request_templates", openapi_extra=form(api_key="API key"))
async def request_templates(request: Request) -> dict[str, Any]:
    form = await _form(request, "request_templates")
    return await run_in_threadpool(
        _service(request).request_templates, _text(form, "api_key"), client_address(request)
    )


@router.post("/create_task", openapi_extra=form(token="session token from access_token"))
async def create_task(request: Request) -> dict[str, Any]:
    form = await _form(request, "create_task")
    return await run_in_threadpool(_service(request).create_task, _text(form, "token"))


@router.post(
    "/start_encode2",
    openapi_extra=form(
        task_token="task token from create_task",
        query='JSON: {"query": {"source": …, "format": [...]}}',
        payload="echoed in callbacks, 1000 characters at most",
    ),
)
async def start_encode2(request: Request) -> dict[str, Any]:
    form = await _form(request, "start_encode2")
    return await run_in_threadpool(
        _service(request).start_encode2,
        _text(form, "task_token"),
        _text(form, "query"),
        _text(form, "payload"),
    )


@router.post(
    "/start_encode",
    openapi_extra=form(
        task_token="task token",
        profiles="profile ids, commas between",
        uri="the source",
        stitch="or sources to join: a JSON list",
        start_time="seconds",
        duration="seconds",
        payload="echoed back",
    ),
)
async def start_encode(request: Request) -> dict[str, Any]:
    form = await _form(request, "start_encode2")  # its faults, as it runs as start_encode2
    return await run_in_threadpool(
        _service(request).start_encode,
        _text(form, "task_token"),
        _text(form, "profiles"),
        _text(form, "uri"),
        _text(form, "payload"),
        _text(form, "stitch"),
        _text(form, "start_time"),
        _text(form, "duration"),
    )


async def unknown_path_handler(request: Request, exc: Exception) -> Response:
    """Under ``/v1/``, a method qthumb does not serve (or a wrong HTTP verb) is a Qencode error
    at once: HTTP 200 with error 1. SDKs treat any non-2xx as a network failure and retry (the
    Node SDK's ``getTemplates()``: 20 times, 3 s apart). Elsewhere, plain 404/405."""
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if not path.startswith("/v1/") or path.startswith(UPLOAD_PATH):
        return await http_exception_handler(request, exc)
    name = path[len("/v1/") :].strip("/")[:100]
    if exc.status_code == 405:
        message = f"{request.method} is not accepted by {name}: send a POST form"
    elif exc.status_code == 404:
        message = f"unknown method {name!r}: qthumb serves {', '.join(METHODS)} and upload_file"
    else:
        return await http_exception_handler(request, exc)
    return render(QencodeError(message))


def render(exc: QencodeError) -> JSONResponse:
    """The Qencode error envelope of ``exc``: the one place it is written."""
    return JSONResponse(
        {"error": exc.code, "message": exc.message},
        status_code=exc.http_status,
        headers=exc.headers(),
    )


async def qencode_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QencodeError)
    return render(exc)
